"""Fault latency: from the bench's decision to the DUT supply output off, for every row of the fault matrix.

    python benchmarks/bench_fault_latency.py                # all three, once
    python benchmarks/bench_fault_latency.py matrix stop    # some of: matrix, signals, stop
    python benchmarks/bench_fault_latency.py --repeat 3     # each run 3 times: median and worst

1. matrix   the fault-matrix run of tests/faults/test_fault_matrix.py (one bench, a standalone twin, one fault per
            test): from the decision — the moment the bench step that met the fault raised, or returned a failed
            measurement (the plan notes it) — to the moment the twin saw the supply output stop delivering. The
            run ends with kill -9 of the bench while it holds the DUT: from the kill to the output off, against
            the configured watchdog delay (only the supply's I/O watchdog is left to act).
2. signals  a bench holding the DUT powered ended by SIGINT, SIGINT twice, SIGTERM, and the pytest-timeout: from
            the signal sent (the timeout: raised in the test) to the output off.
3. stop     the emergency stop: from launching `bench safe` in another process (its start-up included) to the
            output off.

"Off" is the twin's own record (`state.psu.channels[0].off_since`, its clock is this host's CLOCK_MONOTONIC,
like `time.monotonic()` here and in the plan), read through the control endpoint, never SCPI (which would feed
the watchdog). Target: within 1 s of the decision; kill -9 within the watchdog delay. A negative figure means the
supply's own protection had switched the output off before the bench decided (the OCP row).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "support"), str(ROOT / "tests" / "faults")]

from fault_matrix_rig import HOLD_PLAN, WATCHDOG_S, await_note, bench_process, matrix_config, run_matrix  # noqa: E402
from safety_rig import TwinHandle  # noqa: E402

from bench.twin_launcher import TwinProcess  # noqa: E402
from bench.waiting import await_true  # noqa: E402

TARGET_S = 1.0
TWIN_STEP_S = 0.005  # twin/psu.py walks its simulation in steps of at most 5 ms
samples: dict[str, list[float | None]] = {}  # row → latency per repeat (None: no decision, the bench rode it out)
targets: dict[str, float] = {}
remarks: dict[str, str] = {}


def _add(row: str, latency: float | None, target: float = TARGET_S) -> None:
    samples.setdefault(row, []).append(latency)
    targets[row] = target


def _workdir(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"bench-fault-{name}-"))


def bench_matrix(twin: TwinHandle) -> None:
    run = run_matrix(twin, _workdir("matrix"))
    for test in run.record.tests:
        if test.name == "test_bench_killed":
            continue
        decision, after = run.note("decision", test.name), run.note("after", test.name)
        row = f"matrix: {test.name.removeprefix('test_')}"
        if decision is None or after is None or after["off_since"] is None:
            _add(row, None)
            continue
        _add(row, after["off_since"] - decision["t"])
    # The twin's supply checks its watchdog every simulation step, and a heartbeat in flight at the kill counts as
    # I/O on arrival: the delay plus one step is what a watchdog of that delay can do.
    row = "matrix: kill -9 (watchdog)"
    _add(row, run.after_kill["off_since"] - run.killed_at, run.watchdog_s + TWIN_STEP_S)
    remarks[row] = f" (watchdog_s {run.watchdog_s:g} s + the twin's {TWIN_STEP_S * 1e3:g} ms time step)"


def _hold_then(twin: TwinHandle, name: str, end: Callable[[subprocess.Popen[str]], float | None], *extra: str) -> float:
    """Start a bench holding the DUT; `end` ends it and returns the moment of the decision (None: the plan notes
    it, as for the pytest-timeout raised inside the test); → the latency to the output off."""
    proc, notes = bench_process(HOLD_PLAN, twin, _workdir(name), *extra)
    try:
        await_note(proc, notes, "hold", timeout_s=300)
        decided = end(proc)
        proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)
    await_true(lambda: not twin.output_on(), timeout_s=60, what="the DUT output off")
    if decided is None:
        decided = float(await_note(proc, notes, "decision", timeout_s=1)["t"])
    off_since = twin.channel_state()["off_since"]
    assert off_since is not None
    return float(off_since - decided)


def _signal(*signals: signal.Signals) -> Callable[[subprocess.Popen[str]], float]:
    def send(proc: subprocess.Popen[str]) -> float:
        sent = time.monotonic()
        for sig in signals:
            proc.send_signal(sig)
        return sent

    return send


def bench_signals(twin: TwinHandle) -> None:
    _add("signal: SIGINT (Ctrl-C)", _hold_then(twin, "sigint", _signal(signal.SIGINT)))
    _add("signal: SIGINT twice", _hold_then(twin, "sigint2", _signal(signal.SIGINT, signal.SIGINT)))
    _add("signal: SIGTERM", _hold_then(twin, "sigterm", _signal(signal.SIGTERM)))
    _add("pytest-timeout", _hold_then(twin, "timeout", lambda proc: None, "--timeout", "8"))


def bench_stop(twin: TwinHandle) -> None:
    config_dir = _workdir("stop-config")
    config = matrix_config(twin, config_dir, WATCHDOG_S)

    def bench_safe(proc: subprocess.Popen[str]) -> float:
        sent = time.monotonic()
        cli = [sys.executable, "-m", "bench.cli", "safe", "--reason", "latency benchmark"]
        subprocess.run(cli, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
        return sent

    # For comparison: the full command line starting and exiting, which the stop no longer waits for.
    startup = []
    for _ in range(3):
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "bench.cli", "safe", "--help"], cwd=ROOT, capture_output=True, check=True)
        startup.append(time.monotonic() - t0)
    full = min(startup) * 1e3
    remarks["emergency stop: bench safe"] = f"; the full command line (`bench safe --help`) would take {full:.0f} ms"
    try:
        _add("emergency stop: bench safe", _hold_then(twin, "stop", bench_safe))
    finally:  # the interlock latches: clear it for the next run
        clear = [sys.executable, "-m", "bench.cli", "safe", "--clear", "-c", str(config)]
        subprocess.run(clear, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)


BENCHES: dict[str, Callable[[TwinHandle], None]] = {
    "matrix": bench_matrix,
    "signals": bench_signals,
    "stop": bench_stop,
}


def _ms(value: float) -> str:
    return f"{value * 1e3:+.0f} ms" if value < 0 else f"{value * 1e3:.0f} ms"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("benches", nargs="*", metavar="|".join(BENCHES), help="default: all")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each benchmark (median and worst shown)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.benches) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)} (known: {', '.join(BENCHES)})")
    # Leases and interlocks of these runs in a folder of their own: never stop or be refused by another bench.
    os.environ["OTS_BENCH_STATE_DIR"] = tempfile.mkdtemp(prefix="bench-fault-state-")
    load = os.getloadavg()[0]
    with TwinProcess(ports="auto") as process:
        twin = TwinHandle(process)
        for _ in range(args.repeat):
            for name in args.benches or list(BENCHES):
                BENCHES[name](twin)
    width = max(len(row) for row in samples)
    print(f"\n{'row':<{width}}  {'median':>9}  {'worst':>9}  target")
    for row, values in samples.items():
        measured = [v for v in values if v is not None]
        if not measured:
            print(f"{row:<{width}}  {'—':>9}  {'—':>9}  no decision: the bench rode the fault out (test passed)")
            continue
        worst = max(measured)
        verdict = "within" if worst <= targets[row] else "ABOVE"
        note = " (the supply's protection was first)" if worst < 0 else remarks.get(row, "")
        print(
            f"{row:<{width}}  {_ms(statistics.median(measured)):>9}  {_ms(worst):>9}  "
            f"{verdict} {targets[row]:g} s{note}"
        )
    print(f"\n{args.repeat} repeat(s); load average at start {load:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main(sys.argv[1:])
