"""reports.run_record: reading run journals, tolerant of killed runs, strict about malformed ones."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from journal_builder import JournalBuilder

from reports.run_record import (
    INCOMPLETE_STATUS,
    OPEN_TEST_MESSAGE,
    JournalError,
    read_journal,
)


def test_passing_run(passing_run: JournalBuilder) -> None:
    record = read_journal(passing_run.write())

    assert record.verdict == "PASS"
    assert record.complete and record.status == "complete"
    assert record.warnings == ()
    assert record.run is not None
    assert record.run.run_id == "20251125T184100Z-nightly"
    assert record.run.dut.serial == "EM-001"
    assert record.run.dut.envelope["ovp_v"] == 8.6
    assert record.run.argv == ("bench", "run", "nightly")
    assert [t.outcome for t in record.tests] == ["passed", "passed"]
    assert record.outcome_counts() == {"passed": 2, "failed": 0, "error": 0, "skipped": 0, "interrupted": 0}
    assert record.measurement_counts() == {"pass": 1, "marginal": 1, "fail": 0}
    assert record.requirements() == ["OTS-EPS-010", "OTS-EPS-011"]
    assert "1 measurement(s) marginal" in record.verdict_reason

    (psu,) = record.instruments
    assert psu.identity.model == "E36312A"
    assert psu.calibration.status == "valid"
    assert psu.calibration.uncertainty == {"voltage_v": 0.0005, "current_a": 0.001}

    volt = record.tests[1].measurements[0]
    assert (volt.name, volt.value, volt.units, volt.low, volt.high) == ("bus_voltage", 8.05, "V", 7.0, 8.1)
    assert (volt.verdict, volt.margin, volt.uncertainty) == ("marginal", 0.05, 0.0005)
    assert record.tests[1].doc == "Bus voltage at nominal load."
    assert record.safe_state[0].ok


def test_failed_measurement_fails_the_run(failing_run: JournalBuilder) -> None:
    record = read_journal(failing_run.write())

    assert record.verdict == "FAIL"
    assert "1 measurement(s) outside limits" in record.verdict_reason
    (test,) = record.tests
    assert test.outcome == "failed"
    assert test.message.startswith("AssertionError: idle_current")
    assert test.measurements[0].verdict == "fail"
    assert test.measurements[0].margin == -0.3


def test_failed_measurement_fails_the_run_even_if_the_test_passed(journal: JournalBuilder) -> None:
    t = "t::lenient"
    journal.run_start().test_start(t).measurement(t, "x", 2.0, verdict="fail", margin=-0.5).test_end(t)
    record = read_journal(journal.run_end(0).write())
    assert record.verdict == "FAIL"


def test_killed_run_is_reported_incomplete(journal: JournalBuilder) -> None:
    t1, t2 = "t::first", "t::second"
    journal.run_start().instrument()
    journal.test_start(t1).measurement(t1, "a", 1.0).test_end(t1)
    journal.test_start(t2).measurement(t2, "b", 1.1)  # killed here: no test_end, no run_end...
    path = journal.write(tail='{"kind":"measurement","test_id":"t::second","name":"c","val')  # ...mid-write

    record = read_journal(path)

    assert not record.complete
    assert record.status == INCOMPLETE_STATUS == "incomplete (bench process ended without closing the run)"
    assert record.verdict == "INCOMPLETE"
    assert record.end is None
    first, second = record.tests
    assert first.outcome == "passed"
    assert second.outcome == "interrupted"  # it did not run to its end: never passed, never a plain error
    assert second.message == OPEN_TEST_MESSAGE == "run ended during this test (bench process killed?)"
    assert not second.closed
    assert [m.name for m in second.measurements] == ["b"]  # the half-written "c" is not invented
    assert second.duration == pytest.approx(1.0)  # test_start → last record seen
    notes = "\n".join(record.warnings)
    assert "line 8: incomplete last line ignored" in notes
    assert "no run_end" in notes
    assert "'t::second' has no test_end" in notes


def test_truncated_multibyte_character_on_last_line_is_tolerated(journal: JournalBuilder) -> None:
    path = journal.run_start().write()
    with path.open("ab") as f:
        f.write('{"kind":"test_start","test_id":"t","name":"µ'.encode()[:-1])
    record = read_journal(path)
    assert record.tests == ()
    assert any("incomplete last line" in w for w in record.warnings)


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ('{"kind": "measurement", "test_id": ', "not valid JSON"),
        ("[1, 2, 3]", "expected a JSON object"),
        ('{"test_id": "t"}', "without 'kind'"),
        ('{"kind": "measurement", "test_id": "t", "name": "x", "value": 1, "verdict": "great"}', "'verdict'"),
        ('{"kind": "measurement", "test_id": "t", "name": "x", "value": 1, "low": "0.5", "verdict": "pass"}', "'low'"),
        ('{"kind": "test_end", "test_id": "t", "outcome": "passed", "duration": [1]}', "'duration'"),
        ('{"kind": "test_start", "name": "no id"}', "'test_id'"),
        ('{"kind": "instrument", "role": "psu", "calibration": {"status": "probably"}}', "'status'"),
    ],
)
def test_malformed_line_raises_with_file_and_line(journal: JournalBuilder, bad_line: str, reason: str) -> None:
    journal.run_start().test_start("t").raw(bad_line).test_end("t").run_end()
    path = journal.write()

    with pytest.raises(JournalError) as info:
        read_journal(path)

    assert info.value.line == 3
    assert info.value.path == path
    assert f"{path}, line 3" in str(info.value)
    assert reason in str(info.value)


def test_invalid_json_in_the_middle_is_not_mistaken_for_a_truncated_last_line(journal: JournalBuilder) -> None:
    path = journal.run_start().raw('{"kind": "test_start", "test_id": "t", ').run_end().write()
    with pytest.raises(JournalError, match="line 2: not valid JSON"):
        read_journal(path)


def test_missing_journal_raises_journal_error(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="cannot read the journal"):
        read_journal(tmp_path / "nowhere" / "journal.jsonl")


def test_unknown_kinds_and_blank_lines_are_ignored(passing_run: JournalBuilder) -> None:
    passing_run.lines.insert(2, '{"kind": "housekeeping_snapshot", "test_id": 42, "whatever": [1, 2]}')
    passing_run.lines.insert(3, "")
    record = read_journal(passing_run.write())
    assert record.verdict == "PASS"
    assert record.warnings == ()


def test_empty_journal_is_incomplete(journal: JournalBuilder) -> None:
    record = read_journal(journal.write())
    assert record.verdict == "INCOMPLETE"
    assert record.run is None
    assert "the journal is empty" in record.warnings


@pytest.mark.parametrize(("status", "reason"), [(2, "run interrupted"), (3, "internal error"), (5, "no tests")])
def test_abnormal_exit_status_is_incomplete(journal: JournalBuilder, status: int, reason: str) -> None:
    journal.run_start().test_start("t").measurement("t", "a", 1.0).test_end("t")
    record = read_journal(journal.run_end(status).write())
    assert record.verdict == "INCOMPLETE"
    assert reason in record.verdict_reason
    assert f"exit status {status}" in record.verdict_reason


def test_a_run_that_executed_nothing_does_not_pass(journal: JournalBuilder) -> None:
    journal.run_start().test_start("t").test_end("t", "skipped", message="needs the RF bench")
    record = read_journal(journal.run_end(0).write())
    assert record.verdict == "INCOMPLETE"
    assert "no test was executed" in record.verdict_reason


def test_error_outcome_fails_the_run(journal: JournalBuilder) -> None:
    journal.run_start().test_start("t").test_end("t", "error", message="fixture psu: connection refused")
    record = read_journal(journal.run_end(1).write())
    assert record.verdict == "FAIL"


def test_run_end_counts_are_cross_checked(journal: JournalBuilder) -> None:
    journal.run_start().test_start("t").measurement("t", "a", 1.0).test_end("t")
    record = read_journal(journal.run_end(0, {"passed": 3, "failed": 0}).write())
    assert any("passed 3 (journal has 1)" in w for w in record.warnings)


def test_records_for_a_test_without_test_start_are_kept(journal: JournalBuilder) -> None:
    journal.run_start().measurement("t::orphan", "a", 1.0).test_end("t::orphan")
    record = read_journal(journal.run_end(0).write())
    (test,) = record.tests
    assert test.test_id == "t::orphan" and len(test.measurements) == 1 and test.outcome == "passed"
    assert any("no test_start" in w for w in record.warnings)


def test_nan_value_and_null_limits(journal: JournalBuilder) -> None:
    journal.run_start().test_start("t")
    journal.raw(
        '{"kind":"measurement","test_id":"t","name":"rssi","value":NaN,"units":"dBm","low":-110,"high":null,'
        '"verdict":"fail","margin":NaN,"margin_pct":null,"requirements":[],"time":"2025-11-25T18:41:03+00:00"}'
    )
    record = read_journal(journal.test_end("t", "failed").run_end(1).write())
    m = record.tests[0].measurements[0]
    assert isinstance(m.value, float) and math.isnan(m.value)
    assert (m.low, m.high, m.margin_pct) == (-110.0, None, None)


def test_run_level_attachments(passing_run: JournalBuilder) -> None:
    passing_run.lines.insert(
        2, '{"kind":"attachment","test_id":null,"name":"CAN log","path":"can.log","mime":"text/plain"}'
    )
    record = read_journal(passing_run.write())
    assert [a.name for a in record.attachments] == ["CAN log"]


def test_reads_what_the_bench_journal_writes(tmp_path: Path) -> None:
    """Contract check against the real writer (skipped while bench.journal is not importable)."""
    bench_journal = pytest.importorskip("bench.journal")
    bench_measurement = pytest.importorskip("bench.measurement")
    limit = bench_measurement.Limit("inrush_peak", "A", low=0.0, high=3.0, requirements=("OTS-EPS-010",))
    verdict, margin, pct = limit.judge(2.5)
    m = bench_measurement.Measurement(
        name="inrush_peak",
        value=2.5,
        units="A",
        low=0.0,
        high=3.0,
        verdict=verdict,
        margin=margin,
        margin_pct=pct,
        requirements=("OTS-EPS-010",),
        test_id="t::inrush",
        time=bench_journal.utc_now(),
        uncertainty=0.001,
    )
    j = bench_journal.Journal(tmp_path / "journal.jsonl")
    j.record("run_start", run_id="r1", campaign="nightly", dut={"name": "OTS-SAT", "serial": "EM-001"})
    j.record("test_start", test_id="t::inrush", name="test_inrush", requirements=("OTS-EPS-010",))
    j.measurement(m)
    j.record("test_end", test_id="t::inrush", outcome="passed", duration=0.5, message="")
    j.record("safe_state", reason="session end", results={"psu": "ok"})
    j.record("run_end", exit_status=0, counts={"passed": 1, "failed": 0, "error": 0, "skipped": 0})
    j.close()

    record = read_journal(tmp_path / "journal.jsonl")
    assert record.verdict == "PASS", record.verdict_reason
    (got,) = record.tests[0].measurements
    assert (got.value, got.verdict, got.uncertainty) == (2.5, "marginal" if verdict == "marginal" else "pass", 0.001)
