"""Reserved-port payloads (reference/protocols.md §1.5, libcsp csp_cmp.h / csp_service_handler.c)."""

from __future__ import annotations

import pytest

from bench.link.csp import CspError
from bench.link.services import (
    CLOCK_SIZE,
    CMP_REPLY,
    IDENT_SIZE,
    IF_STATS_SIZE,
    PS_REQUEST,
    CmpClock,
    CmpCode,
    CmpIdent,
    CmpIfStats,
    RebootKind,
    ServiceError,
    ServicePort,
    cmp_clock_get_request,
    cmp_clock_set_request,
    cmp_ident_request,
    cmp_if_stats_request,
    decode_buf_free,
    decode_memfree,
    decode_ps,
    decode_reboot,
    decode_uptime,
    encode_u32,
    ping_reply_ok,
    ping_request,
    reboot_request,
)


def test_port_numbers() -> None:
    assert [int(p) for p in ServicePort] == [0, 1, 2, 3, 4, 5, 6]
    assert [p.name for p in ServicePort] == ["CMP", "PING", "PS", "MEMFREE", "REBOOT", "BUF_FREE", "UPTIME"]
    assert int(CmpCode.IDENT) == 1 and int(CmpCode.CLOCK) == 6 and int(CmpCode.ROUTE_SET_V2) == 7


def test_ident_sizes_and_layout() -> None:
    assert IDENT_SIZE == 93
    request = cmp_ident_request()
    assert request == b"\x00\x01" + bytes(91)
    ident = CmpIdent("obc", "OTS-SAT OBC", "v1.2.3-4-gabcdef", "Jan  1 2026", "12:34:56")
    raw = ident.encode_reply()
    assert len(raw) == 93
    assert raw[:2] == b"\xff\x01"
    assert raw[2:22] == b"obc".ljust(20, b"\x00")
    assert raw[22:52] == b"OTS-SAT OBC".ljust(30, b"\x00")
    assert raw[84:93] == b"12:34:56\x00"
    assert CmpIdent.decode(raw) == ident


def test_ident_full_field_without_terminator() -> None:
    ident = CmpIdent("h" * 20, "m" * 30, "r" * 20, "d" * 12, "t" * 9)  # strncpy may leave no NUL
    assert CmpIdent.decode(ident.encode_reply()) == ident


def test_ident_errors() -> None:
    with pytest.raises(ServiceError, match=r"hostname 'h+' is 21 bytes, the field holds 20"):
        CmpIdent("h" * 21, "", "", "", "").encode_reply()
    with pytest.raises(ServiceError, match="not a reply"):
        CmpIdent.decode(cmp_ident_request())
    with pytest.raises(ServiceError, match="IDENT payload is 92 bytes, expected 93"):
        CmpIdent.decode(bytes((CMP_REPLY, 1)) + bytes(90))
    with pytest.raises(ServiceError, match="code 6 is not IDENT"):
        CmpIdent.decode(bytes((CMP_REPLY, 6)) + bytes(91))
    assert issubclass(ServiceError, CspError)


def test_clock() -> None:
    assert CLOCK_SIZE == 10
    assert cmp_clock_get_request() == bytes.fromhex("0006 00000000 00000000")
    assert cmp_clock_set_request(0x65000000, 5) == bytes.fromhex("0006 65000000 00000005")
    reply = CmpClock(1_767_225_600, 123_456_789).encode(reply=True)
    assert reply[:2] == b"\xff\x06"
    assert CmpClock.decode(reply) == CmpClock(1_767_225_600, 123_456_789)
    assert CmpClock.decode(cmp_clock_get_request(), reply=None) == CmpClock(0, 0)
    with pytest.raises(ServiceError, match="would only read"):
        cmp_clock_set_request(0)
    with pytest.raises(ServiceError, match="nanoseconds"):
        CmpClock(1, 1_000_000_000)


def test_if_stats() -> None:
    assert IF_STATS_SIZE == 53
    request = cmp_if_stats_request("CAN")
    assert request[:2] == b"\x00\x03" and request[2:13] == b"CAN".ljust(11, b"\x00") and len(request) == 53
    stats = CmpIfStats("CAN", 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xFFFFFFFF)
    raw = stats.encode_reply()
    assert len(raw) == 53
    assert raw[13:17] == b"\x00\x00\x00\x01"  # tx first, big-endian
    assert raw[-4:] == b"\xff\xff\xff\xff"  # irq last
    assert CmpIfStats.decode(raw) == stats
    with pytest.raises(ServiceError, match="uint32"):
        CmpIfStats("CAN", tx=-1).encode_reply()
    with pytest.raises(ServiceError, match=r"interface name 'a-very-long-name' is 16 bytes, the field holds 11"):
        cmp_if_stats_request("a-very-long-name")


def test_ping() -> None:
    request = ping_request(300)
    assert request[:3] == b"\x00\x01\x02" and request[256] == 0 and len(request) == 300
    assert ping_reply_ok(request, bytes(request))
    assert not ping_reply_ok(request, request[:-1])
    with pytest.raises(ServiceError):
        ping_request(-1)


def test_u32_replies() -> None:
    assert decode_memfree(encode_u32(123456)) == 123456
    assert decode_buf_free(b"\x00\x00\x00\x10") == 16
    assert decode_uptime(b"\x00\x01\x00\x00") == 65536
    with pytest.raises(ServiceError, match="UPTIME reply must be a 4-byte uint32, got 3 bytes"):
        decode_uptime(b"\x00\x00\x01")
    with pytest.raises(ServiceError, match="does not fit"):
        encode_u32(1 << 32)


def test_reboot() -> None:
    assert reboot_request() == bytes.fromhex("80078007")
    assert reboot_request(RebootKind.SHUTDOWN) == bytes.fromhex("d1e5529a")
    assert decode_reboot(bytes.fromhex("80078007")) is RebootKind.REBOOT
    with pytest.raises(ServiceError, match="REBOOT magic 0x12345678 is neither"):
        decode_reboot(bytes.fromhex("12345678"))


def test_ps() -> None:
    assert PS_REQUEST == b"\x55"
    assert decode_ps([b"task1 ready\r\n", b"task2 blocked\r\n\x00junk"]) == "task1 ready\r\ntask2 blocked\r\n"
    assert decode_ps([]) == ""
