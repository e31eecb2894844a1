"""Trends, the statistics: drift, limit-crossing projection and regressions, on plain points (no SQL here).

Drift — a least-squares line through the points, against the run's position in the window (slope per
run) and against its start time (slope per day). When the line heads for a limit, the projection says
after how many more runs (and, from the per-day slope, on which date) the fitted value would cross it.
A line that is already past a limit projects zero runs ahead.

Regression rule — each point after the baseline run is compared with the baseline's value ``v0``; for a
later value ``v``:

* **verdict** — the verdict got worse (pass → marginal or fail, marginal → fail): always a regression;
* **shift** — ``|v − v0|`` exceeds ``k × √(u0² + u²)`` (the combined standard uncertainty of the two
  values, from the journal's ``uncertainty``; default k = 3) *or* ``span_pct`` % of the limit span
  ``high − low`` (default 10 %; only when both limits exist). A shift that brings the value closer to
  its nearest limit (smaller margin), or any shift of a measurement without limits, is a regression; a
  shift away from the limits is reported as a note, not a regression.

The records (:class:`Trend`, :class:`RunTrendReport`, :class:`Comparison`) are what :mod:`reports.trends`
returns; the text tables of ``bench trend``/``bench compare`` are drawn by the CLI (bench/cli/tables.py), the
report's trend section by the template partial ``_trends.html.j2`` (through :mod:`reports.trend_view`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from reports.formatting import fmt_number

__all__ = [
    "DEFAULT_K",
    "DEFAULT_SPAN_PCT",
    "Comparison",
    "Crossing",
    "CurrentValue",
    "Drift",
    "Flag",
    "MeasurementDelta",
    "MeasurementTrend",
    "OutcomeChange",
    "RunTrendReport",
    "Trend",
    "TrendPoint",
    "drift",
    "fit",
    "flag_regressions",
    "margin",
    "order",
]

DEFAULT_K: Final = 3.0
DEFAULT_SPAN_PCT: Final = 10.0
_RANK: Final = {"pass": 0, "marginal": 1, "fail": 2}


@dataclass(frozen=True)
class TrendPoint:
    run_id: str
    time: datetime | None
    """Start of the run (UTC)."""
    value: float
    verdict: str
    low: float | None
    high: float | None
    units: str
    uncertainty: float | None
    model_level: str
    status: str
    """complete / incomplete: a killed run's values are shown, and marked."""


@dataclass(frozen=True)
class Crossing:
    limit: Literal["low", "high"]
    limit_value: float
    runs_ahead: float
    """How many runs after the last one the fitted line reaches the limit (0: already beyond it)."""
    at_run: int
    """The crossing as a run number counted from the first point of the window (1-based)."""
    date: datetime | None
    """When the per-day line reaches the limit, if the runs have times."""


@dataclass(frozen=True)
class Drift:
    slope_per_run: float | None
    slope_per_day: float | None
    crossing: Crossing | None


@dataclass(frozen=True)
class Flag:
    run_id: str
    kind: Literal["verdict", "shift"]
    regression: bool
    message: str


@dataclass(frozen=True)
class Trend:
    name: str
    units: str
    model_level: str | None
    points: tuple[TrendPoint, ...]
    baseline: TrendPoint | None
    drift: Drift
    flags: tuple[Flag, ...]
    k: float
    span_pct: float

    @property
    def regressions(self) -> tuple[Flag, ...]:
        return tuple(f for f in self.flags if f.regression)


@dataclass(frozen=True)
class CurrentValue:
    """One numeric measurement of the run being reported, as its journal has it."""

    test_id: str
    name: str
    value: float
    units: str
    low: float | None
    high: float | None
    verdict: str
    uncertainty: float | None = None


@dataclass(frozen=True)
class MeasurementTrend(Trend):
    """One measurement (test id + name) of this run with its values in earlier runs, this run last."""

    test_id: str

    @property
    def current(self) -> TrendPoint:
        return self.points[-1]

    @property
    def regression(self) -> bool:
        return bool(self.regressions)


@dataclass(frozen=True)
class RunTrendReport:
    run_id: str
    earlier_runs: tuple[str, ...]
    """The earlier runs compared with (newest first)."""
    baseline_run: str | None
    baseline_is_default: bool
    items: tuple[MeasurementTrend, ...]
    """Measurements with at least one earlier value, in the order of this run."""
    new: int
    """Numeric measurements of this run with no earlier value in the window."""
    model_level: str
    k: float
    span_pct: float

    @property
    def regressions(self) -> tuple[MeasurementTrend, ...]:
        return tuple(t for t in self.items if t.regression)


@dataclass(frozen=True)
class MeasurementDelta:
    name: str
    units: str
    a: float | str | None
    b: float | str | None
    verdict_a: str | None
    verdict_b: str | None
    delta: float | None
    delta_pct_span: float | None

    @property
    def verdict_changed(self) -> bool:
        return self.verdict_a != self.verdict_b


@dataclass(frozen=True)
class OutcomeChange:
    test_id: str
    a: str
    b: str


@dataclass(frozen=True)
class Comparison:
    run_a: str
    run_b: str
    verdict_a: str
    verdict_b: str
    measurements: tuple[MeasurementDelta, ...]
    tests_only_a: tuple[str, ...]
    tests_only_b: tuple[str, ...]
    outcome_changes: tuple[OutcomeChange, ...]

    @property
    def verdict_changes(self) -> tuple[MeasurementDelta, ...]:
        return tuple(d for d in self.measurements if d.verdict_changed)


def order(p: TrendPoint) -> tuple[datetime, str]:
    """Oldest first; runs without a time first; ties by run id."""
    return (p.time or datetime.min.replace(tzinfo=UTC), p.run_id)


def fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float] | None:
    """Least-squares (intercept, slope), or None when x does not vary."""
    n = len(xs)
    if n < 2:
        return None
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return my - slope * mx, slope


def drift(points: Sequence[TrendPoint]) -> Drift:
    """Slopes per run and per day, and where the per-run line would cross the latest limits."""
    ys = [p.value for p in points]
    per_run = fit([float(i) for i in range(len(points))], ys)
    timed = [p for p in points if p.time is not None]
    t0 = timed[0].time if timed else None
    per_day = None
    if t0 is not None and len(timed) >= 2:
        days = [((p.time or t0) - t0).total_seconds() / 86400 for p in timed]
        per_day = fit(days, [p.value for p in timed])
    if per_run is None:
        return Drift(None, per_day[1] if per_day else None, None)
    intercept, slope = per_run
    last = points[-1]
    fitted = intercept + slope * (len(points) - 1)
    crossing = None
    target: tuple[Literal["low", "high"], float] | None = None
    if slope > 0 and last.high is not None:
        target = ("high", last.high)
    elif slope < 0 and last.low is not None:
        target = ("low", last.low)
    if target is not None:
        side, limit = target
        ahead = max(0.0, (limit - fitted) / slope)
        when = None
        if per_day is not None and per_day[1] != 0 and t0 is not None:
            day_ahead = (limit - (per_day[0] + per_day[1] * _days(t0, last.time))) / per_day[1]
            if math.isfinite(day_ahead) and day_ahead < 365 * 100:  # farther than a century is "never"
                when = (last.time or t0) + timedelta(days=max(0.0, day_ahead))
        crossing = Crossing(side, limit, ahead, len(points) + math.ceil(round(ahead, 9)), when)  # round: float dust
    return Drift(slope, per_day[1] if per_day else None, crossing)


def _days(t0: datetime, t: datetime | None) -> float:
    return ((t or t0) - t0).total_seconds() / 86400


def margin(value: float, low: float | None, high: float | None) -> float | None:
    """Distance to the nearest limit (negative: outside), None without limits."""
    sides = [value - low] if low is not None else []
    if high is not None:
        sides.append(high - value)
    return min(sides) if sides else None


def flag_regressions(
    baseline: TrendPoint,
    later: Iterable[TrendPoint],
    *,
    k: float = DEFAULT_K,
    span_pct: float = DEFAULT_SPAN_PCT,
) -> tuple[Flag, ...]:
    """The regression rule of the module docstring, applied to each point of ``later``."""
    flags: list[Flag] = []
    for p in later:
        if _RANK.get(p.verdict, 0) > _RANK.get(baseline.verdict, 0):
            flags.append(
                Flag(p.run_id, "verdict", True, f"{baseline.verdict} at baseline {baseline.run_id}, {p.verdict} now")
            )
        delta = p.value - baseline.value
        reasons: list[str] = []
        us = [u for u in (baseline.uncertainty, p.uncertainty) if u is not None]
        if us:
            limit_u = k * math.sqrt(sum(u * u for u in us))
            if abs(delta) > limit_u:
                reasons.append(f"> {k:g}×u ({fmt_number(limit_u)})")
        if p.low is not None and p.high is not None and p.high > p.low:
            limit_s = span_pct / 100 * (p.high - p.low)
            if abs(delta) > limit_s:
                reasons.append(f"> {span_pct:g} % of span ({fmt_number(limit_s)})")
        if not reasons:
            continue
        m0, m1 = margin(baseline.value, p.low, p.high), margin(p.value, p.low, p.high)
        toward = m0 is None or m1 is None or m1 < m0
        direction = "towards the limit" if toward else "away from the limits"
        units = f" {p.units}" if p.units else ""
        text = f"moved {fmt_number(delta, sign=True)}{units} from baseline {baseline.run_id}, {direction}: "
        flags.append(Flag(p.run_id, "shift", toward, text + ", ".join(reasons)))
    return tuple(flags)
