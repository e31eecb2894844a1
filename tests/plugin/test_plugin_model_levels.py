"""The `model_levels` marker is checked at collection: a level that is no model level, or one the test's
requirements are not verified at, stops the run in one line before anything is powered. (That the marker skips a
test at the other levels, with its reason, and the VCRM shows it n/a there: tests/satellite/
test_satellite_antenna_plan.py, on real bench runs.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]

PLAN = """
import pytest


@pytest.mark.requirement("OTS-COM-060")
@pytest.mark.model_levels({levels})
def test_deploy(measure):
    pass
"""


def collect(tmp_path: Path, levels: str) -> subprocess.CompletedProcess[str]:
    for name in ("limits.yaml", "requirements.yaml"):
        shutil.copy(PROJECT / "test_plans" / name, tmp_path / name)
    (tmp_path / "test_levels.py").write_text(PLAN.format(levels=levels))
    argv = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    argv += ["--limits", str(tmp_path / "limits.yaml"), "--rootdir", str(tmp_path), "--out", str(tmp_path / "runs")]
    return subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_the_requirements_levels_are_accepted(tmp_path: Path) -> None:
    proc = collect(tmp_path, '"QM"')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_levels.py::test_deploy" in proc.stdout


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        ('"EM", "QM"', "model_levels marks EM, but OTS-COM-060 is verified at QM only"),
        ('"XM"', "model_levels('XM',): give one or more of EM, QM, FM, PFM"),
        ("", "model_levels(): give one or more of EM, QM, FM, PFM"),
    ],
)
def test_a_level_beyond_the_requirements_is_refused_in_one_line(tmp_path: Path, levels: str, message: str) -> None:
    proc = collect(tmp_path, levels)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out  # pytest's usage error
    assert message in out, out
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
