"""The same satellite plans pass over an slcan (Lawicel) adapter as over socketcand: only the bench config
changes (bench/configs/twin-slcan.yaml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
PLANS = ["test_plans/obc", "test_plans/adcs", "test_plans/payload", "test_plans/eps/test_eps_outputs.py"]


def test_satellite_plans_pass_over_slcan(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", *PLANS, "-c", "bench/configs/twin-slcan.yaml",
         "--out", str(tmp_path / "runs")],
        cwd=PROJECT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " failed" not in proc.stdout and " passed" in proc.stdout
    journal = next(p for p in (tmp_path / "runs").glob("*/journal.jsonl") if p.parent.name != "latest")
    assert '"driver":"slcan"' in journal.read_text().replace(" ", "") or "slcan" in journal.read_text()
