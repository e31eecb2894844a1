"""The results database on a real PostgreSQL server: the shared store of a lab with several benches.

A throwaway server is started for this module by ``pg_url`` (tests/support/pg_support.py: initdb + pg_ctl in a
temporary folder, a free port on 127.0.0.1, trust authentication, fsync off; under root it runs as the
``postgres`` user). The tests are skipped only when no PostgreSQL server binaries exist (Debian:
``apt-get install -y postgresql``); without the ``postgres`` extra (psycopg) they fail.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pg_support
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from test_results_builder import M, Run, nightly, write_run

from reports.db import import_all, import_run, measurements, metadata, open_db, runs
from reports.trends import compare, trend

pg_url = pg_support.pg_url  # the module-scoped throwaway server (one implementation, shared with other suites)


@pytest.fixture
def pg(pg_url: str) -> Iterator[Engine]:
    engine = open_db(pg_url)
    metadata.drop_all(engine)  # every test starts from an empty store
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def _count(engine: Engine, table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_import_reimport_and_killed_run_on_postgres(pg: Engine, runs_root: Path, tmp_path: Path) -> None:
    summary = import_all(pg, runs_root)
    assert len(summary.imported) == 6 and not summary.failed
    import_all(pg, runs_root)
    assert _count(pg, runs) == 6 and _count(pg, measurements) == 12
    killed = nightly(6)
    killed.killed = True
    import_run(pg, write_run(tmp_path, killed))
    with pg.connect() as conn:
        row = conn.execute(select(runs.c.status, runs.c.verdict).where(runs.c.run_id == "n06")).one()
    assert tuple(row) == ("incomplete", "INCOMPLETE")
    killed.killed = False
    import_run(pg, write_run(tmp_path, killed))
    with pg.connect() as conn:
        assert conn.execute(select(runs.c.status).where(runs.c.run_id == "n06")).scalar_one() == "complete"


def test_trend_and_compare_on_postgres(pg: Engine, runs_root: Path, tmp_path: Path) -> None:
    import_all(pg, runs_root)
    t = trend(pg, "EPS.IDLE_CURRENT", model_level="EM")
    assert [p.run_id for p in t.points] == [f"n{i:02d}" for i in range(6)]
    assert t.points[0].time is not None and t.points[0].time.tzinfo is not None
    assert t.drift.slope_per_run == pytest.approx(0.025)
    assert t.drift.slope_per_day == pytest.approx(0.025)
    assert t.drift.crossing is not None and t.drift.crossing.at_run == 7
    assert {f.run_id for f in t.regressions} == {"n01", "n02", "n03", "n04", "n05"}
    import_run(pg, write_run(tmp_path, Run("x", measurements=[M("EPS.IDLE_CURRENT", 0.7, 0.35, 0.65)])))
    c = compare(pg, "n00", "x")
    idle = next(d for d in c.measurements if d.name == "EPS.IDLE_CURRENT")
    assert (idle.verdict_a, idle.verdict_b) == ("pass", "fail") and idle.delta == pytest.approx(0.2)


def test_bulk_import_speed_on_postgres(pg: Engine, tmp_path: Path) -> None:
    many = [M(f"EPS.M{i:04d}", 0.5, 0.35, 0.65, test=f"t::t{i // 100}") for i in range(5000)]
    run_dir = write_run(tmp_path, Run("bulk", measurements=many))
    started = time.perf_counter()
    import_run(pg, run_dir)
    elapsed = time.perf_counter() - started
    assert _count(pg, measurements) == 5000
    print(f"\n[results] PostgreSQL: 5000 measurements imported in {elapsed:.2f} s ({5000 / elapsed:,.0f}/s)")
