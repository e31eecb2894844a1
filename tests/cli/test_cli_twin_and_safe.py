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

from bench.config import CONFIG_DIR, load_config
from bench.session import BenchSession
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


def test_bench_safe_finds_the_private_twin_of_a_running_session():
    """`bench safe` with no config finds a running session by its run id: the lease records its twin's address."""
    session = BenchSession.open(load_config(CONFIG_DIR / "twin.yaml"), None, None, install_signals=False)
    try:
        assert session.twin is not None
        resource = str(session.twin.endpoints["psu"]["resource"])
        session.psu.set_voltage(1, 3.8)
        session.psu.set_output(1, True)
        psu = _open(resource)
        assert psu.query("OUTP? (@1)") == "1"
        other = subprocess.run(
            [sys.executable, "-m", "bench.cli", "safe", "--run", "20000101T000000Z-0000"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert other.returncode == 1 and "no bench is held by run 20000101T000000Z-0000" in other.stderr
        assert psu.query("OUTP? (@1)") == "1", "--run narrows the stop to that run's bench"
        proc = subprocess.run(
            [sys.executable, "-m", "bench.cli", "safe", "--run", session.run_id],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert f"interlock set: bench {session.bench_name}" in proc.stderr, proc.stderr
        assert resource in proc.stderr
        assert psu.query("OUTP? (@1)") == "0"
        psu.close()
    finally:
        session.close("test end")


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


def test_bench_safe_reaches_the_instruments_of_a_config_that_does_not_validate(tmp_path):
    """A mistyped driver stops `bench run` and `bench check` in one line; the emergency stop still acts: the supply
    is found by *IDN?, and the generator's RF goes off too."""
    with TwinProcess(ports="auto") as twin:
        psu = _open(str(twin.endpoints["psu"]["resource"]))
        vsg = _open(str(twin.endpoints["vsg"]["resource"]))
        psu.write("VOLT 3.8,(@1)")
        psu.write("OUTP 1,(@1)")
        vsg.write("OUTP ON")
        text = (CONFIG_DIR / "twin-standalone.yaml").read_text().replace("keysight-e36312a", "keysight-e36313a")
        text = text.replace("TCPIP0::127.0.0.1::5025::SOCKET", str(twin.endpoints["psu"]["resource"]))
        text = text.replace("TCPIP0::127.0.0.1::5027::SOCKET", str(twin.endpoints["vsg"]["resource"]))
        cfg = tmp_path / "typo.yaml"
        cfg.write_text(text)
        proc = subprocess.run(
            [sys.executable, "-m", "bench.cli", "safe", "-c", str(cfg)], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        assert "unknown driver 'keysight-e36313a'" in proc.stderr and "Traceback" not in proc.stderr
        assert psu.query("OUTP? (@1)") == "0"
        assert vsg.query("OUTP?") in ("0", "OFF")
        psu.close()
        vsg.close()
