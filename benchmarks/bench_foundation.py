"""Foundation benchmarks: the bench's own costs, each as a ratio against a baseline measured in this run.

    python benchmarks/bench_foundation.py            # all four
    python benchmarks/bench_foundation.py measure    # one of: measure, per-test, scpi, collect

1. measure   cost of one recorded measurement (limit check + journal + Allure) inside a real pytest run,
             against the floor of writing the same JSON line with no bench code; target ≤ 10 µs.
2. per-test  the plugin's per-test overhead above bare pytest with allure-pytest; target ≤ 1 ms.
3. scpi      one SCPI query through the driver against a bare pyvisa-py query, same twin; target ≤ 1.2×.
4. collect   `pytest --collect-only test_plans` wall time; target ≤ 1 s (baseline: `python -c "import pytest"`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMITS = ROOT / "test_plans" / "limits.yaml"
rows: list[tuple[str, str, str, str]] = []


def _pytest_wall(
    test_source: str, *args: str, conftest: str = "", plugin: bool = True, repeat: int = 3
) -> tuple[float, Path]:
    """Best wall time of 3 pytest runs of `test_source`; also the folder (for files the run wrote)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-foundation-"))
    (tmp / "test_gen.py").write_text(test_source)
    (tmp / "conftest.py").write_text(conftest)
    (tmp / "pytest.ini").write_text("[pytest]\n")  # keep the project's addopts out of the measurement
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--alluredir", str(tmp / "allure")]
    if plugin:
        argv += ["--limits", str(LIMITS), "--out", str(tmp / "runs"), "--junitxml", str(tmp / "junit.xml")]
    else:
        argv += ["-p", "no:ots_bench", "--junitxml", str(tmp / "junit.xml")]
    argv += args
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=tmp, capture_output=True, text=True)
        best = min(best, time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"benchmark run failed:\n{proc.stdout[-2000:]}")
    return best, tmp


# The test times its own loop of measure() calls; the conftest times the plugin's once-per-test mirroring of
# the measurements into Allure (the makereport hook). Together: the full cost of recording a measurement.
MEASURE_TEST = """
import time
from pathlib import Path

def test_many(measure):
    t0 = time.perf_counter()
    for i in range({n}):
        measure("EPS.IDLE_CURRENT", 0.5)
    Path("loop.txt").write_text(repr(time.perf_counter() - t0))
"""
MEASURE_CONFTEST = """
import time
from pathlib import Path
import pytest

@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    t0 = time.perf_counter()
    yield
    if call.when == "call":
        Path("report.txt").write_text(repr(time.perf_counter() - t0))
"""


def bench_measure() -> None:
    n = 10_000
    _, tmp = _pytest_wall(MEASURE_TEST.format(n=n), conftest=MEASURE_CONFTEST)
    loop = float((tmp / "loop.txt").read_text())
    mirror = float((tmp / "report.txt").read_text())
    per = (loop + mirror) / n
    # Floor: the same record serialised and written with no bench code in between.
    with tempfile.TemporaryFile() as f:
        fd = f.fileno()
        rec = {"kind": "measurement", "test_id": "t", "name": "EPS.IDLE_CURRENT", "value": 0.5, "units": "A"}
        t0 = time.perf_counter()
        for _ in range(n):
            os.write(fd, (json.dumps(rec) + "\n").encode())
        floor = (time.perf_counter() - t0) / n
    rows.append(
        (
            "measure: cost per measurement",
            f"{per * 1e6:.2f} µs",
            f"floor {floor * 1e6:.2f} µs",
            f"{per / floor:.1f}× floor (allure {mirror / n * 1e6:.2f} µs of it); "
            f"{'within' if per <= 10e-6 else 'ABOVE'} the 10 µs target",
        )
    )


# Times the test loop alone (first test start to last test end), so both runs are compared on what happens per
# test; what the bench does once at the end of a run (report, PDF, DB import) is reported on its own row.
LOOP_CONFTEST = """
import time
from pathlib import Path
import pytest

@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtestloop(session):
    t0 = time.perf_counter()
    yield
    Path("loop.txt").write_text(repr(time.perf_counter() - t0))
"""


BARE_MEASURE = """

@pytest.fixture
def measure():
    return lambda name, value: None
"""


def bench_per_test() -> None:
    n = 500
    plugin = "".join(f"def test_{i}(measure):\n    measure('EPS.IDLE_CURRENT', 0.5)\n" for i in range(n))
    # The bare run's tests take a do-nothing `measure` fixture: allure-pytest writes a container file per fixture
    # per test whoever provides it, so both runs pay that and the difference is the plugin's own work.
    bare = plugin
    loops: dict[str, list[float]] = {"plugin": [], "bare": []}
    walls: dict[str, float] = {}
    for _ in range(3):  # alternate, so machine load hits both alike
        for name, source, with_plugin in (("plugin", plugin, True), ("bare", bare, False)):
            conftest = LOOP_CONFTEST + ("" if with_plugin else BARE_MEASURE)
            wall, tmp = _pytest_wall(source, conftest=conftest, plugin=with_plugin, repeat=1)
            loops[name].append(float((tmp / "loop.txt").read_text()))
            walls[name] = min(walls.get(name, float("inf")), wall)
    t_plugin, t_bare = min(loops["plugin"]), min(loops["bare"])
    delta = (t_plugin - t_bare) / n
    rows.append(
        (
            "per-test: plugin overhead",
            f"{delta * 1e3:.3f} ms",
            f"bare {t_bare / n * 1e3:.3f} ms/test",
            f"{t_plugin / t_bare:.2f}× bare; {'within' if delta <= 1e-3 else 'ABOVE'} the 1 ms target",
        )
    )
    end_of_run = (walls["plugin"] - t_plugin) - (walls["bare"] - t_bare)
    rows.append(
        (
            f"run end: report+PDF+DB for {n} tests",
            f"{end_of_run:.2f} s",
            "start-up and exit of bare pytest",
            "once per run, after the instruments are safe",
        )
    )


def bench_scpi() -> None:
    import pyvisa

    from bench.twin_launcher import TwinProcess
    from instruments.registry import open_power_supply

    n = 2000
    with TwinProcess() as twin:
        resource = str(twin.endpoints["psu"]["resource"])
        bare = pyvisa.ResourceManager("@py").open_resource(resource, read_termination="\n", write_termination="\n")
        driver = open_power_supply("keysight-e36312a", resource, 2.0)

        def bare_query() -> float:
            return float(bare.query("MEAS:VOLT? (@1)"))

        # Alternate short blocks of each so machine load hits both alike; keep the median block of each.
        bare_t: list[float] = []
        driver_t: list[float] = []
        block = n // 20
        for _ in range(10):
            for fn, out in ((bare_query, bare_t), (lambda: driver.measure_voltage(1), driver_t)):
                t0 = time.perf_counter()
                for _ in range(block):
                    fn()
                out.append((time.perf_counter() - t0) / block)
        t_bare, t_driver = statistics.median(bare_t), statistics.median(driver_t)
        driver.close()
        bare.close()
    rows.append(
        (
            "scpi: query via driver",
            f"{t_driver * 1e6:.0f} µs",
            f"bare pyvisa {t_bare * 1e6:.0f} µs",
            (f"{t_driver / t_bare:.2f}× bare (target ≤ 1.2×)"),
        )
    )


def bench_collect() -> None:
    def wall(argv: list[str]) -> float:
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run(argv, cwd=ROOT, capture_output=True, check=True)
            best = min(best, time.perf_counter() - t0)
        return best

    t_collect = wall([sys.executable, "-m", "pytest", "--collect-only", "-q", "test_plans", "-p", "no:cacheprovider"])
    t_import = wall([sys.executable, "-c", "import pytest"])
    rows.append(
        (
            "collect: pytest --collect-only test_plans",
            f"{t_collect:.2f} s",
            f"import pytest {t_import:.2f} s",
            (f"{t_collect / t_import:.1f}× bare import; {'within' if t_collect <= 1 else 'ABOVE'} the 1 s target"),
        )
    )


BENCHES = {"measure": bench_measure, "per-test": bench_per_test, "scpi": bench_scpi, "collect": bench_collect}


def main(argv: list[str]) -> None:
    for name in argv or list(BENCHES):
        BENCHES[name]()
    width = max(len(r[0]) for r in rows)
    print(textwrap.dedent(f"\n{'benchmark':<{width}}  {'result':>10}  {'baseline':<24}  ratio"))
    for name, result, baseline, ratio in rows:
        print(f"{name:<{width}}  {result:>10}  {baseline:<24}  {ratio}")


if __name__ == "__main__":
    main(sys.argv[1:])
