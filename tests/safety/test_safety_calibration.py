"""Calibration enforced: an expired calibration stops a qualification campaign before power-on, with one
clear line; a development run goes ahead and the report flags it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.config import CONFIG_DIR

PROJECT = Path(__file__).resolve().parents[2]


def _expired_config(tmp_path: Path) -> Path:
    text = (CONFIG_DIR / "twin.yaml").read_text()
    assert "due: 2099-12-31" in text
    path = tmp_path / "twin-expired-cal.yaml"
    path.write_text(text.replace("due: 2099-12-31", "due: 2020-01-31"))
    return path


def _run(tmp_path: Path, campaign: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "bench.cli", "run", "test_plans/eps/test_eps_power.py", "-k", "idle_current"]
    argv += ["-c", str(_expired_config(tmp_path)), "--campaign", campaign, "--out", str(tmp_path / campaign)]
    return subprocess.run(argv, cwd=PROJECT, capture_output=True, text=True, timeout=300)


def test_expired_calibration_blocks_a_qualification_campaign(tmp_path):
    proc = _run(tmp_path, "qualification")
    assert proc.returncode == 3, proc.stdout[-2000:]
    [line] = [x for x in proc.stdout.splitlines() if "calibration is expired" in x]
    assert "calibration.MY61000123" in line and "due 2020-01-31" in line and "qualification" in line
    assert "Traceback" not in proc.stdout + proc.stderr
    journal = next(p for p in (tmp_path / "qualification").glob("*/journal.jsonl") if p.parent.name != "latest")
    text = journal.read_text()
    assert '"kind":"measurement"' not in text and '"outcome":"passed"' not in text  # nothing ran, nothing powered


def test_expired_calibration_is_flagged_in_a_development_run(tmp_path):
    proc = _run(tmp_path, "development")
    assert proc.returncode == 0, proc.stdout[-2000:]
    html = (tmp_path / "development" / "latest" / "report.html").read_text()
    assert "expired" in html.lower()
