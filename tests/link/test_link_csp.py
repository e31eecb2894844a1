"""CSP v1/v2 headers and the CRC32 trailer, against reference/protocols.md §1.1-§1.4."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.link.crc32c import crc32c
from bench.link.csp import (
    FLAG_CRC32,
    FLAG_HMAC,
    FLAG_RDP,
    FLAG_RES1,
    FLAG_XTEA,
    CspError,
    CspHeader,
    CspPacket,
    CspVersion,
    Priority,
    append_crc32,
    crc32_matches,
    header_size,
    verify_crc32,
)

V1, V2 = CspVersion.V1, CspVersion.V2


def test_v1_reference_example() -> None:
    header = CspHeader(prio=Priority.NORM, src=10, dst=1, dport=1, sport=40, flags=0)
    assert header.pack_v1() == bytes.fromhex("94106800")
    assert CspHeader.unpack_v1(bytes.fromhex("94106800")) == header


def test_v2_reference_example_dst_before_src() -> None:
    header = CspHeader(prio=2, src=10, dst=1, dport=1, sport=40, flags=FLAG_CRC32)
    raw = header.pack_v2()
    assert raw == bytes.fromhex("80010028 1a01")
    # prio(2) dst(14): 0b10 << 14 | 1 = 0x8001 — the destination sits right after the priority.
    assert int.from_bytes(raw[:2], "big") == (2 << 14) | 1
    assert CspHeader.unpack_v2(raw) == header


def test_pack_by_version_and_sizes() -> None:
    header = CspHeader(3, 5, 6, 7, 8, FLAG_RDP)
    assert header.pack(V1) == header.pack_v1()
    assert header.pack(V2) == header.pack_v2()
    assert header_size(V1) == len(header.pack(V1)) == 4
    assert header_size(V2) == len(header.pack(V2)) == 6
    assert CspHeader.unpack(header.pack(V2), V2) == header


v1_headers = st.builds(
    CspHeader,
    prio=st.integers(0, 3),
    src=st.integers(0, 31),
    dst=st.integers(0, 31),
    dport=st.integers(0, 63),
    sport=st.integers(0, 63),
    flags=st.integers(0, 255),
)
v2_headers = st.builds(
    CspHeader,
    prio=st.integers(0, 3),
    src=st.integers(0, 0x3FFF),
    dst=st.integers(0, 0x3FFF),
    dport=st.integers(0, 63),
    sport=st.integers(0, 63),
    flags=st.integers(0, 63),
)


@given(v1_headers)
def test_v1_round_trip(header: CspHeader) -> None:
    assert CspHeader.unpack_v1(header.pack_v1()) == header


@given(v2_headers)
def test_v2_round_trip(header: CspHeader) -> None:
    assert CspHeader.unpack_v2(header.pack_v2()) == header


@given(st.binary(min_size=6, max_size=6))
def test_any_six_bytes_are_a_v2_header(raw: bytes) -> None:
    assert CspHeader.unpack_v2(raw).pack_v2() == raw


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prio": 4}, "prio 4 out of range 0..3"),
        ({"dport": 64}, "dport 64 out of range 0..63"),
        ({"sport": -1}, "sport -1 out of range"),
        ({"src": 0x4000}, "src 16384 out of range 0..16383"),
        ({"flags": 256}, "flags 256 out of range 0..255"),
    ],
)
def test_header_validation(kwargs: dict[str, int], message: str) -> None:
    fields = {"prio": 2, "src": 1, "dst": 2, "dport": 3, "sport": 4, "flags": 0} | kwargs
    with pytest.raises(CspError, match=message):
        CspHeader(**fields)


def test_v1_limits_checked_when_packing() -> None:
    wide = CspHeader(2, 100, 1, 1, 1)
    assert wide.pack_v2()  # fine in v2
    with pytest.raises(CspError, match=r"CSP v1 src 100 out of range 0\.\.31"):
        wide.pack_v1()


def test_v2_cannot_carry_high_flags() -> None:
    for flag in (FLAG_RES1, 0x40):
        with pytest.raises(CspError, match=r"CSP v2 flags \d+ out of range 0\.\.63"):
            CspHeader(2, 1, 2, 3, 4, flag).pack_v2()
    assert CspHeader(2, 1, 2, 3, 4, FLAG_XTEA | FLAG_HMAC).pack_v1()


def test_short_and_unknown() -> None:
    with pytest.raises(CspError, match="v1 header needs 4 bytes, got 3"):
        CspHeader.unpack_v1(b"\x00\x00\x00")
    with pytest.raises(CspError, match="v2 header needs 6 bytes, got 5"):
        CspHeader.unpack_v2(bytes(5))
    with pytest.raises(CspError, match="unknown CSP version 3"):
        CspHeader(0, 0, 0, 0, 0).pack(3)


def test_packet_pack_unpack() -> None:
    packet = CspPacket(CspHeader(2, 10, 1, 1, 40), b"hello")
    assert packet.pack(V1) == bytes.fromhex("94106800") + b"hello"
    assert CspPacket.unpack(packet.pack(V2), V2) == packet


def test_packet_timestamp_not_part_of_equality() -> None:
    header = CspHeader(2, 10, 1, 1, 40)
    assert CspPacket(header, b"x", 1.0) == CspPacket(header, b"x", 2.0)


# --- CRC32 trailer ------------------------------------------------------------------------------------


def test_crc32_trailer_is_crc32c_big_endian_over_data() -> None:
    packet = append_crc32(CspPacket(CspHeader(2, 10, 1, 1, 40), b"123456789"), V1)
    assert packet.header.flags & FLAG_CRC32
    assert packet.payload == b"123456789" + bytes.fromhex("e3069283")
    checked = verify_crc32(packet, V1)
    assert checked.payload == b"123456789"
    assert checked.header.has_crc32  # the flag records what was received


@given(v2_headers, st.binary(max_size=300))
def test_v2_accepts_data_only_and_header_plus_data(header: CspHeader, data: bytes) -> None:
    packet = CspPacket(header, data)
    data_only = append_crc32(packet, V2)
    with_header = append_crc32(packet, V2, include_header=True)
    assert verify_crc32(data_only, V2).payload == data
    assert verify_crc32(with_header, V2).payload == data


def test_v2_header_crc_covers_the_header_with_its_flag() -> None:
    header = CspHeader(2, 10, 1, 1, 40, FLAG_CRC32)
    packet = append_crc32(CspPacket(header, b"abc"), V2, include_header=True)
    assert packet.payload[-4:] == crc32c(bytes.fromhex("80010028 1a01") + b"abc").to_bytes(4, "big")


def test_v1_rejects_header_plus_data_crc() -> None:
    header = CspHeader(2, 10, 1, 1, 40, FLAG_CRC32)
    payload = b"abc" + crc32c(header.pack_v1() + b"abc").to_bytes(4, "big")
    assert not crc32_matches(header, payload, V1)
    with pytest.raises(CspError, match="accepted: data-only"):
        verify_crc32(CspPacket(header, payload), V1)
    with pytest.raises(CspError, match="only in CSP v2"):
        append_crc32(CspPacket(header, b"abc"), V1, include_header=True)


def test_crc32_errors_name_the_problem() -> None:
    good = append_crc32(CspPacket(CspHeader(2, 10, 1, 1, 40), b"payload"), V1)
    bad = CspPacket(good.header, good.payload[:-1] + bytes([good.payload[-1] ^ 1]))
    with pytest.raises(CspError, match=r"CRC32 mismatch: received 0x[0-9A-F]{8}, data-only CRC is 0x"):
        verify_crc32(bad, V1)
    with pytest.raises(CspError, match="no CRC32 flag"):
        verify_crc32(CspPacket(CspHeader(2, 10, 1, 1, 40), b"payload"), V1)
    with pytest.raises(CspError, match="payload is 3 bytes, shorter than the 4-byte CRC"):
        verify_crc32(CspPacket(CspHeader(2, 10, 1, 1, 40, FLAG_CRC32), b"abc"), V1)
