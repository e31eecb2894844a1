"""The twin as a process: endpoint table, lifecycle, signals, parent death, loopback-only binding."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaps counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_endpoint_lines_and_endpoints_file(start_twin: Callable[..., Any]) -> None:
    twin = start_twin()
    lines = twin.stdout.splitlines()
    assert lines[-1] == "twin ready"
    psu_port, control_port = twin.port("psu"), twin.port("control")
    assert re.fullmatch(
        rf"psu\s{{2,}}TCPIP0::127\.0\.0\.1::{psu_port}::SOCKET\s{{2,}}Keysight E36312A 3-channel power supply"
        r" \(CH1 feeds the DUT main bus\)",
        lines[0],
    )
    assert re.fullmatch(rf"control\s{{2,}}tcp://127\.0\.0\.1:{control_port}\s{{2,}}twin control .*", lines[1])
    table = json.loads(twin.endpoints_file.read_text())
    assert table["pid"] == twin.proc.pid
    psu = table["endpoints"]["psu"]
    assert psu["kind"] == "scpi"
    assert psu["resource"] == f"TCPIP0::127.0.0.1::{psu_port}::SOCKET"
    assert (psu["host"], psu["port"]) == ("127.0.0.1", psu_port)
    assert table["endpoints"]["control"]["kind"] == "jsonl"
    assert not list(twin.endpoints_file.parent.glob(".*.tmp"))  # written via a temporary file, then renamed


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_with_exit_code_zero(start_twin: Callable[..., Any], signum: int) -> None:
    twin = start_twin("--psu-dialect", "rigol")
    twin.proc.send_signal(signum)
    assert twin.proc.wait(timeout=5) == 0
    assert not twin.endpoints_file.exists()  # a stale table would point the next reader at dead ports
    assert "Traceback" not in twin.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.com"])
def test_non_loopback_host_is_refused_with_one_line(host: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "twin", "--host", host, "--ports", "auto"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "loopback" in result.stderr and host in result.stderr


def test_exits_when_the_parent_pid_dies(start_twin: Callable[..., Any], wait_for: Callable[..., Any]) -> None:
    # Not our parent, so only the 0.2 s poll can notice it.
    stand_in = subprocess.Popen(["sleep", "60"])
    try:
        twin = start_twin("--parent-pid", str(stand_in.pid))
        assert twin.proc.poll() is None
    finally:
        stand_in.kill()
        stand_in.wait()
    wait_for(lambda: twin.proc.poll() is not None, 3.0, "the twin to exit after its parent")
    assert twin.proc.returncode == 0
    assert "Traceback" not in twin.stderr


def test_exits_when_its_launcher_is_killed(tmp_path: Path, wait_for: Callable[..., Any]) -> None:
    # The real case: the bench (the twin's parent) dies by SIGKILL; PR_SET_PDEATHSIG (or the poll) stops the twin.
    endpoints = tmp_path / "endpoints.json"
    stderr = tmp_path / "twin-stderr.txt"
    launcher_code = (
        "import os, subprocess, sys\n"
        f"err = open({str(stderr)!r}, 'wb')\n"
        "p = subprocess.Popen([sys.executable, '-m', 'twin', '--ports', 'auto', '--endpoints-file',"
        f" {str(endpoints)!r}, '--parent-pid', str(os.getpid())], stdout=subprocess.DEVNULL, stderr=err)\n"
        "print(p.pid, flush=True)\n"
        "p.wait()\n"
    )
    launcher = subprocess.Popen(
        [sys.executable, "-c", launcher_code], cwd=REPO, env=_env(), stdout=subprocess.PIPE, text=True
    )
    twin_pid = 0
    try:
        assert launcher.stdout is not None
        twin_pid = int(launcher.stdout.readline())
        wait_for(endpoints.exists, 15.0, "the endpoints file")
    finally:
        launcher.kill()
        launcher.wait()
    try:
        wait_for(lambda: _gone(twin_pid), 3.0, "the twin to exit after its launcher was killed")
    finally:
        if not _gone(twin_pid):
            os.kill(twin_pid, signal.SIGKILL)
    assert "stopping" in stderr.read_text()


def test_a_busy_fixed_port_fails_with_one_clear_line(start_twin: Callable[..., Any]) -> None:
    # Run a second twin whose PSU port is the first twin's control port: it cannot bind and must say so.
    # (Fixed ports are not used, so this cannot clash with another twin on this machine.)
    first = start_twin()
    result = subprocess.run(
        [sys.executable, "-c", _BIND_CONFLICT.format(port=first.port("control"))],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert result.returncode == 1
    assert re.search(rf"cannot listen on 127\.0\.0\.1:{first.port('control')} for psu", result.stderr)


_BIND_CONFLICT = """
import asyncio, dataclasses, sys
from twin import app, psu_service
from twin.world import Options
spec = psu_service.PSU_DIALECTS["keysight"]
psu_service.PSU_DIALECTS["keysight"] = dataclasses.replace(spec, port={port})
sys.exit(asyncio.run(app.run(Options())))
"""
