"""Loader fuzz: the bench config, ICD and limits loaders take any document and either load it or refuse it with
ConfigError, every line of whose message names the file (one line per problem). Never a traceback: no
KeyError, TypeError, RecursionError or pydantic ValidationError escapes, whatever a hand-edited YAML holds.

Inputs: arbitrary YAML-ish documents (nested mappings, lists and scalars, among them NaN, ±inf, huge integers,
strings where numbers belong), the shipped files with values replaced, removed or added anywhere in their
tree, and the shipped files with their text damaged (characters replaced, inserted, deleted, invalid UTF-8).

A bounded smoke runs in every ``pytest`` (``SMOKE`` examples per test, no deadline, no example database);
``FUZZ_EXAMPLES=N`` runs N per test, e.g. ``FUZZ_EXAMPLES=10000 pytest tests/fuzz/test_fuzz_loaders.py``.
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.config import CONFIG_DIR, ModelLevel, load_config
from bench.errors import ConfigError
from bench.icd import PACKAGE_ICD, load_icd
from bench.limits import load_limits

PROJECT = Path(__file__).resolve().parents[2]
LIMITS = PROJECT / "test_plans" / "limits.yaml"
CONFIG = CONFIG_DIR / "twin.yaml"
SMOKE = 100


def _examples() -> int:
    raw = os.environ.get("FUZZ_EXAMPLES", "").strip()
    return int(raw) if raw else SMOKE


FUZZ = settings(
    max_examples=_examples(),
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# --- strategies ----------------------------------------------------------------------------------------------

NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 255, 256, 300, -32769, 2**32, 2**64, 10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 3.5e38, 5e-324, 0.0, -0.0]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=12))
# Keys the loaders know (so a random document often reaches deep validation) and some they do not.
KNOWN_KEYS = (
    "schema",
    "bench",
    "instruments",
    "dut",
    "twin",
    "safety",
    "calibration",
    "icd",
    "name",
    "part_number",
    "serial",
    "model_level",
    "envelope",
    "bus_voltage",
    "min",
    "nominal",
    "max",
    "max_current",
    "max_inrush_current",
    "ovp_margin",
    "ocp_delay_s",
    "rf",
    "psu",
    "driver",
    "resource",
    "timeout_s",
    "channels",
    "dut_main",
    "limits",
    "masks",
    "marginal_fraction",
    "units",
    "requirements",
    "all",
    "EM",
    "QM",
    "FM",
    "PFM",
    "low",
    "high",
    "points",
    "mission",
    "csp",
    "egse_address",
    "pus_port",
    "nodes",
    "housekeeping",
    "commands",
    "events",
    "parameters",
    "radio",
    "address",
    "apid",
    "sid",
    "period_s",
    "fields",
    "type",
    "scale",
    "offset",
    "enum",
    "function_id",
    "args",
    "id",
    "severity",
    "default",
    "watchdog_s",
    "heartbeat_s",
)
KEYS = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=8), st.integers(-3, 3))


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=5))


DOCUMENTS = st.recursive(SCALARS, _containers, max_leaves=30)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a parsed YAML tree (keys of mappings, indexes of lists)."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            out += _paths(value, (*prefix, index))
    return out


@st.composite
def _tree_mutation(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with 1..4 nodes replaced by anything, removed, or given an unknown sibling."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        if not path:
            continue
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        op = draw(st.sampled_from(("replace", "replace", "number", "delete", "add")))
        if op == "replace":
            parent[path[-1]] = draw(DOCUMENTS)
        elif op == "number":
            parent[path[-1]] = draw(NUMBERS)
        elif op == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(KEYS)] = draw(SCALARS)
        else:
            parent.append(draw(SCALARS))
    return doc


@st.composite
def _text_mutation(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` with 1..4 byte-level faults: replaced, inserted or deleted bytes (also invalid UTF-8)."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(0, len(data) - 1)))
        op = draw(st.sampled_from(("digit", "set", "insert", "delete")))
        if op == "digit":  # numbers are what this fuzz is about: turn a byte into a digit, a sign or a dot
            data[at] = draw(st.sampled_from(b"0123456789-.e"))
        elif op == "set":
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.sampled_from([b".nan", b".inf", b"-.inf", b"1e999", b"999999999999", b"\xff"]))
        else:
            del data[at : at + draw(st.integers(1, 6))]
    return bytes(data)


def _dumped(doc: Any) -> bytes:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).encode()


def _inputs(shipped: Path) -> st.SearchStrategy[bytes]:
    base_text = shipped.read_bytes()
    base = yaml.safe_load(base_text)
    return st.one_of(
        DOCUMENTS.map(_dumped),
        _tree_mutation(base).map(_dumped),
        _text_mutation(base_text),
    )


# --- the property --------------------------------------------------------------------------------------------


def _loads_or_refuses(data: bytes, load: Callable[[Path], object]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzzed.yaml"
        path.write_bytes(data)
        try:
            load(path)
        except ConfigError as exc:
            message = str(exc)
            assert message, "an empty ConfigError"
            for line in message.split("\n"):
                assert line.startswith(f"{path}:"), f"a line that does not name the file: {line!r}"
                assert len(line) < 2000, f"an unreadable line: {line[:200]!r}…"


@FUZZ
@given(_inputs(CONFIG))
def test_config_loader_takes_anything(data: bytes) -> None:
    _loads_or_refuses(data, load_config)


@FUZZ
@given(_inputs(LIMITS), st.sampled_from(list(ModelLevel)))
def test_limits_loader_takes_anything(data: bytes, level: ModelLevel) -> None:
    _loads_or_refuses(data, lambda path: load_limits(path, level))


@FUZZ
@given(_inputs(PACKAGE_ICD))
def test_icd_loader_takes_anything(data: bytes) -> None:
    _loads_or_refuses(data, load_icd)


def test_the_shipped_files_load() -> None:
    """The mutations start from files that load: a refusal in the fuzz is the mutation's doing."""
    load_config(CONFIG)
    load_icd(PACKAGE_ICD)
    for level in ModelLevel:
        load_limits(LIMITS, level)
