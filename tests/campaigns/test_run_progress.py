"""`bench run`'s live progress line: on a terminal it shows the running test, its measurements and what it waits
for, under pytest's own lines; without a terminal there is none."""

from __future__ import annotations

import io
import json
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
LIMITS = PROJECT / "test_plans" / "limits.yaml"


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


def test_the_line_shows_the_power_the_dut_draws():
    progress = RunProgress()
    progress.pytest_runtest_setup(SimpleNamespace(name="test_idle", funcargs={}))
    assert " V " not in progress.line().plain  # no monitor yet: nothing made up
    sample = SimpleNamespace(volts=(3.8, 5.0), amps=(0.5, 0.1))
    progress.pytest_bench_power_monitor(nodeid="x", monitor=SimpleNamespace(latest=lambda: sample))
    assert "3.800 V  0.500 A  1.90 W" in progress.line().plain
    progress.pytest_bench_power_monitor(nodeid="x", monitor=None)  # stopped: the last reading stays to the end
    assert "1.90 W" in progress.line().plain
    progress.pytest_runtest_setup(SimpleNamespace(name="test_next", funcargs={}))
    assert " W" not in progress.line().plain


def test_a_parallel_run_shows_a_line_per_running_test_with_its_measurements_from_the_worker_journals(tmp_path):
    progress = RunProgress(run_dir=tmp_path)
    progress.pytest_xdist_node_collection_finished(node=None, ids=["a::test_one", "b::test_two", "c::test_three"])
    progress.pytest_runtest_logstart(nodeid="a::test_one", location=None)
    progress.pytest_runtest_logstart(nodeid="b::test_two", location=None)
    records = [
        {"kind": "test_start", "test_id": "a::test_one"},
        {"kind": "measurement", "test_id": "a::test_one", "name": "EPS.IDLE_CURRENT"},
        {"kind": "measurement", "test_id": "a::test_one", "name": "EPS.BUS_VOLTAGE"},
    ]
    (tmp_path / "journal-gw0.jsonl").write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
    (tmp_path / "journal-gw1.jsonl").write_text('{"kind":"measurement","test_id":"b::test_two","name":"OBC.X"}\n')
    lines = [line.plain for line in progress.parallel_lines()]
    assert len(lines) == 2
    assert (
        lines[0].startswith("[0/3] test_one") and "2 measurements" in lines[0] and "last: EPS.BUS_VOLTAGE" in lines[0]
    )
    assert lines[1].startswith("[0/3] test_two") and "1 measurement " in lines[1]
    progress.pytest_runtest_logfinish(nodeid="a::test_one")
    assert [line.plain[:14] for line in progress.parallel_lines()] == ["[1/3] test_two"]


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


def _run_on_a_terminal(tmp_path: Path, *args: str, cwd: Path = PROJECT) -> tuple[int, str, str]:
    """`bench run ARGS` on a pseudo-terminal: its exit code, the raw output and the text without escape codes."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "run", f"--out={tmp_path / 'runs'}", *args],  # before any `--`
        cwd=cwd,
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
    raw = b"".join(chunks).decode(errors="replace")
    return proc.wait(timeout=240), raw, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)


def test_a_run_on_a_terminal_shows_the_live_line_and_the_table(tmp_path):
    code, raw, screen = _run_on_a_terminal(tmp_path, "test_plans/eps/test_eps_power.py", "-k", "idle_current")
    assert code == 0, screen
    assert "\x1b[?25l" in raw  # a live region (rich hides the cursor while it draws one)
    assert "[0/1] " in screen and "test_idle_current_and_bus_voltage" in screen
    assert "measurement" in screen  # the running test's count
    assert re.search(r"\d\.\d{3} V  \d\.\d{3} A  \d+\.\d{2} W", screen)  # the power the DUT draws
    assert "test_idle_current_and_bus_voltage │ passed" in screen  # the end-of-run table stays
    assert "verdict: PASS (1 test(s) passed)" in screen


MEASURING_PLAN = """
def test_measures_a_while_{n}(dut_power, measure):
    \"\"\"Keeps measuring for some seconds, so the progress rows have measurements to count while it runs.\"\"\"
    dut_power.on()
    for _ in range(12):
        measure("EPS.BUS_VOLTAGE", dut_power.voltage(), instrument="psu")
        dut_power.await_stable_current()
"""


def test_a_parallel_run_on_a_terminal_shows_the_tests_running_in_the_workers(tmp_path):
    plans = tmp_path / "plans"
    plans.mkdir()
    for n in (1, 2):  # one file per worker (whole files go to a worker)
        (plans / f"test_measuring_{n}.py").write_text(MEASURING_PLAN.format(n=n))
    code, _, screen = _run_on_a_terminal(
        tmp_path, "--parallel", "2", str(plans), "--", "--limits", str(LIMITS), "--rootdir", str(plans), cwd=plans
    )
    assert code == 0, screen
    # The controller knows the total from the workers' collection and each test's measurements from their journals.
    assert re.search(r"\[[01]/2\] test_measures_a_while_\d +\d+\.\d s  [1-9]\d* measurements?", screen), screen
    assert "verdict: PASS (2 test(s) passed)" in screen


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
