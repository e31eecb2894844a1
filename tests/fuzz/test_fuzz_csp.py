"""Fuzz: CSP v1/v2 header and packet parsing, the CRC32 trailer check and the reserved-port service replies.

``bench.link.csp`` raises only :class:`CspError` (a ``ValueError``) on input that does not fit the protocol and
``bench.link.services`` only its subclass :class:`ServiceError`. For arbitrary bytes each parser returns a value
or raises that error — never an ``IndexError``, ``struct.error`` or ``UnicodeDecodeError``. Where a parse
succeeds its result is exact: every header bit pattern unpacks and packs back to the same bytes, and a service
reply decodes to what encoding it gives back.
"""

from __future__ import annotations

import pytest
from fuzz_strategies import bytes_or_mutation, fuzz
from hypothesis import given
from hypothesis import strategies as st

from bench.link.csp import (
    HEADER_SIZE_V1,
    HEADER_SIZE_V2,
    CspError,
    CspHeader,
    CspPacket,
    append_crc32,
    crc32_matches,
    verify_crc32,
)
from bench.link.services import (
    IDENT_SIZE,
    IF_STATS_SIZE,
    CmpClock,
    CmpCode,
    CmpIdent,
    CmpIfStats,
    RebootKind,
    ServiceError,
    decode_buf_free,
    decode_memfree,
    decode_ps,
    decode_reboot,
    decode_u32,
    decode_uptime,
)


@fuzz(300)
@given(raw=st.binary(max_size=12), version=st.sampled_from((1, 2, 0, 3)))
def test_header_unpack_is_total_and_exact(raw: bytes, version: int) -> None:
    try:
        header = CspHeader.unpack(raw, version)
    except CspError:
        size = {1: HEADER_SIZE_V1, 2: HEADER_SIZE_V2}.get(version)
        assert size is None or len(raw) < size  # only a short header or an unknown version is refused
        return
    # Every bit of the header is a field: packing gives the same bytes back.
    assert header.pack(version) == raw[: HEADER_SIZE_V1 if version == 1 else HEADER_SIZE_V2]


@fuzz(300)
@given(raw=st.binary(max_size=80), version=st.sampled_from((1, 2)))
def test_packet_unpack_and_crc_check_raise_only_csp_error(raw: bytes, version: int) -> None:
    try:
        packet = CspPacket.unpack(raw, version)
    except CspError:
        return
    assert packet.pack(version) == raw
    matches = crc32_matches(packet.header, packet.payload, version)
    try:
        stripped = verify_crc32(packet, version)
    except CspError:
        assert not (packet.header.has_crc32 and matches)
        return
    assert matches and stripped.payload == packet.payload[:-4]


@fuzz(300)
@given(payload=st.binary(max_size=64), version=st.sampled_from((1, 2)), at=st.integers(0, 511))
def test_a_damaged_crc32_trailer_is_refused(payload: bytes, version: int, at: int) -> None:
    """A CRC-32C catches every single-bit error: a flipped bit anywhere after the header is refused."""
    good = append_crc32(CspPacket(CspHeader(2, 1, 10, 7, 33), payload), version)
    assert verify_crc32(good, version).payload == payload
    body = bytearray(good.payload)
    body[(at // 8) % len(body)] ^= 1 << (at % 8)
    with pytest.raises(CspError, match="CRC32 mismatch"):
        verify_crc32(CspPacket(good.header, bytes(body)), version)


# --- service payloads -------------------------------------------------------------------------------------------

idents = st.builds(
    CmpIdent,
    *(st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=size) for size in (20, 30, 20, 12, 9)),
)
if_stats = st.builds(CmpIfStats, st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=11),
                     *[st.integers(0, 0xFFFFFFFF)] * 10)  # fmt: skip
clocks = st.builds(CmpClock, st.integers(0, 0xFFFFFFFF), st.integers(0, 999_999_999))


def _cmp_garbage(code: CmpCode, size: int) -> st.SearchStrategy[bytes]:
    """Right type, code and size but arbitrary body — the shape that gets past every length check."""
    return st.binary(min_size=size - 2, max_size=size - 2).map(lambda body: bytes((0xFF, code)) + body)


@fuzz(100)
@given(
    payload=st.one_of(
        bytes_or_mutation(idents.map(CmpIdent.encode_reply), garbage_max=100),
        _cmp_garbage(CmpCode.IDENT, IDENT_SIZE),
    )
)
def test_cmp_ident_reply(payload: bytes) -> None:
    try:
        ident = CmpIdent.decode(payload)
    except ServiceError:
        assert len(payload) != IDENT_SIZE or payload[:2] != bytes((0xFF, CmpCode.IDENT))
        return
    # Any byte in a name field decodes (non-ASCII as U+FFFD): a DUT's odd ident is reported, not a crash.
    assert all(len(field) <= 30 for field in (ident.hostname, ident.model, ident.revision, ident.date, ident.time))


@fuzz(100)
@given(
    payload=st.one_of(
        bytes_or_mutation(if_stats.map(CmpIfStats.encode_reply), garbage_max=80),
        _cmp_garbage(CmpCode.IF_STATS, IF_STATS_SIZE),
    )
)
def test_cmp_if_stats_reply(payload: bytes) -> None:
    try:
        stats = CmpIfStats.decode(payload)
    except ServiceError:
        assert len(payload) != IF_STATS_SIZE or payload[:2] != bytes((0xFF, CmpCode.IF_STATS))
        return
    assert all(0 <= c <= 0xFFFFFFFF for c in stats.counters())
    if stats.interface.isascii():
        assert stats.encode_reply() == payload[:2] + stats.interface.encode().ljust(11, b"\0") + payload[13:]


@fuzz(100)
@given(
    payload=st.one_of(
        bytes_or_mutation(clocks.map(lambda c: c.encode(reply=True)), garbage_max=16),
        st.binary(min_size=8, max_size=8).map(lambda b: bytes((0xFF, CmpCode.CLOCK)) + b),
    ),
    reply=st.sampled_from((True, False, None)),
)
def test_cmp_clock(payload: bytes, reply: bool | None) -> None:
    try:
        clock = CmpClock.decode(payload, reply=reply)
    except ServiceError:
        return
    assert clock.encode(reply=payload[0] == 0xFF) == payload


@fuzz(100)
@given(payload=st.binary(max_size=8), chunks=st.lists(st.binary(max_size=40), max_size=5))
def test_u32_replies_reboot_and_ps(payload: bytes, chunks: list[bytes]) -> None:
    for decode in (decode_u32, decode_memfree, decode_buf_free, decode_uptime):
        try:
            value = decode(payload)
        except ServiceError:
            assert len(payload) != 4
        else:
            assert value.to_bytes(4, "big") == payload
    try:
        kind = decode_reboot(payload)
    except ServiceError:
        pass
    else:
        assert kind in (RebootKind.REBOOT, RebootKind.SHUTDOWN)
    assert isinstance(decode_ps(chunks), str)


def test_cmp_message_of_neither_type_is_refused() -> None:
    """Regression (found by fuzzing): ``CmpClock.decode(reply=None)`` took any type byte, e.g. 0x01, for a valid
    CLOCK message; "either type" means a request (0x00) or a reply (0xFF)."""
    assert CmpClock.decode(b"\x00\x06" + bytes(8), reply=None) == CmpClock(0, 0)
    with pytest.raises(ServiceError, match="neither a request"):
        CmpClock.decode(b"\x01\x06" + bytes(8), reply=None)
