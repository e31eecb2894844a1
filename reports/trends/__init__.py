"""Trends across runs: one measurement over many runs, its drift, regressions against a baseline, comparisons.

Two halves: :mod:`reports.trends.query` reads the results database (:mod:`reports.db`) into plain rows, and
:mod:`reports.trends.analysis` turns points into drift, limit-crossing projections and regression flags
(the rule is in its docstring). This module joins them:

:func:`trend` — one point per run that has the measurement (the run's last numeric value of that name, so
a test re-run inside a run counts once), oldest first, each with the limits in force *in that run*; the
baseline (default: the first point of the window) and the flags of every later point.

:func:`report_trends` — the input of the "Trends" section of report.html: every numeric measurement of the
run being reported (taken from its run record, so the run need not be imported yet) against the same test
id + measurement name in the last earlier runs at the same model level (two queries whatever the number of
measurements), regressions flagged against the previous run (or a chosen baseline), and drift.
:mod:`reports.trend_view` formats it for the template partial ``_trends.html.j2``.

:func:`compare` — two runs side by side: every measurement with its two values, the difference and that
difference as a % of the limit span, verdict changes; tests found in only one run; test outcome changes.

Rendering lives elsewhere: the text tables of ``bench trend`` / ``bench compare`` in bench/cli/tables.py,
the report's section in the template partial.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final

from sqlalchemy.engine import Connection, Engine

from reports.trends.analysis import (
    DEFAULT_K,
    DEFAULT_SPAN_PCT,
    Comparison,
    Crossing,
    CurrentValue,
    Drift,
    Flag,
    MeasurementDelta,
    MeasurementTrend,
    OutcomeChange,
    RunTrendReport,
    Trend,
    TrendPoint,
    drift,
    flag_regressions,
    order,
)
from reports.trends.query import (
    ResultsError,
    RunRow,
    ValueRow,
    connect,
    earlier_runs,
    measurement_values,
    run_by_id,
    run_measurements,
    run_tests,
    utc,
    values_in_runs,
)

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
    "drift",
    "flag_regressions",
    "report_trends",
    "trend",
]

REPORT_LAST: Final = 10
"""Earlier runs the report's trend section looks back over (the `bench trend` CLI can go further)."""
REPORT_MAX_ROWS: Final = 200
"""Measurements listed in the report's trend section; the rest are counted (regressions are listed first)."""


def _point(row: ValueRow) -> TrendPoint:
    run = row.run
    return TrendPoint(run.run_id, utc(run.started_at), row.value, row.verdict, row.low, row.high, row.units,
                      row.uncertainty, run.model_level, run.status)  # fmt: skip


def trend(
    db: Engine | Connection,
    measurement_name: str,
    *,
    model_level: str | None = None,
    last: int | None = None,
    baseline: str | None = None,
    k: float = DEFAULT_K,
    span_pct: float = DEFAULT_SPAN_PCT,
) -> Trend:
    """``measurement_name`` across runs (oldest first), the last ``last`` runs only if given.

    ``baseline`` is a run id; it may lie outside the window. Raises :class:`ResultsError` when no run has a
    numeric value of the measurement, or the baseline run does not.
    """
    with connect(db) as conn:
        rows = measurement_values(conn, measurement_name, model_level)
    last_per_run: dict[int, tuple[int, TrendPoint]] = {}
    for row in rows:  # the run's last value of the name
        held = last_per_run.get(row.run.pk)
        if held is None or held[0] < row.seq:
            last_per_run[row.run.pk] = (row.seq, _point(row))
    points = sorted((p for _, p in last_per_run.values()), key=order)
    if not points:
        where = f" at model level {model_level}" if model_level else ""
        raise ResultsError(f"no numeric values of measurement {measurement_name!r}{where} in the database")
    window = points[-last:] if last else points
    if baseline is not None:
        base = next((p for p in points if p.run_id == baseline), None)
        if base is None:
            raise ResultsError(f"baseline run {baseline!r} has no value of {measurement_name!r}")
        later = [p for p in window if order(p) > order(base)]
    else:
        base, later = window[0], window[1:]
    return Trend(
        name=measurement_name,
        units=window[-1].units,
        model_level=model_level,
        points=tuple(window),
        baseline=base,
        drift=drift(window),
        flags=flag_regressions(base, later, k=k, span_pct=span_pct),
        k=k,
        span_pct=span_pct,
    )


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
    """This run's measurements (``current``, from its run record: the run need not be in the database yet)
    against the ``last`` runs that started before it at the same model level. Measurements are matched by
    test id and name (the last value of a pair in a run counts). The baseline is ``baseline`` (a run id;
    :class:`ResultsError` if the database does not hold it), else the previous run.

    Two queries whatever the number of measurements: the earlier runs, then their numeric values."""
    ours: dict[tuple[str, str], CurrentValue] = {}
    for c in current:
        ours[(c.test_id, c.name)] = c  # the last value of a pair in the run wins
    start = utc(started)
    with connect(db) as conn:
        earlier = earlier_runs(conn, run_id, start, model_level, last)
        chosen: dict[int, RunRow] = {run.pk: run for run in earlier}
        base_pk: int | None = earlier[0].pk if earlier else None
        if baseline is not None:
            try:
                base_run = run_by_id(conn, baseline)
            except ResultsError:
                raise ResultsError(f"baseline run {baseline!r} is not in the database") from None
            base_pk = base_run.pk
            chosen.setdefault(base_pk, base_run)
        rows = values_in_runs(conn, chosen.values()) if chosen else []
    values: dict[tuple[str, str], dict[int, tuple[int, TrendPoint]]] = {}
    for row in rows:
        key = (row.test_id, row.name)
        if key not in ours:
            continue
        per_run = values.setdefault(key, {})
        held = per_run.get(row.run.pk)
        if held is None or held[0] < row.seq:
            per_run[row.run.pk] = (row.seq, _point(row))
    window = {run.pk for run in earlier}
    items: list[MeasurementTrend] = []
    new = 0
    for key, c in ours.items():
        per_run = values.get(key, {})
        past = sorted((p for pk, (_, p) in per_run.items() if pk in window), key=order)
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
    return RunTrendReport(
        run_id=run_id,
        earlier_runs=tuple(run.run_id for run in earlier),
        baseline_run=chosen[base_pk].run_id if base_pk is not None else None,
        baseline_is_default=baseline is None,
        items=tuple(items),
        new=new,
        model_level=model_level,
        k=k,
        span_pct=span_pct,
    )


def compare(db: Engine | Connection, run_a: str, run_b: str) -> Comparison:
    """Run ``run_b`` against ``run_a``: measurement deltas, verdict and outcome changes, tests in one only."""
    with connect(db) as conn:
        a_run, b_run = run_by_id(conn, run_a), run_by_id(conn, run_b)
        # keyed by name: the last value of a name in the run wins, as in trend()
        meas_a = {m.name: m for m in run_measurements(conn, a_run.pk)}
        meas_b = {m.name: m for m in run_measurements(conn, b_run.pk)}
        tests_a, tests_b = dict(run_tests(conn, a_run.pk)), dict(run_tests(conn, b_run.pk))
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
        verdict_a=a_run.verdict,
        verdict_b=b_run.verdict,
        measurements=tuple(deltas),
        tests_only_a=tuple(sorted(tests_a.keys() - tests_b.keys())),
        tests_only_b=tuple(sorted(tests_b.keys() - tests_a.keys())),
        outcome_changes=changes,
    )
