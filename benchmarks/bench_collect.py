"""Start-up of a pytest run over the test plans, against the cost of importing pytest itself, same invocation.

    python benchmarks/bench_collect.py [--repeat 7]

Measures, each in fresh subprocesses (``--repeat`` times, after one warm-up run that fills the bytecode cache):

* ``python -c "import pytest"`` — the floor no plugin can go below;
* ``python -m pytest --collect-only -q test_plans -p no:cacheprovider`` — what the bench plugin, the conftests
  and the plans' imports add to it (issue 11: ≤ 1 s on the bench PC).

Both with the bytecode cache as a workstation has it, and again with ``PYTHONDONTWRITEBYTECODE=1`` and no cache
of this project's modules (every module compiled on each start: a fresh checkout, or a CI image that forbids
writing ``__pycache__``). Prints median and best of each and the ratio of the medians; it asserts nothing,
timings belong to the machine (tests never assert them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
IMPORT_PYTEST = [sys.executable, "-c", "import pytest"]
COLLECT = [sys.executable, "-m", "pytest", "--collect-only", "-q", "test_plans", "-p", "no:cacheprovider"]
BUDGET_S = 1.0
FLOOR_LABEL = 'python -c "import pytest"'
OWN_PACKAGES = ("bench", "fixtures", "instruments", "reports", "twin", "test_plans")


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=PROJECT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return elapsed


def drop_own_bytecode() -> None:
    """Without this, an earlier cached run would hide the compile cost the uncached case is about."""
    for package in OWN_PACKAGES:
        for cache in (PROJECT / package).rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)


def measure(cmd: list[str], env: dict[str, str], repeat: int, *, cold: bool) -> list[float]:
    times = []
    for _ in range(repeat):
        if cold:
            drop_own_bytecode()
        times.append(timed(cmd, env))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs of each command (default 7)")
    args = parser.parse_args(argv)
    warm = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cold = {**warm, "PYTHONDONTWRITEBYTECODE": "1"}
    timed(COLLECT, warm)  # warm-up: fills __pycache__ and the OS file cache
    print(f"{'':34} {'median':>8} {'best':>8}   (s, {args.repeat} runs each, fresh interpreters)")
    for label, env, is_cold in (("bytecode cached", warm, False), ("no bytecode cache", cold, True)):
        floor = measure(IMPORT_PYTEST, env, args.repeat, cold=is_cold)
        collect = measure(COLLECT, env, args.repeat, cold=is_cold)
        f_med, c_med = statistics.median(floor), statistics.median(collect)
        print(f"[{label}]")
        print(f"  {FLOOR_LABEL:32} {f_med:8.3f} {min(floor):8.3f}")
        print(f"  {'pytest --collect-only test_plans':32} {c_med:8.3f} {min(collect):8.3f}")
        verdict = "within" if c_med <= BUDGET_S else "OVER"
        print(f"  ratio collect/import: {c_med / f_med:.2f}   collect-only {verdict} its {BUDGET_S:.1f} s budget")
    timed(COLLECT, warm)  # leave the cache filled for whoever runs next
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
