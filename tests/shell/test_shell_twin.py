"""`bench shell` and the one-shot forms against a standalone twin (a separate process on free ports), as an
operator would use them: lines on stdin, a held bench refused in one line, the bench safe and free afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from safety_rig import TwinHandle, bench_config_for

from bench.config import load_config
from bench.reservation import open_store
from bench.session import BenchSession
from bench.twin_launcher import TwinProcess
from bench.waiting import await_true
from reports.run_record import read_journal

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def standalone_twin() -> Iterator[TwinHandle]:
    with TwinProcess(ports="auto") as twin:
        yield TwinHandle(twin)


def bench_cli(*args: str, stdin: str = "", timeout_s: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args], input=stdin, capture_output=True, text=True, cwd=PROJECT,
        timeout=timeout_s,
    )  # fmt: skip


def shell_config(twin: TwinHandle, tmp_path: Path) -> Path:
    """The standalone-twin config (`safety_rig.bench_config_for`) with the CAN bus on this twin's port too."""
    config = bench_config_for(twin, tmp_path)
    can = twin.twin.endpoints["can_socketcand"]
    text = config.read_text()
    assert "127.0.0.1:29536" in text, "the standalone config no longer names the twin's fixed CAN port"
    config.write_text(text.replace("127.0.0.1:29536", f"{can['host']}:{can['port']}"))
    return config


def _bench_free(config: Path) -> bool:
    name = load_config(config).config.bench.name
    return not open_store(None).status(name).held


def test_shell_from_stdin_makes_it_beacon_and_leaves_the_bench_safe(standalone_twin, tmp_path):
    twin = standalone_twin
    config = shell_config(twin, tmp_path)
    script = "power on\ntc COMMS.SET_BEACON enabled=true\ntm COMMS.BEACON_ENABLED\n"
    done = bench_cli("shell", "-c", str(config), "--out", str(tmp_path / "runs"), stdin=script)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "DUT on at 3.800 V" in done.stdout, output
    assert "COMMS.SET_BEACON(enabled=True)" in done.stdout and "completion ok" in done.stdout, output
    [value] = [line for line in done.stdout.splitlines() if line.startswith("COMMS.BEACON_ENABLED")]
    assert value.split("=")[1].strip() == "True", output

    # After exit: the supply output is off and the lease released.
    assert not twin.output_on(), "the shell ended with the DUT powered"
    assert _bench_free(config), "the shell ended still holding the bench"

    # Every command is in the shell's own run directory; `bench report` reads it.
    [run_dir] = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    lines = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    commands = [r["line"] for r in lines if r["kind"] == "operator_command"]
    assert commands == script.splitlines(), commands
    assert any(r["kind"] == "safe_state" for r in lines)
    record = read_journal(run_dir / "journal.jsonl")
    assert record.run is not None and record.run.campaign == "manual (shell)"


def test_shell_json_lines_and_one_line_refusals(standalone_twin, tmp_path):
    config = shell_config(standalone_twin, tmp_path)
    script = "tc COMMS.SET_BEACN enabled=true\ntc COMMS.SET_TX_POWER dbm=40\ntm COMMS.BEACON_ENABLE\n"
    done = bench_cli("shell", "-c", str(config), "--out", str(tmp_path / "runs"), "--json", stdin=script)
    assert done.returncode == 1, done.stdout + done.stderr  # a script with refused lines says so
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["kind"] for r in results] == ["refused"] * 3
    assert "did you mean COMMS.SET_BEACON" in results[0]["error"]
    assert "above the maximum 33" in results[1]["error"]
    assert "did you mean COMMS.BEACON_ENABLED" in results[2]["error"]
    assert not standalone_twin.output_on()


def test_one_shot_tm_is_refused_naming_the_holder(standalone_twin, tmp_path):
    config = shell_config(standalone_twin, tmp_path)
    holder = BenchSession.open(load_config(config), None, None, install_signals=False)
    try:
        done = bench_cli("tm", "COMMS.BEACON_ENABLED", "-c", str(config), "--out", str(tmp_path / "runs"))
    finally:
        holder.close("test end")
    assert done.returncode == 3, done.stdout + done.stderr
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and "is held by" in lines[0] and f"pid {os.getpid()}" in lines[0], lines
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_one_shot_tm_with_power_then_safe(standalone_twin, tmp_path):
    config = shell_config(standalone_twin, tmp_path)
    done = bench_cli("tm", "EPS.VBUS", "--power", "-c", str(config), "--out", str(tmp_path / "runs"), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    [power, tm] = [json.loads(line) for line in done.stdout.splitlines()]
    assert power["kind"] == "power" and power["state"] == "on"
    assert 3.0 < tm["values"]["EPS.VBUS"] < 4.2, tm
    assert not standalone_twin.output_on() and _bench_free(config)


def shell_with_dut_on(standalone_twin, config, tmp_path) -> subprocess.Popen[str]:
    """A shell that was told `power on` (stdin left open), once the twin's supply delivers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "shell", "-c", str(config), "--out", str(tmp_path / "runs")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=PROJECT,
    )  # fmt: skip
    try:
        assert proc.stdin is not None
        proc.stdin.write("power on\n")
        proc.stdin.flush()
        await_true(lambda: standalone_twin.output_on() or proc.poll() is not None, timeout_s=60, what="DUT on")
    except BaseException:
        proc.kill()
        raise
    return proc


def test_emergency_stop_ends_the_shell_safe(standalone_twin, tmp_path):
    config = shell_config(standalone_twin, tmp_path)
    proc = shell_with_dut_on(standalone_twin, config, tmp_path)
    try:
        stop = bench_cli("safe", "-c", str(config), "--reason", "test stop")
        assert stop.returncode == 0, stop.stdout + stop.stderr
        out, err = proc.communicate(timeout=60)  # stdin left open: the stop alone must end the shell
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
    assert proc.returncode == 2, out + err
    assert "EMERGENCY STOP" in err and "test stop" in err, err
    assert not standalone_twin.output_on()
    assert _bench_free(config)
    cleared = bench_cli("safe", "--clear", "-c", str(config))
    assert cleared.returncode == 0, cleared.stdout + cleared.stderr


def test_sigterm_ends_the_shell_safe(standalone_twin, tmp_path):
    config = shell_config(standalone_twin, tmp_path)
    proc = shell_with_dut_on(standalone_twin, config, tmp_path)
    try:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
    assert proc.returncode == 130 and "bench safe (interrupted" in err, out + err
    assert not standalone_twin.output_on() and _bench_free(config)
