"""The "Trends" section of report.html as view objects: plain, formatted strings and sparkline geometry.

The template partial ``templates/_trends.html.j2`` lays them out (autoescaped, like the rest of the report);
nothing here writes HTML. :func:`trends_view` formats a :class:`~reports.trends.RunTrendReport`:
a summary, then one row per measurement — regressions first, then other flags, then those projected to
cross a limit within five runs, then the rest in run order — capped at ``max_rows`` with the number left
out said; :func:`unavailable` is the section when no comparison could be made, and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from reports.formatting import fmt_number

if TYPE_CHECKING:  # the records only: a report built without a database must not load SQLAlchemy
    from reports.trends.analysis import MeasurementTrend, RunTrendReport, TrendPoint

__all__ = ["VERDICT_COLOURS", "Sparkline", "TrendRowView", "TrendsView", "sparkline", "trends_view", "unavailable"]

VERDICT_COLOURS: Final = {"pass": "#2e7d32", "marginal": "#ef8f00", "fail": "#c62828"}
_LINE_COLOUR: Final = "#1f5fa8"


@dataclass(frozen=True)
class Sparkline:
    """A tiny plot of the values: the polyline, the latest limits near the values, the last point."""

    width: int
    height: int
    points: str
    """``x,y x,y …`` (empty for a single value)."""
    limits: tuple[str, ...]
    """The y of each limit line drawn, as text."""
    last_x: str
    last_y: str
    colour: str
    """Of the last point: its verdict."""


@dataclass(frozen=True)
class TrendRowView:
    number: int
    row_class: str
    """row-fail (regression), row-marginal (other flags), row-pass."""
    name: str
    test_id: str
    runs: int
    spark: Sparkline
    baseline: str
    value: str
    verdict: str
    change: str
    limits: str
    drift: str
    flags: str


@dataclass(frozen=True)
class TrendsView:
    message: str = ""
    """The whole section when there is nothing to tabulate (no database, no earlier run, an error)."""
    message_code: bool = False
    """The message names the report builder's ``db_url`` argument (shown as code)."""
    summary: str = ""
    counts: str = ""
    flagged: bool = False
    rows: tuple[TrendRowView, ...] = ()
    omitted: str = ""


def unavailable(message: str, *, code: bool = False) -> TrendsView:
    return TrendsView(message=message, message_code=code)


def _num(x: float | None, *, sign: bool = False) -> str:
    return fmt_number(x, sign=sign) if x is not None else ""


def _limits_text(p: TrendPoint) -> str:
    if p.low is None and p.high is None:
        return "—"
    return f"[{_num(p.low) or '−∞'}, {_num(p.high) or '+∞'}]"


def sparkline(points: Sequence[TrendPoint], *, width: int = 120, height: int = 26) -> Sparkline:
    """The values (last point coloured by its verdict) with the latest limits dashed when they fall in or
    near the range of the values."""
    values = [p.value for p in points]
    last = points[-1]
    lo, hi = min(values), max(values)
    limits = [x for x in (last.low, last.high) if x is not None]
    span = hi - lo
    near = [x for x in limits if lo - span <= x <= hi + span] if span > 0 else []
    lo, hi = min([lo, *near]), max([hi, *near])
    if hi == lo:
        lo, hi = lo - 1.0, hi + 1.0
    n = len(values)

    def py(v: float) -> float:
        return 3 + (height - 6) * (1 - (v - lo) / (hi - lo))

    def px(i: int) -> float:
        return 3 + (width - 6) * (i / (n - 1) if n > 1 else 0.5)

    line = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in enumerate(values)) if n > 1 else ""
    return Sparkline(
        width=width,
        height=height,
        points=line,
        limits=tuple(f"{py(x):.1f}" for x in near),
        last_x=f"{px(n - 1):.1f}",
        last_y=f"{py(values[-1]):.1f}",
        colour=VERDICT_COLOURS.get(last.verdict, _LINE_COLOUR),
    )


def trends_view(report: RunTrendReport, *, max_rows: int) -> TrendsView:
    level = f" at model level {report.model_level}" if report.model_level else ""
    if not report.earlier_runs:
        return unavailable(
            f"No earlier runs{level} in the results database: nothing to compare this run with, "
            "no trend and no regression check."
        )
    which = "the previous run" if report.baseline_is_default else "chosen for this report"
    regressions = report.regressions
    summary = (
        f"Compared with the {len(report.earlier_runs)} earlier run(s){level} in the results database "
        f"(newest: {report.earlier_runs[0]}, oldest: {report.earlier_runs[-1]}); baseline: run "
        f"{report.baseline_run} ({which}). Regression rule: verdict worse, or moved more than "
        f"{report.k:g}×u or {report.span_pct:g} % of the limit span towards a limit."
    )
    counts = (
        f"{len(report.items)} measurement(s) with earlier values: "
        + (f"{len(regressions)} regression(s) flagged" if regressions else "no regression")
        + (f"; {report.new} measurement(s) of this run have no earlier value" if report.new else "")
        + "."
    )

    def rank(i: int, t: MeasurementTrend) -> tuple[int, int]:
        c = t.drift.crossing
        soon = c is not None and c.runs_ahead <= 5
        return (0 if t.regression else 1 if t.flags else 2 if soon else 3, i)

    order = sorted(range(len(report.items)), key=lambda i: rank(i, report.items[i]))
    shown = order[:max_rows]
    rows = tuple(_row(n, report.items[i]) for n, i in enumerate(shown, 1))
    omitted = ""
    left_out = len(order) - len(shown)
    if left_out:
        missed = sum(1 for i in order[max_rows:] if report.items[i].regression)
        tail = f", {missed} of them with a regression" if missed else ", none of them flagged"
        omitted = (
            f"{left_out} more measurement(s) not listed (the first {max_rows} are shown, flagged ones first)"
            f"{tail}; see `bench trend MEASUREMENT`."
        )
    return TrendsView(summary=summary, counts=counts, flagged=bool(regressions), rows=rows, omitted=omitted)


def _row(number: int, t: MeasurementTrend) -> TrendRowView:
    now = t.current
    units = f" {now.units}" if now.units else ""
    slope = t.drift.slope_per_run
    drift_text = _num(slope, sign=True) if slope is not None else ""
    c = t.drift.crossing
    if c is not None:
        drift_text += (
            f" (beyond {c.limit} limit)" if c.runs_ahead == 0 else f" ({c.limit} limit in {c.runs_ahead:.1f} runs)"
        )
    return TrendRowView(
        number=number,
        row_class="row-fail" if t.regression else "row-marginal" if t.flags else "row-pass",
        name=t.name,
        test_id=t.test_id,
        runs=len(t.points),
        spark=sparkline(t.points),
        baseline=f"{_num(t.baseline.value)}{units}" if t.baseline is not None else "not in baseline",
        value=_num(now.value) + units,
        verdict=now.verdict,
        change=_num(now.value - t.baseline.value, sign=True) if t.baseline is not None else "",
        limits=_limits_text(now),
        drift=drift_text,
        flags="; ".join(("REGRESSION — " if f.regression else "") + f"{f.kind}: {f.message}" for f in t.flags),
    )
