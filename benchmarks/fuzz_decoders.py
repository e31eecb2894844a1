"""Long fuzz runs of the protocol decoders: every fuzz test of tests/fuzz for 10^5 examples (or N) each.

Run:  .venv/bin/python benchmarks/fuzz_decoders.py [--examples N] [--target NAME ...] [--list] [--chunk C]
                                                    [--budget-s S]
      .venv/bin/python benchmarks/fuzz_decoders.py --atheris --target NAME [--examples N]   (coverage-guided)
Import: ``run(targets, examples=...)`` returns the results without printing.

The targets are the hypothesis tests of ``tests/fuzz/test_fuzz_*.py`` themselves, not copies: each module is
imported with ``FUZZ_EXAMPLES`` set to the chunk size, and its ``@given`` functions are called repeatedly (a fresh
hypothesis engine per chunk, so memory stays bounded) until ``--examples`` examples have run. A target is named
``<area>.<test>`` (``cfp.garbage_frames_are_counted_never_raised``); ``--target cfp`` runs every target of an area.

Per target it prints the examples run (counted in the test body, so filtered-out draws do not count), the wall
time and examples/s, the CPU time and examples per CPU second (what an unloaded core would give: on a shared
machine the wall rate says more about the neighbours), the most expensive single example in CPU and in wall
milliseconds, the examples over one second of CPU (a decoder that hangs; their inputs are listed), those over one
second of wall time only (``stalled``: waiting for a core, or blocked) and the failures — 0 expected; a failure
prints hypothesis' falsifying example and reproduction blob.
``--budget-s S`` stops a target after the first chunk that ends past S seconds (marked ``*``: its rate says how
long the full count would take).

``--atheris`` runs a target under atheris (libFuzzer, coverage-guided on the bench, instruments and twin
packages) through hypothesis' ``fuzz_one_input``, in a child process per target (libFuzzer exits when done). It
needs ``pip install atheris`` (not a project dependency); without it the script says so and exits 2.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import logging
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FUZZ_DIR = ROOT / "tests" / "fuzz"
for path in (ROOT, FUZZ_DIR, ROOT / "tests" / "support"):  # as pytest's pythonpath and rootdir insertion do
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

DEFAULT_EXAMPLES = 100_000
DEFAULT_CHUNK = 5_000
SLOW_EXAMPLE_S = 1.0


@dataclass
class Result:
    name: str
    examples: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0  # this process's CPU time: the rate a loaded machine would give without the load
    slowest_s: float = 0.0  # wall time of the slowest example
    slowest_cpu_s: float = 0.0  # CPU time (less garbage collection) of the most expensive example
    slow: list[str] = field(default_factory=list)  # inputs of examples over SLOW_EXAMPLE_S of CPU: a hang
    stalled: int = 0  # examples over SLOW_EXAMPLE_S of wall time but not of CPU: a busy machine, or a blocked wait
    failures: list[str] = field(default_factory=list)
    out_of_budget: bool = False

    @property
    def rate(self) -> float:
        return self.examples / self.wall_s if self.wall_s else 0.0

    @property
    def cpu_rate(self) -> float:
        return self.examples / self.cpu_s if self.cpu_s else 0.0


def _modules() -> list[str]:
    return sorted(p.stem for p in FUZZ_DIR.glob("test_fuzz_*.py"))


def discover(chunk: int = DEFAULT_CHUNK) -> dict[str, Callable[..., Any]]:
    """``{target name: @given test}`` of every fuzz module, imported with ``chunk`` examples per call."""
    os.environ["FUZZ_EXAMPLES"] = str(chunk)  # read by fuzz_strategies.fuzz() at import time
    targets: dict[str, Callable[..., Any]] = {}
    for module_name in _modules():
        module = importlib.import_module(module_name)
        area = module_name.removeprefix("test_fuzz_")
        for name, obj in vars(module).items():
            if name.startswith("test_") and hasattr(obj, "hypothesis"):
                targets[f"{area}.{name.removeprefix('test_')}"] = obj
    return targets


def select(targets: dict[str, Callable[..., Any]], wanted: list[str]) -> list[str]:
    """Names matching ``wanted`` (exact names or area prefixes), in discovery order; all when empty."""
    if not wanted:
        return list(targets)
    chosen = [n for n in targets if any(n == w or n.startswith(w.rstrip(".") + ".") for w in wanted)]
    unknown = [w for w in wanted if not any(n == w or n.startswith(w.rstrip(".") + ".") for n in targets)]
    if unknown:
        raise SystemExit(f"unknown target(s) {', '.join(unknown)}; --list shows them")
    return chosen


class _GcClock:
    """CPU seconds spent in the garbage collector: a full collection of hypothesis' own bookkeeping can take a
    second and lands in whichever example happens to trigger it, so it is no measure of the code under test."""

    def __init__(self) -> None:
        self.total = 0.0
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.process_time()
        else:
            self.total += time.process_time() - self._start


_gc_clock = _GcClock()


def _timed(inner: Callable[..., Any], result: Result) -> Callable[..., Any]:
    """The test body, counted and timed example by example (a hang shows up as one slow example).

    Slow means CPU time, less garbage collection: on a shared machine a trivial example can wait seconds for a
    core. An example that takes long in wall time only is counted apart (``stalled``), as a decoder blocked in a
    wait would be."""

    @functools.wraps(inner)
    def body(*args: Any, **kwargs: Any) -> Any:
        start, cpu_start, gc_start = time.perf_counter(), time.process_time(), _gc_clock.total
        try:
            return inner(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu_start - (_gc_clock.total - gc_start)
            result.examples += 1
            result.slowest_s = max(result.slowest_s, elapsed)
            result.slowest_cpu_s = max(result.slowest_cpu_s, cpu)
            if cpu > SLOW_EXAMPLE_S:
                shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
                result.slow.append(f"{cpu:.2f} s CPU: {shown[:300]}")
            elif elapsed > SLOW_EXAMPLE_S:
                result.stalled += 1

    return body


def run_target(name: str, test: Callable[..., Any], examples: int, budget_s: float | None = None) -> Result:
    result = Result(name)
    handle: Any = test
    inner = handle.hypothesis.inner_test
    handle.hypothesis.inner_test = _timed(inner, result)
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        while result.examples < examples:
            before = result.examples
            try:
                test()
            except Exception:  # a falsified property: hypothesis has shrunk it and says how to reproduce it
                result.failures.append(traceback.format_exc(limit=-3))
            if result.examples == before:  # nothing ran (e.g. the strategy space is exhausted): stop
                break
            if budget_s is not None and result.examples < examples and time.perf_counter() - start > budget_s:
                result.out_of_budget = True
                break
    finally:
        handle.hypothesis.inner_test = inner
        result.wall_s = time.perf_counter() - start
        result.cpu_s = time.process_time() - cpu_start
    return result


def run(
    wanted: list[str] | None = None,
    examples: int = DEFAULT_EXAMPLES,
    chunk: int = DEFAULT_CHUNK,
    progress: Callable[[Result], None] | None = None,
    budget_s: float | None = None,
) -> list[Result]:
    targets = discover(min(chunk, examples))
    results = []
    for name in select(targets, wanted or []):
        result = run_target(name, targets[name], examples, budget_s)
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def row(r: Result) -> str:
    name = r.name + (" *" if r.out_of_budget else "")
    return (
        f"{name:<58} {r.examples:>9,} {r.wall_s:>8.0f} {r.rate:>7,.0f} {r.cpu_s:>8.0f} {r.cpu_rate:>7,.0f} "
        f"{r.slowest_cpu_s * 1e3:>8.1f} {r.slowest_s * 1e3:>9.0f} {len(r.slow):>5} {r.stalled:>7} {len(r.failures):>8}"
    )


HEADER = (
    f"{'target':<58} {'examples':>9} {'wall s':>8} {'ex/s':>7} {'CPU s':>8} {'ex/CPUs':>7} {'max CPU':>8} "
    f"{'max wall':>9} {'>1 s':>5} {'stalled':>7} {'failures':>8}"
)


def _atheris_child(name: str, examples: int) -> int:
    import atheris  # optional: checked by the parent

    os.environ["FUZZ_EXAMPLES"] = "1"
    area = name.split(".", 1)[0]
    # Coverage feedback from the code under test, not from hypothesis or the test helpers.
    with atheris.instrument_imports(include=["bench", "instruments", "twin"]):
        module = importlib.import_module(f"test_fuzz_{area}")
    test = getattr(module, "test_" + name.split(".", 1)[1])
    atheris.Setup([sys.argv[0], f"-runs={examples}", "-print_final_stats=1"], test.hypothesis.fuzz_one_input)
    atheris.Fuzz()
    return 0


def _atheris(names: list[str], examples: int) -> int:
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed (pip install atheris; it is not a project dependency): nothing run")
        return 2
    worst = 0
    for name in names:
        print(f"== atheris {name}: {examples:,} runs", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, __file__, "--atheris-child", name, "--examples", str(examples)])
        print(f"== atheris {name}: exit {code} after {time.perf_counter() - start:.1f} s", flush=True)
        worst = max(worst, code)
    return 1 if worst else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES, help="examples per target (100000)")
    parser.add_argument("--target", action="append", default=[], help="a target or an area (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="examples per hypothesis run (5000)")
    parser.add_argument("--budget-s", type=float, help="stop a target after about this many seconds")
    parser.add_argument("--atheris", action="store_true", help="coverage-guided runs under atheris instead")
    parser.add_argument("--atheris-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # The twin components log every malformed line they count; thousands per second would drown the table.
    logging.disable(logging.WARNING)
    if args.atheris_child:
        return _atheris_child(args.atheris_child, args.examples)
    if args.list:
        for name in discover(1):
            print(name)
        return 0
    if args.atheris:
        return _atheris(select(discover(1), args.target), args.examples)

    print(f"Python {sys.version.split()[0]}, {args.examples:,} examples per target, chunks of {args.chunk:,}")
    print(HEADER, flush=True)

    def progress(r: Result) -> None:
        print(row(r), flush=True)
        for line in r.slow[:5]:
            print(f"    slow: {line}")
        for failure in r.failures[:3]:
            print("    FAILURE:\n" + "\n".join("      " + line for line in failure.splitlines()[-25:]))

    results = run(args.target, args.examples, args.chunk, progress, args.budget_s)
    total = sum(r.examples for r in results)
    failed = sum(len(r.failures) for r in results)
    slow = sum(len(r.slow) for r in results)
    stalled = sum(r.stalled for r in results)
    print(
        f"{len(results)} targets, {total:,} examples, {failed} failures, {slow} examples over {SLOW_EXAMPLE_S:g} s"
        f" of CPU, {stalled} over {SLOW_EXAMPLE_S:g} s of wall time only"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
