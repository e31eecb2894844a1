"""SCPI over a VISA message-based resource (pyvisa-py), with the bench's error semantics.

`ScpiInstrument` is the one transport every SCPI driver uses. It owns a pyvisa resource opened through the
process-wide `@py` ResourceManager and adds what a test bench needs on top of bare pyvisa:

* one lock around each exchange: a heartbeat thread feeding the PSU's I/O watchdog shares the link with
  the test thread, and a reply must never be read by the wrong one;
* `write()` follows every command with `SYST:ERR?` until the queue is empty, so a rejected setting fails
  the step that sent it rather than passing silently;
* pyvisa/socket failures become `InstrumentTimeout`, `ConnectionLost` or `InstrumentUnreachable`, each
  naming the resource and the command;
* after a timeout or a broken link the next exchange starts on a fresh connection, so a late reply to an
  old command can never be taken as the answer to a new one. `reopen()` forces that (safe state uses it).

The query path is kept lean (a lock, one zero-timeout `poll` and the pyvisa call): the bench budget is
1.2x a bare pyvisa-py query.

Binary exchanges: `write_block` sends ``<prefix>#<n><len><data><suffix>`` (an ARB upload) and `query_block`
reads an IEEE 488.2 definite-length block reply (an IQ capture) fast. pyvisa's ``query_binary_values`` (and
``read_bytes``) go through pyvisa-py's socket session, which searches its whole pending buffer for the
termination character on every ``recv`` and returns at each 0x0A byte it finds inside the binary data
(~50 MB/s and O(n²)-ish for large blocks). `query_block` parses the header by hand and receives exactly the
announced number of bytes straight into a preallocated numpy buffer with ``socket.recv_into`` on the
session's own socket (after taking whatever pyvisa-py had already buffered); for a non-pyvisa-py resource it
falls back to ``read_bytes`` with the termination character disabled. Both run under the lock with the same
error mapping and reconnect-on-next-use as the text exchanges.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Final, Self

import pyvisa
from pyvisa import constants
from pyvisa.resources import MessageBasedResource

from instruments.errors import (
    ConnectionLost,
    InstrumentError,
    InstrumentRejected,
    InstrumentTimeout,
    InstrumentUnreachable,
    UnexpectedReply,
    WrongInstrument,
)

if TYPE_CHECKING:  # numpy only where a binary block is read: the emergency stop must not wait for it to load
    import numpy as np
    import numpy.typing as npt

__all__ = ["Identity", "ScpiInstrument", "resource_manager"]

_log = logging.getLogger(__name__)

_TERMINATION: Final = "\n"
# A healthy instrument empties its queue in one or two reads; the bound only stops a babbling one.
_MAX_ERROR_READS: Final = 32
_UNREACHABLE_ERRNOS: Final = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH})
_IO_ERRORS: Final = (pyvisa.errors.Error, OSError, EOFError, UnicodeDecodeError)
_RECV_CHUNK: Final = 4 << 20

_rm_lock = threading.Lock()
_rm: pyvisa.ResourceManager | None = None


def resource_manager() -> pyvisa.ResourceManager:
    """The process-wide pyvisa-py ResourceManager (one per process, created on first use)."""
    global _rm
    with _rm_lock:
        if _rm is None or not _is_open(_rm):
            # pyvisa hands out one shared manager per library: anyone's rm.close() closes ours too.
            _rm = pyvisa.ResourceManager("@py")
        return _rm


def _is_open(rm: pyvisa.ResourceManager) -> bool:
    try:
        rm.session  # noqa: B018 - raises InvalidSession once the manager is closed
    except pyvisa.errors.InvalidSession:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Identity:
    """The four `*IDN?` fields."""

    maker: str
    model: str
    serial: str
    firmware: str

    @classmethod
    def parse(cls, reply: str) -> Identity:
        """Parse `maker,model,serial,firmware`; missing trailing fields become ''."""
        fields = [field.strip() for field in reply.strip().split(",", 3)]
        fields += [""] * (4 - len(fields))
        return cls(*fields)


def _socket_of(resource: MessageBasedResource) -> socket.socket | None:
    """The TCP socket behind a pyvisa-py SOCKET session, or None for any other kind of resource.

    pyvisa has no public accessor; the socket lets us tell "peer closed" from "peer silent" (pyvisa-py
    reports both as a timeout) and detect a refused connect right at open.
    """
    sessions = getattr(resource.visalib, "sessions", None)
    try:
        sock = getattr(sessions[resource.session], "interface", None) if sessions is not None else None
    except (KeyError, TypeError, pyvisa.errors.InvalidSession):
        return None
    return sock if isinstance(sock, socket.socket) else None


def _arrival_probe(sock: socket.socket) -> Callable[[], bool]:
    """A zero-timeout "has anything arrived?" check; poll() where the OS has it (3x cheaper than select)."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return lambda: bool(poller.poll(0))
    return lambda: bool(select.select((sock,), (), (), 0)[0])


def _peer_gone(sock: socket.socket) -> str | None:
    """Why the peer is gone ('closed by the instrument', 'connection reset'), or None if it may still talk.

    Only call when `sock` is readable: the peek then never blocks.
    """
    try:
        data = sock.recv(1, socket.MSG_PEEK)
    except OSError as exc:
        return exc.strerror or str(exc)
    return "closed by the instrument" if not data else None


def _reason(exc: BaseException) -> str:
    """A short one-line cause for an error message (the message must stay one line in the journal)."""
    if isinstance(exc, pyvisa.errors.VisaIOError):
        text = exc.abbreviation
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    elif "error_timeout" in str(exc):  # pyvisa-py's bare Exception for a TCP connect that got no answer
        text = "no answer to the connection attempt"
    else:
        text = str(exc) or type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= 160 else text[:157] + "..."


class _BlockReader:
    """Reads one IEEE 488.2 definite-length block (+ terminator) from a pyvisa resource, fast where possible."""

    def __init__(self, resource: MessageBasedResource, timeout_s: float) -> None:
        self._res = resource
        self._deadline = time.monotonic() + timeout_s
        session = getattr(resource.visalib, "sessions", {}).get(resource.session)
        sock = getattr(session, "interface", None)
        pending = getattr(session, "_pending_buffer", None)
        self._sock = sock if isinstance(sock, socket.socket) and isinstance(pending, bytearray) else None
        self._pending: bytearray = pending if isinstance(pending, bytearray) else bytearray()

    def read_into(self, view: memoryview) -> None:
        """Fill ``view`` completely."""
        if self._sock is None:
            self._fallback_into(view)
            return
        pos = min(len(self._pending), len(view))
        if pos:
            view[:pos] = self._pending[:pos]
            del self._pending[:pos]
        sock = self._sock
        previous = sock.gettimeout()
        try:
            while pos < len(view):
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    raise pyvisa.errors.VisaIOError(constants.StatusCode.error_timeout)
                sock.settimeout(remaining)
                try:
                    got = sock.recv_into(view[pos:], min(_RECV_CHUNK, len(view) - pos))
                except TimeoutError:
                    raise pyvisa.errors.VisaIOError(constants.StatusCode.error_timeout) from None
                if got == 0:
                    raise ConnectionError("closed by the instrument")
                pos += got
        finally:
            sock.settimeout(previous)

    def _fallback_into(self, view: memoryview) -> None:
        res = self._res
        termination = res.read_termination
        res.read_termination = None  # disables pyvisa's termchar
        try:
            data = res.read_bytes(len(view), chunk_size=_RECV_CHUNK, break_on_termchar=False)
        finally:
            res.read_termination = termination
        view[: len(data)] = data
        if len(data) < len(view):
            raise pyvisa.errors.VisaIOError(constants.StatusCode.error_timeout)

    def read(self, count: int) -> bytes:
        buffer = bytearray(count)
        self.read_into(memoryview(buffer))
        return bytes(buffer)


class ScpiInstrument:
    """A thread-safe SCPI connection to one instrument, addressed by its VISA resource string."""

    def __init__(self, resource: str, timeout_s: float = 2.0, *, error_query: str = "SYST:ERR?") -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, not {timeout_s!r}")
        self._name = resource
        self._timeout_s = float(timeout_s)
        self._timeout_ms = self._timeout_s * 1000.0
        self._error_query = error_query
        self._lock = threading.Lock()
        self._res: MessageBasedResource | None = None
        self._sock: socket.socket | None = None
        self._arrived: Callable[[], bool] | None = None
        self._stale = False  # the stream may hold a late reply or be dead: reconnect before the next exchange
        self._closed = False
        self._identity: Identity | None = None
        with self._lock:
            self._open_locked(None)

    # -- connection -------------------------------------------------------------------------------------

    @property
    def resource(self) -> str:
        """The VISA resource string."""
        return self._name

    @property
    def timeout_s(self) -> float:
        """The I/O timeout of each exchange, in seconds."""
        return self._timeout_s

    def _open_locked(self, command: str | None) -> None:
        try:
            res = resource_manager().open_resource(
                self._name,
                open_timeout=int(self._timeout_ms),
                read_termination=_TERMINATION,
                write_termination=_TERMINATION,
                timeout=self._timeout_ms,
            )
        # pyvisa-py raises a bare Exception when a TCP connect times out; everything here means "not opened".
        except Exception as exc:
            raise InstrumentUnreachable(resource=self._name, reason=_reason(exc), command=command) from exc
        if not isinstance(res, MessageBasedResource):
            res.close()
            raise InstrumentUnreachable(
                resource=self._name, reason="not a message-based (SCPI) resource", command=command
            )
        sock = _socket_of(res)
        if sock is not None:
            # pyvisa-py's non-blocking connect "succeeds" on a refused port; the socket knows better.
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                res.close()
                raise InstrumentUnreachable(resource=self._name, reason=os.strerror(err), command=command)
            # Without it, a write followed by SYST:ERR? stalls ~40 ms on Nagle + the peer's delayed ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._res, self._sock, self._stale, self._closed = res, sock, False, False
        self._arrived = _arrival_probe(sock) if sock is not None else None
        _log.debug("%s: opened", self._name)

    def _close_locked(self) -> None:
        res, self._res, self._sock, self._arrived = self._res, None, None, None
        if res is not None:
            try:
                res.close()
            except _IO_ERRORS as exc:  # closing a dead link must not hide why it died
                _log.debug("%s: close: %s", self._name, _reason(exc))

    def reopen(self) -> None:
        """Drop the current connection (whatever its state) and open a fresh one."""
        with self._lock:
            self._close_locked()
            self._open_locked(None)

    def close(self) -> None:
        """Close the connection; further exchanges raise until `reopen()`."""
        with self._lock:
            self._closed = True
            self._close_locked()

    def __enter__(self) -> ScpiInstrument:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _ready(self, command: str) -> MessageBasedResource:
        """The resource, reconnected first if the last exchange failed; raises if the link is known dead."""
        res = self._res
        if res is None or self._stale:
            if self._closed:
                raise InstrumentError(
                    f"{self._name} was closed by the bench; cannot send '{command}' — call reopen() first",
                    resource=self._name,
                    command=command,
                )
            _log.info("%s: reconnecting after a failed exchange", self._name)
            self._close_locked()
            self._open_locked(command)
            res = self._res
            assert res is not None
        arrived = self._arrived
        # Nothing should be readable before we ask: if something is, it is EOF/reset (fail now instead of
        # after a full timeout) or a stray late reply (resync on a fresh connection).
        if arrived is not None and arrived():
            assert self._sock is not None
            if self._sock.fileno() < 0:
                # Closed inside this process (someone's ResourceManager.close() closes every resource of
                # the shared manager); nothing has been sent yet, so a fresh connection is safe.
                _log.warning("%s: connection closed by another user of pyvisa; reconnecting", self._name)
                self._close_locked()
                self._open_locked(command)
                res = self._res
                assert res is not None
                return res
            gone = _peer_gone(self._sock)
            if gone is not None:
                self._stale = True
                raise ConnectionLost(resource=self._name, command=command, reason=gone)
            _log.warning("%s: unsolicited bytes before '%s'; resynchronising", self._name, command)
            self._close_locked()
            self._open_locked(command)
            res = self._res
            assert res is not None
        return res

    def _fail(self, exc: BaseException, command: str, timeout_s: float) -> InstrumentError:
        """Map a pyvisa/socket exception to the bench's error; the link is then reconnected on next use."""
        self._stale = True
        if isinstance(exc, UnicodeDecodeError):
            return UnexpectedReply(
                resource=self._name, command=command, reply=repr(exc.object[:40]), expected="ASCII text"
            )
        if isinstance(exc, pyvisa.errors.VisaIOError) and exc.error_code == constants.StatusCode.error_timeout:
            # pyvisa-py reports a closed peer as a timeout too; the socket tells them apart.
            sock, arrived = self._sock, self._arrived
            if sock is not None and arrived is not None:
                try:
                    readable = arrived()
                except (OSError, ValueError):
                    readable = False
                gone = _peer_gone(sock) if readable else None
                if gone is not None:
                    return ConnectionLost(resource=self._name, command=command, reason=gone)
            return InstrumentTimeout(resource=self._name, command=command, timeout_s=timeout_s)
        if isinstance(exc, OSError) and exc.errno in _UNREACHABLE_ERRNOS:
            return InstrumentUnreachable(resource=self._name, reason=_reason(exc), command=command)
        return ConnectionLost(resource=self._name, command=command, reason=_reason(exc))

    # -- exchanges --------------------------------------------------------------------------------------

    def _query_locked(self, command: str, timeout_s: float | None, label: str | None = None) -> str:
        res = self._ready(label or command)
        try:
            if timeout_s is None:
                reply = res.query(command)
            else:
                res.timeout = timeout_s * 1000.0
                try:
                    reply = res.query(command)
                finally:
                    res.timeout = self._timeout_ms
        except _IO_ERRORS as exc:
            raise self._fail(exc, label or command, timeout_s or self._timeout_s) from exc
        _log.debug("%s: %s -> %s", self._name, command, reply)
        return reply

    def query(self, command: str, *, timeout_s: float | None = None) -> str:
        """Send a query and return its reply (termination stripped). `timeout_s` overrides for this call."""
        with self._lock:
            return self._query_locked(command, timeout_s)

    def query_float(self, command: str) -> float:
        """Query one number."""
        reply = self.query(command)
        try:
            return float(reply)
        except ValueError:
            raise UnexpectedReply(resource=self._name, command=command, reply=reply, expected="a number") from None

    def query_int(self, command: str) -> int:
        """Query one integer (a register value, a count)."""
        reply = self.query(command)
        try:
            # Some instruments answer registers in float notation ('+1.024E+03').
            return int(reply) if reply.lstrip("+-").isdigit() else int(float(reply))
        except (ValueError, OverflowError):  # OverflowError: 'INF' or '9.9E+999' parse as a float, no int
            raise UnexpectedReply(resource=self._name, command=command, reply=reply, expected="an integer") from None

    def query_floats(self, command: str, *, timeout_s: float | None = None) -> tuple[float, ...]:
        """Query a comma-separated list of numbers."""
        reply = self.query(command, timeout_s=timeout_s)
        try:
            return tuple(float(item) for item in reply.split(","))
        except ValueError:
            raise UnexpectedReply(
                resource=self._name,
                command=command,
                reply=reply if len(reply) <= 60 else reply[:60] + "...",
                expected="comma-separated numbers",
            ) from None

    def write(self, command: str, check: bool = True) -> None:
        """Send a command; with `check`, read the error queue empty and raise InstrumentRejected if it held any."""
        self._send(command, lambda res: res.write(command), check)

    def write_block(self, prefix: str, data: bytes, suffix: str = "", *, check: bool = True) -> None:
        """Send ``<prefix>#<n><len><data><suffix>`` + terminator (e.g. an ARB upload), then, with `check`, read
        the error queue empty and raise InstrumentRejected if it held any. Errors name the command as
        ``<prefix>#<<len> bytes><suffix>``."""
        length = str(len(data))
        message = b"".join(
            (prefix.encode("ascii"), f"#{len(length)}{length}".encode("ascii"), data, suffix.encode("ascii"), b"\n")
        )
        self._send(f"{prefix}#<{len(data)} bytes>{suffix}", lambda res: res.write_raw(message), check)

    def _send(self, command: str, send: Callable[[MessageBasedResource], object], check: bool) -> None:
        """One write under the lock (``command`` names it in logs and errors), then the error-queue check."""
        with self._lock:
            res = self._ready(command)
            try:
                send(res)
            except _IO_ERRORS as exc:
                raise self._fail(exc, command, self._timeout_s) from exc
            _log.debug("%s: %s", self._name, command)
            if check:
                errors = self._drain_errors_locked(command)
                if errors:
                    (code, text), *more = errors
                    raise InstrumentRejected(
                        resource=self._name, command=command, code=code, text=text, more=tuple(more)
                    )

    def query_block(self, command: str, *, timeout_s: float | None = None) -> npt.NDArray[np.uint8]:
        """Send ``command`` and read its definite-length block reply (``#<n><len><bytes>`` + terminator) as
        uint8. `timeout_s` bounds the whole reply (default: the I/O timeout)."""
        timeout = timeout_s if timeout_s is not None else self._timeout_s
        with self._lock:
            res = self._ready(command)
            try:
                res.write(command)
                reader = _BlockReader(res, timeout)
                head = reader.read(2)
                if head[:1] != b"#" or not head[1:2].isdigit() or head[1:2] == b"0":
                    self._stale = True
                    raise UnexpectedReply(
                        resource=self._name, command=command, reply=repr(head), expected="a definite-length block"
                    )
                count_text = reader.read(int(head[1:2]))
                if not count_text.isdigit():
                    self._stale = True
                    raise UnexpectedReply(
                        resource=self._name,
                        command=command,
                        reply=repr(head + count_text),
                        expected="a definite-length block",
                    )
                import numpy as np

                data = np.empty(int(count_text), dtype=np.uint8)
                reader.read_into(data.data)
                tail = reader.read(1)
                if tail == b"\r":
                    tail = reader.read(1)
                if tail != b"\n":
                    self._stale = True
                    raise UnexpectedReply(
                        resource=self._name, command=command, reply=repr(tail), expected="'\\n' after the block"
                    )
            except InstrumentError:
                raise
            except _IO_ERRORS as exc:
                raise self._fail(exc, command, timeout) from exc
        _log.debug("%s: %s -> <%d bytes>", self._name, command, data.nbytes)
        return data

    def _drain_errors_locked(self, after: str | None) -> list[tuple[int, str]]:
        # Errors while draining name the command that was checked, written as the compound message it is.
        label = f"{after}; {self._error_query}" if after else None
        errors: list[tuple[int, str]] = []
        for _ in range(_MAX_ERROR_READS):
            reply = self._query_locked(self._error_query, None, label)
            code_text, _, text = reply.partition(",")
            try:
                code = int(code_text)
            except ValueError:
                raise UnexpectedReply(
                    resource=self._name, command=self._error_query, reply=reply, expected='<code>,"<text>"'
                ) from None
            if code == 0:
                return errors
            errors.append((code, text.strip().strip('"')))
        _log.warning("%s: error queue still not empty after %d reads", self._name, _MAX_ERROR_READS)
        return errors

    def drain_errors(self) -> tuple[tuple[int, str], ...]:
        """Read the instrument's error queue until empty; return the (code, text) pairs it held."""
        with self._lock:
            return tuple(self._drain_errors_locked(None))

    def identity(self) -> Identity:
        """Maker, model, serial and firmware from `*IDN?` (read once, then cached)."""
        if self._identity is None:
            self._identity = Identity.parse(self.query("*IDN?"))
        return self._identity


class ScpiDriver:
    """What every SCPI instrument driver has: its transport, resource, identity, and closing (also as a
    context manager).

    A driver declares which instruments it was written for (`IDN_MAKER`, `IDN_MODEL`: regular expressions
    matched against the `*IDN?` maker and model fields); `verify_identity()` refuses any other instrument
    before a single setting is sent — a mistyped address must not put a supply's output commands into an
    oscilloscope or another bench's supply."""

    MODEL: ClassVar[str] = "SCPI instrument"
    IDN_MAKER: ClassVar[str] = ""
    IDN_MODEL: ClassVar[str] = ""

    def __init__(self, resource: str, timeout_s: float = 2.0) -> None:
        self._scpi = ScpiInstrument(resource, timeout_s)

    @property
    def scpi(self) -> ScpiInstrument:
        """The transport, for diagnostics and commands the driver does not cover."""
        return self._scpi

    @property
    def resource(self) -> str:
        return self._scpi.resource

    def identity(self) -> Identity:
        return self._scpi.identity()

    def verify_identity(self, driver: str) -> Identity:
        """The identity, if it is a model this driver is for; else `WrongInstrument` (nothing else sent)."""
        ident = self.identity()
        maker_ok = re.search(self.IDN_MAKER, ident.maker, re.IGNORECASE) is not None
        model_ok = re.fullmatch(self.IDN_MODEL, ident.model, re.IGNORECASE) is not None
        if not (maker_ok and model_ok):
            shown = ",".join((ident.maker, ident.model, ident.serial, ident.firmware))
            raise WrongInstrument(resource=self.resource, driver=driver, expected=self.MODEL, identity=shown)
        return ident

    def close(self) -> None:
        self._scpi.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
