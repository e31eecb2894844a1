"""AX.25 v2.2 UI frames: the packet format of the satellite's beacon, and its CRC-16/X.25 check.

A UI (unnumbered information) frame is connectionless — what beacons use. Byte layout (before HDLC bit
stuffing and flags, which :mod:`bench.dsp.hdlc` adds)::

    dest address (7) | source address (7) | [repeaters, 7 each, 0..8] | control 0x03 | PID 0xF0 | info | FCS (2)

* **Address.** Six callsign characters (upper-case ASCII letters/digits, padded with spaces), each shifted
  left one bit, then one SSID byte ``C R R S S S S E``: ``C`` the command/response bit, ``RR`` reserved
  (sent as 1), ``SSSS`` the SSID 0–15, ``E`` the extension bit — 1 only on the last address of the field.
  The shift keeps bit 0 of every callsign byte 0, so a receiver finds the end of the address field by
  the first byte with bit 0 set.
* **Command/response.** AX.25 v2.x encodes it in the two C bits: dest C=1 and source C=0 is a *command*,
  the reverse a *response*; both equal means an old (v1) frame. UI beacons are sent as commands by default
  (dest SSID byte ``0xE0|SSID<<1``, source ``0x60|SSID<<1|E``); pass ``command=None`` for the v1 style
  ``0x60`` on both, which some spacecraft radios emit. Every decoder accepts all three; parsing reports which.
* **Control** 0x03 = UI with the poll/final bit 0 (0x13 with P=1 is also a UI frame). **PID** 0xF0 = no layer 3.
* **FCS.** CRC-16/X.25 (the HDLC FCS): polynomial x^16 + x^12 + x^5 + 1 processed LSB first (reflected
  constant 0x8408), register preset 0xFFFF, result inverted; sent low byte first. Catalogue check value
  ``crc16_x25(b"123456789") == 0x906E``. A receiver may equally run the CRC over frame + FCS and compare
  with the constant residue; here the FCS is recomputed and compared, which reads more plainly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "CHECK_VALUE",
    "CONTROL_UI",
    "PID_NO_L3",
    "Address",
    "Ax25Error",
    "Ax25Frame",
    "build_ui_frame",
    "crc16_x25",
    "fcs_ok",
    "parse_frame",
]

CHECK_VALUE = 0x906E  # crc16_x25(b"123456789")
CONTROL_UI = 0x03
PID_NO_L3 = 0xF0
_POLY_REFLECTED = 0x8408
_MAX_REPEATERS = 8


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc16_x25(data: bytes) -> int:
    """CRC-16/X.25 of ``data`` (the AX.25 FCS value; table-driven, one look-up per byte)."""
    crc = 0xFFFF
    table = _TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF


def fcs_ok(frame_with_fcs: bytes) -> bool:
    """True when the last two bytes are the correct FCS (low byte first) of the rest."""
    if len(frame_with_fcs) < 3:
        return False
    fcs = frame_with_fcs[-2] | (frame_with_fcs[-1] << 8)
    return crc16_x25(frame_with_fcs[:-2]) == fcs


class Ax25Error(ValueError):
    """A frame that is not a valid AX.25 frame (bad FCS, malformed address field, not UI...)."""


@dataclass(frozen=True)
class Address:
    """One AX.25 address: callsign (1–6 characters), SSID 0–15 and the C (or H, for repeaters) bit."""

    callsign: str
    ssid: int = 0
    c_bit: bool = False

    def __post_init__(self) -> None:
        call = self.callsign
        if not 1 <= len(call) <= 6 or not all(ch.isascii() and (ch.isupper() or ch.isdigit()) for ch in call):
            raise Ax25Error(f"callsign {call!r}: 1-6 upper-case ASCII letters or digits")
        if not 0 <= self.ssid <= 15:
            raise Ax25Error(f"SSID {self.ssid} outside 0..15")

    def encode(self, last: bool) -> bytes:
        shifted = bytes((ord(ch) << 1) for ch in self.callsign.ljust(6))
        ssid_byte = (0x80 if self.c_bit else 0) | 0x60 | (self.ssid << 1) | (1 if last else 0)
        return shifted + bytes([ssid_byte])

    @classmethod
    def decode(cls, raw: bytes) -> Address:
        if len(raw) != 7:
            raise Ax25Error("an address is 7 bytes")
        if any(b & 1 for b in raw[:6]):
            raise Ax25Error(f"callsign bytes {raw[:6].hex()} have bit 0 set (not shifted ASCII)")
        call = bytes(b >> 1 for b in raw[:6]).decode("ascii", errors="replace").rstrip(" ")
        try:
            return cls(call, (raw[6] >> 1) & 0x0F, bool(raw[6] & 0x80))
        except Ax25Error as exc:
            raise Ax25Error(f"bad address: {exc}") from None

    def __str__(self) -> str:
        return f"{self.callsign}-{self.ssid}" if self.ssid else self.callsign


@dataclass(frozen=True)
class Ax25Frame:
    """A parsed AX.25 frame (UI or other: ``control`` tells; ``pid`` is None for frames without one)."""

    dest: Address
    source: Address
    info: bytes
    control: int = CONTROL_UI
    pid: int | None = PID_NO_L3
    repeaters: tuple[Address, ...] = field(default=())

    @property
    def is_ui(self) -> bool:
        return self.control & ~0x10 == CONTROL_UI

    @property
    def command(self) -> bool | None:
        """True for a v2 command, False for a response, None for a v1 frame (both C bits equal)."""
        if self.dest.c_bit == self.source.c_bit:
            return None
        return self.dest.c_bit

    def encode(self) -> bytes:
        """The frame bytes with FCS appended (ready for HDLC)."""
        addrs = [self.dest, self.source, *self.repeaters]
        body = b"".join(a.encode(last=i == len(addrs) - 1) for i, a in enumerate(addrs))
        body += bytes([self.control]) + (bytes([self.pid]) if self.pid is not None else b"") + self.info
        fcs = crc16_x25(body)
        return body + bytes([fcs & 0xFF, fcs >> 8])


def build_ui_frame(
    dest: str,
    source: str,
    info: bytes,
    *,
    dest_ssid: int = 0,
    source_ssid: int = 0,
    command: bool | None = True,
    pid: int = PID_NO_L3,
    repeaters: tuple[tuple[str, int], ...] = (),
) -> bytes:
    """Bytes (FCS included) of a UI frame from ``source`` to ``dest``; ``command`` as in the module docstring."""
    if len(info) > 256:
        raise Ax25Error(f"info field of {len(info)} bytes exceeds the AX.25 default N1 of 256")
    if len(repeaters) > _MAX_REPEATERS:
        raise Ax25Error("at most 8 repeater addresses")
    dest_c = command is True
    src_c = command is False
    frame = Ax25Frame(
        dest=Address(dest, dest_ssid, dest_c),
        source=Address(source, source_ssid, src_c),
        info=bytes(info),
        control=CONTROL_UI,
        pid=pid,
        repeaters=tuple(Address(c, s) for c, s in repeaters),
    )
    return frame.encode()


def parse_frame(data: bytes, check_fcs: bool = True) -> Ax25Frame:
    """Parse frame bytes (FCS included). Raises :class:`Ax25Error` with the reason when invalid."""
    if len(data) < 17:
        raise Ax25Error(f"{len(data)} bytes is shorter than the minimum AX.25 frame (17)")
    if check_fcs and not fcs_ok(data):
        got = data[-2] | (data[-1] << 8)
        raise Ax25Error(f"FCS mismatch: frame carries 0x{got:04X}, computed 0x{crc16_x25(data[:-2]):04X}")
    body = data[:-2]
    # The address field ends at the first byte with bit 0 (extension bit) set, at a 7-byte boundary.
    end = next((i for i in range(6, min(len(body), 7 * (2 + _MAX_REPEATERS)), 7) if body[i] & 1), None)
    if end is None:
        raise Ax25Error("address field has no extension bit within 10 addresses")
    if end < 13:
        raise Ax25Error("address field shorter than destination + source")
    addrs = [Address.decode(body[i : i + 7]) for i in range(0, end + 1, 7)]
    rest = body[end + 1 :]
    if not rest:
        raise Ax25Error("no control byte")
    control = rest[0]
    # I frames (bit 0 = 0) and UI frames carry a PID; other U and S frames do not.
    has_pid = (control & 1) == 0 or (control & ~0x10) == CONTROL_UI
    if has_pid and len(rest) < 2:
        raise Ax25Error("no PID byte")
    pid = rest[1] if has_pid else None
    info = rest[2:] if has_pid else rest[1:]
    return Ax25Frame(addrs[0], addrs[1], bytes(info), control, pid, tuple(addrs[2:]))
