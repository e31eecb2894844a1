"""Plots of the report: the hand-written SVG of reports/svgplot.py against matplotlib's SVG backend, same run.

    python benchmarks/bench_plots.py [--repeat 5]

The report draws, per run, its power-on current traces (2,000 samples), its XY plots (a 4,096-point RF
spectrum with its mask; FER against input level on a log axis) and, in its trend section, up to 200
sparklines. Each is drawn here both ways, best of ``--repeat``; then the cost of importing matplotlib in a
fresh interpreter (what the first plot of a run pays; `bench run` builds the report in the pytest process)
against a bare interpreter. The budget they are judged against is the report's: HTML of 10,000 measurements
≤ 2 s (benchmarks/bench_report.py). Needs matplotlib (``pip install '.[benchmarks]'``).

The outcome decides reports/svgplot.py: matplotlib would be used if it kept the report within budget.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.plotdata import PlotSeries
from reports.svgplot import line_plot, xy_plot
from reports.trend_view import sparkline
from reports.trends.analysis import TrendPoint

REPORT_HTML_BUDGET_S = 2.0


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def fresh_import(code: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    repeat = args.repeat
    import matplotlib

    matplotlib.use("svg")
    from matplotlib.figure import Figure

    trace = [0.29 + 2.4 * math.exp(-k / 40.0) for k in range(2000)]
    n = 4096
    fx = [-200 + 400 * i / (n - 1) for i in range(n)]
    fy = [-120 + 60 * math.exp(-((x / 30) ** 2)) + 2 * math.sin(i * 1.7) for i, x in enumerate(fx)]
    mask = PlotSeries("mask", [-200, -50, -25, 25, 50, 200], [-100, -100, -50, -50, -100, -100], "limit")
    spectrum = [PlotSeries("PSD", fx, fy), mask]
    fer = [
        PlotSeries("FER", [-125, -123, -121, -119, -117], [0.5, 0.1, 0.01, 1e-4, 1e-5]),
        PlotSeries("FER limit", [-125, -117], [1e-2, 1e-2], "limit"),
        PlotSeries("sensitivity", [-121], [0.01], "markers"),
    ]
    points = [
        TrendPoint(f"r{i}", None, 1.0 + 0.01 * i, "pass", 0.5, 1.6, "A", None, "EM", "complete") for i in range(11)
    ]

    def svg(fig: Figure) -> str:
        buf = io.StringIO()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "ots"}):
            fig.savefig(buf, format="svg")
        return buf.getvalue()

    def mpl_trace() -> str:
        fig = Figure(figsize=(6.4, 2.8))
        ax = fig.add_subplot()
        ax.plot([k * 5e-5 * 1e3 for k in range(len(trace))], trace, lw=1.3)
        ax.set(title="Power-on current", xlabel="time (ms)", ylabel="current (A)")
        ax.grid(True)
        return svg(fig)

    def mpl_xy(series: list[PlotSeries], log_y: bool) -> str:
        fig = Figure(figsize=(6.4, 3.0))
        ax = fig.add_subplot()
        for s in series:
            style = {"limit": {"ls": "--", "color": "#c62828"}, "markers": {"ls": "", "marker": "o"}}.get(s.style, {})
            ax.plot(s.x, s.y, label=s.name, lw=1.3, **style)  # type: ignore[arg-type]
        if log_y:
            ax.set_yscale("log")
        ax.set(title="plot", xlabel="x", ylabel="y")
        ax.grid(True)
        ax.legend()
        return svg(fig)

    def mpl_spark() -> str:
        fig = Figure(figsize=(1.2, 0.26))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.plot(range(len(points)), [p.value for p in points], lw=1.2)
        ax.axhline(1.6, ls="--", color="#c62828")
        ax.axis("off")
        return svg(fig)

    rows = [
        ("power-on trace, 2,000 samples", lambda: line_plot(trace, 5e-5, title="t", units="A"), mpl_trace, 1),
        ("spectrum 4,096 points + mask", lambda: xy_plot(spectrum, title="s"), lambda: mpl_xy(spectrum, False), 1),
        ("FER vs level, log axis", lambda: xy_plot(fer, log_y=True), lambda: mpl_xy(fer, True), 1),
        ("trend sparklines × 200", lambda: [sparkline(points) for _ in range(200)],
         lambda: [mpl_spark() for _ in range(200)], 200),
    ]  # fmt: skip
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"report plots: hand-written SVG vs matplotlib {matplotlib.__version__} (svg backend), best of {repeat}; "
          f"load average {load:.2f}")  # fmt: skip
    total_hand = total_mpl = 0.0
    for label, hand, mpl, _ in rows:
        mpl()  # warm: fonts and caches
        t_hand, t_mpl = best(hand, repeat), best(mpl, max(1, repeat // 2))
        total_hand += t_hand
        total_mpl += t_mpl
        print(f"  {label:<32} hand-written {t_hand * 1e3:8.1f} ms   matplotlib {t_mpl * 1e3:8.1f} ms   "
              f"{t_mpl / t_hand:6.1f} ×")  # fmt: skip
    bare = fresh_import("pass", repeat)
    mpl_import = fresh_import("import matplotlib; matplotlib.use('svg'); from matplotlib.figure import Figure", repeat)
    print(f"  importing matplotlib (fresh interpreter, less a bare one)            {(mpl_import - bare) * 1e3:8.1f} ms")
    extra = total_mpl - total_hand + (mpl_import - bare)
    print(f"  a report with these plots: matplotlib adds {extra:.2f} s = {extra / REPORT_HTML_BUDGET_S:.2f} × the "
          f"{REPORT_HTML_BUDGET_S:g} s HTML budget of 10,000 measurements; "
          + ("within budget" if extra < REPORT_HTML_BUDGET_S
             else "over budget: the hand-written SVG stays"))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
