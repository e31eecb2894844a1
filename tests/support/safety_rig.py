"""A handle on a standalone twin for the exit-path tests, a bench config pointing at it, a bench subprocess.

The supply's I/O watchdog resets on *any* SCPI traffic, so these tests read the twin's state through its
control endpoint (not SCPI): otherwise our own checks would keep the outputs alive.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.config import CONFIG_DIR
from bench.twin_launcher import TwinProcess, twin_control

PROJECT = Path(__file__).resolve().parents[2]
LIMITS = PROJECT / "test_plans" / "limits.yaml"


class TwinHandle:
    def __init__(self, twin: TwinProcess) -> None:
        self.twin = twin
        self.psu_resource = str(twin.endpoints["psu"]["resource"])
        self.vsa_resource = str(twin.endpoints["vsa"]["resource"])
        self.vsg_resource = str(twin.endpoints["vsg"]["resource"])

    def control(self, **cmd: Any) -> dict[str, Any]:
        return twin_control(self.twin.endpoints, **cmd)

    def channel_state(self, ch: int = 1) -> dict[str, Any]:
        return next(c for c in self.twin_state()["psu"]["channels"] if c["channel"] == ch)

    def twin_state(self) -> dict[str, Any]:
        return self.control(cmd="state")

    def output_on(self, ch: int = 1) -> bool:
        """Is the output delivering power? (After a watchdog trip the *programmed* state stays on, as on
        Keysight supplies, but the output is latched off.)"""
        return bool(self.channel_state(ch)["delivering"])

    def output_programmed_on(self, ch: int = 1) -> bool:
        return bool(self.channel_state(ch)["output"])


def bench_config_for(twin: TwinHandle, tmp_path: Path, watchdog_s: float = 1.0) -> Path:
    """The standalone-twin config pointed at this twin's free port, with a short watchdog."""
    text = (CONFIG_DIR / "twin-standalone.yaml").read_text()
    text = text.replace("TCPIP0::127.0.0.1::5025::SOCKET", twin.psu_resource)
    text = text.replace("TCPIP0::127.0.0.1::5026::SOCKET", twin.vsa_resource)
    text = text.replace("TCPIP0::127.0.0.1::5027::SOCKET", twin.vsg_resource)
    text = text.replace("watchdog_s: 5", f"watchdog_s: {watchdog_s}\n  heartbeat_s: 0.2")
    path = tmp_path / "bench.yaml"
    path.write_text(text)
    return path


def start_bench(plan: Path, config: Path, tmp_path: Path, mode: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "MODE": mode, "MARKER": str(tmp_path / "dut-on")}
    argv = [sys.executable, "-m", "pytest", str(plan), "-q", "-p", "no:cacheprovider", "--bench-config", str(config)]
    argv += ["--out", str(tmp_path / "runs"), "--limits", str(LIMITS), "--rootdir", str(tmp_path), *extra]
    return subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
