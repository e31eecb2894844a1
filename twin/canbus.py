"""The twin's CAN bus: one shared, simulated 1 Mbit/s bus served over socketcand and slcan, plus in-process nodes.

What a bench sees
    The satellite's CAN bus, reachable the way a real bench reaches a real one:

    * **socketcand RAW mode** over TCP (python-can ``interface="socketcand"``), fixed port 29536. The bus is
      announced as channel ``vcan0``; a client may open any channel name (it is recorded in the statistics and
      logged) and always lands on this one bus.
    * **slcan/Lawicel** over TCP (python-can ``interface="slcan"``, ``channel="socket://host:29537"``), which is
      what a USB-CAN dongle looks like through pyserial.
    * **in-process nodes** (`CanHub.attach`): the twin's simulated OBC, EPS, … send and receive on the same bus.

Semantics
    * One fan-out path: every frame, whatever it came from, goes through one method (behind `CanHub.send` /
      `send_nowait`), which stamps it, counts it and appends it to the FIFO queue of every *other* port in one
      synchronous step. Frames therefore
      keep one global order and every receiver sees that order (libcsp drops CFP packets whose fragments arrive
      out of order). A sender never receives its own frames (socketcand does not set CAN_RAW_RECV_OWN_MSGS).
    * Queues are bounded (`queue_limit` frames per port). A full queue drops the new frame for that port only and
      counts it: a stalled client never slows the hub or the other clients.
    * Socket ports write in chunks: whatever accumulated while the event loop was busy leaves in one write, so a
      saturated bus costs a few syscalls per millisecond, not one per frame. When the kernel socket buffer and the
      transport buffer (`write_buffer_high` bytes) are full the port stops writing and its queue absorbs the rest
      (`socket_sndbuf` caps the kernel's share, which Linux otherwise autotunes up to ~50,000 frames).
    * The bus does not throttle senders to 1 Mbit/s: load is *measured* (see `CanBusStats`) and may exceed 100 %
      when clients offer more than a real bus could carry. Bit lengths: `twin.canbus_wire` (131 bits for an
      extended 8-byte frame unstuffed, 160 with worst-case stuffing).
    * Faults: `inject_error` puts an error frame on the bus (socketcand clients and nodes receive it; slcan has no
      encoding for it). Injecting `CanErrorClass.BUSOFF` also takes the bus down: data frames are dropped (and
      counted; an slcan transmit gets ``\\a``) until `recover()` or the given duration elapses, and recovery
      announces `RESTARTED`.
    * Like the real daemon, socketcand RAW mode does not forward remote frames; Lawicel cannot express error
      frames. Both are simply not written to those clients.

socketcand handshake (python-can compares whole ``recv`` results, so each reply is its own write)
    ``< hi >`` on connect; ``< open <channel> >`` → ``< ok >``; ``< rawmode >`` → ``< ok >``; frames start
    `raw_grace_s` after that last ``< ok >`` so they cannot share a TCP segment with it (frames arriving meanwhile
    are queued, not lost). ``< echo >`` is answered with ``< echo >``. In RAW mode an unknown or malformed command
    is logged and counted but not answered: python-can would choke on ``< error unknown command >``.

slcan commands
    ``C``, ``O`` (twice is fine), ``L`` (listen-only), ``S0``..``S8``, ``sxxyy``, an empty line → ``\\r``;
    ``V`` → ``V1013\\r``; ``N`` → ``NA123\\r``; ``F`` → ``F00\\r``; ``Z0`` → ``\\r`` (timestamps stay off, ``Z1``
    → ``\\a``); ``t``/``r`` → ``z\\r`` and ``T``/``R`` → ``Z\\r`` when the channel is open (else ``\\a``); CAN FD and
    anything else → ``\\a``. Received frames are written without a timestamp suffix.

Threading
    Every method must be called from the event loop the hub was started in (use
    ``loop.call_soon_threadsafe`` / ``asyncio.run_coroutine_threadsafe`` from other threads).

Registering in the twin app
    Stand-alone: ``hub = CanHub(); await hub.start(host, 29536, 29537)`` (0: free ports), ``hub.endpoints()``,
    ``await hub.close()``. As the app's per-port services: the app builds one hub, hands it to the satellite (whose
    nodes `attach` to it) and serves it twice (``twin/app.py``)::

        ServiceSpec("can_socketcand", lambda o: DEFAULT_SOCKETCAND_PORT, lambda p: p.can.service("socketcand")),
        ServiceSpec("can_slcan", lambda o: DEFAULT_SLCAN_PORT, lambda p: p.can.service("slcan")),
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from types import TracebackType
from typing import Any, ClassVar, Literal

from twin.canbus_wire import (
    BITS,
    CanErrorClass,
    CanFrame,
    parse_slcan_frame,
    parse_socketcand_send,
    slcan_frame,
    socketcand_frame,
)

__all__ = [
    "DEFAULT_CHANNEL",
    "DEFAULT_SLCAN_PORT",
    "DEFAULT_SOCKETCAND_PORT",
    "CanBusService",
    "CanBusStats",
    "CanErrorClass",
    "CanFrame",
    "CanHub",
    "FrameCallback",
    "NodePort",
    "PortStats",
]

log = logging.getLogger(__name__)

DEFAULT_SOCKETCAND_PORT = 29536
DEFAULT_SLCAN_PORT = 29537
DEFAULT_CHANNEL = "vcan0"
BITRATE = 1_000_000

# Malformed input is logged at WARNING this many times per connection, then at DEBUG: a confused client
# must not flood the twin's log.
_LOUD_MALFORMED = 10
_MAX_SOCKETCAND_COMMAND = 512  # longest sane command is ~40 chars; beyond this the input is garbage
_MAX_SLCAN_LINE = 64
_WRITE_CHUNK = 1024  # frames per write: ~45 KiB of socketcand text
_DROP_LOG_EVERY_S = 5.0  # a client that stays too slow gets one overflow warning per this many seconds
_NODE_YIELD_EVERY = 256  # a node with a synchronous callback yields to the loop this often in a burst

FrameCallback = Callable[[CanFrame], Awaitable[None] | None]
WireProtocol = Literal["socketcand", "slcan"]  # the TCP protocols the hub serves


# --- statistics ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortStats:
    """One connected client or in-process node."""

    name: str
    kind: str  # "socketcand" | "slcan" | "node"
    peer: str  # "host:port" of a TCP client, "" for nodes
    channel: str  # channel the socketcand client opened; slcan: "" ; nodes: ""
    receiving: bool  # subscribed to the bus (socketcand: raw mode; slcan: opened)
    sent: int  # frames this port put on the bus
    delivered: int  # frames handed to this port's writer/callback
    dropped: int  # frames lost because this port's queue was full
    queued: int
    malformed: int  # input lines rejected (syntax errors, unknown commands)


@dataclass(frozen=True)
class CanBusStats:
    """A snapshot of the bus.

    `bus_load_pct` is the unstuffed bit count of the frames of the last `window_s` seconds over the bitrate;
    `bus_load_worst_pct` the same with worst-case bit stuffing. The true load lies between the two.
    """

    channel: str
    bitrate: int
    frames: int  # data/remote frames put on the bus since start
    bytes: int  # their data bytes
    error_frames: int  # error frames injected
    window_s: float
    frames_in_window: int
    bits_in_window: int
    bits_in_window_worst: int
    bus_load_pct: float
    bus_load_worst_pct: float
    malformed_lines: int  # over all connections, closed ones included
    overflow_drops: int  # over all ports, closed ones included
    bus_off: bool
    bus_off_drops: int  # frames refused while the bus was off
    callback_errors: int  # exceptions raised by node callbacks
    ports: tuple[PortStats, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- ports ---------------------------------------------------------------------------------------------------


class _Envelope:
    """A frame on its way to the ports, with each text encoding computed at most once for all receivers."""

    __slots__ = ("_sc", "_sc_done", "_sl", "_sl_done", "frame")

    def __init__(self, frame: CanFrame) -> None:
        self.frame = frame
        self._sc: bytes | None = None
        self._sl: bytes | None = None
        self._sc_done = self._sl_done = False

    def socketcand(self) -> bytes | None:
        if not self._sc_done:
            self._sc, self._sc_done = socketcand_frame(self.frame), True
        return self._sc

    def slcan(self) -> bytes | None:
        if not self._sl_done:
            self._sl, self._sl_done = slcan_frame(self.frame), True
        return self._sl


class _Port:
    """Something attached to the bus: a queue of frames to deliver plus counters."""

    kind: ClassVar[str] = "?"
    peer = ""
    channel = ""
    receiving = False

    def __init__(self, hub: CanHub, name: str, queue_limit: int) -> None:
        self.hub = hub
        self.name = name
        self.queue: deque[_Envelope] = deque()
        self.queue_limit = queue_limit
        self.sent = 0
        self.delivered = 0
        self.dropped = 0
        self.malformed = 0
        self._drop_logged_at = -_DROP_LOG_EVERY_S

    def offer(self, env: _Envelope) -> None:
        if len(self.queue) >= self.queue_limit:
            self.dropped += 1
            self.hub._overflow_drops += 1
            now = time.monotonic()
            if now - self._drop_logged_at >= _DROP_LOG_EVERY_S:
                self._drop_logged_at = now
                log.warning("CAN %s: queue full (%d frames), %d frames dropped so far", self.name, self.queue_limit,
                            self.dropped)  # fmt: skip
            return
        self.queue.append(env)
        self._wake()

    def _wake(self) -> None:
        raise NotImplementedError

    def count_malformed(self, what: str) -> None:
        self.malformed += 1
        self.hub._malformed_lines += 1
        if self.malformed <= _LOUD_MALFORMED:
            suffix = "; further ones are logged at DEBUG" if self.malformed == _LOUD_MALFORMED else ""
            log.warning("CAN %s: %s%s", self.name, what, suffix)
        else:
            log.debug("CAN %s: %s", self.name, what)

    def stats(self) -> PortStats:
        return PortStats(
            name=self.name, kind=self.kind, peer=self.peer, channel=self.channel, receiving=self.receiving,
            sent=self.sent, delivered=self.delivered, dropped=self.dropped, queued=len(self.queue),
            malformed=self.malformed,
        )  # fmt: skip


class NodePort(_Port):
    """An in-process node on the bus (returned by `CanHub.attach`).

    Frames from other ports reach `callback` in bus order, one at a time, from the node's own task; an async
    callback is awaited before the next frame is delivered, so a slow node only backs up its own queue.
    """

    kind = "node"

    def __init__(self, hub: CanHub, name: str, queue_limit: int, callback: FrameCallback | None) -> None:
        super().__init__(hub, name, queue_limit)
        self._callback = callback
        self._waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.detached = False
        if callback is not None:
            self._task = asyncio.get_running_loop().create_task(self._deliver(callback), name=f"can-node-{name}")
            self.receiving = True

    async def send(self, frame: CanFrame) -> CanFrame | None:
        """Put `frame` on the bus from this node (it is not echoed back to this node)."""
        self._check_attached()
        return await self.hub.send(frame, source=self)

    def send_nowait(self, frame: CanFrame) -> CanFrame | None:
        """`send` without yielding to the event loop."""
        self._check_attached()
        return self.hub.send_nowait(frame, source=self)

    def _check_attached(self) -> None:
        if self.detached:
            raise RuntimeError(f"CAN node {self.name} is detached from the bus")

    def detach(self) -> None:
        """Leave the bus; queued frames are discarded."""
        self.detached = True
        self.hub._remove_port(self)
        self.receiving = False
        self.queue.clear()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _deliver(self, callback: FrameCallback) -> None:
        loop = asyncio.get_running_loop()
        queue = self.queue
        burst = 0
        while True:
            if not queue:
                burst = 0
                self._waiter = loop.create_future()
                await self._waiter
                continue
            env = queue.popleft()
            self.delivered += 1
            try:
                result = callback(env.frame)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.hub._callback_errors += 1
                log.exception("CAN node %s: callback failed on %r", self.name, env.frame)
            burst += 1
            if burst >= _NODE_YIELD_EVERY:
                burst = 0
                await asyncio.sleep(0)


class _StreamPort(_Port, asyncio.Protocol):
    """A TCP client. Reading parses commands; writing drains the queue in chunks, honouring flow control."""

    def __init__(self, hub: CanHub, queue_limit: int) -> None:
        super().__init__(hub, "?", queue_limit)
        self.transport: asyncio.Transport | None = None
        self._paused = False  # transport buffer above its high-water mark
        self._live = False  # may frames be written now?
        self._flush_scheduled = False
        self._inbuf = bytearray()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.name = f"{self.kind}#{next(self.hub._client_ids)} {self.peer}"
        transport.set_write_buffer_limits(high=self.hub.write_buffer_high)
        if self.hub.socket_sndbuf is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.hub.socket_sndbuf)
        self.hub._add_client(self)
        log.info("CAN %s connected", self.name)
        self.greet()

    def connection_lost(self, exc: Exception | None) -> None:
        self.hub._remove_port(self)
        self.hub._drop_client(self)
        self.receiving = self._live = False
        self.queue.clear()
        self.transport = None
        log.info("CAN %s disconnected%s", self.name, f" ({exc})" if exc else "")

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._schedule_flush()

    # writing

    def greet(self) -> None:
        pass

    def reply(self, text: bytes) -> None:
        if self.transport is not None:
            self.transport.write(text)

    def go_live(self) -> None:
        self._live = True
        self._schedule_flush()

    def _wake(self) -> None:
        if self._live and not self._paused:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        # Deferred to the next loop iteration: everything published meanwhile leaves in the same write.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def encode(self, env: _Envelope) -> bytes | None:
        raise NotImplementedError

    def _flush(self) -> None:
        self._flush_scheduled = False
        transport = self.transport
        if transport is None or not self._live or self._paused or not self.queue:
            return
        queue = self.queue
        encode = self.encode
        chunk = []
        for _ in range(min(len(queue), _WRITE_CHUNK)):
            line = encode(queue.popleft())
            if line is not None:
                chunk.append(line)
        self.delivered += len(chunk)
        if chunk:
            transport.write(b"".join(chunk))
        if queue and not self._paused:
            self._schedule_flush()


class _SocketcandPort(_StreamPort):
    kind = "socketcand"

    def __init__(self, hub: CanHub, queue_limit: int) -> None:
        super().__init__(hub, queue_limit)
        self.state = "nobus"  # nobus → bcm (after open) → raw (after rawmode)
        self._grace: asyncio.TimerHandle | None = None

    def greet(self) -> None:
        self.reply(b"< hi >")

    def encode(self, env: _Envelope) -> bytes | None:
        return env.socketcand()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._grace is not None:
            self._grace.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        buf = self._inbuf
        buf += data
        pos, end = 0, len(buf)
        while pos < end:
            start = buf.find(b"<", pos)
            if start < 0:
                if buf[pos:].strip():
                    self.count_malformed(f"text outside < >: {bytes(buf[pos : pos + 40])!r}")
                pos = end
                break
            if buf[pos:start].strip():
                self.count_malformed(f"text outside < >: {bytes(buf[pos:start][:40])!r}")
            stop = buf.find(b">", start)
            if stop < 0:
                if end - start > _MAX_SOCKETCAND_COMMAND:
                    self.count_malformed(f"unterminated command of {end - start} bytes discarded")
                    pos = end
                else:
                    pos = start  # wait for the rest
                break
            self.command(bytes(buf[start + 1 : stop]))
            pos = stop + 1
        del buf[:pos]

    def command(self, body: bytes) -> None:
        tokens = body.split()
        verb = tokens[0] if tokens else b""
        if verb == b"send" and self.state != "nobus":
            try:
                can_id, extended, data = parse_socketcand_send(tokens)
            except ValueError as exc:
                self.count_malformed(f"bad send command <{body.decode(errors='replace')}>: {exc}")
                return
            self.hub._publish(CanFrame(can_id, data, is_extended_id=extended), self)
        elif verb == b"echo" and len(tokens) == 1 and self.state != "nobus":
            self.reply(b"< echo >")
        elif verb == b"open" and len(tokens) == 2 and self.state == "nobus":
            self.channel = tokens[1].decode(errors="replace")
            if self.channel != self.hub.channel:
                log.info("CAN %s opened channel %r; every channel name is the one simulated bus %r", self.name,
                         self.channel, self.hub.channel)  # fmt: skip
            self.state = "bcm"
            self.reply(b"< ok >")
        elif verb == b"rawmode" and len(tokens) == 1 and self.state == "bcm":
            self.state = "raw"
            self.receiving = True
            self.hub._add_port(self)  # frames from now on are queued ...
            self.reply(b"< ok >")
            # ... but written only once the client has surely read this "< ok >" on its own.
            self._grace = asyncio.get_running_loop().call_later(self.hub.raw_grace_s, self.go_live)
        elif verb == b"bcmmode" and len(tokens) == 1 and self.state == "raw":
            self.state = "bcm"
            self.hub._remove_port(self)
            self.receiving = self._live = False
            self.queue.clear()
            if self._grace is not None:
                self._grace.cancel()
            self.reply(b"< ok >")
        elif self.state == "raw":
            # Answering "< error unknown command >" would make python-can raise CanError on its next recv().
            self.count_malformed(f"unknown command <{body[:60].decode(errors='replace')}> in raw mode (not answered)")
        else:
            self.count_malformed(f"unknown command <{body[:60].decode(errors='replace')}> in {self.state} mode")
            self.reply(b"< error unknown command >")


class _SlcanPort(_StreamPort):
    kind = "slcan"

    def __init__(self, hub: CanHub, queue_limit: int) -> None:
        super().__init__(hub, queue_limit)
        self.is_open = False
        self.listen_only = False
        self.bitrate_code = b""
        self._discarding = False  # inside an over-long line: skip to the next CR

    def encode(self, env: _Envelope) -> bytes | None:
        return env.slcan()

    def data_received(self, data: bytes) -> None:
        buf = self._inbuf
        buf += data
        pos = 0
        while True:
            cr = buf.find(b"\r", pos)
            if cr < 0:
                if len(buf) - pos > _MAX_SLCAN_LINE:
                    if not self._discarding:
                        self.count_malformed(f"line longer than {_MAX_SLCAN_LINE} bytes discarded")
                    self._discarding = True
                    pos = len(buf)
                break
            line = bytes(buf[pos:cr]).strip(b"\n")  # tolerate CR LF from terminal-style tools
            pos = cr + 1
            if self._discarding:
                self._discarding = False
                continue
            self.command(line)
        del buf[:pos]

    def command(self, line: bytes) -> None:
        head = line[:1]
        if not line:
            self.reply(b"\r")  # python-can sends an empty line where a CAN FD data rate would go
        elif head in (b"t", b"T", b"r", b"R"):
            self._transmit(line)
        elif line in (b"O", b"L"):
            self.listen_only = line == b"L"
            if not self.is_open:
                self.is_open = self.receiving = True
                self.hub._add_port(self)
                self.go_live()
            self.reply(b"\r")
        elif line == b"C":
            if self.is_open:
                self.is_open = self.receiving = self._live = False
                self.hub._remove_port(self)
                self.queue.clear()
            self.reply(b"\r")
        elif (head == b"S" and len(line) == 2 and line[1:] in b"012345678") or (
            head == b"s" and len(line) == 5 and all(c in b"0123456789abcdefABCDEF" for c in line[1:])
        ):
            if self.is_open:
                self.count_malformed(f"bit rate command {line!r} while the channel is open")
                self.reply(b"\a")
                return
            self.bitrate_code = line
            if line != b"S8":
                log.warning("CAN %s: bit rate %r requested; the simulated bus runs at %d bit/s", self.name,
                            line.decode(errors="replace"), self.hub.bitrate)  # fmt: skip
            self.reply(b"\r")
        elif line == b"V":
            self.reply(b"V1013\r")
        elif line == b"N":
            self.reply(b"NA123\r")
        elif line == b"F":
            self.reply(b"F00\r")
        elif line == b"Z0":
            self.reply(b"\r")
        else:
            self.count_malformed(f"unknown or unsupported command {line[:40]!r}")
            self.reply(b"\a")

    def _transmit(self, line: bytes) -> None:
        try:
            frame = parse_slcan_frame(line)
        except ValueError as exc:
            self.count_malformed(str(exc))
            self.reply(b"\a")
            return
        if not self.is_open or self.listen_only:
            log.debug("CAN %s: transmit refused (channel %s)", self.name, "listen-only" if self.is_open else "closed")
            self.reply(b"\a")
            return
        if self.hub._publish(frame, self) is None:
            self.reply(b"\a")  # bus-off: the controller cannot transmit
            return
        self.reply(b"Z\r" if frame.is_extended_id else b"z\r")


# --- the hub -------------------------------------------------------------------------------------------------


class CanHub:
    """One simulated CAN bus shared by TCP clients (socketcand, slcan) and in-process nodes. See the module doc."""

    def __init__(
        self,
        *,
        channel: str = DEFAULT_CHANNEL,
        bitrate: int = BITRATE,
        queue_limit: int = 20_000,
        raw_grace_s: float = 0.1,
        write_buffer_high: int = 256 * 1024,
        socket_sndbuf: int | None = None,
        window_s: float = 1.0,
    ) -> None:
        self.channel = channel
        self.bitrate = bitrate
        self.queue_limit = queue_limit
        self.raw_grace_s = raw_grace_s
        self.write_buffer_high = write_buffer_high
        # None: the kernel autotunes (up to MBs per client), which lets a saturated bus ride out a receiver's
        # scheduling hiccups; a number bounds how much a stalled client can have in flight before its queue drops.
        self.socket_sndbuf = socket_sndbuf
        self.window_s = window_s
        self._servers: dict[str, asyncio.Server] = {}
        self._addresses: dict[str, tuple[str, int]] = {}
        self._receivers: tuple[_Port, ...] = ()  # ports subscribed to the bus, in attach order
        self._clients: set[_StreamPort] = set()
        self._nodes: set[NodePort] = set()
        self._client_ids = itertools.count(1)
        self._frames = 0
        self._bytes = 0
        self._error_frames = 0
        self._malformed_lines = 0
        self._overflow_drops = 0
        self._callback_errors = 0
        self._bus_off = False
        self._bus_off_drops = 0
        self._recovery: asyncio.TimerHandle | None = None
        self._window: deque[tuple[float, int, int]] = deque()  # (monotonic time, bits, worst-case bits)
        self._window_bits = 0
        self._window_worst = 0

    # lifecycle

    async def start(
        self,
        host: str = "127.0.0.1",
        socketcand_port: int = DEFAULT_SOCKETCAND_PORT,
        slcan_port: int = DEFAULT_SLCAN_PORT,
    ) -> None:
        """Listen for socketcand and slcan clients (port 0: a free port chosen by the OS)."""
        await self.listen("socketcand", host, socketcand_port)
        await self.listen("slcan", host, slcan_port)

    async def listen(self, protocol: WireProtocol, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve one protocol on `host:port` (0: a free port); returns the bound port."""
        name = f"can_{protocol}"
        if name in self._servers:
            raise RuntimeError(f"CAN hub already serves {protocol}")
        port_class = _PORT_CLASSES[protocol]
        server = await asyncio.get_running_loop().create_server(
            lambda: port_class(self, self.queue_limit), host, port, reuse_address=True
        )
        self._servers[name] = server
        sockname = server.sockets[0].getsockname()
        self._addresses[name] = (sockname[0], sockname[1])
        log.info("CAN bus %s (%d bit/s): %s on %s:%d", self.channel, self.bitrate, protocol, *self._addresses[name])
        return int(sockname[1])

    async def stop_listening(self, protocol: WireProtocol) -> None:
        """Stop serving one protocol and disconnect its clients; with no protocol left, `close()` the hub."""
        server = self._servers.pop(f"can_{protocol}", None)
        self._addresses.pop(f"can_{protocol}", None)
        if server is not None:
            server.close()
            for client in [c for c in self._clients if c.kind == protocol]:
                if client.transport is not None:
                    client.transport.abort()
            await server.wait_closed()
            await asyncio.sleep(0)  # let connection_lost callbacks run
        if not self._servers:
            await self.close()

    def service(self, protocol: WireProtocol) -> CanBusService:
        """One listener of this hub in the shape of the twin app's per-port `Service` (see `CanBusService`)."""
        return CanBusService(self, protocol)

    async def close(self) -> None:
        """Stop listening, disconnect every client and detach every node. Idempotent."""
        servers = list(self._servers.values())
        self._servers.clear()
        self._addresses.clear()
        for server in servers:
            server.close()
        for client in list(self._clients):
            if client.transport is not None:
                client.transport.abort()
        for node in list(self._nodes):
            node.detach()
        if self._recovery is not None:
            self._recovery.cancel()
            self._recovery = None
        for server in servers:
            await server.wait_closed()
        await asyncio.sleep(0)  # let connection_lost callbacks run before the loop may stop

    async def __aenter__(self) -> CanHub:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def endpoints(self) -> dict[str, dict[str, Any]]:
        """Endpoint records for the twin's endpoints file (contracts §1), one per protocol served."""
        if not self._addresses:
            raise RuntimeError("CanHub.endpoints() before start()")
        records: dict[str, dict[str, Any]] = {}
        if "can_socketcand" in self._addresses:
            host, port = self._addresses["can_socketcand"]
            records["can_socketcand"] = {
                "kind": "socketcand", "interface": "socketcand", "host": host, "port": port,
                "channel": self.channel, "bitrate": self.bitrate, "description": self.description("socketcand"),
            }  # fmt: skip
        if "can_slcan" in self._addresses:
            host, port = self._addresses["can_slcan"]
            records["can_slcan"] = {
                "kind": "slcan", "interface": "slcan", "url": f"socket://{host}:{port}", "host": host, "port": port,
                "bitrate": self.bitrate, "description": self.description("slcan"),
            }  # fmt: skip
        return records

    def description(self, protocol: WireProtocol) -> str:
        if protocol == "socketcand":
            return f"CAN bus {self.bitrate // 1000} kbit/s, socketcand RAW mode (channel {self.channel})"
        return f"CAN bus {self.bitrate // 1000} kbit/s, slcan/Lawicel over TCP (as a USB-CAN dongle)"

    def endpoint_lines(self) -> list[str]:
        """``<name>  <address>  <what>`` lines for the twin's start-up banner."""
        lines = []
        for name, record in self.endpoints().items():
            address = record.get("url") or f"socketcand://{record['host']}:{record['port']}/{record['channel']}"
            lines.append(f"{name:<16} {address:<34} {record['description']}")
        return lines

    # in-process nodes

    def attach(
        self, callback: FrameCallback | None = None, *, name: str = "node", queue_limit: int | None = None
    ) -> NodePort:
        """Attach an in-process node. With a `callback` (sync or async) it receives every frame other ports send,
        in bus order; without one it only sends. Must be called from the hub's event loop."""
        node = NodePort(self, name, self.queue_limit if queue_limit is None else queue_limit, callback)
        self._nodes.add(node)
        if callback is not None:
            self._add_port(node)
        return node

    async def send(self, frame: CanFrame, source: NodePort | None = None) -> CanFrame | None:
        """Put `frame` on the bus from `source` (None: from nowhere, every port receives it).

        Returns the frame as stamped by the bus, or None if the bus is off. Yields to the event loop once, so a
        node sending in a loop cannot starve the clients.
        """
        stamped = self.send_nowait(frame, source)
        await asyncio.sleep(0)
        return stamped

    def send_nowait(self, frame: CanFrame, source: NodePort | None = None) -> CanFrame | None:
        """`send` without yielding."""
        return self._publish(frame, source)

    # faults

    def inject_error(
        self,
        error_class: int = CanErrorClass.PROT,
        *,
        data: bytes = b"",
        bus_off_s: float | None = None,
    ) -> CanFrame:
        """Put an error frame of `error_class` (`CanErrorClass` bits) on the bus; every port receives it.

        If the class includes BUSOFF the bus goes off: data frames are dropped until `recover()`, or for
        `bus_off_s` seconds when given. Returns the error frame.
        """
        frame = CanFrame(int(error_class), data, is_error_frame=True, timestamp=time.time())
        self._error_frames += 1
        self._fan_out(frame, None)
        if error_class & CanErrorClass.BUSOFF:
            if not self._bus_off:
                log.warning("CAN bus %s: bus-off injected", self.channel)
            self._bus_off = True
            if self._recovery is not None:
                self._recovery.cancel()
                self._recovery = None
            if bus_off_s is not None:
                self._recovery = asyncio.get_running_loop().call_later(bus_off_s, self.recover)
        return frame

    def recover(self) -> None:
        """End a bus-off: announce RESTARTED and carry frames again."""
        if self._recovery is not None:
            self._recovery.cancel()
            self._recovery = None
        if self._bus_off:
            self._bus_off = False
            log.warning("CAN bus %s: recovered from bus-off", self.channel)
            self.inject_error(CanErrorClass.RESTARTED)

    @property
    def bus_off(self) -> bool:
        return self._bus_off

    # statistics

    def stats(self) -> CanBusStats:
        self._trim_window(time.monotonic())
        ports = sorted(itertools.chain(self._clients, self._nodes), key=lambda p: p.name)
        capacity = self.bitrate * self.window_s / 100.0
        return CanBusStats(
            channel=self.channel, bitrate=self.bitrate, frames=self._frames, bytes=self._bytes,
            error_frames=self._error_frames, window_s=self.window_s, frames_in_window=len(self._window),
            bits_in_window=self._window_bits, bits_in_window_worst=self._window_worst,
            bus_load_pct=self._window_bits / capacity, bus_load_worst_pct=self._window_worst / capacity,
            malformed_lines=self._malformed_lines, overflow_drops=self._overflow_drops, bus_off=self._bus_off,
            bus_off_drops=self._bus_off_drops, callback_errors=self._callback_errors,
            ports=tuple(p.stats() for p in ports),
        )  # fmt: skip

    # the one fan-out path

    def _publish(self, frame: CanFrame, source: _Port | None) -> CanFrame | None:
        if self._bus_off:
            self._bus_off_drops += 1
            return None
        frame = replace(frame, timestamp=time.time())
        now = time.monotonic()
        nominal, worst = BITS[(frame.is_extended_id, len(frame.data))]
        self._frames += 1
        self._bytes += len(frame.data)
        self._window.append((now, nominal, worst))
        self._window_bits += nominal
        self._window_worst += worst
        self._trim_window(now)
        if source is not None:
            source.sent += 1
        self._fan_out(frame, source)
        return frame

    def _fan_out(self, frame: CanFrame, source: _Port | None) -> None:
        env = _Envelope(frame)
        for port in self._receivers:
            if port is not source:
                port.offer(env)

    def _trim_window(self, now: float) -> None:
        window = self._window
        horizon = now - self.window_s
        while window and window[0][0] < horizon:
            _, nominal, worst = window.popleft()
            self._window_bits -= nominal
            self._window_worst -= worst

    def _add_port(self, port: _Port) -> None:
        if port not in self._receivers:
            self._receivers = (*self._receivers, port)

    def _remove_port(self, port: _Port) -> None:
        self._receivers = tuple(p for p in self._receivers if p is not port)
        if isinstance(port, NodePort):
            self._nodes.discard(port)

    def _add_client(self, client: _StreamPort) -> None:
        self._clients.add(client)

    def _drop_client(self, client: _StreamPort) -> None:
        self._clients.discard(client)


_PORT_CLASSES: dict[str, type[_SocketcandPort] | type[_SlcanPort]] = {
    "socketcand": _SocketcandPort,
    "slcan": _SlcanPort,
}


class CanBusService:
    """One listener of a `CanHub` shaped like ``twin.app.Service``: ``start(host, port) -> bound port``, ``stop()``.

    The two services of one hub share its bus; the hub closes when the last one stops. `extra` holds the endpoint
    fields beyond host/port (python-can interface name, channel or URL, bit rate).
    """

    visa = False

    def __init__(self, hub: CanHub, protocol: WireProtocol) -> None:
        self.hub = hub
        self.protocol = protocol
        self.name = f"can_{protocol}"
        self.kind = protocol
        self.description = hub.description(protocol)

    @property
    def extra(self) -> dict[str, Any]:
        record = self.hub.endpoints().get(self.name, {})
        return {k: v for k, v in record.items() if k not in ("kind", "host", "port", "description")}

    async def start(self, host: str, port: int) -> int:
        return await self.hub.listen(self.protocol, host, port)

    async def stop(self) -> None:
        await self.hub.stop_listening(self.protocol)
