"""`bench safe` acts before the full command line loads: the stop must not wait for typer, rich or pydantic."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli.stop import parse_stop_args

PROJECT = Path(__file__).resolve().parents[2]
HEAVY = ("typer", "click", "rich", "pydantic", "sqlalchemy", "jinja2", "reports")


@pytest.mark.parametrize(
    ("args", "parsed"),
    [
        ([], (None, None, "")),
        (["-c", "lab.yaml"], (Path("lab.yaml"), None, "")),
        (["--bench-config=lab.yaml", "--reason", "smoke"], (Path("lab.yaml"), None, "smoke")),
        (["--run", "20261204T000000Z-abcd"], (None, "20261204T000000Z-abcd", "")),
    ],
)
def test_the_stop_forms_are_parsed_here(args: list[str], parsed: tuple[object, ...]) -> None:
    assert parse_stop_args(args) == parsed


@pytest.mark.parametrize(
    "args", [["--help"], ["--clear"], ["--bench", "x"], ["-c"], ["-c", "--run"], ["--reason", "a", "--reason", "b"]]
)
def test_everything_else_goes_to_the_full_command_line(args: list[str]) -> None:
    """Help, --clear, a missing value or a repeated option: typer parses and explains it."""
    assert parse_stop_args(args) is None


def test_bench_safe_imports_no_heavy_module(tmp_path: Path) -> None:
    env = {**os.environ, "OTS_BENCH_STATE_DIR": str(tmp_path), "BENCH_DB": ""}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bench.cli", "safe", "--reason", "fast path"],
        capture_output=True, text=True, cwd=PROJECT, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert "bench" in imported and not imported & set(HEAVY), sorted(imported & set(HEAVY))
    assert "nothing to make safe: no bench of this PC" in proc.stderr


def test_bench_safe_help_still_comes_from_the_full_command_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.cli", "safe", "--help"], capture_output=True, text=True, cwd=PROJECT, timeout=60
    )
    assert proc.returncode == 0 and "--clear" in proc.stdout and "Emergency stop" in proc.stdout, proc.stdout
