"""Run a CanHub in a background thread's event loop and talk to it from the test thread.

The clients under test are real python-can buses (blocking, in the test thread); the hub runs exactly as in the
twin process, on its own asyncio loop. Synchronisation is by awaited predicates with timeouts, never by sleeps.
"""

from __future__ import annotations

import socket
import time
from typing import Any, TypeVar

import can
from loop_support import LoopThread

from twin.canbus import CanBusStats, CanHub

T = TypeVar("T")


class HubThread(LoopThread):
    """A started CanHub (free ports) living in its own thread."""

    def __init__(self, **hub_options: Any) -> None:
        super().__init__("can-hub")
        self.hub = CanHub(**hub_options)
        self.run(self.hub.start("127.0.0.1", 0, 0))
        endpoints = self.hub.endpoints()
        self.socketcand_port: int = endpoints["can_socketcand"]["port"]
        self.slcan_url: str = endpoints["can_slcan"]["url"]
        self.slcan_port: int = endpoints["can_slcan"]["port"]

    def stats(self) -> CanBusStats:
        return self.call(self.hub.stats)

    def port_stats(self, kind: str) -> list[Any]:
        return [p for p in self.stats().ports if p.kind == kind]

    def close(self) -> None:
        self.run(self.hub.close())
        super().close()


def recv_n(bus: can.BusABC, n: int, *, timeout_s: float = 5.0) -> list[can.Message]:
    """Receive exactly `n` messages (fails on timeout)."""
    got: list[can.Message] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"received {len(got)} of {n} frames within {timeout_s} s")
        msg = bus.recv(timeout=left)
        if msg is not None:
            got.append(msg)
    return got


class RawClient:
    """A bare TCP client for byte-exact protocol checks."""

    def __init__(self, port: int, *, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        self.sock.settimeout(5.0)
        self.pending = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_exact_write(self) -> bytes:
        """One recv(): what the hub wrote in one go (used for the handshake's separate-write rule)."""
        return self.sock.recv(256)

    def read_until(self, marker: bytes, *, timeout_s: float = 5.0) -> bytes:
        """Read until `marker` has arrived; return everything up to and including it."""
        deadline = time.monotonic() + timeout_s
        while marker not in self.pending:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed before {marker!r}; got {self.pending!r}")
            self.pending += chunk
        head, _, self.pending = self.pending.partition(marker)
        return head + marker

    def close(self) -> None:
        self.sock.close()
