"""Stopping a parallel run: `bench safe --run RUN_ID` interlocks and makes safe every worker's twin bench (each
worker holds its own lease under the run's id), the test each worker was running ends "interrupted", never
"passed", and the run is ABORTED — in its journal, its report and its exit status. Ctrl-C likewise leaves every
worker's test interrupted; a worker whose twin ended with it before the stop reached it is not "NOT SAFE"."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from safety_rig import LIMITS

from bench.reservation import SafeTarget, open_store
from bench.stop import emergency_stop
from bench.waiting import await_true
from reports.run_record import read_journal

PROJECT = Path(__file__).resolve().parents[2]

PLAN = textwrap.dedent(
    '''
    """Powers the DUT, measures once, says so, and holds the DUT on until something stops it."""
    import os
    from pathlib import Path

    from bench.waiting import await_true


    def test_holds_power_{n}(dut_power, measure):
        dut_power.on()
        measure("EPS.BUS_VOLTAGE", dut_power.voltage(), instrument="psu")
        Path(os.environ["MARKERS"], os.environ["PYTEST_XDIST_WORKER"]).write_text("on")
        await_true(lambda: False, timeout_s=300, what="an operator", interval_s=0.05)
    '''
)


def _two_holding_plans(tmp_path: Path) -> tuple[Path, list[Path]]:
    """Two plan files (one per worker: --parallel deals out whole files) and the folder they mark when powered."""
    markers = tmp_path / "on"
    markers.mkdir()
    plans = [tmp_path / f"test_hold_{n}.py" for n in (1, 2)]
    for n, plan in enumerate(plans, start=1):
        plan.write_text(PLAN.replace("{n}", str(n)))
    return markers, plans


def _await_both_powered(proc: subprocess.Popen[str], markers: Path) -> None:
    await_true(
        lambda: len(list(markers.iterdir())) == 2 or proc.poll() is not None,
        timeout_s=120,
        what="both workers powering their DUT",
    )
    assert proc.poll() is None, proc.communicate()[0]


@pytest.mark.slow
def test_bench_safe_run_stops_every_worker(tmp_path):
    markers, plans = _two_holding_plans(tmp_path)
    run_id = "20260101T000000Z-par1"
    env = {k: v for k, v in os.environ.items() if k != "BENCH_DB"} | {"MARKERS": str(markers)}
    argv = [sys.executable, "-m", "pytest", *map(str, plans), "-q", "-p", "no:cacheprovider", "--parallel", "2",
            "--run-id", run_id, f"--out={tmp_path / 'runs'}", "--limits", str(LIMITS),
            "--rootdir", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _await_both_powered(proc, markers)
        stop = subprocess.run(
            [sys.executable, "-m", "bench.cli", "safe", "--run", run_id, "--reason", "parallel stop drill"],
            cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert stop.returncode == 0, stop.stdout + stop.stderr
        interlocked = [line for line in stop.stderr.splitlines() if line.startswith("interlock set:")]
        assert len(interlocked) == 2, stop.stderr
        assert any(f"{run_id}/gw0" in line for line in interlocked), stop.stderr
        assert any(f"{run_id}/gw1" in line for line in interlocked), stop.stderr
        # Both twins' supplies, each at its own address: switched off by the stop, or (a worker that saw the
        # interlock first) by its own session, which then ended with its twin.
        supplies = [line for line in stop.stderr.splitlines() if line.startswith("safe: ") and ("outputs off" in line
                    or line.startswith("safe: psu "))]  # fmt: skip
        assert len(supplies) == 2 and "NOT SAFE" not in stop.stderr, stop.stderr
        output = proc.communicate(timeout=180)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output

    run_dir = tmp_path / "runs" / run_id
    record = read_journal(run_dir / "journal.jsonl")
    assert record.verdict == "ABORTED", record.verdict_reason
    assert len(record.emergency_stops) == 2 and all(s.reason == "parallel stop drill" for s in record.emergency_stops)
    assert sorted(t.name for t in record.tests) == ["test_holds_power_1", "test_holds_power_2"]
    for test in record.tests:
        assert test.outcome == "interrupted" and "emergency stop" in test.message, (test.name, test.message)
        assert len(test.measurements) == 1, "the value taken before the stop is kept"
    junit = (run_dir / "junit.xml").read_text()
    assert 'failures="2"' in junit and "emergency stop" in junit
    assert "EMERGENCY STOP" in (run_dir / "report.html").read_text()


@pytest.mark.slow
def test_ctrl_c_leaves_every_workers_test_interrupted(tmp_path):
    """Ctrl-C in the terminal of `bench run --parallel 2` reaches the controller and both workers (one process
    group): each worker's running test ends "interrupted" naming the signal, the run is counted from the workers'
    journals (they could not report), and no twin outlives the run."""
    markers, plans = _two_holding_plans(tmp_path)
    xdg = tmp_path / "xdg"
    xdg.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "BENCH_DB"}
    env |= {"MARKERS": str(markers), "XDG_RUNTIME_DIR": str(xdg), "CI": "1"}
    argv = [sys.executable, "-m", "bench.cli", "run", *map(str, plans), "--parallel", "2", "--out",
            str(tmp_path / "runs"), "--", "--limits", str(LIMITS), "--rootdir", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )  # fmt: skip
    try:
        _await_both_powered(proc, markers)
        os.killpg(proc.pid, signal.SIGINT)
        output = proc.communicate(timeout=180)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    [run_dir] = [p for p in (tmp_path / "runs").iterdir() if p.is_dir() and not p.is_symlink()]
    record = read_journal(run_dir / "journal.jsonl")
    assert sorted(t.name for t in record.tests) == ["test_holds_power_1", "test_holds_power_2"]
    for test in record.tests:
        assert test.outcome == "interrupted" and "SIGINT" in test.message, (test.name, test.message)
    assert record.verdict == "INCOMPLETE", record.verdict_reason
    assert record.end is not None and record.end.counts["interrupted"] == 2 and not record.warnings, record
    assert "passed" not in {t.outcome for t in record.tests}
    # JUnit lists both, as failures naming the interruption, whether or not the worker could report them.
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert sorted(cases) == ["test_holds_power_1", "test_holds_power_2"], ET.tostring(suite)
    assert all(
        c.find("failure") is not None and "interrupted" in c.find("failure").get("message") for c in cases.values()
    )
    assert not list(xdg.rglob("twin-*.json")), "a twin outlived its run"


def _refusing_resource() -> str:
    """A TCP port nothing listens on (a twin that has exited)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"TCPIP0::127.0.0.1::{port}::SOCKET"


@pytest.mark.parametrize("worker_ends_first", [True, False])
def test_a_worker_that_ended_with_its_twin_is_not_reported_unsafe(worker_ends_first):
    """The stop interlocks every worker's bench, then switches their supplies off. A worker that saw its interlock
    first has entered safe state, released its bench and stopped its twin: its supply no longer answers, and that
    is safe, not NOT SAFE. A twin that does not answer while its run still holds the bench is NOT SAFE."""
    store = open_store(None)
    target = SafeTarget("psu", "keysight-e36312a", _refusing_resource())
    lease = store.acquire(
        "twin-bench/20260101T000000Z-race/gw0", run_id="20260101T000000Z-race", holder="tester", host="here",
        pid=os.getpid(), ttl_s=30, config=None, safe_targets=(target,),
    )  # fmt: skip
    said: list[tuple[str, str]] = []

    def say(kind: str, text: str) -> None:
        said.append((kind, text))
        if kind == "interlock" and worker_ends_first:
            lease.release()  # the worker's session: safe state, lease released, twin stopped

    try:
        ok = emergency_stop(None, "20260101T000000Z-race", "race drill", say)
    finally:
        lease.release()
    kinds = [kind for kind, _ in said]
    assert kinds[0] == "interlock", said
    assert ok is worker_ends_first, said
    if worker_ends_first:
        assert ("safe", f"psu {target.resource}: its run's session made it safe and ended; its twin is gone") in said
    else:
        assert kinds[-1] == "NOT SAFE", said
