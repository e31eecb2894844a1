"""I2C access for the bench: one interface, two backends, and a client for the P31u-style EPS.

The interface
    `I2CBus` is what tests and the bench use: ``scan()``, ``write(addr, data)``, ``read(addr, n)``,
    ``write_read(addr, data, n)``, ``read_register(addr, reg, n)``, ``write_register(addr, reg, data)``,
    ``close()``. Addresses are 7-bit. Which backend sits behind it is configuration: `open_i2c(driver,
    resource)` picks it by name from `instruments.registry`, so moving from the twin's adapter to a flight-like
    Linux host is a change of ``driver``/``resource`` in the bench config, nothing else.

Backends
    ``usb-iss`` — `UsbIssI2C(url)`: a Devantech USB-ISS over any pyserial URL (``/dev/ttyACM0``, a pty path,
    ``socket://host:port``). Byte protocol: reference/protocols.md §5.1. On open it checks the module ID (7) and
    selects I2C mode (``5A 02``). Writes use I2C_AD0 (``54 addr8 n data``; the reply byte is the ACK), reads use
    I2C_AD0 (``54 addr8|1 n``). A USB-ISS read has no status byte — an absent device simply reads as FF — so a
    bare `read` first probes the address with I2C_TEST (``58 addr8``); `write_read` does not need to, its write
    already proved the device there. The write and the read of `write_read` are two transfers with a STOP
    between them, which is what command/response devices such as the P31u expect. `scan` uses I2C_TEST.

    ``smbus2`` — `SMBus2I2C(bus)`: Linux i2c-dev through smbus2 (``/dev/i2c-N``): every transfer is an
    ``i2c_rdwr`` of ``i2c_msg.write``/``i2c_msg.read`` messages; `write_read` is one combined transfer (repeated
    start). Errno mapping: ENXIO/EREMOTEIO/EIO → NACK, ETIMEDOUT → timeout, ENODEV/EBADF/ENOENT → adapter lost.

Errors (all `I2CError`, an `InstrumentError` naming the resource)
    `I2CNack` names the 7-bit address in hex and the operation; `I2CAdapterLost` when the adapter or its link went
    away (the object is then unusable; make a new one); `I2CTimeout` when the adapter did not answer in time;
    `EpsReplyError` when the EPS answered with a wrong echo or a non-zero status.

EPS client
    `P31uClient(bus, address=0x02)` speaks the GomSpace NanoPower P31u command set (§5.4): write ``[cmd, args]``,
    read ``[cmd echo, status, payload]``. Housekeeping is the full ``eps_hk_t`` (P31u-8, 131 bytes, big-endian);
    byte layout (offsets after the 2-byte header):

        0 u16 vboost[3] mV · 6 u16 vbatt mV · 8 u16 curin[3] mA · 14 u16 cursun mA · 16 u16 cursys mA ·
        18 u16 reserved1 · 20 u16 curout[6] mA · 32 u8 output[8] · 40 u16 output_on_delta[8] s ·
        56 u16 output_off_delta[8] s · 72 u16 latchup[6] · 84 u32 wdt_i2c_time_left s ·
        88 u32 wdt_gnd_time_left s · 92 u8 wdt_csp_pings_left[2] · 94 u32 counter_wdt_i2c ·
        98 u32 counter_wdt_gnd · 102 u32 counter_wdt_csp[2] · 110 u32 counter_boot · 114 i16 temp[6] °C ·
        126 u8 boot_cause · 127 u8 batt_mode · 128 u8 ppt_mode · 129 u16 reserved2  (131 bytes)

    `EpsHousekeeping` keeps the fields a test checks (all but the reserved words and the on/off deltas).
"""

from __future__ import annotations

import contextlib
import errno
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import serial

from instruments.errors import InstrumentError

try:
    import termios

    # termios.error is no OSError: pyserial lets it escape when a pty's master vanished under a flush.
    _PORT_ERRORS: tuple[type[Exception], ...] = (serial.SerialException, OSError, termios.error)
except ImportError:  # not POSIX
    _PORT_ERRORS = (serial.SerialException, OSError)

__all__ = [
    "SCAN_RANGE",
    "EpsHousekeeping",
    "EpsReplyError",
    "I2CAdapterLost",
    "I2CBus",
    "I2CError",
    "I2CNack",
    "I2CTimeout",
    "P31uClient",
    "SMBus2I2C",
    "UsbIssI2C",
    "open_i2c",
]

# --- errors ----------------------------------------------------------------------------------------------------


class I2CError(InstrumentError):
    """Base of the I2C errors; `resource` is the adapter (URL or bus), `command` the operation."""


class I2CNack(I2CError):
    """A device did not acknowledge its address (absent, unpowered, or busy)."""

    def __init__(self, *, resource: str, address: int, operation: str) -> None:
        super().__init__(
            f"I2C device 0x{address:02X} did not acknowledge ({operation}) on {resource}"
            " — is it powered, and is the address right?",
            resource=resource,
            command=operation,
        )
        self.address = address
        self.operation = operation


class I2CAdapterLost(I2CError):
    """The adapter or its link went away (unplugged, port closed, socket dropped)."""

    def __init__(self, *, resource: str, operation: str, reason: str) -> None:
        super().__init__(
            f"I2C adapter {resource} lost during {operation} ({reason}) — check the USB cable / link; reconnect",
            resource=resource,
            command=operation,
        )
        self.reason = reason


class I2CTimeout(I2CError):
    """The adapter (or the bus) did not complete the transfer in time."""

    def __init__(self, *, resource: str, operation: str, detail: str, timeout_s: float | None = None) -> None:
        super().__init__(
            f"I2C {resource}: {operation} timed out ({detail}) — is the adapter hung, or a device holding SCL?",
            resource=resource,
            command=operation,
        )
        self.timeout_s = timeout_s


class EpsReplyError(I2CError):
    """The EPS replied, but with a wrong command echo or a non-zero status."""

    def __init__(self, *, resource: str, operation: str, detail: str) -> None:
        super().__init__(f"EPS on {resource} refused {operation}: {detail}", resource=resource, command=operation)
        self.detail = detail


# --- the interface ---------------------------------------------------------------------------------------------


@runtime_checkable
class I2CBus(Protocol):
    """An I2C master. Addresses are 7-bit; data are bytes."""

    resource: str

    def scan(self) -> list[int]:
        """7-bit addresses that acknowledge, in 0x01..0x77 (see `SCAN_RANGE`)."""
        ...

    def write(self, address: int, data: bytes) -> None: ...

    def read(self, address: int, n: int) -> bytes: ...

    def write_read(self, address: int, data: bytes, n: int) -> bytes: ...

    def read_register(self, address: int, register: int, n: int) -> bytes: ...

    def write_register(self, address: int, register: int, data: bytes) -> None: ...

    def close(self) -> None: ...


# 0x00 is the general call and 0x78..0x7F are 10-bit/reserved; 0x01..0x07 are reserved by the I2C spec too, but the
# P31u EPS sits at 0x02, so a CubeSat bench scans them (like ``i2cdetect -a``, minus the general call).
SCAN_RANGE = range(0x01, 0x78)


def _check_address(address: int) -> None:
    if not 0 <= address <= 0x7F:
        raise ValueError(f"7-bit I2C address expected, got {address:#x}")


class _RegisterMixin:
    """Register access in terms of write / write_read, shared by the backends."""

    def write(self, address: int, data: bytes) -> None:
        raise NotImplementedError

    def write_read(self, address: int, data: bytes, n: int) -> bytes:
        raise NotImplementedError

    def read_register(self, address: int, register: int, n: int) -> bytes:
        return self.write_read(address, bytes([register & 0xFF]), n)

    def write_register(self, address: int, register: int, data: bytes) -> None:
        self.write(address, bytes([register & 0xFF]) + bytes(data))


# --- USB-ISS ---------------------------------------------------------------------------------------------------

_ISS = 0x5A
_ISS_VERSION = 0x01
_ISS_MODE = 0x02
_I2C_AD0 = 0x54
_I2C_TEST = 0x58
_MODULE_ID = 0x07
_I2C_MODES = {20: 0x20, 50: 0x30, 100: 0x60, 400: 0x70, 1000: 0x80}  # 100/400/1000: hardware I2C
_IO_DIGITAL_INPUTS = 0x0A  # pins 1 and 2 as digital inputs: nothing driven by the bench
_MAX_TRANSFER = 255  # the length field is one byte


class UsbIssI2C(_RegisterMixin):
    """A Devantech USB-ISS on any pyserial URL (see the module doc). Thread-safe: one transaction at a time."""

    def __init__(self, url: str, *, timeout_s: float = 0.5, clock_khz: int = 100) -> None:
        if clock_khz not in _I2C_MODES:
            raise ValueError(f"USB-ISS I2C clock: one of {sorted(_I2C_MODES)} kHz, got {clock_khz}")
        self.resource = url
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._lost: str | None = None
        try:
            self._port: Any = serial.serial_for_url(url, baudrate=9600, timeout=timeout_s, write_timeout=timeout_s)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise I2CAdapterLost(resource=url, operation="open", reason=str(exc)) from exc
        try:
            module_id, firmware, _mode = self._transact(bytes([_ISS, _ISS_VERSION]), 3, "ISS_VERSION")
            if module_id != _MODULE_ID:
                raise I2CError(
                    f"{url} is not a USB-ISS: module id {module_id} (expected {_MODULE_ID})",
                    resource=url,
                    command="ISS_VERSION",
                )
            self.firmware = firmware
            ack, error = self._transact(
                bytes([_ISS, _ISS_MODE, _I2C_MODES[clock_khz], _IO_DIGITAL_INPUTS]), 2, "ISS_MODE I2C"
            )
            if ack != 0xFF:
                raise I2CError(
                    f"USB-ISS {url} refused I2C mode {clock_khz} kHz (error 0x{error:02X})",
                    resource=url,
                    command="ISS_MODE",
                )
        except BaseException:
            self.close()
            raise

    def _transact(self, command: bytes, reply_len: int, operation: str) -> bytes:
        with self._lock:
            if self._lost is not None:
                raise I2CAdapterLost(resource=self.resource, operation=operation, reason=self._lost)
            try:
                # A reply that came after an earlier timeout would be taken for this one's: drop it.
                self._port.reset_input_buffer()
                self._port.write(command)
                reply = bytes(self._port.read(reply_len)) if reply_len else b""
            except _PORT_ERRORS as exc:
                self._lost = str(exc) or type(exc).__name__
                self._close_port()
                raise I2CAdapterLost(resource=self.resource, operation=operation, reason=self._lost) from exc
        if len(reply) != reply_len:
            detail = f"{len(reply)} of {reply_len} reply bytes within {self.timeout_s:g} s"
            raise I2CTimeout(resource=self.resource, operation=operation, detail=detail, timeout_s=self.timeout_s)
        return reply

    def _probe(self, address: int) -> bool:
        return self._transact(bytes([_I2C_TEST, address << 1]), 1, f"probe 0x{address:02X}")[0] != 0

    def scan(self) -> list[int]:
        return [address for address in SCAN_RANGE if self._probe(address)]

    def write(self, address: int, data: bytes) -> None:
        _check_address(address)
        data = bytes(data)
        if not 1 <= len(data) <= _MAX_TRANSFER:
            raise ValueError(f"USB-ISS write: 1..{_MAX_TRANSFER} bytes, got {len(data)}")
        operation = f"write {len(data)} bytes to 0x{address:02X}"
        ack = self._transact(bytes([_I2C_AD0, address << 1, len(data)]) + data, 1, operation)
        if ack[0] == 0:
            raise I2CNack(resource=self.resource, address=address, operation=operation)

    def _read_after_ack(self, address: int, n: int, operation: str) -> bytes:
        if not 1 <= n <= _MAX_TRANSFER:
            raise ValueError(f"USB-ISS read: 1..{_MAX_TRANSFER} bytes, got {n}")
        return self._transact(bytes([_I2C_AD0, (address << 1) | 1, n]), n, operation)

    def read(self, address: int, n: int) -> bytes:
        _check_address(address)
        operation = f"read {n} bytes from 0x{address:02X}"
        if not self._probe(address):
            raise I2CNack(resource=self.resource, address=address, operation=operation)
        return self._read_after_ack(address, n, operation)

    def write_read(self, address: int, data: bytes, n: int) -> bytes:
        self.write(address, data)
        return self._read_after_ack(
            address, n, f"read {n} bytes from 0x{address:02X} after writing {bytes(data).hex()}"
        )

    def _close_port(self) -> None:
        # Closing a port whose device vanished may fail; it is closed either way.
        with contextlib.suppress(serial.SerialException, OSError):
            self._port.close()

    def close(self) -> None:
        with self._lock:
            if self._lost is None:
                self._lost = "closed by the bench"
            self._close_port()


# --- Linux i2c-dev (smbus2) ------------------------------------------------------------------------------------

_NACK_ERRNOS = {errno.ENXIO, errno.EREMOTEIO, errno.EIO}
_LOST_ERRNOS = {errno.ENODEV, errno.EBADF, errno.ENOENT, errno.ESHUTDOWN}


class SMBus2I2C(_RegisterMixin):
    """Linux i2c-dev through smbus2 (`bus`: N for /dev/i2c-N, or a device path). See the module doc."""

    def __init__(self, bus: int | str, *, force: bool = False) -> None:
        import smbus2  # optional dependency: only a Linux host with i2c-dev needs it

        self._smbus2 = smbus2
        self.resource = bus if isinstance(bus, str) else f"/dev/i2c-{bus}"
        self._lock = threading.Lock()
        try:
            self._bus: Any = smbus2.SMBus(bus, force=force)
        except OSError as exc:
            raise I2CAdapterLost(resource=self.resource, operation="open", reason=str(exc)) from exc

    def _rdwr(self, address: int, operation: str, messages: list[Any]) -> None:
        with self._lock:
            try:
                self._bus.i2c_rdwr(*messages)
            except OSError as exc:
                if exc.errno in _NACK_ERRNOS:
                    raise I2CNack(resource=self.resource, address=address, operation=operation) from exc
                if exc.errno == errno.ETIMEDOUT:
                    raise I2CTimeout(resource=self.resource, operation=operation, detail=str(exc)) from exc
                if exc.errno in _LOST_ERRNOS:
                    raise I2CAdapterLost(resource=self.resource, operation=operation, reason=str(exc)) from exc
                raise I2CError(f"{operation} on {self.resource} failed: {exc}", resource=self.resource,
                               command=operation) from exc  # fmt: skip

    def scan(self) -> list[int]:
        found = []
        for address in SCAN_RANGE:
            # A 1-byte read, not a quick write: a quick write can corrupt some EEPROMs' write protection.
            try:
                self._rdwr(address, f"probe 0x{address:02X}", [self._smbus2.i2c_msg.read(address, 1)])
            except I2CNack:
                continue
            found.append(address)
        return found

    def write(self, address: int, data: bytes) -> None:
        _check_address(address)
        self._rdwr(address, f"write {len(data)} bytes to 0x{address:02X}",
                   [self._smbus2.i2c_msg.write(address, bytes(data))])  # fmt: skip

    def read(self, address: int, n: int) -> bytes:
        _check_address(address)
        message = self._smbus2.i2c_msg.read(address, n)
        self._rdwr(address, f"read {n} bytes from 0x{address:02X}", [message])
        return bytes(message)

    def write_read(self, address: int, data: bytes, n: int) -> bytes:
        _check_address(address)
        message = self._smbus2.i2c_msg.read(address, n)
        operation = f"read {n} bytes from 0x{address:02X} after writing {bytes(data).hex()}"
        self._rdwr(address, operation, [self._smbus2.i2c_msg.write(address, bytes(data)), message])
        return bytes(message)

    def close(self) -> None:
        with self._lock:
            self._bus.close()


def open_i2c(driver: str, resource: str | int, **options: Any) -> I2CBus:
    """Open the I2C backend registered as `driver` (`instruments.registry.DRIVERS["i2c"]`) on `resource` (a
    pyserial URL, or an i2c-dev bus number)."""
    from instruments.registry import driver_entry

    backend: Callable[..., I2CBus] = driver_entry("i2c", driver).load()
    if driver == "smbus2" and isinstance(resource, str) and resource.isdigit():
        resource = int(resource)
    return backend(resource, **options)


# --- P31u-style EPS client -------------------------------------------------------------------------------------

EPS_ADDRESS = 0x02
CMD_PING = 0x01
CMD_REBOOT = 0x04
CMD_GET_HOUSEKEEPING = 0x08
CMD_SET_OUTPUT = 0x09
CMD_SET_SINGLE_OUTPUT = 0x0A
CMD_RESET_COUNTERS = 0x0F
CMD_RESET_WDT = 0x10

_HK_FORMAT = ">3HH3HHHH6H8B8H8H6HII2BII2II6hBBBH"
_HK_SIZE = struct.calcsize(_HK_FORMAT)


@dataclass(frozen=True)
class EpsHousekeeping:
    """Decoded ``eps_hk_t`` (units as on the wire: mV, mA, s, °C)."""

    vboost_mv: tuple[int, int, int]
    vbatt_mv: int
    curin_ma: tuple[int, int, int]
    cursun_ma: int
    cursys_ma: int
    curout_ma: tuple[int, ...]
    outputs: tuple[bool, ...]
    latchups: tuple[int, ...]
    wdt_i2c_time_left_s: int
    wdt_gnd_time_left_s: int
    wdt_csp_pings_left: tuple[int, int]
    counter_wdt_i2c: int
    counter_wdt_gnd: int
    counter_wdt_csp: tuple[int, int]
    counter_boot: int
    temps_c: tuple[int, ...]
    boot_cause: int
    batt_mode: int
    ppt_mode: int

    @property
    def output_mask(self) -> int:
        return sum(1 << i for i, on in enumerate(self.outputs) if on)

    @classmethod
    def decode(cls, payload: bytes) -> EpsHousekeeping:
        if len(payload) != _HK_SIZE:
            raise ValueError(f"eps_hk_t is {_HK_SIZE} bytes, got {len(payload)}")
        v = struct.unpack(_HK_FORMAT, payload)

        def take(n: int) -> tuple[int, ...]:
            nonlocal v
            head, v = v[:n], v[n:]
            return tuple(head)

        vboost, (vbatt,), curin, (cursun, cursys, _reserved1) = take(3), take(1), take(3), take(3)
        curout, output, _on_delta, _off_delta, latchup = take(6), take(8), take(8), take(8), take(6)
        (wdt_i2c, wdt_gnd), pings, (c_i2c, c_gnd), c_csp, (c_boot,) = take(2), take(2), take(2), take(2), take(1)
        temps, (boot_cause, batt_mode, ppt_mode, _reserved2) = take(6), take(4)
        return cls(
            vboost_mv=(vboost[0], vboost[1], vboost[2]),
            vbatt_mv=vbatt,
            curin_ma=(curin[0], curin[1], curin[2]),
            cursun_ma=cursun,
            cursys_ma=cursys,
            curout_ma=curout,
            outputs=tuple(bool(o) for o in output),
            latchups=latchup,
            wdt_i2c_time_left_s=wdt_i2c,
            wdt_gnd_time_left_s=wdt_gnd,
            wdt_csp_pings_left=(pings[0], pings[1]),
            counter_wdt_i2c=c_i2c,
            counter_wdt_gnd=c_gnd,
            counter_wdt_csp=(c_csp[0], c_csp[1]),
            counter_boot=c_boot,
            temps_c=temps,
            boot_cause=boot_cause,
            batt_mode=batt_mode,
            ppt_mode=ppt_mode,
        )


class P31uClient:
    """GomSpace NanoPower P31u-style EPS over any `I2CBus` (commands and layout in the module doc)."""

    def __init__(self, bus: I2CBus, address: int = EPS_ADDRESS) -> None:
        _check_address(address)
        self.bus = bus
        self.address = address

    def transfer(self, command: bytes, payload_len: int, operation: str) -> bytes:
        """Write `command`, read echo + status + `payload_len` bytes; check them; return the payload."""
        reply = self.bus.write_read(self.address, command, 2 + payload_len)
        if reply[0] != command[0]:
            detail = f"reply echoes command 0x{reply[0]:02X}, expected 0x{command[0]:02X} (reply {reply[:8].hex()})"
            raise EpsReplyError(resource=self.bus.resource, operation=operation, detail=detail)
        if reply[1] != 0:
            detail = f"status 0x{reply[1]:02X} ({struct.unpack('b', reply[1:2])[0]})"
            raise EpsReplyError(resource=self.bus.resource, operation=operation, detail=detail)
        return reply[2:]

    def ping(self, value: int = 1) -> None:
        reply = self.transfer(bytes([CMD_PING, value & 0xFF]), 1, "ping")
        if reply[0] != value & 0xFF:
            raise EpsReplyError(
                resource=self.bus.resource, operation="ping", detail=f"answered {reply[0]}, expected {value}"
            )

    def get_housekeeping(self) -> EpsHousekeeping:
        return EpsHousekeeping.decode(self.transfer(bytes([CMD_GET_HOUSEKEEPING, 0x00]), _HK_SIZE, "housekeeping"))

    def set_output(self, mask: int) -> None:
        """Switch all outputs at once; bit n = channel n (MSB..LSB: X X 3V3 3V3 3V3 5V 5V 5V)."""
        if not 0 <= mask <= 0xFF:
            raise ValueError(f"output mask is one byte, got {mask:#x}")
        self.transfer(bytes([CMD_SET_OUTPUT, mask]), 0, f"set_output 0x{mask:02X}")

    def set_single_output(self, channel: int, on: bool, delay_s: int = 0) -> None:
        """Switch one channel (P31u numbering 0..7; Kubos' API reverses it as 7-channel — we do not)."""
        if not 0 <= channel <= 7:
            raise ValueError(f"output channel 0..7, got {channel}")
        command = bytes([CMD_SET_SINGLE_OUTPUT, channel, int(on)]) + struct.pack(">h", delay_s)
        self.transfer(command, 0, f"set_single_output {channel}={int(on)}")

    def reset_wdt(self) -> None:
        """Kick the ground watchdog (restarts its 48 h countdown)."""
        self.transfer(bytes([CMD_RESET_WDT, 0x78]), 0, "reset_wdt")

    def reset_counters(self) -> None:
        """Zero the boot and watchdog counters."""
        self.transfer(bytes([CMD_RESET_COUNTERS, 0x42]), 0, "reset_counters")
