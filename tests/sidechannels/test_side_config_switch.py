"""Switching the I2C adapter's port (pseudo-terminal ↔ TCP) and the console's is a bench-config change only:
the same side-channel plans pass either way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.config import CONFIG_DIR

PROJECT = Path(__file__).resolve().parents[2]


def test_side_channel_plans_pass_with_the_other_ports(tmp_path):
    text = (CONFIG_DIR / "twin.yaml").read_text()
    assert "resource: twin:i2c.pty" in text and "resource: twin:console " in text
    swapped = text.replace("resource: twin:i2c.pty", "resource: twin:i2c")
    swapped = swapped.replace("resource: twin:console ", "resource: twin:console.pty ")
    config = tmp_path / "twin-swapped-ports.yaml"
    config.write_text(swapped)
    plans = ["test_plans/eps/test_eps_i2c.py", "test_plans/obc/test_obc_console.py"]
    proc = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", *plans, "-c", str(config), "--out", str(tmp_path / "runs")],
        cwd=PROJECT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "4 passed" in proc.stdout
