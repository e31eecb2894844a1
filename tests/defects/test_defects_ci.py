"""`bench defects --subset ci` end to end: a handful of seeded defects, each on a twin of its own, must be caught
by the plans the catalogue names, the clean baseline must pass, and the matrix must land in the run directory
and the results database. The bounded part of the full defect run (README: "Plans with teeth")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.defects import DEFAULT_CATALOGUE, load_catalogue
from reports.db import latest_defect_run, open_db
from reports.defects import latest_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(900)  # five pytest runs on twins, two at a time, on a loaded CI machine
def test_ci_subset_is_caught_and_the_baseline_passes(tmp_path: Path) -> None:
    env = {**os.environ, "BENCH_DB": f"sqlite:///{tmp_path / 'results.sqlite'}", "CI": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "bench.cli", "defects", "--subset", "ci", f"--out={tmp_path}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=850,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = latest_run(tmp_path)
    assert run is not None
    subset = load_catalogue(ROOT / DEFAULT_CATALOGUE).catalogue.subsets["ci"]
    assert sorted(d.defect for d in run.defects) == sorted(subset)
    assert run.baseline is not None and run.baseline.passed and run.baseline.tests > 0
    assert set(run.verdicts().values()) == {"caught"}
    assert not run.errors, [f"{c.defect} x {c.test_id}: {c.message}" for c in run.errors]
    assert "defects caught as catalogued" in result.stdout
    run_dir = tmp_path / run.run_id
    assert (run_dir / "defects.html").read_text().count("caught") > len(subset)
    engine = open_db(env["BENCH_DB"], create=False)
    try:
        stored = latest_defect_run(engine)
    finally:
        engine.dispose()
    assert stored is not None and stored.run_id == run.run_id and stored.verdicts() == run.verdicts()
