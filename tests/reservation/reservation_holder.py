"""Holders in other processes: a session on "another PC" that the tests can SIGKILL, SIGSTOP and resume.

A holder is ``python -c HOLDER_CODE SPEC``: it opens the store SPEC names (a FileStore directory or a PostgreSQL
URL), acquires the bench, optionally starts a LeaseKeeper, prints ``held`` and then waits on its stdin. The test
reads its lines through a reader thread, so every wait on it is bounded (``expect``); ``close`` resumes a stopped
holder and kills it, so no test leaves a process behind.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HOLDER_CODE = """
import json, os, sys
from bench.reservation import FileStore, LeaseKeeper, PostgresStore

spec = json.loads(sys.argv[1])
store = FileStore(spec["dir"]) if spec["kind"] == "file" else PostgresStore(spec["url"])
handle = store.acquire(spec["bench"], run_id=spec["run_id"], holder="ci", host="pc-2", pid=os.getpid(),
                       ttl_s=spec["ttl_s"], config="lab.yaml")
if spec["period_s"]:
    LeaseKeeper(handle, spec["period_s"], lambda il: print("interlock", flush=True),
                lambda why: print("lost", flush=True)).start()
print("held", flush=True)
sys.stdin.read()  # hold the bench until the test closes our stdin, or kills us
handle.release()
print("released", flush=True)
"""


class Holder:
    """One holder process; ``expect("held")`` before relying on it holding the bench."""

    def __init__(self, spec: dict[str, Any], stderr_path: Path, python: str = sys.executable) -> None:
        self.stderr_path = stderr_path
        self._stderr = stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [python, "-c", HOLDER_CODE, json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.strip())
        self._lines.put(None)  # end of output: the process exited

    def expect(self, wanted: str, timeout_s: float = 60.0) -> None:
        """Wait (bounded) for the holder to print ``wanted``; fail with its stderr if it dies first."""
        try:
            while (line := self._lines.get(timeout=timeout_s)) != wanted:
                if line is None:
                    raise AssertionError(f"holder exited before {wanted!r}: {self.stderr_path.read_text()}")
        except queue.Empty:
            raise AssertionError(f"holder did not print {wanted!r} within {timeout_s} s") from None

    def kill(self) -> None:
        """SIGKILL: no handler, no cleanup — only the kernel (or the database server) can free the bench."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=60)

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.resume()  # a stopped process is killed all the same, but is never left stopped
            self.proc.kill()
            self.proc.wait(timeout=60)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self._stderr.close()


@contextmanager
def holders(tmp_path: Path) -> Iterator[Any]:
    """Spawn holders with ``spawn(spec)``; every one is resumed and killed at the end."""
    spawned: list[Holder] = []

    def spawn(spec: dict[str, Any], python: str = sys.executable) -> Holder:
        holder = Holder(spec, tmp_path / f"holder-{len(spawned)}.stderr", python)
        spawned.append(holder)
        return holder

    try:
        yield spawn
    finally:
        for holder in spawned:
            holder.close()


def can_run_as(user: str, python: str, env: dict[str, str]) -> bool:
    """Whether ``runuser -u user -- python`` can import the bench's reservation module."""
    try:
        probe = subprocess.run(
            ["runuser", "-u", user, "--", python, "-c", "import bench.reservation"],
            env={**os.environ, **env},
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0
