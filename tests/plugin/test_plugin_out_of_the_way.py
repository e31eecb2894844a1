"""The bench plugin stays out of the way of pytest runs that use no bench fixture: no run directory, no JUnit or
Allure output moved; a run whose tests use a bench fixture gets all of it, as `bench run` does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import fixtures.plugin as plugin

PROJECT = Path(__file__).resolve().parents[2]
LIMITS = PROJECT / "test_plans" / "limits.yaml"

UNIT_TEST = "def test_arithmetic():\n    assert 1 + 1 == 2\n"
BENCH_TEST = "def test_leaves_evidence(evidence):\n    evidence.text('note', 'a bench test')\n"


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--out={tmp_path / 'runs'}", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_run_without_bench_fixtures_leaves_no_run_directory(tmp_path: Path) -> None:
    (tmp_path / "test_unit.py").write_text(UNIT_TEST)
    done = _pytest(tmp_path, "test_unit.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (tmp_path / "runs").exists()
    assert not list(tmp_path.rglob("junit.xml")) and not list(tmp_path.rglob("allure-results"))


def test_collect_only_of_bench_tests_leaves_no_run_directory(tmp_path: Path) -> None:
    (tmp_path / "test_bench.py").write_text(BENCH_TEST)
    done = _pytest(tmp_path, "--collect-only", "-q", "test_bench.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (tmp_path / "runs").exists()


def test_a_run_with_a_bench_fixture_gets_journal_junit_and_allure(tmp_path: Path) -> None:
    (tmp_path / "test_bench.py").write_text(BENCH_TEST + "\n\n" + UNIT_TEST)
    done = _pytest(tmp_path, f"--limits={LIMITS}", "--run-id=r1", "test_bench.py")
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = tmp_path / "runs" / "r1"
    assert (run_dir / "journal.jsonl").exists()
    junit = (run_dir / "junit.xml").read_text()
    assert 'tests="2"' in junit and "test_leaves_evidence" in junit and "test_arithmetic" in junit, junit
    statuses = [json.loads(p.read_text())["status"] for p in (run_dir / "allure-results").glob("*-result.json")]
    assert sorted(statuses) == ["passed", "passed"]


def test_an_explicit_junitxml_is_left_where_it_was_asked(tmp_path: Path) -> None:
    (tmp_path / "test_bench.py").write_text(BENCH_TEST)
    done = _pytest(tmp_path, f"--limits={LIMITS}", "--run-id=r1", "--junitxml=mine.xml", "test_bench.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "mine.xml").exists()
    assert not (tmp_path / "runs" / "r1" / "junit.xml").exists()


def test_the_bench_fixtures_are_read_from_the_fixture_modules() -> None:
    names = plugin.bench_fixtures()
    assert {"bench", "psu", "dut_power", "measure", "evidence", "satellite", "satellite_on"} <= names
    assert {"i2c", "eps_i2c", "console", "rf"} <= names
    assert not any(name.startswith("_") for name in names)
