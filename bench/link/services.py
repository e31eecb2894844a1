"""Payloads of the CSP reserved service ports (0..6), as libcsp's service handler reads and writes them.

Every libcsp node answers a handful of built-in services on fixed ports, whatever the mission software
does; they are the first thing a bench checks ("is the node alive, what is it, how long has it been up").
This module only encodes and decodes the *payloads*; addressing, CRC and fragmentation are the job of
:mod:`bench.link.csp` and :mod:`bench.link.cfp`. All multi-byte integers are big-endian.

============  ==========================================  ==========================================
port          request payload                             reply payload
============  ==========================================  ==========================================
0 CMP         ``type=0x00, code, body`` (packed struct)   same struct, ``type=0xFF``
1 PING        any bytes (``csp_ping`` sends 0,1,2,…)      the same bytes, echoed
2 PS          one byte ``0x55``                           task list as text (possibly several packets)
3 MEMFREE     empty                                       uint32 free bytes
4 REBOOT      uint32 magic (reboot / shutdown)            none — the node goes away
5 BUF_FREE    empty                                       uint32 free CSP buffers
6 UPTIME      empty                                       uint32 seconds since boot
============  ==========================================  ==========================================

CMP (CSP management protocol) bodies used here: IDENT (hostname[20] model[30] revision[20] date[12]
time[9], NUL-padded C strings — the request carries the same 93 bytes, zeroed), IF_STATS (interface[11]
then ten uint32 counters), CLOCK (uint32 seconds + uint32 nanoseconds; seconds 0 in a request = "only
read"). Strings are fixed-size ``char`` arrays filled like ``strncpy``: they need not be NUL-terminated
when full, so decoding stops at the first NUL or at the end of the field.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from bench.link.csp import CspError


class ServiceError(CspError):
    """A service payload that does not have the shape its port and code require."""


class ServicePort(IntEnum):
    CMP = 0
    PING = 1
    PS = 2
    MEMFREE = 3
    REBOOT = 4
    BUF_FREE = 5
    UPTIME = 6


class CmpCode(IntEnum):
    IDENT = 1
    ROUTE_SET_V1 = 2
    IF_STATS = 3
    PEEK = 4
    POKE = 5
    CLOCK = 6
    ROUTE_SET_V2 = 7


CMP_REQUEST = 0x00
CMP_REPLY = 0xFF

REBOOT_MAGIC = 0x80078007
SHUTDOWN_MAGIC = 0xD1E5529A
PS_REQUEST = b"\x55"  # libcsp 1.6 refuses anything else
PING_NOREPLY = b"\x55"  # csp_ping_noreply's one-byte payload

IDENT_FIELDS = (("hostname", 20), ("model", 30), ("revision", 20), ("date", 12), ("time", 9))
IDENT_SIZE = 2 + sum(size for _, size in IDENT_FIELDS)  # 93, libcsp CMP_SIZE(ident)
IF_NAME_SIZE = 11
IF_STATS_SIZE = 2 + IF_NAME_SIZE + 10 * 4  # 53
CLOCK_SIZE = 2 + 8


def _encode_cstr(what: str, text: str, size: int) -> bytes:
    raw = text.encode("ascii")
    if len(raw) > size:
        raise ServiceError(f"{what} {text!r} is {len(raw)} bytes, the field holds {size}")
    return raw.ljust(size, b"\x00")


def _decode_cstr(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("ascii", errors="replace")


def _cmp_prefix(payload: bytes, code: CmpCode, size: int, expect_type: int | None) -> None:
    if len(payload) < 2:
        raise ServiceError(f"CMP payload is {len(payload)} bytes, shorter than its type and code")
    if expect_type is not None and payload[0] != expect_type:
        kind = "reply" if expect_type == CMP_REPLY else "request"
        raise ServiceError(f"CMP type 0x{payload[0]:02X} is not a {kind} (0x{expect_type:02X})")
    if payload[0] not in (CMP_REQUEST, CMP_REPLY):
        raise ServiceError(f"CMP type 0x{payload[0]:02X} is neither a request (0x00) nor a reply (0xFF)")
    if payload[1] != code:
        raise ServiceError(f"CMP code {payload[1]} is not {code.name} ({int(code)})")
    if len(payload) != size:
        raise ServiceError(f"CMP {code.name} payload is {len(payload)} bytes, expected {size}")


# --- CMP IDENT ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CmpIdent:
    """Who a node says it is (``csp_cmp_ident``)."""

    hostname: str
    model: str
    revision: str
    date: str
    time: str

    def encode_reply(self) -> bytes:
        body = b"".join(_encode_cstr(name, getattr(self, name), size) for name, size in IDENT_FIELDS)
        return bytes((CMP_REPLY, CmpCode.IDENT)) + body

    @classmethod
    def decode(cls, payload: bytes) -> CmpIdent:
        """Decode an IDENT reply (type 0xFF)."""
        _cmp_prefix(payload, CmpCode.IDENT, IDENT_SIZE, CMP_REPLY)
        fields = []
        offset = 2
        for _, size in IDENT_FIELDS:
            fields.append(_decode_cstr(payload[offset : offset + size]))
            offset += size
        return cls(*fields)


def cmp_ident_request() -> bytes:
    return bytes((CMP_REQUEST, CmpCode.IDENT)) + bytes(IDENT_SIZE - 2)


# --- CMP CLOCK ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CmpClock:
    """A node's clock (``csp_timestamp_t``); in a request ``tv_sec == 0`` means "read only"."""

    tv_sec: int
    tv_nsec: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.tv_sec <= 0xFFFFFFFF:
            raise ServiceError(f"CMP clock seconds {self.tv_sec} do not fit in uint32")
        if not 0 <= self.tv_nsec <= 999_999_999:
            raise ServiceError(f"CMP clock nanoseconds {self.tv_nsec} out of range 0..999999999")

    def encode(self, reply: bool = False) -> bytes:
        kind = CMP_REPLY if reply else CMP_REQUEST
        return struct.pack(">BBII", kind, CmpCode.CLOCK, self.tv_sec, self.tv_nsec)

    @classmethod
    def decode(cls, payload: bytes, *, reply: bool | None = True) -> CmpClock:
        """Decode a CLOCK message; ``reply=None`` accepts either type."""
        expect = None if reply is None else (CMP_REPLY if reply else CMP_REQUEST)
        _cmp_prefix(payload, CmpCode.CLOCK, CLOCK_SIZE, expect)
        sec, nsec = struct.unpack_from(">II", payload, 2)
        return cls(sec, nsec)


def cmp_clock_get_request() -> bytes:
    return CmpClock(0, 0).encode()


def cmp_clock_set_request(tv_sec: int, tv_nsec: int = 0) -> bytes:
    if tv_sec == 0:
        raise ServiceError("CMP clock set with tv_sec 0 would only read the clock")
    return CmpClock(tv_sec, tv_nsec).encode()


# --- CMP IF_STATS ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CmpIfStats:
    """Counters of one network interface of a node (``csp_iface_t``)."""

    interface: str
    tx: int = 0
    rx: int = 0
    tx_error: int = 0
    rx_error: int = 0
    drop: int = 0
    autherr: int = 0
    frame: int = 0
    txbytes: int = 0
    rxbytes: int = 0
    irq: int = 0

    def counters(self) -> tuple[int, ...]:
        return (
            self.tx,
            self.rx,
            self.tx_error,
            self.rx_error,
            self.drop,
            self.autherr,
            self.frame,
            self.txbytes,
            self.rxbytes,
            self.irq,
        )

    def encode_reply(self) -> bytes:
        try:
            counters = struct.pack(">10I", *self.counters())
        except struct.error as exc:
            raise ServiceError(f"if-stats counter does not fit in uint32: {self.counters()}") from exc
        name = _encode_cstr("interface name", self.interface, IF_NAME_SIZE)
        return bytes((CMP_REPLY, CmpCode.IF_STATS)) + name + counters

    @classmethod
    def decode(cls, payload: bytes) -> CmpIfStats:
        _cmp_prefix(payload, CmpCode.IF_STATS, IF_STATS_SIZE, CMP_REPLY)
        name = _decode_cstr(payload[2 : 2 + IF_NAME_SIZE])
        return cls(name, *struct.unpack_from(">10I", payload, 2 + IF_NAME_SIZE))


def cmp_if_stats_request(interface: str) -> bytes:
    name = _encode_cstr("interface name", interface, IF_NAME_SIZE)
    return bytes((CMP_REQUEST, CmpCode.IF_STATS)) + name + bytes(IF_STATS_SIZE - 2 - IF_NAME_SIZE)


# --- PING -----------------------------------------------------------------------------------------------


def ping_request(size: int) -> bytes:
    """The payload ``csp_ping`` sends: bytes 0, 1, 2, … (mod 256)."""
    if size < 0:
        raise ServiceError(f"ping size must not be negative, got {size}")
    return bytes(i & 0xFF for i in range(size))


def ping_reply_ok(request: bytes, reply: bytes) -> bool:
    """A ping reply must echo the request byte for byte."""
    return request == reply


# --- MEMFREE / BUF_FREE / UPTIME -------------------------------------------------------------------------


def encode_u32(value: int) -> bytes:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ServiceError(f"value {value} does not fit in uint32")
    return value.to_bytes(4, "big")


def decode_u32(payload: bytes, what: str = "reply") -> int:
    """MEMFREE, BUF_FREE and UPTIME replies: exactly one big-endian uint32."""
    if len(payload) != 4:
        raise ServiceError(f"{what} must be a 4-byte uint32, got {len(payload)} bytes")
    return int.from_bytes(payload, "big")


def decode_memfree(payload: bytes) -> int:
    return decode_u32(payload, "MEMFREE reply")


def decode_buf_free(payload: bytes) -> int:
    return decode_u32(payload, "BUF_FREE reply")


def decode_uptime(payload: bytes) -> int:
    return decode_u32(payload, "UPTIME reply")


# --- REBOOT ---------------------------------------------------------------------------------------------


class RebootKind(IntEnum):
    REBOOT = REBOOT_MAGIC
    SHUTDOWN = SHUTDOWN_MAGIC


def reboot_request(kind: RebootKind = RebootKind.REBOOT) -> bytes:
    return encode_u32(int(kind))


def decode_reboot(payload: bytes) -> RebootKind:
    """What a REBOOT request asks for; libcsp ignores any other magic, so it is an error here."""
    magic = decode_u32(payload, "REBOOT request")
    try:
        return RebootKind(magic)
    except ValueError:
        raise ServiceError(
            f"REBOOT magic 0x{magic:08X} is neither reboot 0x{REBOOT_MAGIC:08X} nor shutdown 0x{SHUTDOWN_MAGIC:08X}"
        ) from None


# --- PS -------------------------------------------------------------------------------------------------


def decode_ps(replies: list[bytes] | tuple[bytes, ...]) -> str:
    """Join the text chunks of a PS reply (libcsp 1.6 splits it by MTU; HEAD sends what its hook gives)."""
    # A chunk may be a C string: keep what precedes its terminator.
    text = b"".join(chunk.split(b"\x00", 1)[0] for chunk in replies)
    return text.decode("utf-8", errors="replace")
