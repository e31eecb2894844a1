"""CubeSat Space Protocol (CSP) headers and packets, as libcsp puts them on the wire.

A CSP packet is a small routing header followed by the user data. The header names a priority, a source
and a destination node (address), a destination and a source port (0..63), and a byte of flags that say
which optional trailers the data carries (CRC32, HMAC, RDP) or how it was treated (XTEA in v1, FRAG).
Two header versions exist and are chosen at build time of each node, so both ends must agree:

* **v1** (libcsp 1.x) — 32 bits, big-endian: ``prio:2 src:5 dst:5 dport:6 sport:6 flags:8``.
  Node addresses 0..31; 31 is broadcast.
* **v2** (libcsp 2.x) — 48 bits, big-endian: ``prio:2 dst:14 src:14 dport:6 sport:6 flags:6``.
  Note that the *destination comes before the source* in v2. Addresses 0..16383; 0x3FFF is broadcast.
  Only six flag bits fit, so v1's reserved bits 0x80/0x40 cannot be carried and XTEA (0x04) is gone.

The CRC32 trailer is a CRC-32C (see :mod:`bench.link.crc32c`) appended big-endian after the data, and the
FCRC32 flag announces it. libcsp 1.x computes it over the *data only*. libcsp 2.x still sends data-only,
but its receiver accepts a CRC over *header + data* as well (the planned CSP 2.1 form) — so
:func:`verify_crc32` tries both for v2 and only the data-only form for v1.

Values here are immutable: a :class:`CspPacket` is a record of what was (or will be) on the bus.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum

from bench.link.crc32c import crc32c, crc32c_update


class CspError(ValueError):
    """A CSP header, packet or service payload that does not fit the protocol."""


class CspVersion(IntEnum):
    V1 = 1
    V2 = 2


class Priority(IntEnum):
    CRITICAL = 0
    HIGH = 1
    NORM = 2
    LOW = 3


# Header flags (libcsp include/csp/csp_types.h). Bit values are the same in both versions.
FLAG_CRC32 = 0x01
FLAG_RDP = 0x02
FLAG_XTEA = 0x04  # v1 only: removed in libcsp 2.x, and a v2 node never sets it
FLAG_HMAC = 0x08
FLAG_FRAG = 0x10
FLAG_RES3 = 0x20
FLAG_RES2 = 0x40  # v1 only (does not fit in v2's six flag bits)
FLAG_RES1 = 0x80  # v1 only

HEADER_SIZE_V1 = 4
HEADER_SIZE_V2 = 6
CRC32_SIZE = 4

MAX_PORT = 63
MAX_HOST_V1 = 0x1F
MAX_HOST_V2 = 0x3FFF
BROADCAST_V1 = MAX_HOST_V1  # libcsp v1.6 CSP_BROADCAST_ADDR
BROADCAST_V2 = MAX_HOST_V2
MAX_FLAGS_V1 = 0xFF
MAX_FLAGS_V2 = 0x3F


def _check_range(what: str, value: int, high: int, version: str) -> None:
    if not 0 <= value <= high:
        raise CspError(f"CSP {version} {what} {value} out of range 0..{high}")


@dataclass(frozen=True, slots=True)
class CspHeader:
    """The routing header of one CSP packet (version-neutral; the version is chosen when packing)."""

    prio: int
    src: int
    dst: int
    dport: int
    sport: int
    flags: int = 0

    def __post_init__(self) -> None:
        # Only the bounds common to both versions here; version limits are checked when packing.
        _check_range("prio", self.prio, 3, "header")
        _check_range("src", self.src, MAX_HOST_V2, "header")
        _check_range("dst", self.dst, MAX_HOST_V2, "header")
        _check_range("dport", self.dport, MAX_PORT, "header")
        _check_range("sport", self.sport, MAX_PORT, "header")
        _check_range("flags", self.flags, MAX_FLAGS_V1, "header")

    # -- flags -------------------------------------------------------------------------------------
    @property
    def has_crc32(self) -> bool:
        return bool(self.flags & FLAG_CRC32)

    @property
    def has_rdp(self) -> bool:
        return bool(self.flags & FLAG_RDP)

    @property
    def has_hmac(self) -> bool:
        return bool(self.flags & FLAG_HMAC)

    def with_flags(self, flags: int) -> CspHeader:
        return replace(self, flags=flags)

    # -- wire form ---------------------------------------------------------------------------------
    def pack_v1(self) -> bytes:
        _check_range("src", self.src, MAX_HOST_V1, "v1")
        _check_range("dst", self.dst, MAX_HOST_V1, "v1")
        word = self.prio << 30 | self.src << 25 | self.dst << 20 | self.dport << 14 | self.sport << 8 | self.flags
        return word.to_bytes(4, "big")

    def pack_v2(self) -> bytes:
        _check_range("flags", self.flags, MAX_FLAGS_V2, "v2")
        word = self.prio << 46 | self.dst << 32 | self.src << 18 | self.dport << 12 | self.sport << 6 | self.flags
        return word.to_bytes(6, "big")

    def pack(self, version: int) -> bytes:
        if version == CspVersion.V1:
            return self.pack_v1()
        if version == CspVersion.V2:
            return self.pack_v2()
        raise CspError(f"unknown CSP version {version!r} (expected 1 or 2)")

    @classmethod
    def unpack_v1(cls, data: bytes | bytearray | memoryview) -> CspHeader:
        if len(data) < HEADER_SIZE_V1:
            raise CspError(f"CSP v1 header needs {HEADER_SIZE_V1} bytes, got {len(data)}")
        w = int.from_bytes(data[:HEADER_SIZE_V1], "big")
        return cls(w >> 30, (w >> 25) & 0x1F, (w >> 20) & 0x1F, (w >> 14) & 0x3F, (w >> 8) & 0x3F, w & 0xFF)

    @classmethod
    def unpack_v2(cls, data: bytes | bytearray | memoryview) -> CspHeader:
        if len(data) < HEADER_SIZE_V2:
            raise CspError(f"CSP v2 header needs {HEADER_SIZE_V2} bytes, got {len(data)}")
        w = int.from_bytes(data[:HEADER_SIZE_V2], "big")
        return cls(w >> 46, (w >> 18) & 0x3FFF, (w >> 32) & 0x3FFF, (w >> 12) & 0x3F, (w >> 6) & 0x3F, w & 0x3F)

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview, version: int) -> CspHeader:
        if version == CspVersion.V1:
            return cls.unpack_v1(data)
        if version == CspVersion.V2:
            return cls.unpack_v2(data)
        raise CspError(f"unknown CSP version {version!r} (expected 1 or 2)")


def header_size(version: int) -> int:
    if version == CspVersion.V1:
        return HEADER_SIZE_V1
    if version == CspVersion.V2:
        return HEADER_SIZE_V2
    raise CspError(f"unknown CSP version {version!r} (expected 1 or 2)")


@dataclass(frozen=True, slots=True)
class CspPacket:
    """A header and its data. ``payload`` is everything after the header, trailers included unless
    stripped (:func:`verify_crc32` strips the CRC). ``timestamp`` records when the packet was complete on
    the bus (the CAN frame time) and takes no part in equality."""

    header: CspHeader
    payload: bytes
    timestamp: float | None = field(default=None, compare=False)

    def pack(self, version: int) -> bytes:
        """Header + payload: the packet as a byte string (e.g. what a KISS or ZMQ interface carries)."""
        return self.header.pack(version) + self.payload

    @classmethod
    def unpack(cls, data: bytes | bytearray, version: int) -> CspPacket:
        return cls(CspHeader.unpack(data, version), bytes(data[header_size(version) :]))


def append_crc32(packet: CspPacket, version: int = CspVersion.V1, *, include_header: bool = False) -> CspPacket:
    """Set FCRC32 and append the CRC-32C, big-endian, as libcsp's sender does.

    ``include_header=False`` is what every released libcsp sends (CRC over the data only);
    ``include_header=True`` is the CSP 2.1 form (CRC over the packed header, flag set, + data), v2 only.
    """
    header = packet.header.with_flags(packet.header.flags | FLAG_CRC32)
    if include_header:
        if version != CspVersion.V2:
            raise CspError("a CRC32 over header + data exists only in CSP v2")
        crc = crc32c_update(crc32c(header.pack_v2()), packet.payload)
    else:
        header.pack(version)  # validates the header for this version before we commit to it
        crc = crc32c(packet.payload)
    return CspPacket(header, packet.payload + crc.to_bytes(4, "big"), packet.timestamp)


def crc32_matches(header: CspHeader, payload: bytes, version: int) -> bool:
    """True if the last four bytes of ``payload`` are a valid CRC32 trailer for this version's rules."""
    if len(payload) < CRC32_SIZE:
        return False
    body = payload[:-CRC32_SIZE]
    received = int.from_bytes(payload[-CRC32_SIZE:], "big")
    data_crc = crc32c(body)
    if data_crc == received:
        return True
    if version == CspVersion.V2:
        # libcsp 2.x tries header + data first; a match on either form is accepted.
        return crc32c_update(crc32c(header.pack_v2()), body) == received
    return False


def verify_crc32(packet: CspPacket, version: int = CspVersion.V1) -> CspPacket:
    """Check and strip the CRC32 trailer; raise :class:`CspError` naming what was wrong.

    The FCRC32 flag stays set on the returned header: it records what was received.
    """
    if not packet.header.has_crc32:
        raise CspError("packet has no CRC32 flag set, there is no CRC32 trailer to verify")
    payload = packet.payload
    if len(payload) < CRC32_SIZE:
        raise CspError(f"CRC32 flag set but payload is {len(payload)} bytes, shorter than the 4-byte CRC")
    if not crc32_matches(packet.header, payload, version):
        received = int.from_bytes(payload[-CRC32_SIZE:], "big")
        expected = crc32c(payload[:-CRC32_SIZE])
        forms = "data-only or header+data" if version == CspVersion.V2 else "data-only"
        raise CspError(
            f"CRC32 mismatch: received 0x{received:08X}, data-only CRC is 0x{expected:08X} (accepted: {forms})"
        )
    return CspPacket(packet.header, payload[:-CRC32_SIZE], packet.timestamp)
