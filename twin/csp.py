"""CubeSat Space Protocol as the simulated nodes speak it: headers v1/v2, CRC32C, CAN fragmentation (CFP v1/v2).

Written from the layouts in ``reference/protocols.md`` §1 (libcsp's C sources are the norm), independently of
the bench's codec: the two meet only on the wire, so each checks the other.

* Header v1 (4 B): ``prio:2 src:5 dst:5 dport:6 sport:6 flags:8``; v2 (6 B): ``prio:2 dst:14 src:14 dport:6
  sport:6 flags:6``.
* CRC32 = CRC-32C (Castagnoli), appended big-endian after the data when the CRC32 flag is set. Sent over the data
  only (libcsp 1.x and 2.0); accepted over the data or over header + data (what libcsp 2.x verifies).
* CFP v1: 29-bit id ``src:5 dst:5 type:1 remain:8 ident:10``; BEGIN carries header + u16 length + 2 data bytes.
  CFP v2: 29-bit id ``prio:2 dst:14 sender:6 sc:2 fc:3 begin:1 end:1``; BEGIN carries the last 4 header bytes
  + 4 data bytes, no length (END marks the last frame).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "BROADCAST_V1",
    "BROADCAST_V2",
    "FLAG_CRC32",
    "FLAG_FRAG",
    "PORT_BUF_FREE",
    "PORT_CMP",
    "PORT_MEMFREE",
    "PORT_PING",
    "PORT_PS",
    "PORT_REBOOT",
    "PORT_UPTIME",
    "REBOOT_MAGIC",
    "SHUTDOWN_MAGIC",
    "CfpReassembler",
    "CspHeader",
    "CspPacket",
    "append_crc",
    "crc32c",
    "fragment",
    "strip_crc",
]

FLAG_CRC32: Final = 0x01
FLAG_RDP: Final = 0x02
FLAG_FRAG: Final = 0x10
BROADCAST_V1: Final = 0x1F
BROADCAST_V2: Final = 0x3FFF
PRIO_NORM: Final = 2

PORT_CMP: Final = 0
PORT_PING: Final = 1
PORT_PS: Final = 2
PORT_MEMFREE: Final = 3
PORT_REBOOT: Final = 4
PORT_BUF_FREE: Final = 5
PORT_UPTIME: Final = 6
REBOOT_MAGIC: Final = 0x80078007
SHUTDOWN_MAGIC: Final = 0xD1E5529A


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE: Final = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C: reflected polynomial 0x82F63B78, init and final XOR 0xFFFFFFFF."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


@dataclass(frozen=True)
class CspHeader:
    prio: int
    src: int
    dst: int
    dport: int
    sport: int
    flags: int = 0

    def pack(self, version: int) -> bytes:
        if version == 1:
            word = (
                (self.prio & 3) << 30
                | (self.src & 0x1F) << 25
                | (self.dst & 0x1F) << 20
                | (self.dport & 0x3F) << 14
                | (self.sport & 0x3F) << 8
                | (self.flags & 0xFF)
            )
            return struct.pack(">I", word)
        word = (
            (self.prio & 3) << 46
            | (self.dst & 0x3FFF) << 32
            | (self.src & 0x3FFF) << 18
            | (self.dport & 0x3F) << 12
            | (self.sport & 0x3F) << 6
            | (self.flags & 0x3F)
        )
        return struct.pack(">Q", word << 16)[:6]

    @classmethod
    def unpack(cls, raw: bytes, version: int) -> CspHeader:
        if version == 1:
            (word,) = struct.unpack(">I", raw[:4])
            return cls(
                word >> 30, word >> 25 & 0x1F, word >> 20 & 0x1F, word >> 14 & 0x3F, word >> 8 & 0x3F, word & 0xFF
            )
        (word,) = struct.unpack(">Q", raw[:6] + b"\0\0")
        word >>= 16
        return cls(
            word >> 46, word >> 18 & 0x3FFF, word >> 32 & 0x3FFF, word >> 12 & 0x3F, word >> 6 & 0x3F, word & 0x3F
        )

    @staticmethod
    def size(version: int) -> int:
        return 4 if version == 1 else 6


@dataclass(frozen=True)
class CspPacket:
    header: CspHeader
    data: bytes  # including the CRC32 trailer when the flag is set


def append_crc(header: CspHeader, data: bytes, *, corrupt: bool = False) -> tuple[CspHeader, bytes]:
    """Set the CRC32 flag and append CRC-32C over the data (``corrupt``: a deliberately wrong one)."""
    crc = crc32c(data) ^ (0xDEADBEEF if corrupt else 0)
    flagged = CspHeader(header.prio, header.src, header.dst, header.dport, header.sport, header.flags | FLAG_CRC32)
    return flagged, data + struct.pack(">I", crc)


def strip_crc(packet: CspPacket, version: int) -> bytes | None:
    """The data without its CRC32 trailer; None if the CRC matches neither data-only nor header+data."""
    if not packet.header.flags & FLAG_CRC32:
        return packet.data
    if len(packet.data) < 4:
        return None
    body, (crc,) = packet.data[:-4], struct.unpack(">I", packet.data[-4:])
    if crc == crc32c(body):
        return body
    # libcsp 2.x (CSP_21) checksums header + data; the header is taken as sent, flags included.
    if version == 2 and crc == crc32c(packet.header.pack(2) + body):
        return body
    return None


# --- CFP ----------------------------------------------------------------------------------------------------

Frame = tuple[int, bytes]  # (29-bit extended CAN id, data)


def fragment(packet: CspPacket, version: int, counter: int, sender: int) -> list[Frame]:
    """The CAN frames of one packet. ``counter``: CFP1 ident (10 bits) or CFP2 SC (2 bits); ``sender``: CFP2."""
    data, h = packet.data, packet.header
    if version == 1:
        if len(data) > 2042:
            raise ValueError(f"CFP v1 carries at most 2042 bytes, got {len(data)}")
        frames: list[Frame] = []
        base = (h.src & 0x1F) << 24 | (h.dst & 0x1F) << 19 | (counter & 0x3FF)
        remain = (len(data) + 6 - 1) // 8
        first = data[:2]
        frames.append((base | remain << 10, h.pack(1) + struct.pack(">H", len(data)) + first))
        sent = len(first)
        while sent < len(data):
            chunk = data[sent : sent + 8]
            sent += len(chunk)
            remain = (len(data) - sent + 7) // 8
            frames.append((base | 1 << 18 | remain << 10, chunk))
        return frames
    head = h.pack(2)
    base = (h.prio & 3) << 27 | (h.dst & 0x3FFF) << 13 | (sender & 0x3F) << 7 | (counter & 3) << 5
    chunks = [head[2:] + data[:4]]
    rest = data[4:]
    chunks += [rest[i : i + 8] for i in range(0, len(rest), 8)]
    out: list[Frame] = []
    for index, chunk in enumerate(chunks):
        bits = (index & 7) << 2 | (2 if index == 0 else 0) | (1 if index == len(chunks) - 1 else 0)
        out.append((base | bits, chunk))
    return out


@dataclass
class _Partial:
    header: CspHeader
    data: bytearray
    expected: int  # CFP1: next REMAIN; CFP2: next FC
    length: int  # CFP1 only
    started: float


@dataclass
class CfpReassembler:
    """Frames in, packets out, with libcsp's drop rules: a frame out of sequence drops the packet (counted as
    ``lost``), a packet not completed within ``timeout_s`` is dropped (``timeouts``). Only frames addressed to
    ``address`` (or broadcast) are looked at; all others are ``ignored``."""

    version: int
    address: int
    clock: Callable[[], float]
    timeout_s: float = 1.0
    partial: dict[tuple[int, ...], _Partial] = field(default_factory=dict)
    lost: int = 0
    timeouts: int = 0
    completed: int = 0

    def _expire(self, now: float) -> None:
        for key in [k for k, p in self.partial.items() if now - p.started > self.timeout_s]:
            del self.partial[key]
            self.timeouts += 1

    def addressed(self, can_id: int) -> bool:
        if self.version == 1:
            return (can_id >> 19 & 0x1F) in (self.address, BROADCAST_V1)
        return (can_id >> 13 & 0x3FFF) in (self.address, BROADCAST_V2)

    def push(self, can_id: int, data: bytes) -> CspPacket | None:
        if not self.addressed(can_id):
            return None
        now = self.clock()
        self._expire(now)
        return self._push1(can_id, data, now) if self.version == 1 else self._push2(can_id, data, now)

    def _push1(self, can_id: int, data: bytes, now: float) -> CspPacket | None:
        key = (can_id >> 24 & 0x1F, can_id >> 19 & 0x1F, can_id & 0x3FF)
        remain = can_id >> 10 & 0xFF
        if not can_id >> 18 & 1:  # BEGIN
            if key in self.partial:
                self.lost += 1  # a new BEGIN while one was open: the old one lost its tail
            if len(data) < 6:
                self.partial.pop(key, None)
                self.lost += 1
                return None
            header = CspHeader.unpack(data[:4], 1)
            (length,) = struct.unpack(">H", data[4:6])
            self.partial[key] = _Partial(header, bytearray(data[6:]), remain - 1, length, now)
        else:
            part = self.partial.get(key)
            if part is None:
                self.lost += 1
                return None
            if remain != part.expected:
                del self.partial[key]
                self.lost += 1
                return None
            part.data += data
            part.expected = remain - 1
        part = self.partial[key]
        if len(part.data) >= part.length:
            del self.partial[key]
            self.completed += 1
            return CspPacket(part.header, bytes(part.data[: part.length]))
        return None

    def _push2(self, can_id: int, data: bytes, now: float) -> CspPacket | None:
        key = (can_id >> 27 & 3, can_id >> 13 & 0x3FFF, can_id >> 7 & 0x3F, can_id >> 5 & 3)
        fc, begin, end = can_id >> 2 & 7, can_id >> 1 & 1, can_id & 1
        if begin:
            if key in self.partial:
                self.lost += 1
            if len(data) < 4:
                self.partial.pop(key, None)
                self.lost += 1
                return None
            head = struct.pack(">H", can_id >> 13 & 0xFFFF) + data[:4]
            self.partial[key] = _Partial(CspHeader.unpack(head, 2), bytearray(data[4:]), 1, 0, now)
        else:
            part = self.partial.get(key)
            if part is None:
                self.lost += 1
                return None
            if fc != part.expected:
                del self.partial[key]
                self.lost += 1
                return None
            part.data += data
            part.expected = (part.expected + 1) & 7
        if end:
            part = self.partial.pop(key)
            self.completed += 1
            return CspPacket(part.header, bytes(part.data))
        return None


# --- CMP ----------------------------------------------------------------------------------------------------

CMP_REQUEST: Final = 0x00
CMP_REPLY: Final = 0xFF
CMP_IDENT: Final = 1
CMP_IF_STATS: Final = 3
CMP_CLOCK: Final = 6


def _cstr(text: str, size: int) -> bytes:
    return text.encode()[: size - 1].ljust(size, b"\0")


def cmp_ident_reply(hostname: str, model: str, revision: str, date: str, time: str) -> bytes:
    return (
        bytes((CMP_REPLY, CMP_IDENT))
        + _cstr(hostname, 20)
        + _cstr(model, 30)
        + _cstr(revision, 20)
        + _cstr(date, 12)
        + _cstr(time, 9)
    )


def cmp_if_stats_reply(interface: str, counters: tuple[int, ...]) -> bytes:
    return bytes((CMP_REPLY, CMP_IF_STATS)) + _cstr(interface, 11) + struct.pack(">10I", *counters)


def cmp_clock_reply(tv_sec: int, tv_nsec: int) -> bytes:
    return bytes((CMP_REPLY, CMP_CLOCK)) + struct.pack(">II", tv_sec & 0xFFFFFFFF, tv_nsec)


def parse_cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")
