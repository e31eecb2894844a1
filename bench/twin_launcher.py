"""Start and stop the digital twin as a separate process.

The bench never imports the twin: it starts `python -m twin` as a subprocess and learns the twin's endpoints
(VISA resource strings, host:port, URLs) from the JSON file the twin writes once every server listens.
An auto-started twin is told our pid so that it exits by itself if the bench dies (no orphans), and it picks
free ports so parallel runs never collide. Endpoint files live in one runtime folder, which is how
`bench safe` finds the twins that are running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.waiting import AwaitTimeout, await_true


class TwinError(RuntimeError):
    """The twin could not be started or did not become ready."""


def runtime_dir() -> Path:
    """Folder holding the endpoint files of running twins (one per twin)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    path = Path(base) / f"ots-bench-{os.getuid()}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_twins() -> list[dict[str, Any]]:
    """Endpoint tables of the auto-started twins whose process is still alive."""
    found = []
    for path in sorted(runtime_dir().glob("twin-*.json")):
        try:
            table = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(table, dict) and _pid_alive(int(table.get("pid", -1))):
            found.append(table)
        else:
            path.unlink(missing_ok=True)
    return found


def twin_control(
    endpoints: dict[str, dict[str, Any]], timeout_s: float = 5.0, *, check: bool = True, **cmd: object
) -> dict[str, Any]:
    """One request to a twin's control endpoint (JSON Lines over TCP; tests and fault injection only).
    With ``check`` a refusal raises TwinError; without, the reply is returned as it is."""
    ctl = endpoints["control"]
    with socket.create_connection((str(ctl["host"]), int(ctl["port"])), timeout=timeout_s) as sock:
        sock.sendall((json.dumps(cmd) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    reply: dict[str, Any] = json.loads(data)
    if check and not reply.get("ok"):
        raise TwinError(f"twin control {cmd.get('cmd')!r} refused: {reply.get('error', reply)}")
    return reply


class TwinProcess:
    """A twin subprocess; use as a context manager. `endpoints` maps endpoint name to its address record."""

    def __init__(
        self,
        *,
        psu_dialect: str = "keysight",
        ports: str = "auto",
        seed: int = 0,
        log_path: Path | None = None,
        startup_timeout_s: float = 20.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.psu_dialect = psu_dialect
        self.ports = ports
        self.seed = seed
        self.startup_timeout_s = startup_timeout_s
        self.extra_args = extra_args
        self.endpoints_file = runtime_dir() / f"twin-{uuid.uuid4().hex[:12]}.json"
        self._own_log = log_path is None  # a log of ours is removed after a clean stop; a run's log is kept
        self.log_path = log_path or runtime_dir() / f"{self.endpoints_file.stem}.log"
        self.endpoints: dict[str, dict[str, Any]] = {}
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> TwinProcess:
        argv = [
            sys.executable, "-m", "twin",
            "--ports", self.ports,
            "--psu-dialect", self.psu_dialect,
            "--seed", str(self.seed),
            "--endpoints-file", str(self.endpoints_file),
            "--parent-pid", str(os.getpid()),
            *self.extra_args,
        ]  # fmt: skip
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            # Own session: a Ctrl-C in the bench's terminal must not kill the twin before the bench has put
            # its instruments in safe state through it.
            self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        proc = self._proc
        try:
            await_true(
                lambda: self.endpoints_file.exists() or proc.poll() is not None,
                timeout_s=self.startup_timeout_s,
                what="the twin's endpoints file",
                interval_s=0.02,
            )
        except AwaitTimeout:
            self.stop()
            raise TwinError(
                f"the twin did not become ready within {self.startup_timeout_s:g} s; its log: {self.log_path}"
            ) from None
        if proc.poll() is not None:
            raise TwinError(f"the twin exited with code {proc.returncode} at start-up: {self._log_tail()}")
        self.endpoints = json.loads(self.endpoints_file.read_text())["endpoints"]
        return self

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-3:]) or "(empty log)"

    def stop(self, timeout_s: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout_s)
        self.endpoints_file.unlink(missing_ok=True)
        if self._own_log and proc is not None and proc.returncode == 0:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> TwinProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
