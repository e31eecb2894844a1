"""`bench run`'s live progress line: on a terminal it shows the running test, its measurements and what it waits
for, under pytest's own lines; without a terminal there is none."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from rich.console import Console

from bench.cli.progress import LineProxy, RunProgress

PROJECT = Path(__file__).resolve().parents[2]


def test_the_line_shows_the_test_its_measurements_and_what_it_waits_for():
    progress = RunProgress()
    progress.pytest_collection_finish(SimpleNamespace(items=[1, 2, 3]))
    recorder = SimpleNamespace(measurements=[SimpleNamespace(name="EPS.IDLE_CURRENT")] * 2)
    progress.pytest_runtest_setup(SimpleNamespace(name="test_idle", funcargs={"measure": recorder}))
    text = progress.line().plain
    assert text.startswith("[0/3] test_idle") and "2 measurements" in text and "last: EPS.IDLE_CURRENT" in text
    progress.pytest_bench_activity(nodeid="x", text="waiting for the operator: Connect J3", waiting=True)
    assert "waiting for the operator: Connect J3" in progress.line().plain
    progress.pytest_runtest_logfinish(nodeid="x")
    assert progress.line().plain.startswith("[1/3]")


def test_pytest_lines_pass_through_and_the_unfinished_one_stays_in_the_live_region():
    out = io.StringIO()
    proxy = LineProxy(Console(file=out, width=100), sys.__stdout__)
    proxy.write("collected 3 items\n\ntest_plans/eps/test_eps_power.py ")
    proxy.write(".")
    proxy.flush()  # pytest flushes after each dot: nothing half-written may reach the screen
    assert out.getvalue() == "collected 3 items\n\n"
    assert proxy.pending == "test_plans/eps/test_eps_power.py ."
    proxy.close_line()
    assert out.getvalue().endswith("test_plans/eps/test_eps_power.py .\n")


def test_a_run_on_a_terminal_shows_the_live_line_and_the_table(tmp_path):
    master, slave = pty.openpty()
    argv = [sys.executable, "-m", "bench.cli", "run", "test_plans/eps/test_eps_power.py", "-k", "idle_current"]
    proc = subprocess.Popen(
        [*argv, f"--out={tmp_path}"],
        cwd=PROJECT,
        stdout=slave,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "CI"} | {"TERM": "xterm", "COLUMNS": "160"},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=240) == 0
    raw = b"".join(chunks).decode(errors="replace")
    assert "\x1b[?25l" in raw  # a live region (rich hides the cursor while it draws one)
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    assert "[0/1] " in screen and "test_idle_current_and_bus_voltage" in screen
    assert "measurement" in screen  # the running test's count
    assert "test_idle_current_and_bus_voltage │ passed" in screen  # the end-of-run table stays
    assert "verdict: PASS (1 test(s) passed)" in screen


def test_without_a_terminal_there_is_no_live_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.cli",
            "run",
            "test_plans/eps/test_eps_power.py",
            "-k",
            "idle_current",
            f"--out={tmp_path}",
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[0/1]" not in proc.stdout + proc.stderr and "\x1b[?25l" not in proc.stderr
