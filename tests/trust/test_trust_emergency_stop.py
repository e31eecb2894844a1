"""One owner per bench and an emergency stop that latches, end to end: a real bench (pytest subprocess) holds a
standalone twin; a second run is refused naming the holder; `bench safe` from "another terminal" switches the
DUT off, the holder fails its test, skips the rest and ends ABORTED; nothing powers the DUT until
`bench safe --clear`, which is refused while the bench is held. A SIGKILLed holder leaves no stale lock."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from safety_rig import LIMITS, TwinHandle, bench_config_for, start_bench

from bench.config import load_config
from bench.reservation import BenchInterlocked
from bench.session import BenchSession
from bench.twin_launcher import TwinProcess
from bench.waiting import await_true, await_value
from reports.run_record import read_journal

PROJECT = Path(__file__).resolve().parents[2]

PLAN = textwrap.dedent(
    '''
    """Three tests that power the DUT; the first holds it on until something stops it."""
    import os
    from pathlib import Path

    from bench.waiting import await_true, await_value


    def test_first_holds_power(dut_power, measure):
        dut_power.on()
        measure("EPS.BUS_VOLTAGE", dut_power.voltage(), instrument="psu")
        Path(os.environ["MARKER"]).write_text("on")
        await_true(lambda: False, timeout_s=300, what="an operator", interval_s=0.05)


    def test_second_would_power(dut_power):
        dut_power.on()


    def test_third_would_power(dut_power):
        dut_power.on()
    '''
)


@pytest.fixture(scope="module")
def standalone_twin() -> Iterator[TwinHandle]:
    with TwinProcess(ports="auto") as twin:
        yield TwinHandle(twin)


def bench_cli(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True, cwd=PROJECT, timeout=timeout_s
    )


def _await_on(tmp_path: Path, proc: subprocess.Popen[str], twin: TwinHandle) -> None:
    await_true(
        lambda: (tmp_path / "dut-on").exists() or proc.poll() is not None, timeout_s=60, what="the DUT powered on"
    )
    assert proc.poll() is None, proc.communicate()[0]
    assert twin.output_on()


def test_emergency_stop_latches_until_cleared(standalone_twin, tmp_path):
    twin = standalone_twin
    plan = tmp_path / "test_stop_plan.py"
    plan.write_text(PLAN)
    config = bench_config_for(twin, tmp_path)
    proc = start_bench(plan, config, tmp_path, "hold")
    try:
        _await_on(tmp_path, proc, twin)

        # Who holds the bench, running what (the lease learns the test at its next heartbeat).
        def held() -> dict:
            status = bench_cli("status", "--json")
            assert status.returncode == 0, status.stderr
            [entry] = [json.loads(line) for line in status.stdout.splitlines() if '"twin-standalone"' in line]
            return entry

        entry = await_value(
            held, lambda e: (e["test"] or "").endswith("test_first_holds_power"), timeout_s=30, what="status"
        )
        assert entry["state"] == "held" and entry["pid"] == proc.pid, entry

        # A second run against the held bench is refused at once, in one line naming the holder.
        second = bench_cli(
            "run", str(plan), "-c", str(config), "--out", str(tmp_path / "second"), "--", "--limits", str(LIMITS),
            timeout_s=120,
        )  # fmt: skip
        assert second.returncode == 3, second.stdout + second.stderr
        refusal = [line for line in (second.stdout + second.stderr).splitlines() if "is held by" in line]
        assert len(refusal) == 1 and f"pid {proc.pid}" in refusal[0], second.stdout + second.stderr
        assert twin.output_on(), "the refused run must not have touched the supply"

        # Clearing is refused while a session holds the bench.
        early = bench_cli("safe", "--clear", "-c", str(config))
        assert early.returncode == 1 and "held by" in early.stderr, early.stdout + early.stderr

        # The emergency stop, from another terminal, without naming the bench: outputs off when it returns.
        stop = bench_cli("safe", "--reason", "smoke from the EPS harness")
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert "interlock set: bench twin-standalone" in stop.stderr, stop.stderr
        assert not twin.output_on(), "bench safe returned with the DUT still powered"

        output = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, output  # ABORTED is an interruption, never a pass or a plain fail

    run_dir = next(p for p in (tmp_path / "runs").iterdir() if p.is_dir() and p.name != "latest")
    record = read_journal(run_dir / "journal.jsonl")
    assert record.verdict == "ABORTED", record.verdict_reason
    [stop_event] = record.emergency_stops
    assert stop_event.test_id is not None and stop_event.test_id.endswith("test_first_holds_power")
    assert stop_event.reason == "smoke from the EPS harness" and stop_event.who
    outcomes = {t.name: (t.outcome, t.message) for t in record.tests}
    assert outcomes["test_first_holds_power"][0] == "interrupted"
    assert "emergency stop" in outcomes["test_first_holds_power"][1]
    for name in ("test_second_would_power", "test_third_would_power"):
        assert outcomes[name][0] == "skipped" and "emergency stop" in outcomes[name][1], outcomes[name]
    assert len(record.tests[0].measurements) == 1, "the measurement taken before the stop is kept"
    html = (run_dir / "report.html").read_text()
    assert "EMERGENCY STOP" in html and "smoke from the EPS harness" in html
    junit = (run_dir / "junit.xml").read_text()
    assert "emergency stop" in junit and 'failures="1"' in junit

    # Latched: nothing powers the DUT again until an operator clears the interlock.
    loaded = load_config(config)
    with pytest.raises(BenchInterlocked) as err:
        BenchSession.open(loaded, None, None, install_signals=False)
    assert "bench safe --clear" in str(err.value)
    assert not twin.output_on()
    cleared = bench_cli("safe", "--clear", "-c", str(config))
    assert cleared.returncode == 0 and "cleared" in cleared.stderr, cleared.stdout + cleared.stderr
    session = BenchSession.open(loaded, None, None, install_signals=False)
    session.close("test end")


def test_a_killed_holder_leaves_no_stale_lock(standalone_twin, tmp_path):
    twin = standalone_twin
    plan = tmp_path / "test_stop_plan.py"
    plan.write_text(PLAN)
    config = bench_config_for(twin, tmp_path)
    proc = start_bench(plan, config, tmp_path, "hold")
    try:
        _await_on(tmp_path, proc, twin)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    # The supply's watchdog switches the DUT off; the lease died with its holder.
    await_true(lambda: not twin.output_on(), timeout_s=10, what="the watchdog switching the DUT off")
    session = BenchSession.open(load_config(config), None, None, install_signals=False)
    session.close("test end")
    record = read_journal(next(p for p in (tmp_path / "runs").glob("*/journal.jsonl")))
    assert record.tests[0].outcome == "interrupted" and record.verdict == "INCOMPLETE"
