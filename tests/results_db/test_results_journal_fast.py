"""read_journal's measurement fast path gives exactly what the reference reader (fast=False) gives."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from reports.run_record import JournalError, Measurement, RunRecord, _Reader, read_journal

T = "2026-11-25T18:00:01.123456+00:00"
TEST = "test_plans/eps/test_eps.py::test_power_on"


def compact(kind: str, **fields: Any) -> str:
    """A line as bench/journal.py writes it (no spaces)."""
    return json.dumps({"kind": kind, **fields}, separators=(",", ":"), ensure_ascii=False)


def spaced(kind: str, **fields: Any) -> str:
    """A line as json.dumps writes it by default (other writers, older journals)."""
    return json.dumps({"kind": kind, **fields})


def meas(name: str, value: object = 0.5, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "test_id": TEST,
        "name": name,
        "value": value,
        "units": "A",
        "low": 0.35,
        "high": 0.65,
        "verdict": "pass",
        "margin": 0.15,
        "margin_pct": 50.0,
        "requirements": ["OTS-EPS-020"],
        "time": T,
    }
    record.update(fields)
    return record


EVERY_KIND = [
    compact(
        "run_start",
        run_id="r1",
        time="2026-11-25T18:00:00+00:00",
        campaign="nightly",
        model_level="EM",
        operator="ä.tester",
        host="bench-01",
        git_revision="abc",
        software_version="0.1.0",
        bench_config="bench/configs/twin.yaml",
        config_hash="sha256:00",
        dut={"name": "OTS-SAT", "model_level": "EM", "serial": "EM-1", "envelope": {"v": 8.2}},
        argv=["bench", "run"],
    ),
    compact(
        "instrument",
        role="psu",
        driver="keysight",
        resource="TCPIP0::1::SOCKET",
        identity={"maker": "K", "model": "E36312A", "serial": "MY1", "firmware": "2.1"},
        calibration={"certificate": "C-1", "due": "2027-01-01", "uncertainty": {"current_a": 0.001}, "status": "valid"},
    ),
    compact("limits", path="test_plans/limits.yaml", model_level="EM", limits={}),
    compact("dut_identity", node="OBC", firmware="1.4.2", hardware="rev C", serial="42"),
    compact("deviation", id="DEV-1", text="skipped step 3", approved_by="QA"),
    compact(
        "test_start",
        test_id=TEST,
        name="test_power_on",
        time=T,
        requirements=["OTS-EPS-020"],
        subsystem="EPS",
        doc="Power on.",
    ),
    # the common case, in both layouts
    compact("measurement", **meas("EPS.I_IDLE")),
    spaced("measurement", **meas("EPS.I_IDLE2", uncertainty=0.0025, description="idle current")),
    # unicode everywhere, escaped and not
    compact("measurement", **meas("EPS.Ω_BUS", units="Ω", description="Bus résistance — 5 µΩ ✓")),
    spaced("measurement", **meas("EPS.Ω_BUS2", units="Ω", description="Bus résistance — 5 µΩ ✓")),
    # non-finite numbers, as Python's json module writes them (bench/journal.py _num)
    compact("measurement", **meas("EPS.NAN", math.nan, margin=math.nan, margin_pct=None, verdict="fail")),
    compact("measurement", **meas("EPS.INF", math.inf, high=math.inf, low=-math.inf, verdict="marginal")),
    # every other value type, and the conversions only the reference reader does
    compact("measurement", **meas("EPS.INT", 3, low=1, high=5, margin=2, margin_pct=40)),
    compact("measurement", **meas("EPS.BOOL", True, low=None, high=None, margin=None)),
    compact("measurement", **meas("EPS.TEXT", "nominal", units=None, requirements="OTS-EPS-021")),
    compact("measurement", **meas("EPS.NULL", None, requirements=None, time=None, description=None)),
    compact("measurement", **meas("EPS.NUM_TEXT", 1.0, units=5, description=1.5)),
    compact("measurement", **meas("EPS.EXTRA", extra={"raw": [1, 2], "note": "é"})),
    compact("measurement", **{k: v for k, v in meas("EPS.MISSING").items() if k in ("test_id", "name", "verdict")}),
    compact("measurement", **meas("EPS.ORPHAN", test_id="test_plans/x.py::test_no_start")),
    compact("attachment", test_id=TEST, name="trace", path="trace.json", mime="application/json"),
    compact("attachment", name="log", path="bench.log", mime="text/plain"),
    compact("test_end", test_id=TEST, time=T, outcome="passed", duration=1.5, message=""),
    compact("test_start", test_id="t2", name="t2", time=T, requirements=[], subsystem="", doc=""),
    compact("measurement", **meas("T2.M", test_id="t2")),
    compact("safe_state", time=T, reason="end of run", results={"psu": "ok", "eload": {"error": "timeout"}}),
    compact("something_new", time=T, payload=[1, 2, 3]),
    compact("run_end", time="2026-11-25T18:10:00+00:00", exit_status=0, counts={"passed": 1}),
]


def same(a: RunRecord, b: RunRecord) -> None:
    # repr, not ==: NaN != NaN, and repr also shows a float that should be an int (or the reverse)
    assert repr(a) == repr(b)
    assert a.warnings == b.warnings
    assert (a.verdict, a.verdict_reason) == (b.verdict, b.verdict_reason)
    for m in a.measurements():
        assert type(m) is Measurement
        assert type(m.requirements) is tuple
        assert type(m.extra) is dict


def write(tmp_path: Path, lines: list[str], tail: str = "\n", *, encoding: str = "utf-8") -> Path:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(("\n".join(lines) + tail).encode(encoding))
    return path


def both(path: Path) -> tuple[RunRecord, RunRecord]:
    return read_journal(path), read_journal(path, fast=False)


def test_every_record_kind_reads_the_same(tmp_path: Path) -> None:
    fast, reference = both(write(tmp_path, EVERY_KIND))
    same(fast, reference)
    assert len(list(fast.measurements())) == 15
    nan = next(m for m in fast.measurements() if m.name == "EPS.NAN")
    assert isinstance(nan.value, float) and math.isnan(nan.value)
    assert next(m for m in fast.measurements() if m.name == "EPS.Ω_BUS").units == "Ω"


@pytest.mark.parametrize(
    "tail",
    [
        '\n{"kind":"measurement","test_id":"' + TEST + '","name":"EPS.CUT","value":0.4',  # killed mid-write
        '\n{"kind":"measurement","test_id":"' + TEST + '","name":"EPS.µ',  # cut after a multi-byte character
        "\n\n   \n",  # blank lines at the end
    ],
)
def test_truncated_last_line_is_tolerated_the_same(tmp_path: Path, tail: str) -> None:
    fast, reference = both(write(tmp_path, EVERY_KIND[:-1], tail))
    same(fast, reference)


def test_last_line_cut_inside_a_multibyte_character(tmp_path: Path) -> None:
    last = compact("measurement", **meas("EPS.µA")).encode()
    cut = last[: last.index("µ".encode()) + 1]  # first byte of "µ" only: the file is not valid UTF-8
    path = tmp_path / "journal.jsonl"
    path.write_bytes("\n".join(EVERY_KIND[:-1]).encode() + b"\n" + cut)
    fast, reference = both(path)
    same(fast, reference)
    assert any("incomplete last line" in w for w in fast.warnings)


def test_measurement_lines_take_the_fast_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [EVERY_KIND[0], EVERY_KIND[5], *(compact("measurement", **meas(f"M{i}")) for i in range(50))]
    fed: list[str] = []
    original = _Reader.feed

    def feed(self: _Reader, f: Any) -> None:
        fed.append(str(f.obj.get("kind")))
        original(self, f)

    monkeypatch.setattr(_Reader, "feed", feed)
    record = read_journal(write(tmp_path, lines))
    assert fed == ["run_start", "test_start"]
    assert len(list(record.measurements())) == 50


BAD_LINES = [
    compact("measurement", **meas("BAD.LOW", low="0.3")),
    compact("measurement", **meas("BAD.VERDICT", verdict="ok")),
    compact("measurement", **meas("BAD.VERDICT_TYPE", verdict=["pass"])),
    compact("measurement", **meas("BAD.VALUE", [1, 2])),
    compact("measurement", **meas("BAD.REQS", requirements=["OTS-1", 2])),
    compact("measurement", **meas("BAD.EXTRA", extra=[1])),
    compact("measurement", **meas("BAD.BOOL_LOW", low=True)),
    compact("measurement", **meas("", test_id=TEST)),
    compact("measurement", **meas("BAD.NO_TEST", test_id="")),
    compact("measurement", **meas("BAD.TEST_TYPE", test_id=["x"])),
    '{"kind":"measurement","test_id":"' + TEST + '"} trailing',
    '{"kind":"measurement",',
    "[1, 2]",
    '"just a string"',
    "\ufeff" + compact("measurement", **meas("BOM")),
    '{"name":"no kind"}',
]


@pytest.mark.parametrize("bad", BAD_LINES)
def test_errors_name_the_same_file_line_and_reason(tmp_path: Path, bad: str) -> None:
    path = write(tmp_path, [*EVERY_KIND[:6], bad, *EVERY_KIND[6:]])
    with pytest.raises(JournalError) as reference:
        read_journal(path, fast=False)
    with pytest.raises(JournalError) as fast:
        read_journal(path)
    assert str(fast.value) == str(reference.value)
    assert (fast.value.path, fast.value.line) == (path, 7)


def test_invalid_utf8_in_the_middle_is_the_same_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    lines = [line.encode() for line in EVERY_KIND]
    lines.insert(7, b'{"kind":"measurement","name":"\xff"}')
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(JournalError) as reference:
        read_journal(path, fast=False)
    with pytest.raises(JournalError) as fast:
        read_journal(path)
    assert str(fast.value) == str(reference.value)
    assert fast.value.line == 8


def test_only_ascii_whitespace_is_blank(tmp_path: Path) -> None:
    # a last line of non-ASCII whitespace is content (not JSON): tolerated as the truncated last line
    fast, reference = both(write(tmp_path, EVERY_KIND[:-1], "\n\u00a0\u2028\n"))
    same(fast, reference)
    assert any("incomplete last line" in w for w in fast.warnings)
