"""`bench db import`, `bench trend`, `bench compare` as processes: output, exit codes, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_results_builder import M, Run, write_run
from typer.testing import CliRunner

from bench.cli.results import app
from reports.db import import_all, import_run, open_db

PROJECT = Path(__file__).resolve().parents[2]


def results(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "BENCH_DB"}
    environ.update(env or {})
    environ["COLUMNS"] = "200"  # rich wraps tables to the terminal; keep rows on one line for the asserts
    return subprocess.run(
        [sys.executable, "-m", "bench.cli.results", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
    )


@pytest.fixture
def imported(runs_root: Path, db_url: str) -> str:
    # imported in-process: each CLI process costs about a second, the CLI import has its own test
    engine = open_db(db_url)
    import_all(engine, runs_root)
    engine.dispose()
    return db_url


def test_trend_exits_1_on_a_regression_and_0_without(imported: str) -> None:
    proc = results("trend", "EPS.IDLE_CURRENT", "--db", imported)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "n00 (baseline)" in proc.stdout and "marginal" in proc.stdout
    assert "projected to cross the high limit" in proc.stdout
    assert "regression flagged in 5 run(s)" in proc.stdout
    proc = results("trend", "EPS.BUS_VOLTAGE", "--db", imported, "--level", "EM", "--last", "3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no regression" in proc.stdout and "n02" not in proc.stdout and "n05" in proc.stdout


def test_compare_lists_deltas_and_changes(imported: str, tmp_path: Path) -> None:
    engine = open_db(imported)
    measured = [M("EPS.IDLE_CURRENT", 0.7, 0.35, 0.65), M("RF.P[dBm]", 1.0, 0, 2, test="t::p[/b]")]
    import_run(engine, write_run(tmp_path, Run("x", measurements=measured)))
    engine.dispose()
    proc = results("compare", "n00", "x", "--db", imported)
    assert proc.returncode == 0, proc.stderr
    assert "pass → fail" in proc.stdout and "+66.7 %" in proc.stdout
    assert "outcome changed:" in proc.stdout and "passed → failed" in proc.stdout
    assert "only in n00: test_plans/eps/test_eps_power.py::test_bus" in proc.stdout
    assert "only in x: t::p[/b]" in proc.stdout and "RF.P[dBm]" in proc.stdout  # not read as rich markup


def test_errors_are_one_line_with_exit_2(imported: str, tmp_path: Path) -> None:
    proc = results("trend", "X", "--db", "postgresql+psycopg://u:secret@127.0.0.1:1/db")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "cannot open database" in proc.stderr, proc.stderr
    assert "secret" not in proc.stderr and "Traceback" not in proc.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (("trend", "EPS.NOPE", "--db", imported), "no numeric values of measurement 'EPS.NOPE'"),
        (("compare", "n00", "zz", "--db", imported), "no run 'zz'"),
        (("trend", "X", "--db", f"sqlite:///{tmp_path / 'none.sqlite'}"), "no results database at"),
        (("trend", "X", "--db", "not a url"), "not a database URL"),
        (("compare", "a", "b", "--db", "nosuchdialect://x"), "cannot use database URL"),
        (("db", "import", str(tmp_path / "missing"), "--db", imported), "does not exist"),
        (("db", "import", str(empty), "--db", imported), "no journal.jsonl at or below"),
    ]
    runner = CliRunner()
    for args, message in cases:  # in-process: the same code path, without a process start per case
        result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 2, (args, result.output)
        assert len(lines) == 1 and message in lines[0], (args, result.stderr)


def test_db_import_from_the_command_line(runs_root: Path, db_url: str) -> None:
    proc = results("db", "import", str(runs_root), "--db", db_url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [w for i in range(6) for w in ("imported", f"n{i:02d}")]
    assert "6 run(s) imported" in proc.stderr and "0 skipped" in proc.stderr


def test_bench_db_env_and_broken_journal_exit_1(runs_root: Path, tmp_path: Path) -> None:
    bad = runs_root / "zz-broken"
    bad.mkdir()
    (bad / "journal.jsonl").write_text('{"kind": "run_start"}\n[1, 2]\n{"kind": "run_end"}\n')
    url = f"sqlite:///{tmp_path / 'env.sqlite'}"
    proc = results("db", "import", str(runs_root), env={"BENCH_DB": url})
    assert proc.returncode == 1
    assert "skipped:" in proc.stderr and "zz-broken" in proc.stderr and "6 run(s) imported" in proc.stderr
    assert (tmp_path / "env.sqlite").exists()


def test_cli_defaults_match_the_library_and_sqlalchemy_loads_lazily() -> None:
    import bench.cli.results as cli
    import reports.trends as trends

    assert (cli.DEFAULT_K, cli.DEFAULT_SPAN_PCT) == (trends.DEFAULT_K, trends.DEFAULT_SPAN_PCT)
    code = "import sys, bench.cli.results; print('sqlalchemy' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr
