"""An in-process SCPI responder on a loopback TCP port, for unit tests of pure driver logic.

It records every line it receives (so a test can assert that nothing was sent), answers queries from a
handler, keeps an error queue for `SYST:ERR?`, and can go silent, drop its connections or send stray bytes.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import deque
from collections.abc import Callable

Handler = Callable[[str], "str | None"]

NO_ERROR = '+0,"No error"'


class FakeScpi:
    """A scripted SCPI server. `handler(command)` returns the reply (queries) or None (no reply)."""

    def __init__(self, handler: Handler | None = None, replies: dict[str, str] | None = None) -> None:
        self.replies: dict[str, str] = {"*IDN?": "Acme,Model-1,SN42,1.0", "*OPC?": "1", **(replies or {})}
        self.handler = handler
        self.received: list[str] = []
        self.errors: deque[str] = deque()
        self.reject: dict[str, str] = {}  # command prefix -> error queued when it is received
        self.silent = False
        self.drop_on: str | None = None  # close the connection once, when this command arrives
        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def resource(self) -> str:
        return f"TCPIP0::127.0.0.1::{self.port}::SOCKET"

    def sent_nothing(self) -> bool:
        return not self.received

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self._clients.append(client)
                self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        buffer = b""
        while True:
            try:
                chunk = client.recv(4096)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                command = line.decode().strip()
                with self._lock:
                    self.received.append(command)
                if self.drop_on is not None and command == self.drop_on:
                    self.drop_on = None
                    client.close()
                    return
                reply = self._answer(command)
                if reply is not None and not self.silent:
                    try:
                        client.sendall(reply.encode() + b"\n")
                    except OSError:
                        return

    def _answer(self, command: str) -> str | None:
        if command == "SYST:ERR?":
            return self.errors.popleft() if self.errors else NO_ERROR
        for prefix, error in self.reject.items():
            if command.startswith(prefix):
                self.errors.append(error)
                return None
        if self.handler is not None:
            reply = self.handler(command)
            if reply is not None:
                return reply
        if command in self.replies:
            return self.replies[command]
        if command.endswith("?") or "? " in command:
            self.errors.append('-113,"Undefined header"')
        return None

    def drop(self) -> None:
        """Close every client connection (the server keeps listening)."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()

    def send_stray(self, data: bytes) -> None:
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.sendall(data)

    def close(self) -> None:
        self._server.close()
        self.drop()
