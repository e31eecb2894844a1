"""`bench twin` serves a twin that plain pyvisa can query; `bench safe` switches a live bench's outputs off;
an auto-started twin never outlives the bench that started it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyvisa

from bench.config import CONFIG_DIR
from bench.twin_launcher import TwinProcess
from bench.waiting import await_true

PROJECT = Path(__file__).resolve().parents[2]


def _open(resource: str) -> pyvisa.resources.MessageBasedResource:
    return pyvisa.ResourceManager("@py").open_resource(resource, read_termination="\n", write_termination="\n")


def test_bench_twin_lists_endpoints_and_answers_pyvisa(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "twin", "--ports", "fixed"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        while not lines or lines[-1] != "twin ready":
            line = proc.stdout.readline()
            assert line, f"twin ended before it was ready: {lines}"
            lines.append(line.strip())
        psu_line = next(line for line in lines if line.startswith("psu "))
        assert "TCPIP0::127.0.0.1::5025::SOCKET" in psu_line
        psu = _open("TCPIP0::127.0.0.1::5025::SOCKET")
        assert psu.query("*IDN?").startswith("Keysight Technologies,E36312A,")
        psu.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_bench_safe_switches_outputs_off_from_another_terminal(tmp_path):
    with TwinProcess(ports="auto") as twin:
        resource = str(twin.endpoints["psu"]["resource"])
        psu = _open(resource)
        psu.write("VOLT 3.8,(@1)")
        psu.write("OUTP 1,(@1)")
        assert psu.query("OUTP? (@1)") == "1"
        cfg = tmp_path / "lab.yaml"
        text = (CONFIG_DIR / "twin-standalone.yaml").read_text().replace("TCPIP0::127.0.0.1::5025::SOCKET", resource)
        for name, port in (("vsa", 5026), ("vsg", 5027)):
            text = text.replace(f"TCPIP0::127.0.0.1::{port}::SOCKET", str(twin.endpoints[name]["resource"]))
        cfg.write_text(text)
        proc = subprocess.run(
            [sys.executable, "-m", "bench.cli", "safe", "-c", str(cfg)], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        assert "all outputs off" in proc.stderr
        assert psu.query("OUTP? (@1)") == "0"
        psu.close()


def test_bench_safe_finds_auto_started_twins():
    with TwinProcess(ports="auto") as twin:
        psu = _open(str(twin.endpoints["psu"]["resource"]))
        psu.write("VOLT 3.8,(@1)")
        psu.write("OUTP 1,(@1)")
        proc = subprocess.run([sys.executable, "-m", "bench.cli", "safe"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert str(twin.endpoints["psu"]["resource"]) in proc.stderr
        assert psu.query("OUTP? (@1)") == "0"
        psu.close()


def test_auto_started_twin_dies_with_its_bench(tmp_path):
    script = textwrap.dedent(
        """
        import json, sys, time
        from bench.twin_launcher import TwinProcess
        twin = TwinProcess(ports="auto").start()
        print(json.dumps({"twin_pid": twin.pid}), flush=True)
        sys.stdin.read()  # until killed
        """
    )
    bench = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    twin_pid = json.loads(bench.stdout.readline())["twin_pid"]
    bench.kill()  # SIGKILL: no cleanup code of the bench runs
    bench.wait(timeout=10)

    def twin_gone() -> bool:
        try:
            os.kill(twin_pid, 0)
        except ProcessLookupError:
            return True
        # A zombie is gone for our purposes (its parent, the dead bench, cannot reap it).
        return Path(f"/proc/{twin_pid}/stat").read_text().split()[2] == "Z"

    await_true(twin_gone, timeout_s=10, what=f"the orphaned twin (pid {twin_pid}) to exit")
