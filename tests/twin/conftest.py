"""Fixtures for the twin tests: the twin as a subprocess (as the bench starts it), sockets, an await helper.

The twin is always started with ``--ports auto --endpoints-file``; a test awaits the endpoints file (never
sleeps for it) and every process started here is killed at the end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.01) -> T:
    """Await a truthy ``predicate()`` (returned) or fail after ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {value!r})")
        time.sleep(interval)  # the poll period of this await helper, not a synchronisation delay


class ScpiSocket:
    """A raw-socket SCPI client (what pyvisa's SOCKET resource does, minus pyvisa)."""

    def __init__(self, port: int, timeout: float = 2.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._buffer = b""  # recv() rather than makefile(): a timed-out makefile cannot be read again

    def write(self, message: str) -> None:
        self.sock.sendall(message.encode() + b"\n")

    def read(self) -> str:
        while b"\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the twin")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def query(self, message: str) -> str:
        self.write(message)
        return self.read()

    def error(self) -> str:
        return self.query("SYST:ERR?")

    def close(self) -> None:
        self.sock.close()


class Twin:
    """A running ``python -m twin`` and what it published."""

    def __init__(self, proc: subprocess.Popen[bytes], workdir: Path, endpoints_file: Path) -> None:
        self.proc = proc
        self.workdir = workdir
        self.endpoints_file = endpoints_file
        self.table: dict[str, Any] = json.loads(endpoints_file.read_text())
        self.endpoints: dict[str, dict[str, Any]] = self.table["endpoints"]
        self._sockets: list[ScpiSocket] = []

    @property
    def stdout(self) -> str:
        return (self.workdir / "stdout.txt").read_text()

    @property
    def stderr(self) -> str:
        return (self.workdir / "stderr.txt").read_text()

    def port(self, name: str) -> int:
        return int(self.endpoints[name]["port"])

    def resource(self, name: str = "psu") -> str:
        return str(self.endpoints[name]["resource"])

    def scpi(self, timeout: float = 2.0) -> ScpiSocket:
        client = ScpiSocket(self.port("psu"), timeout)
        self._sockets.append(client)
        return client

    def control(self, request: dict[str, Any]) -> dict[str, Any]:
        with socket.create_connection(("127.0.0.1", self.port("control")), timeout=2.0) as sock:
            sock.sendall(json.dumps(request).encode() + b"\n")
            with sock.makefile("rb") as reader:
                reply: dict[str, Any] = json.loads(reader.readline())
        return reply

    def state(self) -> dict[str, Any]:
        reply = self.control({"cmd": "state"})
        assert reply["ok"], reply
        return reply

    def channel(self, number: int) -> dict[str, Any]:
        channel: dict[str, Any] = self.state()["psu"]["channels"][number - 1]
        return channel

    def dut(self) -> dict[str, Any]:
        dut: dict[str, Any] = self.state()["dut"]
        return dut

    def close_sockets(self) -> None:
        for client in self._sockets:
            client.close()
        self._sockets.clear()

    def kill(self) -> None:
        self.close_sockets()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def twin_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "twin", *args]


def twin_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


def launch(workdir: Path, *args: str, timeout: float = 15.0) -> Twin:
    """Start the twin on free ports and await its endpoints file."""
    workdir.mkdir(parents=True, exist_ok=True)
    endpoints_file = workdir / "endpoints.json"
    with (workdir / "stdout.txt").open("wb") as out, (workdir / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen(
            twin_command("--ports", "auto", "--endpoints-file", str(endpoints_file), *args),
            cwd=REPO,
            env=twin_env(),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_for(lambda: endpoints_file.exists() or proc.poll() is not None, timeout, "the endpoints file")
        if proc.poll() is not None:
            raise AssertionError(f"twin exited with {proc.returncode}: {(workdir / 'stderr.txt').read_text()}")
        # The file appears before the endpoint lines are printed; tests that read stdout want those too.
        wait_for(lambda: "twin ready" in (workdir / "stdout.txt").read_text(), timeout, "'twin ready'")
        return Twin(proc, workdir, endpoints_file)
    except BaseException:
        proc.kill()
        proc.wait(timeout=5)
        raise


@pytest.fixture
def start_twin(tmp_path: Path) -> Iterator[Callable[..., Twin]]:
    """Start twins for one test (``start_twin("--psu-dialect", "rigol")``); all are killed afterwards."""
    started: list[Twin] = []

    def start(*args: str) -> Twin:
        twin = launch(tmp_path / f"twin{len(started)}", *args)
        started.append(twin)
        return twin

    yield start
    for twin in started:
        twin.kill()


@pytest.fixture(scope="session")
def keysight_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    twin = launch(tmp_path_factory.mktemp("keysight"), "--psu-dialect", "keysight", "--seed", "7")
    yield twin
    twin.kill()


@pytest.fixture(scope="session")
def rigol_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    twin = launch(tmp_path_factory.mktemp("rigol"), "--psu-dialect", "rigol")
    yield twin
    twin.kill()


@pytest.fixture
def keysight(keysight_twin: Twin) -> Iterator[Twin]:
    """The shared Keysight twin, reset (*RST) before the test; its test sockets closed after."""
    client = keysight_twin.scpi()
    client.write("*RST;*CLS")
    assert client.query("*OPC?") == "1"
    yield keysight_twin
    keysight_twin.close_sockets()
    keysight_twin.control({"cmd": "fault", "name": "psu_silent", "on": False})
    reset = keysight_twin.scpi()
    reset.write("*RST")
    assert reset.query("*OPC?") == "1"
    keysight_twin.close_sockets()


@pytest.fixture
def rigol(rigol_twin: Twin) -> Iterator[Twin]:
    client = rigol_twin.scpi()
    client.write("*RST;*CLS")
    assert client.query("*OPC?") == "1"
    yield rigol_twin
    rigol_twin.close_sockets()


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., Any]:
    return wait_for
