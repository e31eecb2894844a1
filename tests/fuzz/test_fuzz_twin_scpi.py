"""Fuzz: the twin's SCPI command parser and both PSU dialects never crash, hang or hit an unknown exception.

The twin's ``Interpreter`` documents what becomes of a bad program message: a SCPI error in the session's queue
(syntax, header, parameter, range...) — and "an exception it does not know is a bug: logged with its traceback,
queued as -300". So here the interpreter runs with a translation hook that re-raises anything the dialect's own
hook does not map: any such exception fails the test with its traceback. Messages are arbitrary text and, to
get past the header lookup, sequences of program units built from the dialect's own command patterns (short and
long forms, optional nodes, numeric suffixes, any case) with odd parameters (units, MIN/MAX, channel lists,
numbers too big for any type). Every message must finish within a few seconds: a message may not make the twin
hang. Digitizer fetches are left out of the generated units: they wait, by design, for the acquisition the bench
configured (up to hours), as a real supply does.
"""

from __future__ import annotations

import contextlib
import re
import time

import pytest
from fuzz_strategies import fuzz, run_on_loop
from hypothesis import given
from hypothesis import strategies as st

from twin.dialect_common import scpi_error_for
from twin.psu_service import PsuService
from twin.scpi import (
    DATA_OUT_OF_RANGE,
    DATA_TYPE_ERROR,
    ILLEGAL_PARAMETER,
    TOO_MUCH_DATA,
    Interpreter,
    ScpiError,
    Session,
    parse_bool,
    parse_channel_list,
    parse_number,
    split_params,
)
from twin.world import Options, World

DIALECTS = ("keysight", "rigol")
MESSAGE_TIMEOUT_S = 5.0


def strict(exc: Exception) -> ScpiError:
    """The dialects' translation hook, except that an exception it does not know fails the test."""
    mapped = scpi_error_for(exc)
    if mapped is None:
        raise exc
    return mapped


def interpreter(dialect: str) -> Interpreter:
    service = PsuService(World(Options(psu_dialect=dialect)))  # type: ignore[arg-type]
    return Interpreter(service.server.interpreter.commands, translate=strict)


_NODE = re.compile(r"\[:?(?P<opt>\*?[A-Za-z]+)(?P<osfx>#?)\]|:?(?P<req>\*?[A-Za-z]+)(?P<rsfx>#?)")


def _nodes(pattern: str) -> tuple[tuple[str, str, bool, bool], ...]:
    """(long form, short form, optional, takes a suffix) of each node of a command pattern."""
    return tuple(
        (word.upper(), "".join(c for c in word if not c.islower()), bool(m["opt"]), bool(m["osfx"] or m["rsfx"]))
        for m in _NODE.finditer(pattern.rstrip("?"))
        for word in [m["opt"] or m["req"]]
    )


PATTERNS = {
    d: [
        (_nodes(p), p.endswith("?"))
        for p in interpreter(d).commands.patterns()
        if "ARR" not in p.upper() and "FETC" not in p.upper()
    ]
    for d in DIALECTS
}
# Strategies are built once, not inside the composites: building one per draw costs more than the draw.
coin = st.booleans()
one_in_four = st.integers(0, 3)
suffixes = st.sampled_from(("", "1", "2", "3", "0", "9", "4" * 30))


@st.composite
def header(draw: st.DrawFn, nodes: tuple[tuple[str, str, bool, bool], ...], query: bool) -> str:
    """One spelling of a command pattern: short or long forms in any case, optional nodes in or out."""
    parts = []
    for long, short, optional, suffix in nodes:
        if optional and draw(coin):
            continue
        spelled = long if draw(coin) else short
        spelled = spelled.lower() if draw(coin) else spelled
        parts.append(spelled + (draw(suffixes) if suffix else ""))
    head = ":".join(parts)
    if draw(one_in_four) == 0:
        head = ":" + head
    if draw(one_in_four) == 0:
        query = not query
    return head + ("?" if query else "")


NUMBERS = ("0", "1", "-1", "5.0", "1e3", "1e999", "-1e999", "NAN", "INF", "1.2.3", "9" * 5000, "", " ", "#")
UNITS_AND_WORDS = (
    "0.5V",
    "500mA",
    "2KV",
    "3US",
    "MIN",
    "MAX",
    "DEF",
    "minimum",
    "ON",
    "OFF",
    "BUS",
    "IMM",
    '"t"',
    "'x'",
)
CHANNELS = ("CH1", "CH3", "CH0", "CH9", "CH²", "CH٣", "CH" + "9" * 5000, "(@1)", "(@1,3)", "(@1:3)", "(@3:1)")
ODD_LISTS = ("(@1:99999999)", "(@-5:5)", "(@)", "(@1,", "(@a)", "@1", "(@1:2:3)", "((@1))")
parameters = st.one_of(
    st.sampled_from(NUMBERS + UNITS_AND_WORDS + CHANNELS + ODD_LISTS),
    st.integers(-(10**20), 10**20).map(str),
    st.floats().map(repr),
    st.text(max_size=10),
)


parameter_lists = st.lists(parameters, max_size=3)
unit_counts = st.integers(1, 4)
pattern_index = {d: st.integers(0, len(PATTERNS[d]) - 1) for d in DIALECTS}


@st.composite
def program_message(draw: st.DrawFn, dialect: str) -> str:
    units = []
    for _ in range(draw(unit_counts)):
        head = draw(header(*PATTERNS[dialect][draw(pattern_index[dialect])]))
        params = draw(parameter_lists)
        units.append(head + (" " + ",".join(params) if params else ""))
    return ";".join(units)


def execute(interp: Interpreter, session: Session, message: str) -> str | None:
    start = time.monotonic()
    reply = run_on_loop(interp.execute(session, message), MESSAGE_TIMEOUT_S)
    assert time.monotonic() - start < MESSAGE_TIMEOUT_S
    assert reply is None or (isinstance(reply, str) and "\n" not in reply)
    return reply


@fuzz(100)
@given(data=st.data(), dialect=st.sampled_from(DIALECTS), n=st.integers(1, 4))
def test_dialect_command_units(data: st.DataObject, dialect: str, n: int) -> None:
    interp = interpreter(dialect)
    session = Session()
    for _ in range(n):
        execute(interp, session, data.draw(program_message(dialect)))
    # Whatever happened, the error queue still reads out to "no error".
    for _ in range(25):
        if execute(interp, session, "SYST:ERR?") in ('+0,"No error"', '0,"No error"'):
            break
    else:
        pytest.fail("the error queue never emptied")


@fuzz(100)
@given(
    dialect=st.sampled_from(DIALECTS),
    message=st.text(st.characters(max_codepoint=0xFF, exclude_characters="\n"), max_size=80),
)
def test_arbitrary_text_messages(dialect: str, message: str) -> None:
    execute(interpreter(dialect), Session(), message)


@fuzz(100)
@given(text=st.one_of(parameters, st.text(st.sampled_from("(@,:)0123456789- "), max_size=20)))
def test_parameter_parsers(text: str) -> None:
    for parse in (
        split_params,
        parse_bool,
        parse_channel_list,
        lambda t: parse_number(t, low=-1e3, high=1e3, unit="V"),
    ):
        with contextlib.suppress(ScpiError):
            parse(text)


def test_a_huge_channel_list_is_refused_not_built() -> None:
    """Regression (found by fuzzing): ``(@1:99999999)`` built a list of 10^8 channel numbers before any range
    check — seconds of CPU and gigabytes for one parameter. A list naming more channels than any instrument
    has is now "too much data"."""
    assert parse_channel_list("(@3:1,7)") == [3, 2, 1, 7]
    with pytest.raises(ScpiError) as refused:
        parse_channel_list("(@1:99999999)")
    assert refused.value.code == TOO_MUCH_DATA


@pytest.mark.parametrize(
    ("dialect", "word", "code"),
    [
        ("keysight", "CH" + "9" * 5000, DATA_OUT_OF_RANGE),
        ("keysight", "CH²", DATA_TYPE_ERROR),
        ("rigol", "CH" + "9" * 5000, DATA_OUT_OF_RANGE),
        ("rigol", "CH²", ILLEGAL_PARAMETER),
    ],
)
def test_a_channel_word_of_odd_digits_is_a_scpi_error(dialect: str, word: str, code: int) -> None:
    """Regression (found by fuzzing): ``CH`` followed by 5000 digits (int() refuses over 4300) or by a digit
    int() does not read ("²") raised ValueError in the dialect — an unknown exception, queued as -300 with a
    traceback in the log. It is a channel that does not exist."""
    interp = interpreter(dialect)
    session = Session()
    execute(interp, session, f"INST {word}" if dialect == "keysight" else f"APPL {word},1,0.1")
    assert session.errors.pop()[0] == code
