"""The fault matrix, proved end to end (docs/reliability.md): one real bench run against a standalone twin meets
one fault per test — PSU link drop, SCPI error, OCP trip, brown-out and reboot, CAN bus-off, babbling node, frame
loss, I2C NACK and unplug, console silent and garbage, RF cable off, analyzer overload, a plan asking for an
unknown limit or the wrong units — and ends with the bench killed (kill -9) while it holds the DUT powered.

From that run's journal, read once, and the supply's state as the twin's control endpoint reports it (never SCPI,
which would feed the watchdog), each fault must show: the test's outcome (failed, or interrupted for a lost
instrument; passed where the bench rides the fault out), a message that names the cause in a test engineer's
words, its measurement taken before the fault still in the journal, and the DUT's supply output off once the
bench finished with the test — for the killed bench, off by the supply's own I/O watchdog. Where a wait times
out because of a link fault (bus-off, lost fragments, a reboot), the message names that fault, and the evidence
attached to the test shows it.

Two small runs more: a results DB that cannot be reached keeps every measurement in the journal and says how to
import it later; a plan citing an unknown requirement is stopped at collection, before anything is powered.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fault_matrix_rig import MatrixRun, matrix_config, run_matrix
from safety_rig import LIMITS, TwinHandle

from bench.twin_launcher import TwinProcess
from reports.run_record import read_journal

UNREACHABLE_DB = "postgresql+psycopg://bench@127.0.0.1:1/results?connect_timeout=2"


@dataclass(frozen=True)
class Row:
    """One fault of the run: the plan test meeting it, and what the journal must say about it."""

    test: str
    outcome: str | tuple[str, ...]  # the outcome, or the outcomes accepted
    message: tuple[str, ...]  # words the test's message says (naming the cause)
    evidence: tuple[str, str] | None = None  # (attachment, text in it) showing the fault

    def __str__(self) -> str:
        return self.test.removeprefix("test_")


ROWS = (
    Row("test_psu_link_drop", "interrupted", ("instrument lost", "connection to TCPIP0::", "lost at")),
    Row("test_scpi_error", "failed", ("rejected 'VOLT 3.9,(@1)'", '-221,"Settings conflict"')),
    Row("test_ocp_trip", "failed", ("supply protection tripped during the test: OCP on channel 1", "EPS.IDLE_CURRENT")),
    Row(
        "test_brownout_and_reboot",
        "failed",
        ("timed out", "OBC.UPTIME", "meanwhile the link saw: OBC reboot (event OBC.BOOT("),
        evidence=("CSP-PUS trace", "event OBC.BOOT {'boot_count'"),
    ),
    Row(
        "test_can_bus_off",
        "failed",
        ("timed out", "CSP PING reply from OBC", "meanwhile the link saw: CAN bus-off"),
        evidence=("CSP-PUS trace", "(BUS-OFF)"),
    ),
    Row("test_babbling_node", "passed", (), evidence=("CSP-PUS trace", "non_csp_frames +")),
    Row(
        "test_frame_loss",
        "failed",
        ("timed out", "HK report EPS.EPS_HK", "meanwhile the link saw: ", "lost"),
        evidence=("CSP-PUS trace", "dropped_sequence +"),
    ),
    Row("test_i2c_nack", "failed", ("I2C device 0x02 did not acknowledge",)),
    Row("test_i2c_unplug", "interrupted", ("instrument lost", "I2C adapter", "lost during", "check the USB cable")),
    Row("test_console_silent", "failed", ("console socket://", "no match for", "within 1 s")),
    Row("test_console_garbage", "passed", (), evidence=("OBC console log", "\ufffd")),
    Row("test_rf_cable_off", "failed", ("no burst above", "RF cable connected?")),
    Row("test_analyzer_overload", "failed", ("RF overload during the capture", "check instruments.rf_path")),
    Row("test_unknown_limit_name", "failed", ("no limit for 'EPS.IDLE_CURENT'", "add it")),
    Row("test_wrong_units", "failed", ("the test measures 'mV' but the limit is in 'V'",)),
)
KILLED = "test_bench_killed"


@pytest.fixture(scope="module")
def twin() -> Iterator[TwinHandle]:
    with TwinProcess(ports="auto") as process:
        yield TwinHandle(process)


@pytest.fixture(scope="module")
def matrix(twin: TwinHandle, tmp_path_factory: pytest.TempPathFactory) -> MatrixRun:
    """The one bench run of the module (its journal is read once, by the rig)."""
    return run_matrix(twin, tmp_path_factory.mktemp("fault-matrix"))


def test_the_run_met_every_fault_in_order_and_was_killed_last(matrix: MatrixRun) -> None:
    assert [t.name for t in matrix.record.tests] == [row.test for row in ROWS] + [KILLED], matrix.output


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_outcome_and_message(matrix: MatrixRun, row: Row) -> None:
    """The test ended as the fault requires, its message saying what happened."""
    test = matrix.tests[row.test]
    accepted = (row.outcome,) if isinstance(row.outcome, str) else row.outcome
    assert test.outcome in accepted, (test.outcome, test.message)
    for words in row.message:
        assert words in test.message, test.message


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_the_measurement_taken_before_the_fault_is_journaled(matrix: MatrixRun, row: Row) -> None:
    first = matrix.tests[row.test].measurements[0]
    assert (first.name, first.verdict) == ("EPS.BUS_VOLTAGE", "pass"), first
    assert isinstance(first.value, float) and 3.75 <= first.value <= 3.85, first.value


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_the_dut_is_off_once_the_bench_is_done_with_the_test(matrix: MatrixRun, row: Row) -> None:
    after = matrix.note("after", row.test)
    assert after is not None, f"no state recorded after {row.test}"
    assert not after["delivering"] and not after["output"], after  # off, and programmed off by the bench


@pytest.mark.parametrize("row", [r for r in ROWS if r.evidence], ids=str)
def test_the_evidence_shows_the_fault(matrix: MatrixRun, row: Row) -> None:
    assert row.evidence is not None
    name, text = row.evidence
    assert text in matrix.attachment(row.test, name)


def test_a_killed_bench_leaves_the_dut_to_the_watchdog_and_keeps_its_journal(matrix: MatrixRun) -> None:
    killed = matrix.tests[KILLED]
    assert killed.outcome == "interrupted" and not killed.closed, killed
    assert "run ended during this test" in killed.message
    assert [m.name for m in killed.measurements] == ["EPS.BUS_VOLTAGE"]
    state = matrix.after_kill
    # Latched off by the watchdog; still programmed on (Keysight semantics): the dead bench sent nothing more.
    assert state["watchdog_tripped"] and not state["delivering"] and state["output"], state
    assert state["off_since"] is not None and state["off_since"] >= matrix.killed_at
    assert matrix.record.verdict == "INCOMPLETE", matrix.record.verdict_reason
    assert sum(len(t.measurements) for t in matrix.record.tests) == len(ROWS) + 2  # the OCP test took two


@pytest.mark.parametrize(
    ("request_fields", "error"),
    [
        ({"name": "psu_error", "count": 0}, "'count' must be an integer 1..20"),
        ({"name": "psu_error", "code": 5}, "'code' must be a SCPI error code the twin knows"),
        ({"name": "brownout", "seconds": 0}, "'seconds' must be a number in (0, 10]"),
        ({"name": "rf_attenuator_missing"}, "'on' must be a bool"),
    ],
)
def test_the_faults_added_for_the_matrix_refuse_bad_parameters(
    twin: TwinHandle, request_fields: dict[str, object], error: str
) -> None:
    reply = twin.control(check=False, cmd="fault", **request_fields)
    assert reply["ok"] is False and error in reply["error"], reply


def _pytest_run(plan: Path, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    argv = [sys.executable, "-m", "pytest", str(plan), "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)]
    argv += ["--out", str(tmp_path / "runs"), "--limits", str(LIMITS), *args]
    proc = subprocess.run(
        argv, cwd=tmp_path, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_an_unreachable_results_db_keeps_every_measurement_and_says_how_to_import_later(tmp_path: Path) -> None:
    plan = tmp_path / "test_db_plan.py"
    plan.write_text(
        textwrap.dedent(
            """
            def test_idle_current(measure):
                measure("EPS.IDLE_CURRENT", 0.5)
                measure("EPS.BUS_VOLTAGE", 3.8)
            """
        )
    )
    code, output = _pytest_run(plan, tmp_path, env={"BENCH_DB": UNREACHABLE_DB})
    assert code == 0, output  # a development run: the DB is a copy, the journal is the record
    assert "WARNING: results DB import failed" in output and "retry: bench db import" in output, output
    [run_dir] = [p for p in (tmp_path / "runs").iterdir() if p.is_dir() and not p.is_symlink()]
    record = read_journal(run_dir / "journal.jsonl")
    assert record.verdict == "PASS", record.verdict_reason
    [test] = record.tests
    assert [(m.name, m.value) for m in test.measurements] == [("EPS.IDLE_CURRENT", 0.5), ("EPS.BUS_VOLTAGE", 3.8)]
    last = json.loads((run_dir / "journal.jsonl").read_text().splitlines()[-1])
    assert last["kind"] == "db_import" and last["ok"] is False and "127.0.0.1:1" in last["error"], last
    assert last["retry"] == f"bench db import {run_dir}"


def test_an_unknown_requirement_stops_the_plan_before_anything_is_powered(
    twin: TwinHandle, matrix: MatrixRun, tmp_path: Path
) -> None:
    """After the matrix run (its twin's supply is off): the refused plan must not touch it."""
    plan = tmp_path / "test_req_plan.py"
    plan.write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.requirement("OTS-EPS-999")
            def test_powers_the_dut(dut_power):
                dut_power.on()
            """
        )
    )
    config = matrix_config(twin, tmp_path, watchdog_s=2.0)
    code, output = _pytest_run(plan, tmp_path, "--bench-config", str(config))
    assert code == pytest.ExitCode.USAGE_ERROR, output
    [line] = [x for x in output.splitlines() if "OTS-EPS-999" in x]
    assert "test_req_plan.py::test_powers_the_dut is not in the requirements file" in line, line
    assert "add it to the requirements file or fix the marker" in line, line
    assert "Traceback" not in output
    for journal in tmp_path.glob("runs/2*/journal.jsonl"):  # the run it recorded ran nothing (exit status 4)
        record = read_journal(journal)
        assert record.tests == () and record.end is not None and record.end.exit_status == 4, record
    state = twin.channel_state()
    assert state == matrix.after_kill, "the refused plan touched the supply"
