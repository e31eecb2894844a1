"""The CLI's promises: one clear line for a bad config or an unreachable instrument, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from bench.config import CONFIG_DIR

PROJECT = Path(__file__).resolve().parents[2]


def bench(*args: str, cwd: Path = PROJECT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_help_lists_the_commands():
    out = bench("--help").stdout
    for command in ("run", "twin", "safe", "report", "check"):
        assert command in out


def test_check_accepts_the_shipped_configs():
    for name in ("twin", "twin-standalone", "twin-rigol", "example-lab"):
        proc = bench("check", "-c", str(CONFIG_DIR / f"{name}.yaml"))
        assert proc.returncode == 0, proc.stderr
        assert "ok" in proc.stderr


def test_bad_config_is_one_line_naming_file_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((CONFIG_DIR / "twin.yaml").read_text().replace("max_current: 3.0", "max_current: -1"))
    proc = bench("check", "-c", str(bad))
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert str(bad) in lines[0] and "dut.envelope.max_current" in lines[0]
    assert "Traceback" not in proc.stderr


def test_bad_config_stops_a_run_before_any_instrument(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((CONFIG_DIR / "twin.yaml").read_text().replace("driver: keysight-e36312a", "drivr: x"))
    proc = bench("run", "-c", str(bad), "--out", str(tmp_path / "runs"), "test_plans/eps")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "instruments.psu.drivr: unknown field" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("*/journal.jsonl"))


def test_unreachable_instrument_is_one_clear_line(tmp_path):
    cfg = tmp_path / "lab.yaml"
    port = _free_port()  # nothing listens there
    text = (CONFIG_DIR / "twin-standalone.yaml").read_text()
    cfg.write_text(text.replace("TCPIP0::127.0.0.1::5025::SOCKET", f"TCPIP0::127.0.0.1::{port}::SOCKET"))
    proc = bench("run", "-c", str(cfg), "--out", str(tmp_path / "runs"), "test_plans/eps")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    [line] = [x for x in proc.stdout.splitlines() if "bench:" in x]
    assert f"TCPIP0::127.0.0.1::{port}::SOCKET" in line
    assert "Traceback" not in proc.stdout + proc.stderr


def test_report_of_a_folder_without_journal(tmp_path):
    proc = bench("report", str(tmp_path))
    assert proc.returncode == 2 and "no journal.jsonl" in proc.stderr


def test_out_after_the_pytest_arguments_is_refused_in_one_line(tmp_path):
    """`--out` is the run's folder, `bench run`'s own: given to pytest after `--`, the run would land where the
    summary and the progress line do not look."""
    proc = bench("run", "test_plans/eps", "--", f"--out={tmp_path / 'elsewhere'}")
    assert proc.returncode != 0
    assert "--out after '--'" in proc.stdout + proc.stderr and "give it before '--'" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "elsewhere").exists()
