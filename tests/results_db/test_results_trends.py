"""Trends across runs: drift, limit-crossing projection, regression flags, run comparison, rendering."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from test_results_builder import T0, M, Run, nightly, write_run

from bench.cli.tables import comparison_table, drift_lines, format_table, trend_table
from reports.db import import_all, import_run, open_db
from reports.html import render_trends
from reports.run_record import parse_time
from reports.trend_view import trends_view
from reports.trends import (
    CurrentValue,
    ResultsError,
    TrendPoint,
    compare,
    drift,
    flag_regressions,
    report_trends,
    trend,
)


@pytest.fixture
def engine(runs_root: Path, db_url: str) -> Engine:
    engine = open_db(db_url)
    import_all(engine, runs_root)
    return engine


def test_trend_points_are_one_per_run_oldest_first(engine: Engine) -> None:
    t = trend(engine, "EPS.IDLE_CURRENT")
    assert [p.run_id for p in t.points] == [f"n{i:02d}" for i in range(6)]
    assert [p.value for p in t.points] == pytest.approx([0.5, 0.525, 0.55, 0.575, 0.6, 0.625])
    assert {(p.low, p.high, p.units) for p in t.points} == {(0.35, 0.65, "A")}
    assert t.points[-1].verdict == "marginal"
    assert t.units == "A"


def test_drift_slope_and_projected_crossing(engine: Engine) -> None:
    d = trend(engine, "EPS.IDLE_CURRENT").drift
    assert d.slope_per_run == pytest.approx(0.025)
    assert d.slope_per_day == pytest.approx(0.025)  # one run a day
    assert d.crossing is not None
    assert d.crossing.limit == "high" and d.crossing.limit_value == 0.65
    assert d.crossing.runs_ahead == pytest.approx(1.0)  # 0.625 + 0.025 reaches 0.65 on the next run
    assert d.crossing.at_run == 7
    assert d.crossing.date is not None and d.crossing.date.date() == (T0 + timedelta(days=6)).date()


def _point(run: int, value: float, **kw: object) -> TrendPoint:
    fields: dict[str, object] = {
        "run_id": f"r{run}",
        "time": T0 + timedelta(days=run),
        "value": value,
        "verdict": "pass",
        "low": 1.0,
        "high": 2.0,
        "units": "V",
        "uncertainty": 0.01,
        "model_level": "EM",
        "status": "complete",
    }
    fields.update(kw)
    return TrendPoint(**fields)  # type: ignore[arg-type]


def test_falling_values_project_the_low_limit_and_flat_ones_nothing() -> None:
    falling = drift([_point(i, 1.8 - 0.1 * i) for i in range(4)])
    assert falling.slope_per_run == pytest.approx(-0.1)
    assert falling.crossing is not None and falling.crossing.limit == "low"
    assert falling.crossing.runs_ahead == pytest.approx(5.0)  # 1.5 → 1.0 at −0.1 per run
    assert drift([_point(i, 1.5) for i in range(4)]).crossing is None
    one = drift([_point(0, 1.5)])
    assert (one.slope_per_run, one.slope_per_day, one.crossing) == (None, None, None)
    beyond = drift([_point(i, 1.9 + 0.1 * i) for i in range(3)])
    assert beyond.crossing is not None and beyond.crossing.runs_ahead == 0  # already past 2.0


def test_regression_rule() -> None:
    base = _point(0, 1.5)
    # verdict worse → regression, whatever the size of the move
    flags = flag_regressions(base, [_point(1, 1.5, verdict="marginal")])
    assert [(f.kind, f.regression) for f in flags] == [("verdict", True)]
    # within 3 × √(0.01² + 0.01²) = 0.042 and 10 % of span (0.1): nothing
    assert flag_regressions(base, [_point(1, 1.54)]) == ()
    # beyond k·u towards the high limit → regression
    flags = flag_regressions(base, [_point(1, 1.56)])
    assert [(f.kind, f.regression) for f in flags] == [("shift", True)]
    assert "towards the limit" in flags[0].message and "3×u" in flags[0].message
    # the same move back to the centre from an off-centre baseline is only a note
    flags = flag_regressions(_point(0, 1.8), [_point(1, 1.6)])
    assert [(f.kind, f.regression) for f in flags] == [("shift", False)]
    assert "away from the limits" in flags[0].message
    # without uncertainty only the span rule applies; k is configurable
    no_u = _point(0, 1.5, uncertainty=None)
    assert flag_regressions(no_u, [_point(1, 1.58, uncertainty=None)]) == ()
    assert flag_regressions(no_u, [_point(1, 1.62, uncertainty=None)])[0].regression
    assert flag_regressions(base, [_point(1, 1.56)], k=5) == ()


def test_trend_flags_regressions_against_the_first_run_by_default(engine: Engine) -> None:
    t = trend(engine, "EPS.IDLE_CURRENT")
    assert t.baseline is not None and t.baseline.run_id == "n00"
    regressed = {f.run_id for f in t.regressions}
    assert regressed == {"n01", "n02", "n03", "n04", "n05"}  # each moved > 3·u = 0.0106 A towards 0.65
    assert any(f.kind == "verdict" and f.run_id == "n05" for f in t.flags)
    assert trend(engine, "EPS.BUS_VOLTAGE").regressions == ()


def test_baseline_and_window(engine: Engine) -> None:
    t = trend(engine, "EPS.IDLE_CURRENT", last=2, baseline="n00", span_pct=50, k=100)
    assert [p.run_id for p in t.points] == ["n04", "n05"]
    assert t.baseline is not None and t.baseline.run_id == "n00"  # outside the window, still the reference
    assert [(f.run_id, f.kind) for f in t.regressions] == [("n05", "verdict")]
    t = trend(engine, "EPS.IDLE_CURRENT", baseline="n04")
    assert {f.run_id for f in t.flags} == {"n05"}
    with pytest.raises(ResultsError, match="baseline run 'nope'"):
        trend(engine, "EPS.IDLE_CURRENT", baseline="nope")
    with pytest.raises(ResultsError, match="no numeric values"):
        trend(engine, "EPS.NO_SUCH")


def test_model_level_filter_and_killed_runs(engine: Engine, tmp_path: Path) -> None:
    write_run(tmp_path / "more", nightly(7, model_level="QM", prefix="q"))
    killed = nightly(8)
    killed.killed = True
    write_run(tmp_path / "more", killed)
    import_all(engine, tmp_path / "more")
    assert [p.run_id for p in trend(engine, "EPS.IDLE_CURRENT", model_level="QM").points] == ["q07"]
    em = trend(engine, "EPS.IDLE_CURRENT", model_level="EM")
    assert em.points[-1].run_id == "n08" and em.points[-1].status == "incomplete"
    with pytest.raises(ResultsError, match="at model level FM"):
        trend(engine, "EPS.IDLE_CURRENT", model_level="FM")


def test_a_test_rerun_inside_a_run_counts_once_with_its_last_value(tmp_path: Path, db_url: str) -> None:
    run = Run("rr", measurements=[M("X", 1.0, 0, 10), M("X", 2.0, 0, 10, test="t::again")])
    engine = open_db(db_url)
    import_run(engine, write_run(tmp_path, run))
    assert [p.value for p in trend(engine, "X").points] == [2.0]


def test_compare_two_runs(engine: Engine, tmp_path: Path) -> None:
    other = Run(
        "x01",
        start=T0 + timedelta(days=30),
        measurements=[
            M("EPS.IDLE_CURRENT", 0.70, 0.35, 0.65),  # fails now
            M("EPS.NEW", 1.0, 0, 2, test="t::new"),
        ],
        outcomes={"t::new": "passed"},
    )
    import_run(engine, write_run(tmp_path, other))
    c = compare(engine, "n00", "x01")
    assert (c.verdict_a, c.verdict_b) == ("PASS", "FAIL")
    by_name = {d.name: d for d in c.measurements}
    idle = by_name["EPS.IDLE_CURRENT"]
    assert (idle.a, idle.b, idle.verdict_a, idle.verdict_b) == (0.5, 0.7, "pass", "fail")
    assert idle.delta == pytest.approx(0.2)
    assert idle.delta_pct_span == pytest.approx(100 * 0.2 / 0.3)
    assert idle.verdict_changed
    assert by_name["EPS.NEW"].a is None and by_name["EPS.BUS_VOLTAGE"].b is None
    assert c.tests_only_a == ("test_plans/eps/test_eps_power.py::test_bus",)
    assert c.tests_only_b == ("t::new",)
    assert [(o.test_id.rsplit("::")[-1], o.a, o.b) for o in c.outcome_changes] == [("test_idle", "passed", "failed")]
    headers, rows = comparison_table(c, changed_only=True)
    assert headers[2:4] == ["n00", "x01"]
    assert ["EPS.IDLE_CURRENT", "A", "0.5000", "0.7000", "+0.2000", "+66.7 %", "pass → fail"] in rows
    with pytest.raises(ResultsError, match="no run 'zz'"):
        compare(engine, "n00", "zz")


def test_text_rendering(engine: Engine) -> None:
    t = trend(engine, "EPS.IDLE_CURRENT")
    headers, rows = trend_table(t)
    assert rows[0][1] == "n00 (baseline)" and rows[0][3] == "0.5000"
    assert rows[-1][6] == "marginal" and rows[-1][7].startswith("! ")
    text = format_table(headers, rows)
    assert text.splitlines()[0].split() == ["#", "run", "start", "(UTC)", "value", "low", "high", "verdict", "flags"]
    lines = drift_lines(t)
    assert lines[0].startswith("drift: +0.02500 A per run")
    assert "cross the high limit 0.6500 A in 1.0 runs, at run #7" in lines[1]
    assert lines[2].endswith("regression flagged in 5 run(s)")


def _as_of(engine: Engine, run_id: str, **kw: object) -> object:
    """The report's trend section input for ``run_id``, its values read back from the database."""
    from sqlalchemy import select

    from reports.db import measurements, runs

    with engine.connect() as conn:
        pk, started, level = conn.execute(
            select(runs.c.id, runs.c.started_at, runs.c.model_level).where(runs.c.run_id == run_id)
        ).one()
        rows = conn.execute(select(measurements).where(measurements.c.run_pk == pk, measurements.c.value.is_not(None)))
        current = [
            CurrentValue(r.test_id, r.name, r.value, r.units, r.low, r.high, r.verdict, r.uncertainty) for r in rows
        ]
    return report_trends(engine, run_id, parse_time(started.isoformat()), current, model_level=level, **kw)  # type: ignore[arg-type]


def test_trend_section_draws_limits_and_escapes(engine: Engine, tmp_path: Path) -> None:
    early = Run("e<0>", start=T0 - timedelta(days=3), measurements=[M("<b>X</b>", 1.1, 0.9, 1.5)])
    evil = Run("e<1>", start=T0 - timedelta(days=2), measurements=[M("<b>X</b>", 1.4, 0.9, 1.5)])
    import_run(engine, write_run(tmp_path, early))
    import_run(engine, write_run(tmp_path, evil))
    report = _as_of(engine, "e<1>")
    html = str(render_trends(trends_view(report, max_rows=200)))  # type: ignore[arg-type]
    assert html.count("<svg") == 1 and html.count('stroke-dasharray="3 2"') == 2  # its low and high limits
    assert "<b>X</b>" not in html and "&lt;b&gt;X&lt;/b&gt;" in html
    assert "e&lt;0&gt;" in html and "REGRESSION" in html  # moved half the span towards the high limit
    later = _as_of(engine, "n05")
    text = str(render_trends(trends_view(later, max_rows=1)))  # type: ignore[arg-type]
    assert text.count('<tr class="trend ') == 1 and "more measurement(s) not listed" in text


def test_report_trends_as_of_that_run(engine: Engine, tmp_path: Path) -> None:
    write_run(tmp_path, nightly(9, model_level="QM", prefix="q"))
    import_all(engine, tmp_path)
    report = _as_of(engine, "n03", baseline="n01")
    items = report.items  # type: ignore[attr-defined]
    assert [t.name for t in items] == ["EPS.IDLE_CURRENT", "EPS.BUS_VOLTAGE"]
    assert [p.run_id for p in items[0].points] == ["n00", "n01", "n02", "n03"]  # nothing after n03, no QM
    assert items[0].baseline is not None and items[0].baseline.run_id == "n01"
    assert [p.run_id for p in _as_of(engine, "n05", last=2).items[0].points] == ["n03", "n04", "n05"]  # type: ignore[attr-defined]
    with pytest.raises(ResultsError, match="baseline run 'zz'"):
        _as_of(engine, "n05", baseline="zz")
