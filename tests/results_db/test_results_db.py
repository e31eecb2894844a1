"""Journal → results database: rows, idempotent re-import, killed runs, anomalies, bad URLs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from test_results_builder import M, Run, nightly, write_run

from reports.db import (
    DatabaseError,
    anomalies,
    find_run_dirs,
    import_all,
    import_run,
    instruments,
    measurements,
    open_db,
    runs,
    tests,
)
from reports.run_record import JournalError


def count(engine: Engine, table, **where: object) -> int:
    query = select(func.count()).select_from(table)
    for key, value in where.items():
        query = query.where(table.c[key] == value)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def run_row(engine: Engine, run_id: str):
    with engine.connect() as conn:
        return conn.execute(select(runs).where(runs.c.run_id == run_id)).one()


def anomaly_kinds(engine: Engine, run_id: str) -> list[str]:
    pk = run_row(engine, run_id).id
    with engine.connect() as conn:
        return sorted(conn.execute(select(anomalies.c.kind).where(anomalies.c.run_pk == pk)).scalars())


def test_import_writes_every_table(runs_root: Path, db_url: str) -> None:
    engine = open_db(db_url)
    assert import_run(engine, runs_root / "n03") == "n03"
    row = run_row(engine, "n03")
    assert (row.model_level, row.campaign, row.dut_serial, row.status, row.verdict) == (
        "EM", "nightly", "EM-001", "complete", "PASS",
    )  # fmt: skip
    assert row.started_at.isoformat().startswith("2026-11-04T22:00:00")
    assert row.tests_passed == 2 and row.measurement_count == 2
    assert json.loads(row.dut_envelope) == {"ovp_v": 8.6}
    assert count(engine, tests) == 2
    assert count(engine, measurements) == 2
    assert count(engine, instruments) == 1
    assert count(engine, anomalies) == 0
    with engine.connect() as conn:
        m = conn.execute(select(measurements).where(measurements.c.name == "EPS.IDLE_CURRENT")).one()
        inst = conn.execute(select(instruments)).one()
    assert (m.value, m.low, m.high, m.units, m.verdict, m.uncertainty) == (0.575, 0.35, 0.65, "A", "pass", 0.0025)
    assert m.requirements == "OTS-EPS-020" and m.test_id.endswith("::test_idle")
    assert (inst.role, inst.maker, inst.cal_status, json.loads(inst.cal_uncertainty)) == (
        "psu", "Keysight", "valid", {"current_a": 0.0025},
    )  # fmt: skip


def test_reimport_replaces_the_run(runs_root: Path, db_url: str) -> None:
    engine = open_db(db_url)
    import_run(engine, runs_root / "n01")
    import_run(engine, runs_root / "n02")
    first = run_row(engine, "n01")
    import_run(engine, runs_root / "n01")
    assert count(engine, runs) == 2
    assert count(engine, measurements) == 4
    assert count(engine, tests) == 4
    assert count(engine, instruments) == 2
    assert run_row(engine, "n01").imported_at >= first.imported_at


def test_killed_run_imports_incomplete_then_complete_after_reimport(tmp_path: Path, db_url: str) -> None:
    run = nightly(0)
    run.killed = True
    run_dir = write_run(tmp_path, run)
    engine = open_db(db_url)
    import_run(engine, run_dir)
    row = run_row(engine, "n00")
    assert (row.status, row.verdict, row.ended_at) == ("incomplete", "INCOMPLETE", None)
    assert "incomplete last line ignored" in row.warnings
    assert anomaly_kinds(engine, "n00") == ["run incomplete", "test interrupted"]
    with engine.connect() as conn:
        outcomes = dict(conn.execute(select(tests.c.name, tests.c.outcome)).all())
        end_time = conn.execute(select(tests.c.end_time).where(tests.c.name == "test_bus")).scalar_one()
    assert outcomes == {"test_idle": "passed", "test_bus": "interrupted"}
    assert end_time is None
    assert count(engine, measurements) == 2  # the killed test's measurement was journalled before the kill

    # the run's journal is later closed (as `bench report` would find a finished one): re-import
    run.killed = False
    write_run(tmp_path, run)
    import_run(engine, run_dir)
    row = run_row(engine, "n00")
    assert (row.status, row.verdict) == ("complete", "PASS")
    assert anomaly_kinds(engine, "n00") == []
    assert count(engine, runs) == 1


def test_anomalies_are_derived_at_import(tmp_path: Path, db_url: str) -> None:
    run = Run(
        "bad",
        measurements=[M("EPS.IDLE_CURRENT", 0.9, 0.35, 0.65), M("EPS.OK", 0.5, 0.35, 0.65, test="t::ok")],
        outcomes={"t::broken": "error"},
        cal_due="2020-01-01",  # recorded as valid, but due before the run: the report calls it expired
        safe_state={"psu": "ok", "rf": "timeout switching RF off"},
    )
    engine = open_db(db_url)
    import_run(engine, write_run(tmp_path, run))
    assert anomaly_kinds(engine, "bad") == [
        "calibration expired",
        "measurement fail",
        "safe state not reached",
        "test error",
        "test failed",
    ]
    with engine.connect() as conn:
        fail = conn.execute(select(anomalies).where(anomalies.c.kind == "measurement fail")).one()
    assert fail.subject == "EPS.IDLE_CURRENT" and "outside limits [0.35, 0.65]" in fail.message
    assert fail.test_seq == 0
    assert run_row(engine, "bad").verdict == "FAIL"


def test_non_numeric_values_are_kept_as_text(tmp_path: Path, db_url: str) -> None:
    run = Run("txt", measurements=[M("OBC.BOOT_OK", True, verdict="pass"), M("OBC.FW", "1.2.3", verdict="pass")])
    engine = open_db(db_url)
    import_run(engine, write_run(tmp_path, run))
    with engine.connect() as conn:
        rows = conn.execute(select(measurements.c.name, measurements.c.value, measurements.c.value_text)).all()
    assert sorted(rows) == [("OBC.BOOT_OK", None, "true"), ("OBC.FW", None, "1.2.3")]


def test_import_all_skips_links_and_reports_broken_journals(runs_root: Path, db_url: str) -> None:
    (runs_root / "latest").symlink_to(runs_root / "n05", target_is_directory=True)
    broken = runs_root / "broken"
    broken.mkdir()
    (broken / "journal.jsonl").write_text('{"kind": "run_start", "run_id": "b"}\nnot json\n{"kind": "run_end"}\n')
    assert len(find_run_dirs(runs_root)) == 7
    engine = open_db(db_url)
    summary = import_all(engine, runs_root)
    assert sorted(summary.imported) == [f"n{i:02d}" for i in range(6)]
    assert [p.name for p, _ in summary.failed] == ["broken"]
    assert "line 2" in summary.failed[0][1]
    assert count(engine, runs) == 6
    with pytest.raises(JournalError):
        import_run(engine, broken)


def test_import_through_a_session_or_connection_uses_the_callers_transaction(runs_root: Path, db_url: str) -> None:
    engine = open_db(db_url)
    with Session(engine) as session:
        import_run(session, runs_root / "n00")
        session.rollback()
    assert count(engine, runs) == 0
    with engine.connect() as conn:
        import_run(conn, runs_root / "n00")
        conn.commit()
    assert count(engine, runs) == 1


def test_a_journal_without_run_start_is_stored_under_its_folder_name(tmp_path: Path, db_url: str) -> None:
    run_dir = tmp_path / "orphan"
    run_dir.mkdir()
    (run_dir / "journal.jsonl").write_text(
        json.dumps({"kind": "test_start", "test_id": "t::a", "time": "2026-11-01T00:00:00+00:00"}) + "\n"
    )
    engine = open_db(db_url)
    assert import_run(engine, run_dir) == "orphan"
    row = run_row(engine, "orphan")
    assert (row.status, row.verdict, row.started_at) == ("incomplete", "INCOMPLETE", None)


def test_bad_urls_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="not a database URL"):
        open_db("no-such-thing")
    with pytest.raises(DatabaseError, match="cannot use database URL"):
        open_db("nosuchdialect://x/y")
    with pytest.raises(DatabaseError, match="no results database at"):
        open_db(f"sqlite:///{tmp_path / 'missing.sqlite'}", create=False)
    assert not (tmp_path / "missing.sqlite").exists()


def test_sqlite_pragmas_are_set(db_url: str) -> None:
    engine = open_db(db_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_bench_db_environment_variable_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "env.sqlite"
    monkeypatch.setenv("BENCH_DB", f"sqlite:///{target}")
    open_db().dispose()
    assert target.exists()
