"""Safe state on every exit: pass, fail, exception, pytest-timeout, Ctrl-C, SIGTERM — and SIGKILL via the
supply's I/O watchdog. Each test runs a real bench (pytest subprocess) against a standalone twin, powers the
DUT, ends the bench the way under test, and then checks the twin's supply output is off."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from safety_rig import LIMITS, TwinHandle, bench_config_for, start_bench

from bench.waiting import await_true

PLAN = textwrap.dedent(
    '''
    """A plan that powers the DUT and then ends the way MODE says."""
    import os
    from pathlib import Path

    import pytest

    from bench.waiting import await_true


    @pytest.mark.requirement("OTS-EPS-020")
    def test_hold_dut_powered(dut_power):
        dut_power.on()
        Path(os.environ["MARKER"]).write_text("on")
        mode = os.environ["MODE"]
        if mode == "fail":
            assert False, "deliberate failure with the DUT powered"
        if mode == "raise":
            raise RuntimeError("deliberate exception with the DUT powered")
        if mode == "hang":
            await_true(lambda: False, timeout_s=300, what="the end of the world", interval_s=0.05)
    '''
)


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    path = tmp_path / "test_hold_plan.py"
    path.write_text(PLAN)
    return path


def _journal(tmp_path: Path) -> list[dict]:
    [journal] = [p for p in (tmp_path / "runs").glob("*/journal.jsonl") if p.parent.name != "latest"]
    return [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]


def _await_dut_on(tmp_path: Path, twin: TwinHandle, proc) -> None:
    await_true(
        lambda: (tmp_path / "dut-on").exists() or proc.poll() is not None, timeout_s=30, what="the DUT powered on"
    )
    assert proc.poll() is None, proc.stdout.read()
    assert twin.output_on(), "the plan said the DUT is on but the twin's output is off"


@pytest.mark.parametrize(("mode", "code"), [("pass", 0), ("fail", 1), ("raise", 1)])
def test_session_end_leaves_outputs_off(standalone_twin, plan, tmp_path, mode, code):
    proc = start_bench(plan, bench_config_for(standalone_twin, tmp_path), tmp_path, mode)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == code, out
    assert (tmp_path / "dut-on").exists()
    assert not standalone_twin.output_on()
    assert not standalone_twin.output_programmed_on()
    reasons = [r["reason"] for r in _journal(tmp_path) if r["kind"] == "safe_state"]
    assert reasons == ["session end"]


def _test_end(tmp_path: Path) -> dict:
    [end] = [r for r in _journal(tmp_path) if r["kind"] == "test_end"]
    return end


def _run_dir(tmp_path: Path) -> Path:
    return next(p for p in (tmp_path / "runs").iterdir() if p.is_dir() and not p.is_symlink())


def _assert_not_verified(tmp_path: Path, cause: str) -> None:
    """An interrupted test is never passed: not in the journal, JUnit, Allure, the verdict or the VCRM."""
    from reports.run_record import read_journal
    from reports.vcrm import build_vcrm, load_requirements

    end = _test_end(tmp_path)
    assert end["outcome"] == "interrupted" and cause in end["message"], end
    run_dir = _run_dir(tmp_path)
    record = read_journal(run_dir / "journal.jsonl")
    assert record.verdict == "INCOMPLETE", record.verdict_reason
    junit = (run_dir / "junit.xml").read_text()
    assert 'failures="1"' in junit and "interrupted: " in junit and cause in junit, junit
    statuses = [json.loads(p.read_text())["status"] for p in (run_dir / "allure-results").glob("*-result.json")]
    assert statuses and "passed" not in statuses, statuses
    vcrm = build_vcrm(load_requirements(LIMITS.parent / "requirements.yaml"), [record])
    [row] = [r for r in vcrm.rows if r.requirement.req_id == "OTS-EPS-020"]
    assert {r.level: r.status for r in row.results}["EM"] == "incomplete"


def test_pytest_timeout_leaves_outputs_off(standalone_twin, plan, tmp_path):
    proc = start_bench(plan, bench_config_for(standalone_twin, tmp_path), tmp_path, "hang", "--timeout", "4")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    assert "Timeout" in out
    assert not standalone_twin.output_on()
    _assert_not_verified(tmp_path, "pytest-timeout")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_enters_safe_state_and_still_reports(standalone_twin, plan, tmp_path, sig):
    proc = start_bench(plan, bench_config_for(standalone_twin, tmp_path), tmp_path, "hang")
    _await_dut_on(tmp_path, standalone_twin, proc)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out  # pytest: interrupted
    assert not standalone_twin.output_on()
    records = _journal(tmp_path)
    assert any(r["kind"] == "safe_state" and r["reason"] == sig.name for r in records)
    assert [r["kind"] for r in records][-2:] == ["run_end", "db_import"]
    assert (tmp_path / "runs" / "latest" / "report.html").exists()
    _assert_not_verified(tmp_path, sig.name)


def test_double_ctrl_c_still_journals_and_reports(standalone_twin, plan, tmp_path):
    proc = start_bench(plan, bench_config_for(standalone_twin, tmp_path), tmp_path, "hang")
    _await_dut_on(tmp_path, standalone_twin, proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)  # the impatient operator
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert not standalone_twin.output_on()
    assert (_run_dir(tmp_path) / "report.html").exists()
    assert [r["kind"] for r in _journal(tmp_path)][-2:] == ["run_end", "db_import"]
    _assert_not_verified(tmp_path, "SIGINT")


def test_sigkill_is_caught_by_the_supply_watchdog(standalone_twin, plan, tmp_path):
    proc = start_bench(plan, bench_config_for(standalone_twin, tmp_path, watchdog_s=1), tmp_path, "hang")
    _await_dut_on(tmp_path, standalone_twin, proc)
    proc.kill()  # no handler, no teardown: only the instrument can save the DUT now
    proc.communicate(timeout=30)
    # Read through the control endpoint: SCPI traffic of ours would feed the watchdog.
    await_true(
        lambda: not standalone_twin.output_on(),
        timeout_s=5,
        what="the watchdog to switch the output off",
    )
    assert standalone_twin.channel_state()["watchdog_tripped"]
    # The killed run's journal is intact up to the kill and reports as incomplete.
    records = _journal(tmp_path)
    assert records[0]["kind"] == "run_start" and records[-1]["kind"] != "run_end"
    run_dir = tmp_path / "runs" / records[0]["run_id"]
    rebuilt = subprocess.run(
        [sys.executable, "-m", "bench.cli", "report", str(run_dir)], capture_output=True, text=True, timeout=60
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    html = (run_dir / "report.html").read_text()
    assert "INCOMPLETE" in html and "run ended during this test" in html
    from reports.run_record import read_journal

    assert [t.outcome for t in read_journal(run_dir / "journal.jsonl").tests] == ["interrupted"]
    # Never sealed by its run, the killed run is sealed once its report is rebuilt; verify passes then.
    assert "sealed for the first time" in rebuilt.stderr
    verified = subprocess.run(
        [sys.executable, "-m", "bench.cli", "verify", str(run_dir)], capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0, verified.stderr
