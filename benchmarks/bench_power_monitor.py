"""The power monitor on the twin: the sample rate it achieves, and what it costs the test's own SCPI queries.

    python benchmarks/bench_power_monitor.py [--seconds 3] [--rate 20]

Starts a twin, opens its Keysight supply, and times the test's own `MEAS:CURR?` queries (one after the other)
for `--seconds` without the monitor, then with the monitor sampling channel 1 at `--rate` Hz on the same
connection. Prints the achieved rate and the query latencies (median, 99th percentile, worst) of both phases.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.power_monitor import PowerMonitor
from bench.twin_launcher import TwinProcess
from instruments.psu_keysight import KeysightE36312A


def latencies(psu: KeysightE36312A, seconds: float) -> list[float]:
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        psu.measure_current(1)
        out.append(time.perf_counter() - t)
    return out


def describe(name: str, values: list[float]) -> str:
    q = statistics.quantiles(values, n=100)
    return (
        f"{name:<22} {len(values):6d} queries  median {statistics.median(values) * 1e3:6.2f} ms  "
        f"p99 {q[98] * 1e3:6.2f} ms  worst {max(values) * 1e3:6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args()
    with TwinProcess(ports="auto") as twin:
        psu = KeysightE36312A(str(twin.endpoints["psu"]["resource"]))
        try:
            alone = latencies(psu, args.seconds)
            monitor = PowerMonitor(psu, {"dut_main": 1}, rate_hz=args.rate).start()
            try:
                shared = latencies(psu, args.seconds)
            finally:
                trace = monitor.stop()
        finally:
            psu.close()
    print(f"power monitor at {args.rate:g} Hz requested: {trace.rate_hz:.2f} Hz achieved, {trace.errors} errors")
    print(describe("test queries alone", alone))
    print(describe("with the monitor", shared))


if __name__ == "__main__":
    main()
