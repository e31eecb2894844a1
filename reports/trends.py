"""Trends across runs: one measurement over many runs, its drift, and regressions against a baseline run.

Everything here reads the results database (:mod:`reports.db`) and returns immutable records; rendering
(plain-text tables for the CLI, an HTML fragment with an inline SVG plot for the report) is separate.

:func:`trend` — one point per run that has the measurement (the run's last numeric value of that name, so
a test re-run inside a run counts once), oldest first, each with the limits in force *in that run*.

Drift — a least-squares line through the points, against the run's position in the window (slope per
run) and against its start time (slope per day). When the line heads for a limit, the projection says
after how many more runs (and, from the per-day slope, on which date) the fitted value would cross it.
A line that is already past a limit projects zero runs ahead.

Regression rule — each point after the baseline run (default: the first point of the window) is compared
with the baseline's value ``v0``; for a later value ``v``:

* **verdict** — the verdict got worse (pass → marginal or fail, marginal → fail): always a regression;
* **shift** — ``|v − v0|`` exceeds ``k × √(u0² + u²)`` (the combined standard uncertainty of the two
  values, from the journal's ``uncertainty``; default k = 3) *or* ``span_pct`` % of the limit span
  ``high − low`` (default 10 %; only when both limits exist). A shift that brings the value closer to
  its nearest limit (smaller margin), or any shift of a measurement without limits, is a regression; a
  shift away from the limits is reported as a note, not a regression.

:func:`run_trends` — the trends of every measurement of one run, as they stood at that run: the input
of :func:`trend_section_html`, an HTML fragment with one full plot per measurement.

:func:`report_trends` / :func:`report_trend_section` — the "Trends" section of report.html: every numeric
measurement of the run being reported (taken from its journal, so the run need not be imported yet) against
the same test id + measurement name in the last earlier runs at the same model level (two queries whatever
the number of measurements), regressions flagged against the previous run (or a chosen baseline), drift,
one sparkline per row, regressions listed first and the rows capped.

:func:`compare` — two runs side by side: every measurement with its two values, the difference and that
difference as a % of the limit span, verdict changes; tests found in only one run; test outcome changes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Final, Literal

from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from reports.db import measurements, runs, tests
from reports.formatting import fmt_number
from reports.svgplot import nice_ticks

__all__ = [
    "DEFAULT_K",
    "DEFAULT_SPAN_PCT",
    "REPORT_LAST",
    "REPORT_MAX_ROWS",
    "Comparison",
    "Crossing",
    "CurrentValue",
    "Drift",
    "Flag",
    "MeasurementDelta",
    "MeasurementTrend",
    "OutcomeChange",
    "ResultsError",
    "RunTrendReport",
    "Trend",
    "TrendPoint",
    "compare",
    "comparison_table",
    "drift",
    "flag_regressions",
    "format_table",
    "report_trend_section",
    "report_trends",
    "run_trends",
    "sparkline",
    "trend",
    "trend_section_html",
    "trend_svg",
    "trend_table",
]

DEFAULT_K: Final = 3.0
DEFAULT_SPAN_PCT: Final = 10.0
_RANK: Final = {"pass": 0, "marginal": 1, "fail": 2}


class ResultsError(LookupError):
    """A query names something the database does not hold (run, measurement, baseline)."""


# --------------------------------------------------------------------------------------------------------
# Records


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


# --------------------------------------------------------------------------------------------------------
# Queries


def trend(
    db: Engine | Connection,
    measurement_name: str,
    *,
    model_level: str | None = None,
    last: int | None = None,
    baseline: str | None = None,
    until: str | None = None,
    k: float = DEFAULT_K,
    span_pct: float = DEFAULT_SPAN_PCT,
) -> Trend:
    """``measurement_name`` across runs (oldest first), the last ``last`` runs only if given.

    ``baseline`` is a run id; it may lie outside the window. ``until`` is a run id: runs that started
    after it are left out (a report rebuilt later shows the trend as it stood at its run). Raises
    :class:`ResultsError` when no run has a numeric value of the measurement, or the baseline run does not.
    """
    points = _points(db, measurement_name, model_level)
    if until is not None:
        with _connect(db) as conn:
            _, _, started = _run(conn, until)
        end = (_utc(started) or datetime.min.replace(tzinfo=UTC), until)
        points = [p for p in points if _order(p) <= end]
    if not points:
        where = f" at model level {model_level}" if model_level else ""
        raise ResultsError(f"no numeric values of measurement {measurement_name!r}{where} in the database")
    base: TrendPoint | None
    if baseline is not None:
        base = next((p for p in points if p.run_id == baseline), None)
        if base is None:
            raise ResultsError(f"baseline run {baseline!r} has no value of {measurement_name!r}")
        after = [p for p in points if _order(p) > _order(base)]
    else:
        base = None
    window = points[-last:] if last else points
    if base is None:
        base = window[0]
        after = list(window[1:])
    shown = [p for p in after if p in window]
    return Trend(
        name=measurement_name,
        units=window[-1].units,
        model_level=model_level,
        points=tuple(window),
        baseline=base,
        drift=drift(window),
        flags=flag_regressions(base, shown, k=k, span_pct=span_pct),
        k=k,
        span_pct=span_pct,
    )


def run_trends(
    db: Engine | Connection,
    run_id: str,
    *,
    last: int | None = 20,
    baseline: str | None = None,
    k: float = DEFAULT_K,
    span_pct: float = DEFAULT_SPAN_PCT,
) -> list[Trend]:
    """The trend of every numeric measurement of ``run_id``, at its model level, up to that run — the
    input of :func:`trend_section_html` for the run's report. A baseline without a value of some
    measurement falls back to the window's first run for that measurement."""
    m = measurements.c
    with _connect(db) as conn:
        pk, _, _ = _run(conn, run_id)
        level = conn.execute(select(runs.c.model_level).where(runs.c.id == pk)).scalar_one()
        names = (
            conn.execute(
                select(m.name).where(m.run_pk == pk, m.value.is_not(None)).group_by(m.name).order_by(func.min(m.seq))
            )
            .scalars()
            .all()
        )
        out = []
        for name in names:
            try:
                out.append(trend(conn, name, model_level=level or None, last=last, baseline=baseline, until=run_id,
                                 k=k, span_pct=span_pct))  # fmt: skip
            except ResultsError:
                out.append(trend(conn, name, model_level=level or None, last=last, until=run_id, k=k,
                                 span_pct=span_pct))  # fmt: skip
    return out


def _order(p: TrendPoint) -> tuple[datetime, str]:
    return (p.time or datetime.min.replace(tzinfo=UTC), p.run_id)


def _points(db: Engine | Connection, name: str, model_level: str | None) -> list[TrendPoint]:
    m = measurements.c
    r = runs.c
    query = (
        select(
            r.id,
            r.run_id,
            r.started_at,
            r.model_level,
            r.status,
            m.value,
            m.verdict,
            m.low,
            m.high,
            m.units,
            m.uncertainty,
            m.seq,
        )
        .join_from(measurements, runs, m.run_pk == r.id)
        .where(m.name == name, m.value.is_not(None))
    )
    if model_level:
        query = query.where(r.model_level == model_level)
    with _connect(db) as conn:
        rows = conn.execute(query).all()
    last_per_run: dict[int, tuple[int, TrendPoint]] = {}
    for row in rows:
        held = last_per_run.get(row.id)
        if held is not None and held[0] > row.seq:
            continue
        last_per_run[row.id] = (
            row.seq,
            TrendPoint(
                run_id=row.run_id,
                time=_utc(row.started_at),
                value=float(row.value),
                verdict=row.verdict,
                low=row.low,
                high=row.high,
                units=row.units,
                uncertainty=row.uncertainty,
                model_level=row.model_level,
                status=row.status,
            ),
        )
    return sorted((p for _, p in last_per_run.values()), key=_order)


class _connect:
    """``with _connect(engine_or_connection) as conn``: borrow a connection, or use the caller's."""

    def __init__(self, db: Engine | Connection) -> None:
        self.db = db
        self.own: Connection | None = None

    def __enter__(self) -> Connection:
        if isinstance(self.db, Engine):
            self.own = self.db.connect()
            return self.own
        return self.db

    def __exit__(self, *exc: object) -> None:
        if self.own is not None:
            self.own.close()


def _utc(t: datetime | None) -> datetime | None:
    # stored naive UTC (reports.db)
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


# --------------------------------------------------------------------------------------------------------
# Drift and regressions


def _fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float] | None:
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
    per_run = _fit([float(i) for i in range(len(points))], ys)
    timed = [p for p in points if p.time is not None]
    t0 = timed[0].time if timed else None
    per_day = None
    if t0 is not None and len(timed) >= 2:
        days = [((p.time or t0) - t0).total_seconds() / 86400 for p in timed]
        per_day = _fit(days, [p.value for p in timed])
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


def _margin(value: float, low: float | None, high: float | None) -> float | None:
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
        m0, m1 = _margin(baseline.value, p.low, p.high), _margin(p.value, p.low, p.high)
        toward = m0 is None or m1 is None or m1 < m0
        direction = "towards the limit" if toward else "away from the limits"
        units = f" {p.units}" if p.units else ""
        text = f"moved {fmt_number(delta, sign=True)}{units} from baseline {baseline.run_id}, {direction}: "
        flags.append(Flag(p.run_id, "shift", toward, text + ", ".join(reasons)))
    return tuple(flags)


# --------------------------------------------------------------------------------------------------------
# Comparing two runs


def compare(db: Engine | Connection, run_a: str, run_b: str) -> Comparison:
    """Run ``run_b`` against ``run_a``: measurement deltas, verdict and outcome changes, tests in one only."""
    with _connect(db) as conn:
        pk_a, verdict_a, _ = _run(conn, run_a)
        pk_b, verdict_b, _ = _run(conn, run_b)
        meas_a, meas_b = _run_measurements(conn, pk_a), _run_measurements(conn, pk_b)
        tests_a, tests_b = _run_tests(conn, pk_a), _run_tests(conn, pk_b)
    deltas: list[MeasurementDelta] = []
    for name in sorted(meas_a.keys() | meas_b.keys()):
        a, b = meas_a.get(name), meas_b.get(name)
        va, vb = (a.value if a else None), (b.value if b else None)
        delta = pct = None
        if isinstance(va, float) and isinstance(vb, float):
            delta = vb - va
            ref = b or a
            if ref is not None and ref.low is not None and ref.high is not None and ref.high > ref.low:
                pct = 100 * delta / (ref.high - ref.low)
        units = b.units if b else a.units if a else ""
        deltas.append(
            MeasurementDelta(name, units, va, vb, a.verdict if a else None, b.verdict if b else None, delta, pct)
        )
    changes = tuple(
        OutcomeChange(t, tests_a[t], tests_b[t])
        for t in sorted(tests_a.keys() & tests_b.keys())
        if tests_a[t] != tests_b[t]
    )
    return Comparison(
        run_a=run_a,
        run_b=run_b,
        verdict_a=verdict_a,
        verdict_b=verdict_b,
        measurements=tuple(deltas),
        tests_only_a=tuple(sorted(tests_a.keys() - tests_b.keys())),
        tests_only_b=tuple(sorted(tests_b.keys() - tests_a.keys())),
        outcome_changes=changes,
    )


def _run(conn: Connection, run_id: str) -> tuple[int, str, datetime | None]:
    row = conn.execute(select(runs.c.id, runs.c.verdict, runs.c.started_at).where(runs.c.run_id == run_id)).first()
    if row is None:
        raise ResultsError(f"no run {run_id!r} in the database")
    return int(row.id), str(row.verdict), row.started_at


@dataclass(frozen=True)
class _Value:
    value: float | str | None
    units: str
    low: float | None
    high: float | None
    verdict: str


def _run_measurements(conn: Connection, run_pk: int) -> dict[str, _Value]:
    # keyed by name: the last value of a name in the run wins, as in trend()
    m = measurements.c
    rows = conn.execute(
        select(m.name, m.value, m.value_text, m.units, m.low, m.high, m.verdict)
        .where(m.run_pk == run_pk)
        .order_by(m.seq)
    ).all()
    return {
        row.name: _Value(
            float(row.value) if row.value is not None else row.value_text, row.units, row.low, row.high, row.verdict
        )
        for row in rows
    }


def _run_tests(conn: Connection, run_pk: int) -> dict[str, str]:
    t = tests.c
    rows = conn.execute(select(t.test_id, t.outcome).where(t.run_pk == run_pk).order_by(t.seq)).all()
    return {row.test_id: row.outcome for row in rows}


# --------------------------------------------------------------------------------------------------------
# Text rendering (the CLI puts these rows into rich tables; format_table makes plain text)


def _num(x: float | None, *, sign: bool = False) -> str:
    return fmt_number(x, sign=sign) if x is not None else ""


def trend_table(t: Trend) -> tuple[list[str], list[list[str]]]:
    """Headers and rows: one row per point; flags in the last column ("!" marks a regression)."""
    by_run: dict[str, list[str]] = {}
    for f in t.flags:
        by_run.setdefault(f.run_id, []).append(("! " if f.regression else "") + f"{f.kind}: {f.message}")
    headers = ["#", "run", "start (UTC)", "value", "low", "high", "verdict", "flags"]
    rows = []
    for i, p in enumerate(t.points, 1):
        run = p.run_id + (" (baseline)" if t.baseline is not None and p.run_id == t.baseline.run_id else "")
        if p.status != "complete":
            run += " (incomplete)"
        when = p.time.strftime("%Y-%m-%d %H:%M") if p.time else ""
        rows.append(
            [
                str(i),
                run,
                when,
                _num(p.value),
                _num(p.low),
                _num(p.high),
                p.verdict,
                "; ".join(by_run.get(p.run_id, [])),
            ]
        )
    return headers, rows


def drift_lines(t: Trend) -> list[str]:
    """The drift and the regression summary as sentences."""
    units = f" {t.units}" if t.units else ""
    d = t.drift
    lines = []
    if d.slope_per_run is None:
        lines.append("drift: not enough runs to fit a line")
    else:
        text = f"drift: {_num(d.slope_per_run, sign=True)}{units} per run"
        if d.slope_per_day is not None:
            text += f", {_num(d.slope_per_day, sign=True)}{units} per day"
        lines.append(text)
    if d.crossing is not None:
        c = d.crossing
        when = f" (about {c.date:%Y-%m-%d})" if c.date else ""
        if c.runs_ahead == 0:
            lines.append(f"the fitted line is already beyond the {c.limit} limit {_num(c.limit_value)}{units}")
        else:
            lines.append(
                f"projected to cross the {c.limit} limit {_num(c.limit_value)}{units} in {c.runs_ahead:.1f} runs, "
                f"at run #{c.at_run}{when}"
            )
    base = t.baseline.run_id if t.baseline else "none"
    n = len({f.run_id for f in t.regressions})
    lines.append(
        f"baseline {base}; rule: verdict worse, or moved > {t.k:g}×u or > {t.span_pct:g} % of span towards a limit: "
        + (f"regression flagged in {n} run(s)" if n else "no regression")
    )
    return lines


def comparison_table(c: Comparison, *, changed_only: bool = False) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the measurement comparison; ``changed_only`` keeps verdict changes and one-sided rows."""
    headers = ["measurement", "units", c.run_a, c.run_b, "delta", "% span", "verdict"]
    rows = []
    for d in c.measurements:
        if changed_only and not d.verdict_changed:
            continue
        va = _num(d.a) if isinstance(d.a, float) else (d.a or "")
        vb = _num(d.b) if isinstance(d.b, float) else (d.b or "")
        verdict = d.verdict_a or "—" if not d.verdict_changed else f"{d.verdict_a or '—'} → {d.verdict_b or '—'}"
        pct = f"{d.delta_pct_span:+.1f} %" if d.delta_pct_span is not None else ""
        rows.append([d.name, d.units, va, vb, _num(d.delta, sign=True), pct, verdict])
    return headers, rows


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain-text table with aligned columns (for logs and e-mails, where rich is not available)."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------
# HTML


_COLOURS: Final = {"pass": "#2e7d32", "marginal": "#ef8f00", "fail": "#c62828"}


def trend_svg(t: Trend, *, width: int = 640, height: int = 260) -> str:
    """An inline SVG: values by run (coloured by verdict), limits as dashed red lines, the baseline ringed."""
    left, right, top, bottom = 68, 16, 30, 40
    pw, ph = width - left - right, height - top - bottom
    title = f"{t.name}" + (f" ({t.units})" if t.units else "")
    values = [p.value for p in t.points]
    limits = [x for p in t.points for x in (p.low, p.high) if x is not None]
    lo, hi = min(values + limits), max(values + limits)
    pad = 0.08 * (hi - lo)  # keeps limit lines off the frame and the "!" marks inside it
    ticks = nice_ticks(lo - pad, hi + pad)
    y0, y1 = ticks[0], ticks[-1]
    n = len(t.points)

    slot = pw / n  # each run owns one slot; its point sits in the middle

    def px(i: int) -> float:
        return left + slot * (i + 0.5)

    def py(v: float) -> float:
        return top + ph * (1 - (v - y0) / (y1 - y0))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot trend" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" font-family="sans-serif" '
        f'font-size="11"><title>{escape(title)}</title>',
        f'<text x="{left + pw / 2:.1f}" y="18" text-anchor="middle" font-size="13" font-weight="bold">'
        f"{escape(title)}</text>",
    ]
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    for tick in ticks:
        y = py(tick)
        label = escape(fmt_number(tick, 3 if step < 1 else 4))
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    every = max(1, math.ceil(n / 12))
    for i in range(0, n, every):
        parts.append(f'<text x="{px(i):.1f}" y="{top + ph + 16}" text-anchor="middle">{i + 1}</text>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" text-anchor="middle">run</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    # limits as in each run: a step line, so a limits-file change is visible where it happened
    for side in ("low", "high"):
        seg: list[str] = []
        for i, p in enumerate(t.points):
            v = p.low if side == "low" else p.high
            if v is None:
                if seg:
                    parts.append(_limit_line(seg))
                seg = []
                continue
            x0, x1 = px(i) - slot / 2, px(i) + slot / 2
            seg += [f"{x0:.1f},{py(v):.1f}", f"{x1:.1f},{py(v):.1f}"]
        if seg:
            parts.append(_limit_line(seg))
    line = " ".join(f"{px(i):.1f},{py(p.value):.1f}" for i, p in enumerate(t.points))
    if n > 1:
        parts.append(f'<polyline fill="none" stroke="#1f5fa8" stroke-width="1.3" points="{line}"/>')
    regressed = {f.run_id for f in t.regressions}
    for i, p in enumerate(t.points):
        colour = _COLOURS.get(p.verdict, "#1f5fa8")
        tip = escape(f"{p.run_id}: {fmt_number(p.value)} {p.units} ({p.verdict})")
        cx, cy = f"{px(i):.1f}", f"{py(p.value):.1f}"
        parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{colour}"><title>{tip}</title></circle>')
        if t.baseline is not None and p.run_id == t.baseline.run_id:
            parts.append(f'<circle cx="{px(i):.1f}" cy="{py(p.value):.1f}" r="6" fill="none" stroke="#444"/>')
        if p.run_id in regressed:
            parts.append(
                f'<text x="{px(i):.1f}" y="{py(p.value) - 7:.1f}" text-anchor="middle" fill="#c62828" '
                'font-weight="bold">!</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _limit_line(points: list[str]) -> str:
    return f'<polyline fill="none" stroke="#c62828" stroke-dasharray="5 3" points="{" ".join(points)}"/>'


def trend_section_html(trends: Sequence[Trend], *, title: str = "Trends") -> Markup:
    """A ``<section>`` for report.html: per measurement a plot, the drift sentences and the flags."""
    parts = [f'<section class="trends"><h2>{escape(title)}</h2>']
    if not trends:
        parts.append("<p>No earlier runs in the results database.</p>")
    for t in trends:
        parts.append(f'<div class="trend"><h3>{escape(t.name)}</h3>{trend_svg(t)}<ul>')
        parts.extend(f"<li>{escape(line)}</li>" for line in drift_lines(t))
        parts.append("</ul>")
        if t.flags:
            parts.append('<table class="flags"><tr><th>run</th><th>flag</th><th>regression</th><th>detail</th></tr>')
            for f in t.flags:
                parts.append(
                    f"<tr><td>{escape(f.run_id)}</td><td>{f.kind}</td><td>{'yes' if f.regression else 'no'}</td>"
                    f"<td>{escape(f.message)}</td></tr>"
                )
            parts.append("</table>")
        parts.append("</div>")
    parts.append("</section>")
    return Markup("".join(parts))


# --------------------------------------------------------------------------------------------------------
# The "Trends" section of report.html: this run (from its journal) against earlier runs (from the database)

REPORT_LAST: Final = 10
"""Earlier runs the report's trend section looks back over (the `bench trend` CLI can go further)."""
REPORT_MAX_ROWS: Final = 200
"""Measurements listed in the report's trend section; the rest are counted (regressions are listed first)."""


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


def report_trends(
    db: Engine | Connection,
    run_id: str,
    started: datetime | None,
    current: Iterable[CurrentValue],
    *,
    model_level: str = "",
    last: int = REPORT_LAST,
    baseline: str | None = None,
    k: float = DEFAULT_K,
    span_pct: float = DEFAULT_SPAN_PCT,
) -> RunTrendReport:
    """This run's measurements (``current``, from its journal: the run need not be in the database yet)
    against the ``last`` runs that started before it at the same model level. Measurements are matched by
    test id and name (the last value of a pair in a run counts). The baseline is ``baseline`` (a run id;
    :class:`ResultsError` if the database does not hold it), else the previous run.

    Two queries whatever the number of measurements: the earlier runs, then their numeric values."""
    r, m = runs.c, measurements.c
    ours: dict[tuple[str, str], CurrentValue] = {}
    for c in current:
        ours[(c.test_id, c.name)] = c  # the last value of a pair in the run wins
    start = _utc(started)
    with _connect(db) as conn:
        query = select(r.id, r.run_id, r.started_at, r.model_level, r.status).where(r.run_id != run_id)
        if model_level:
            query = query.where(r.model_level == model_level)
        if start is not None:
            query = query.where(r.started_at < start.replace(tzinfo=None))
        earlier = conn.execute(query.order_by(r.started_at.desc(), r.id.desc()).limit(max(1, last))).all()
        run_rows = {int(row.id): row for row in earlier}
        base_pk: int | None = int(earlier[0].id) if earlier else None
        if baseline is not None:
            chosen = conn.execute(
                select(r.id, r.run_id, r.started_at, r.model_level, r.status).where(r.run_id == baseline)
            ).first()
            if chosen is None:
                raise ResultsError(f"baseline run {baseline!r} is not in the database")
            base_pk = int(chosen.id)
            run_rows.setdefault(base_pk, chosen)
        values: dict[tuple[str, str], dict[int, tuple[int, TrendPoint]]] = {}
        if run_rows:
            rows = conn.execute(
                select(
                    m.run_pk, m.seq, m.test_id, m.name, m.value, m.verdict, m.low, m.high, m.units, m.uncertainty
                ).where(m.run_pk.in_(list(run_rows)), m.value.is_not(None))
            ).all()
            info = {pk: (str(run.run_id), _utc(run.started_at), str(run.model_level), str(run.status))
                    for pk, run in run_rows.items()}  # fmt: skip
            for run_pk, seq, test_id, name, value, verdict, low, high, units, u in rows:  # positional: fast
                key = (test_id, name)
                if key not in ours:
                    continue
                per_run = values.setdefault(key, {})
                held = per_run.get(run_pk)
                if held is not None and held[0] > seq:
                    continue
                rid, when, level, status = info[run_pk]
                point = TrendPoint(rid, when, float(value), verdict, low, high, units, u, level, status)
                per_run[run_pk] = (seq, point)
    window = {int(row.id) for row in earlier}
    items: list[MeasurementTrend] = []
    new = 0
    for key, c in ours.items():
        per_run = values.get(key, {})
        past = sorted((p for pk, (_, p) in per_run.items() if pk in window), key=_order)
        if not past:
            new += 1
            continue
        now = TrendPoint(run_id, start, c.value, c.verdict, c.low, c.high, c.units, c.uncertainty, model_level,
                         "complete")  # fmt: skip
        points = (*past, now)
        held = per_run.get(base_pk) if base_pk is not None else None
        base = held[1] if held is not None else None
        flags = flag_regressions(base, [now], k=k, span_pct=span_pct) if base is not None else ()
        items.append(
            MeasurementTrend(
                name=c.name, units=c.units, model_level=model_level, points=points, baseline=base,
                drift=drift(points), flags=flags, k=k, span_pct=span_pct, test_id=c.test_id,
            )
        )  # fmt: skip
    base_run = str(run_rows[base_pk].run_id) if base_pk is not None else None
    return RunTrendReport(
        run_id=run_id,
        earlier_runs=tuple(str(row.run_id) for row in earlier),
        baseline_run=base_run,
        baseline_is_default=baseline is None,
        items=tuple(items),
        new=new,
        model_level=model_level,
        k=k,
        span_pct=span_pct,
    )


def sparkline(points: Sequence[TrendPoint], *, width: int = 120, height: int = 26) -> str:
    """A tiny inline SVG of the values (last point coloured by its verdict) with the latest limits dashed
    when they fall in or near the range of the values."""
    values = [p.value for p in points]
    last = points[-1]
    lo, hi = min(values), max(values)
    limits = [x for x in (last.low, last.high) if x is not None]
    span = hi - lo
    near = [x for x in limits if lo - span <= x <= hi + span] if span > 0 else []
    lo, hi = min([lo, *near]), max([hi, *near])
    if hi == lo:
        lo, hi = lo - 1.0, hi + 1.0

    def py(v: float) -> float:
        return 3 + (height - 6) * (1 - (v - lo) / (hi - lo))

    n = len(values)

    def px(i: int) -> float:
        return 3 + (width - 6) * (i / (n - 1) if n > 1 else 0.5)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="spark" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="trend">'
    ]
    for x in near:
        parts.append(
            f'<line x1="0" y1="{py(x):.1f}" x2="{width}" y2="{py(x):.1f}" stroke="#c62828" stroke-dasharray="3 2"/>'
        )
    if n > 1:
        pts = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline fill="none" stroke="#1f5fa8" stroke-width="1.2" points="{pts}"/>')
    colour = _COLOURS.get(last.verdict, "#1f5fa8")
    parts.append(f'<circle cx="{px(n - 1):.1f}" cy="{py(values[-1]):.1f}" r="2.5" fill="{colour}"/></svg>')
    return "".join(parts)


def _limits_text(p: TrendPoint) -> str:
    if p.low is None and p.high is None:
        return "—"
    return f"[{_num(p.low) or '−∞'}, {_num(p.high) or '+∞'}]"


def report_trend_section(report: RunTrendReport, *, max_rows: int = REPORT_MAX_ROWS) -> Markup:
    """The body of report.html's "Trends" section (every text escaped here): a summary, then one row per
    measurement — regressions first, then other flags, then those projected to cross a limit within five
    runs, then the rest in run order — capped at ``max_rows`` with the number left out said."""
    level = f" at model level {report.model_level}" if report.model_level else ""
    if not report.earlier_runs:
        return Markup(
            f"<p>No earlier runs{escape(level)} in the results database: nothing to compare this run with, "
            "no trend and no regression check.</p>"
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
    parts = [
        f"<p>{escape(summary)}</p>",
        f'<p class="{"bad-note" if regressions else "ok"}" id="trends-counts">{escape(counts)}</p>',
    ]
    if not report.items:
        return Markup("".join(parts))

    def rank(i: int, t: MeasurementTrend) -> tuple[int, int]:
        c = t.drift.crossing
        soon = c is not None and c.runs_ahead <= 5
        return (0 if t.regression else 1 if t.flags else 2 if soon else 3, i)

    order = sorted(range(len(report.items)), key=lambda i: rank(i, report.items[i]))
    shown = order[:max_rows]
    parts.append(
        '<table class="trends"><thead><tr><th>#</th><th>Measurement</th><th>Test</th><th>Runs</th>'
        "<th>Trend</th><th>Baseline</th><th>This run</th><th>Change</th><th>Limits</th><th>Drift / run</th>"
        "<th>Flags</th></tr></thead><tbody>"
    )
    for n, i in enumerate(shown, 1):
        t = report.items[i]
        now = t.current
        units = f" {now.units}" if now.units else ""
        base = f"{_num(t.baseline.value)}{units}" if t.baseline is not None else "not in baseline"
        change = _num(now.value - t.baseline.value, sign=True) if t.baseline is not None else ""
        slope = t.drift.slope_per_run
        drift_text = _num(slope, sign=True) if slope is not None else ""
        c = t.drift.crossing
        if c is not None:
            drift_text += (
                f" (beyond {c.limit} limit)" if c.runs_ahead == 0 else f" ({c.limit} limit in {c.runs_ahead:.1f} runs)"
            )
        flags = "; ".join(("REGRESSION — " if f.regression else "") + f"{f.kind}: {f.message}" for f in t.flags)
        row_class = "row-fail" if t.regression else "row-marginal" if t.flags else "row-pass"
        parts.append(
            f'<tr class="trend {row_class}"><td class="num">{n}</td><td>{escape(t.name)}</td>'
            f'<td class="mono">{escape(t.test_id)}</td><td class="num">{len(t.points)}</td>'
            f'<td>{sparkline(t.points)}</td><td class="num">{escape(base)}</td>'
            f'<td class="num">{escape(_num(now.value) + units)} <span class="v v-{escape(now.verdict)}">'
            f'{escape(now.verdict)}</span></td><td class="num">{escape(change)}</td>'
            f'<td class="num">{escape(_limits_text(now))}</td><td class="num">{escape(drift_text)}</td>'
            f"<td>{escape(flags)}</td></tr>"
        )
    parts.append("</tbody></table>")
    left_out = len(order) - len(shown)
    if left_out:
        missed = sum(1 for i in order[max_rows:] if report.items[i].regression)
        tail = f", {missed} of them with a regression" if missed else ", none of them flagged"
        parts.append(
            f'<p class="muted" id="trends-omitted">{left_out} more measurement(s) not listed (the first '
            f"{max_rows} are shown, flagged ones first){escape(tail)}; see `bench trend MEASUREMENT`.</p>"
        )
    return Markup("".join(parts))
