"""Unit tests of the generic SCPI pieces: lexing, channel lists, numbers, header matching, error queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from twin.scpi import (
    DATA_OUT_OF_RANGE,
    DATA_TYPE_ERROR,
    ILLEGAL_PARAMETER,
    INVALID_SUFFIX,
    QUEUE_OVERFLOW,
    SYNTAX_ERROR,
    Call,
    CommandSet,
    ErrorQueue,
    Interpreter,
    ScpiError,
    Session,
    add_common_commands,
    parse_bool,
    parse_channel_list,
    parse_number,
    split_params,
    split_units,
)


def test_units_split_on_semicolons_outside_quotes() -> None:
    assert split_units('*RST;VOLT 1;DISP:TEXT "a;b"') == ["*RST", "VOLT 1", 'DISP:TEXT "a;b"']


def test_params_split_on_commas_outside_parentheses_and_quotes() -> None:
    assert split_params(" 5, (@1,3)") == ["5", "(@1,3)"]
    assert split_params("'x,y',2") == ["'x,y'", "2"]
    assert split_params("   ") == []
    with pytest.raises(ScpiError) as err:
        split_params("5,,6")
    assert err.value.code == SYNTAX_ERROR
    with pytest.raises(ScpiError):
        split_params("5,(@1")


@pytest.mark.parametrize(
    ("text", "channels"),
    [
        ("(@1)", [1]),
        ("(@1,3)", [1, 3]),
        ("(@1:3)", [1, 2, 3]),
        ("( @ 3:1 )", [3, 2, 1]),
        ("(@1,2:3)", [1, 2, 3]),
    ],
)
def test_channel_lists(text: str, channels: list[int]) -> None:
    assert parse_channel_list(text) == channels


@pytest.mark.parametrize("text", ["(1)", "(@)", "(@a)", "@1", "(@1:)"])
def test_malformed_channel_lists_are_syntax_errors(text: str) -> None:
    with pytest.raises(ScpiError) as err:
        parse_channel_list(text)
    assert err.value.code == SYNTAX_ERROR


def test_numbers() -> None:
    assert parse_number("3.8", low=0, high=6) == 3.8
    assert parse_number("+.5E1", low=0, high=6) == 5.0
    assert parse_number("500mA", low=0, high=5, unit="A") == pytest.approx(0.5)
    assert parse_number("MAX", low=0, high=6.18) == 6.18
    assert parse_number("minimum", low=1, high=6) == 1
    assert parse_number("DEF", low=1, high=3600, default=60) == 60
    for text, code in (("abc", DATA_TYPE_ERROR), ("7", DATA_OUT_OF_RANGE), ("5 W", INVALID_SUFFIX)):
        with pytest.raises(ScpiError) as err:
            parse_number(text, low=0, high=6, unit="V")
        assert err.value.code == code


def test_booleans() -> None:
    assert parse_bool("on") and parse_bool("1")
    assert not parse_bool("OFF") and not parse_bool("0")
    with pytest.raises(ScpiError) as err:
        parse_bool("maybe")
    assert err.value.code == ILLEGAL_PARAMETER


def test_error_queue_holds_twenty_and_marks_overflow() -> None:
    queue = ErrorQueue()
    for _ in range(25):
        queue.push(DATA_OUT_OF_RANGE)
    assert len(queue) == 20
    codes = [queue.pop()[0] for _ in range(20)]
    assert codes[:19] == [DATA_OUT_OF_RANGE] * 19
    assert codes[19] == QUEUE_OVERFLOW
    assert queue.pop() == (0, "No error")


def _interpreter() -> tuple[Interpreter, list[tuple[str, list[str], dict[str, int]]]]:
    seen: list[tuple[str, list[str], dict[str, int]]] = []

    def record(name: str) -> Callable[[Call], str]:
        def handler(call: Call) -> str:
            seen.append((name, call.params, call.suffixes))
            return name

        return handler

    commands = CommandSet()
    add_common_commands(commands, error_reply=lambda code, text: f'{code},"{text}"')
    commands.add("MEASure[:SCALar]:VOLTage[:DC]?", record("meas_volt"))
    commands.add("MEASure[:SCALar]:CURRent[:DC]?", record("meas_curr"))
    commands.add("[SOURce#]:VOLTage[:LEVel]", record("volt"))
    commands.add("[SOURce#]:CURRent[:LEVel]", record("curr"))
    commands.add("CURRent?", record("curr?"))
    return Interpreter(commands), seen


def run(interpreter: Interpreter, session: Session, message: str) -> str | None:
    return asyncio.run(interpreter.execute(session, message))


def test_short_long_and_optional_forms_resolve_to_one_command() -> None:
    interpreter, seen = _interpreter()
    session = Session()
    for header in ("MEAS:VOLT?", "measure:voltage:dc?", ":MEASure:SCALar:VOLT?", "Meas:Volt:DC?"):
        assert run(interpreter, session, f"{header} (@1)") == "meas_volt"
    assert [params for _, params, _ in seen] == [["(@1)"]] * 4
    assert session.errors.pop()[0] == 0


def test_numeric_suffix_is_passed_to_the_handler() -> None:
    interpreter, seen = _interpreter()
    run(interpreter, Session(), ":SOUR2:VOLT 5;:VOLT 3")
    assert seen == [("volt", ["5"], {"SOURCE": 2}), ("volt", ["3"], {})]


def test_relative_path_after_a_semicolon() -> None:
    interpreter, seen = _interpreter()
    # MEAS:VOLT? then CURR? is MEAS:CURR? (IEEE 488.2 §7.6.1), not the root CURRent?.
    assert run(interpreter, Session(), "MEAS:VOLT? (@1);CURR? (@1)") == "meas_volt;meas_curr"
    # From SOUR, CURR 1 is SOUR:CURR; a leading colon goes back to the root.
    assert run(interpreter, Session(), "SOUR:VOLT 2;CURR 1;:CURR?") == "curr?"
    assert [name for name, _, _ in seen][-3:] == ["volt", "curr", "curr?"]


def test_unknown_header_and_syntax_errors_are_queued_and_reply_nothing() -> None:
    interpreter, _ = _interpreter()
    session = Session()
    assert run(interpreter, session, "FOO:BAR?") is None
    assert run(interpreter, session, "MEAS::VOLT?") is None
    assert run(interpreter, session, "SYST:ERR?;SYST:ERR?;SYST:ERR?") == (
        '-113,"Undefined header";-102,"Syntax error";0,"No error"'
    )
    assert session.esr & (1 << 5)  # command error bit


def test_common_commands() -> None:
    interpreter, _ = _interpreter()
    session = Session()
    assert run(interpreter, session, "*OPC?") == "1"
    run(interpreter, session, "BOGUS")
    assert run(interpreter, session, "*STB?") == "4"  # error queue not empty (ESE is 0: no ESB)
    run(interpreter, session, "*ESE 32")
    assert run(interpreter, session, "*STB?") == "36"
    run(interpreter, session, "*CLS")
    assert run(interpreter, session, "SYST:ERR:COUN?") == "0"


def test_pattern_errors_are_caught_at_declaration() -> None:
    with pytest.raises(ValueError):
        CommandSet().add("MEAS:VOLT?!", lambda call: None)


def test_handler_exceptions_are_translated_or_reported_as_device_errors() -> None:
    class Refused(Exception):
        pass

    def refuse(call: Call) -> None:
        raise Refused

    def crash(call: Call) -> None:
        raise RuntimeError("bug")

    commands = CommandSet()
    add_common_commands(commands, error_reply=lambda code, text: f"{code}")
    commands.add("REFuse", refuse)
    commands.add("CRASh", crash)
    interpreter = Interpreter(commands, translate=lambda exc: ScpiError(-221) if isinstance(exc, Refused) else None)
    session = Session()
    assert run(interpreter, session, "REFUSE;CRASH;*OPC?") == "1"  # the message carries on after errors
    assert run(interpreter, session, "SYST:ERR?;SYST:ERR?") == "-221;-300"
