"""`bench run --parallel 2` against `bench run`, the default plans (test_plans/) on auto-started twins, same invocation.

    python benchmarks/bench_parallel.py [--parallel 2] [--rounds 1] [--dist loadfile] [PLANS...]

Each round runs the plans serially and then with ``--parallel N`` (alternately, so that a machine whose load moves
from minute to minute weighs on both alike), each in a fresh ``bench run`` subprocess writing to one temporary
``--out`` folder, as runs on a bench PC share ``runs/``: a parallel run deals the plan files out longest first by
the previous run there (fixtures/parallel.py), here the serial run just before it. Prints the wall time of every
run, the medians and the ratio serial / parallel (issue 12: >= 1.6 with 2 workers on a 2-core bench PC; most of
a twin run waits on simulated physics, not on the CPU), and, for the last parallel run, how busy each worker was
(the sum of its tests' durations from its journal): a ratio short of N with one worker far busier than the other
is a scheduling problem (one long plan file), not a CPU one.
It asserts nothing: timings belong to the machine; a run that does not pass is reported and stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
TARGET = 1.6


def bench_run(out: Path, plans: list[str], parallel: int, dist: str | None) -> float:
    cmd = [sys.executable, "-m", "bench.cli", "run", *plans, "--out", str(out)]
    if parallel > 1:
        cmd += ["--parallel", str(parallel)]
        if dist:
            cmd += ["--", "--dist", dist]
    env = {k: v for k, v in os.environ.items() if k != "BENCH_DB"} | {"CI": "1"}  # no live line; DB beside the run
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=PROJECT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
        raise SystemExit(f"{' '.join(cmd)} exited with {done.returncode}:\n{tail}")
    return elapsed


def worker_load(out: Path) -> dict[str, float]:
    """Seconds of tests each worker ran (test_end durations in its journal), from the newest run in ``out``."""
    run_dir = (out / "latest").resolve()
    busy: dict[str, float] = {}
    for journal in sorted(run_dir.glob("journal-*.jsonl")):
        total = 0.0
        for line in journal.read_text().splitlines():
            record = json.loads(line)
            if record.get("kind") == "test_end" and isinstance(record.get("duration"), int | float):
                total += float(record["duration"])
        busy[journal.stem.removeprefix("journal-")] = total
    return busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plans", nargs="*", default=["test_plans"])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--dist", default=None, help="xdist --dist mode (default: bench run's own, loadfile)")
    args = parser.parse_args()
    serial: list[float] = []
    parallel: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as tmp:
        out = Path(tmp) / "runs"
        for n in range(args.rounds):
            serial.append(bench_run(out, args.plans, 1, None))
            print(f"round {n + 1}: serial       {serial[-1]:7.1f} s", flush=True)
            parallel.append(bench_run(out, args.plans, args.parallel, args.dist))
            print(f"round {n + 1}: --parallel {args.parallel} {parallel[-1]:7.1f} s", flush=True)
        busy = worker_load(out)
    s, p = statistics.median(serial), statistics.median(parallel)
    print(f"plans: {' '.join(args.plans)}   cores: {os.cpu_count()}   load average: {os.getloadavg()[0]:.2f}")
    print(f"serial median {s:.1f} s, --parallel {args.parallel} median {p:.1f} s")
    print(f"ratio serial/parallel: {s / p:.2f}x (target >= {TARGET}x with 2 workers)")
    if busy:
        print("tests per worker (last parallel run): " + ", ".join(f"{w} {t:.1f} s" for w, t in busy.items()))


if __name__ == "__main__":
    main()
