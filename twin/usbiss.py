"""A simulated Devantech USB-ISS I2C adapter, served on a pseudo-terminal and on TCP.

What a bench sees
    A USB-ISS is a USB CDC serial device: the host writes a command (first byte = command code) and reads a
    fixed-size reply. The twin serves the same byte protocol (reference/protocols.md §5.1)

    * on a **pty** (`UsbIssEmulator.pty_path`): the unmodified PyPI ``usb_iss`` client opens it with
      ``serial.Serial(port=...)`` exactly as it opens ``/dev/ttyACM0``;
    * on **TCP** (`UsbIssEmulator.url`, ``socket://host:port``): any pyserial-URL client, e.g.
      ``instruments.i2c.UsbIssI2C``. Each TCP connection has its own command parser; all share one I2C bus.

Commands served (addresses on the wire are 8-bit: 7-bit ``<< 1``, ``| 1`` for a read)
    ``5A 01`` ISS_VERSION → ``[0x07 module id, fw, mode]``; ``5A 02 mode …`` ISS_MODE → ``[FF, 00]`` (``[00, 05]``
    for an unknown mode; operand count follows the mode); ``5A 03`` GET_SER_NUM → 8 ASCII bytes.
    ``53`` I2C_SGL, ``54`` I2C_AD0, ``55`` I2C_AD1, ``56`` I2C_AD2: writes answer one byte (non-zero ACK, 00 NACK);
    reads answer exactly n bytes and have **no status byte** — an absent device reads as ``FF`` (the pulled-up
    bus), as on the real adapter. ``58 addr`` I2C_TEST → 01 present / 00 absent. ``57`` I2C_DIRECT: START 01,
    RESTART 02, STOP 03, NACK 04, READ1..16 20..2F, WRITE1..16 30..3F + bytes; the sequence ends at STOP and
    answers ``[FF, n] + n bytes`` or ``[00, error]`` (01 device NACK, 02 buffer overflow, 03 underflow, 04 unknown).
    I2C commands while the adapter is not in an I2C mode fail (writes 00, reads FF…), like the real one.

Framing
    Command lengths follow from their bytes, so a parser waits for a complete command. As on the real module, a
    gap inside a command (`resync_gap_s`) drops the partial command so that line noise cannot desynchronise the
    adapter for good. Unknown command bytes are dropped one at a time.

Devices
    Anything with ``write(data: bytes) -> None`` and ``read(n: int) -> bytes`` (`I2CDevice`), attached at a 7-bit
    address with `attach`. A write of the register form (AD1/AD2) reaches the device as ``register bytes + data``;
    a register read as a write of the register bytes followed by a read, i.e. a pointer-register device needs no
    special support. Each read transfer is one ``read(n)`` call (I2C_DIRECT sums its READn steps up to the next
    RESTART/STOP), so a device can treat every call as a fresh transfer.

Faults (`apply_fault`, for the twin's control endpoint, or the methods directly)
    ``unplug``: close the pty and every TCP connection and stop listening, mid-session — a pulled USB cable.
    ``nack`` (address): that address stops acknowledging; ``clear`` undoes ``nack``. `replug` (async) brings the
    adapter back on the same TCP port and a new pty.

Threading
    Every method runs on the event loop the emulator was started in.

Registering in the twin app (lead): ``iss = UsbIssEmulator(); iss.attach(0x02, eps_device); await
iss.start(host, port)``; endpoints via `endpoints()`; ``await iss.stop()`` at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import termios
import tty
from collections.abc import Callable
from typing import Any, Protocol

__all__ = [
    "DEFAULT_USBISS_PORT",
    "I2CDevice",
    "PtyEndpoint",
    "UsbIssEmulator",
]

log = logging.getLogger(__name__)

DEFAULT_USBISS_PORT = 29540

MODULE_ID = 0x07
FIRMWARE_VERSION = 0x07

CMD_I2C_SGL = 0x53
CMD_I2C_AD0 = 0x54
CMD_I2C_AD1 = 0x55
CMD_I2C_AD2 = 0x56
CMD_I2C_DIRECT = 0x57
CMD_I2C_TEST = 0x58
CMD_USB_ISS = 0x5A

SUB_ISS_VERSION = 0x01
SUB_ISS_MODE = 0x02
SUB_GET_SER_NUM = 0x03

ACK = 0xFF
NACK = 0x00
ERR_UNKNOWN_COMMAND = 0x05

DIRECT_START = 0x01
DIRECT_RESTART = 0x02
DIRECT_STOP = 0x03
DIRECT_NACK = 0x04
DIRECT_ERR_DEVICE = 0x01
DIRECT_ERR_OVERFLOW = 0x02
DIRECT_ERR_UNDERFLOW = 0x03
DIRECT_ERR_UNKNOWN = 0x04
_DIRECT_MAX_SEQUENCE = 64  # the module's receive buffer; longer sequences are noise
_DIRECT_MAX_READ = 64

_I2C_MODES = frozenset(
    {0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80}  # software 20k/50k/100k/400k, hardware 100k/400k/1M
)


def _mode_operands(mode: int) -> int | None:
    """How many bytes follow the mode byte of ISS_MODE (None: not a mode this adapter knows)."""
    if mode in _I2C_MODES:
        return 1  # IO type of pins 1 and 2
    if mode - 1 in _I2C_MODES:
        return 2  # I2C + serial: baud divisor (2 bytes)
    if mode in (0x00, 0x10):
        return 1  # IO mode / IO change: IO type byte
    if 0x90 <= mode <= 0x93:
        return 1  # SPI: clock divisor
    if mode == 0x01:
        return 3  # serial + IO: divisor (2) + IO type
    return None


class I2CDevice(Protocol):
    """A device on the simulated bus: raw I2C transfers (the bus does the address and ACK handling)."""

    def write(self, data: bytes) -> None: ...

    def read(self, n: int) -> bytes: ...


class PtyEndpoint:
    """One pseudo-terminal served from the event loop: bytes from the slave side go to `on_data`.

    The emulator keeps its own handle on the slave so that a client closing the port does not make the master
    report EIO (Linux does when no slave handle is left); clients can come and go. Writes nobody reads pile up in
    the kernel's buffer and are dropped once it is full, like a UART nobody listens to.
    """

    def __init__(self, on_data: Callable[[bytes], None], *, name: str = "pty") -> None:
        self._on_data = on_data
        self._name = name
        self._master: int | None = None
        self._slave: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.path: str | None = None

    def open(self) -> str:
        self._loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        tty.setraw(slave, termios.TCSANOW)  # no echo, no line editing, no CR/LF mapping: a byte pipe
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.path = os.ttyname(slave)
        self._loop.add_reader(master, self._readable)
        return self.path

    @property
    def is_open(self) -> bool:
        return self._master is not None

    def _readable(self) -> None:
        if self._master is None:
            return
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:  # no slave handle: cannot happen while we hold one, but never spin on it
                return
            raise
        if data:
            self._on_data(data)

    def write(self, data: bytes) -> None:
        if self._master is None or not data:
            return
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._master, view)
            except BlockingIOError:
                log.debug("%s: output buffer full, %d bytes dropped", self._name, len(view))
                return
            view = view[written:]

    def close(self) -> None:
        if self._master is not None and self._loop is not None:
            self._loop.remove_reader(self._master)
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None


class _Parser:
    """The command state machine of one connection (pty or TCP): feed bytes, it replies through `reply`."""

    def __init__(self, iss: UsbIssEmulator, reply: Callable[[bytes], None]) -> None:
        self._iss = iss
        self._reply = reply
        self._buf = bytearray()
        self._gap_timer: asyncio.TimerHandle | None = None

    def feed(self, data: bytes) -> None:
        self._buf += data
        while self._buf:
            length = self._command_length()
            if length is None:  # incomplete: wait, but not for ever
                self._arm_gap_timer()
                return
            if length == 0:  # unknown first byte: drop it and resynchronise on the next
                self._iss.stats["unknown_bytes"] += 1
                del self._buf[0]
                continue
            command = bytes(self._buf[:length])
            del self._buf[:length]
            self._iss.stats["commands"] += 1
            reply = self._iss.execute(command)
            if reply:
                self._reply(reply)
        self._cancel_gap_timer()

    def _arm_gap_timer(self) -> None:
        self._cancel_gap_timer()
        self._gap_timer = asyncio.get_running_loop().call_later(self._iss.resync_gap_s, self._gap)

    def _cancel_gap_timer(self) -> None:
        if self._gap_timer is not None:
            self._gap_timer.cancel()
            self._gap_timer = None

    def _gap(self) -> None:
        self._gap_timer = None
        if self._buf:
            log.debug("USB-ISS: %d-byte partial command dropped after a gap", len(self._buf))
            self._iss.stats["partial_dropped"] += 1
            self._buf.clear()

    def close(self) -> None:
        self._cancel_gap_timer()

    def _command_length(self) -> int | None:
        """Length of the complete command at the start of the buffer; None: incomplete; 0: unknown byte."""
        buf = self._buf
        cmd = buf[0]
        have = len(buf)

        def need(n: int) -> int | None:
            return n if have >= n else None

        if cmd == CMD_USB_ISS:
            if have < 2:
                return None
            sub = buf[1]
            if sub in (SUB_ISS_VERSION, SUB_GET_SER_NUM):
                return 2
            if sub == SUB_ISS_MODE:
                if have < 3:
                    return None
                operands = _mode_operands(buf[2])
                return need(3 + (operands if operands is not None else 0))
            return 2  # unknown sub-command: answered with a NACK by execute()
        if cmd == CMD_I2C_TEST:
            return need(2)
        if cmd == CMD_I2C_SGL:
            if have < 2:
                return None
            return need(2 if buf[1] & 1 else 3)
        if cmd in (CMD_I2C_AD0, CMD_I2C_AD1, CMD_I2C_AD2):
            header = {CMD_I2C_AD0: 3, CMD_I2C_AD1: 4, CMD_I2C_AD2: 5}[cmd]
            if have < header:
                return None
            return need(header if buf[1] & 1 else header + buf[header - 1])
        if cmd == CMD_I2C_DIRECT:
            return self._direct_length()
        return 0

    def _direct_length(self) -> int | None:
        i = 1
        buf = self._buf
        while i < len(buf):
            if i > _DIRECT_MAX_SEQUENCE:
                return i  # runaway sequence: execute() reports an overflow
            op = buf[i]
            if op == DIRECT_STOP:
                return i + 1
            if 0x30 <= op <= 0x3F:
                i += 1 + (op - 0x2F)
            else:
                i += 1
        return None


class _TcpClient(asyncio.Protocol):
    def __init__(self, iss: UsbIssEmulator) -> None:
        self._iss = iss
        self.transport: asyncio.Transport | None = None
        self._parser: _Parser | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._parser = _Parser(self._iss, transport.write)
        self._iss._tcp_clients.add(self)

    def data_received(self, data: bytes) -> None:
        if self._parser is not None:
            self._parser.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._parser is not None:
            self._parser.close()
        self._iss._tcp_clients.discard(self)


class SerialPortEndpoints:
    """What every emulated serial device (USB-ISS, OBC console) publishes once started: a pty and a TCP URL."""

    _pty: PtyEndpoint | None
    _address: tuple[str, int] | None

    @property
    def pty_path(self) -> str | None:
        return self._pty.path if self._pty is not None and self._pty.is_open else None

    @property
    def url(self) -> str:
        if self._address is None:
            raise RuntimeError(f"{type(self).__name__}.url before start()")
        return f"socket://{self._address[0]}:{self._address[1]}"

    def _endpoint_record(self, name: str, kind: str, description: str, **extra: object) -> dict[str, dict[str, Any]]:
        if self._address is None:
            raise RuntimeError(f"{type(self).__name__}.endpoints() before start()")
        host, port = self._address
        record = {"kind": kind, "url": self.url, "host": host, "port": port, "pty": self.pty_path, **extra}
        return {name: {**record, "description": description}}


class UsbIssEmulator(SerialPortEndpoints):
    """The simulated USB-ISS with its I2C bus. See the module doc."""

    def __init__(self, *, serial_number: str = "00001234", resync_gap_s: float = 0.5, start_mode: int = 0x40) -> None:
        if len(serial_number) != 8 or not serial_number.isascii():
            raise ValueError("USB-ISS serial number: 8 ASCII characters")
        self.serial_number = serial_number
        # The real module resyncs after a few ms; a simulator on a loaded CI host needs a longer gap.
        self.resync_gap_s = resync_gap_s
        self.mode = self._start_mode = start_mode
        self.stats: dict[str, int] = {"commands": 0, "unknown_bytes": 0, "partial_dropped": 0, "nacks": 0}
        self._devices: dict[int, I2CDevice] = {}
        self._nacking: set[int] = set()
        self._pty: PtyEndpoint | None = None
        self._pty_parser: _Parser | None = None
        self._server: asyncio.Server | None = None
        self._address: tuple[str, int] | None = None
        self._tcp_clients: set[_TcpClient] = set()
        self.unplugged = False

    # devices and faults

    def attach(self, address: int, device: I2CDevice) -> None:
        """Put a device on the bus at a 7-bit address."""
        if not 0 <= address <= 0x7F:
            raise ValueError(f"7-bit I2C address expected, got {address:#x}")
        self._devices[address] = device

    def detach(self, address: int) -> None:
        self._devices.pop(address, None)

    def set_nack(self, address: int, nack: bool = True) -> None:
        """Make a device stop (or resume) acknowledging its address."""
        if nack:
            self._nacking.add(address)
        else:
            self._nacking.discard(address)

    def apply_fault(self, name: str, **args: Any) -> None:
        """Fault hook for the control endpoint: ``unplug``, ``nack`` (address=…), ``clear``."""
        if name == "unplug":
            self.unplug()
        elif name == "nack":
            self.set_nack(int(args["address"]))
        elif name == "clear":
            self._nacking.clear()
        else:
            raise ValueError(f"unknown USB-ISS fault {name!r} (unplug, nack, clear)")

    def unplug(self) -> None:
        """Pull the cable: the pty disappears and TCP connections drop, in the middle of whatever is going on."""
        self.unplugged = True
        self._disconnect()
        log.warning("USB-ISS unplugged (fault)")

    def _disconnect(self) -> None:
        if self._pty is not None:
            self._pty.close()
        if self._pty_parser is not None:
            self._pty_parser.close()
        if self._server is not None:
            self._server.close()
        for client in list(self._tcp_clients):
            if client.transport is not None:
                client.transport.abort()

    async def replug(self) -> None:
        """Plug the cable back in after `unplug`: the same TCP port, a new pty (its path may differ: re-read
        `pty_path` / `endpoints()`); the adapter comes back in its power-on mode."""
        host, port = self._address if self._address is not None else ("127.0.0.1", 0)
        self._disconnect()
        if self._server is not None:
            await self._server.wait_closed()
        self.mode = self._start_mode
        await self.start(host, port, pty=self._pty is not None)

    # lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = DEFAULT_USBISS_PORT, *, pty: bool = True) -> None:
        """Serve the adapter on TCP `host:port` (0: a free port) and, unless `pty` is False, on a new pty."""
        self.unplugged = False
        if pty:
            self._pty = PtyEndpoint(self._pty_data, name="usb-iss pty")
            self._pty.open()
            self._pty_parser = _Parser(self, self._pty.write)
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _TcpClient(self), host, port, reuse_address=True
        )
        sockname = self._server.sockets[0].getsockname()
        self._address = (sockname[0], sockname[1])
        log.info("USB-ISS I2C adapter on %s and socket://%s:%d", self.pty_path, *self._address)

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        server = self._server
        self._disconnect()
        self._server = None
        if server is not None:
            await server.wait_closed()
        await asyncio.sleep(0)  # let connection_lost callbacks run

    def _pty_data(self, data: bytes) -> None:
        if self._pty_parser is not None:
            self._pty_parser.feed(data)

    def endpoints(self) -> dict[str, dict[str, Any]]:
        """Endpoint record for the twin's endpoints file (contracts §1)."""
        return self._endpoint_record(
            "i2c", "usb-iss", "Devantech USB-ISS I2C adapter (EPS at 0x02, temperature sensor at 0x48)"
        )

    # the byte protocol

    def _present(self, address: int) -> I2CDevice | None:
        if address in self._nacking:
            return None
        return self._devices.get(address)

    def _i2c_ready(self) -> bool:
        return self.mode in _I2C_MODES or self.mode - 1 in _I2C_MODES

    def execute(self, command: bytes) -> bytes:
        """Run one complete command; returns the reply bytes (may be empty)."""
        cmd = command[0]
        if cmd == CMD_USB_ISS:
            return self._usb_iss(command)
        if cmd == CMD_I2C_TEST:
            return bytes([1 if self._i2c_ready() and self._present(command[1] >> 1) else 0])
        if cmd == CMD_I2C_DIRECT:
            return self._direct(command[1:])
        addr8 = command[1]
        reading = bool(addr8 & 1)
        if cmd == CMD_I2C_SGL:
            register, count, data = b"", 1, command[2:3]
        elif cmd == CMD_I2C_AD0:
            register, count, data = b"", command[2], command[3:]
        elif cmd == CMD_I2C_AD1:
            register, count, data = command[2:3], command[3], command[4:]
        else:
            register, count, data = command[2:4], command[4], command[5:]
        device = self._present(addr8 >> 1) if self._i2c_ready() else None
        if reading:
            if device is None:
                self.stats["nacks"] += 1
                return b"\xff" * count
            if register:
                device.write(register)
            return _exact(device.read(count), count)
        if device is None:
            self.stats["nacks"] += 1
            return bytes([NACK])
        device.write(register + data)
        return b"\x01"

    def _usb_iss(self, command: bytes) -> bytes:
        sub = command[1]
        if sub == SUB_ISS_VERSION:
            return bytes([MODULE_ID, FIRMWARE_VERSION, self.mode])
        if sub == SUB_GET_SER_NUM:
            return self.serial_number.encode("ascii")
        if sub == SUB_ISS_MODE:
            mode = command[2]
            if _mode_operands(mode) is None:
                return bytes([NACK, ERR_UNKNOWN_COMMAND])
            if mode != 0x10:  # IO_CHANGE keeps the mode
                self.mode = mode
            return bytes([ACK, 0x00])
        return bytes([NACK, ERR_UNKNOWN_COMMAND])

    def _direct(self, seq: bytes) -> bytes:
        """Execute an I2C_DIRECT sequence (see the module doc)."""
        if len(seq) > _DIRECT_MAX_SEQUENCE:
            return bytes([NACK, DIRECT_ERR_OVERFLOW])
        out = bytearray()
        device: I2CDevice | None = None
        reading = False
        expect_address = False
        pending = bytearray()  # bytes of the current write phase: one device.write per transfer
        to_read = 0  # bytes clocked in the current read phase: one device.read per transfer

        def flush() -> None:
            nonlocal to_read
            if device is not None and not reading and pending:
                device.write(bytes(pending))
            if device is not None and reading and to_read:
                out.extend(_exact(device.read(to_read), to_read))
            pending.clear()
            to_read = 0

        i = 0
        while i < len(seq):
            op = seq[i]
            i += 1
            if op in (DIRECT_START, DIRECT_RESTART):
                flush()
                device, expect_address = None, True
            elif op == DIRECT_STOP:
                flush()
                break
            elif op == DIRECT_NACK:
                pass  # the master NACKs the next read byte: nothing to model
            elif 0x30 <= op <= 0x3F:
                chunk = seq[i : i + op - 0x2F]
                i += op - 0x2F
                if len(chunk) < op - 0x2F:
                    return bytes([NACK, DIRECT_ERR_UNDERFLOW])
                if expect_address:
                    expect_address = False
                    address, reading = chunk[0] >> 1, bool(chunk[0] & 1)
                    device = self._present(address) if self._i2c_ready() else None
                    if device is None:
                        self.stats["nacks"] += 1
                        return bytes([NACK, DIRECT_ERR_DEVICE])
                    chunk = chunk[1:]
                if chunk:
                    if device is None or reading:
                        return bytes([NACK, DIRECT_ERR_DEVICE])
                    pending += chunk
            elif 0x20 <= op <= 0x2F:
                if device is None or not reading:
                    return bytes([NACK, DIRECT_ERR_DEVICE])
                to_read += op - 0x1F
                if len(out) + to_read > _DIRECT_MAX_READ:
                    return bytes([NACK, DIRECT_ERR_OVERFLOW])
            else:
                return bytes([NACK, DIRECT_ERR_UNKNOWN])
        return bytes([ACK, len(out)]) + bytes(out)


def _exact(data: bytes, n: int) -> bytes:
    """A device that returns too little leaves the bus high (FF); too much is cut at what the master clocks."""
    return data[:n] + b"\xff" * max(0, n - len(data))
