"""CFP v1/v2 fragmentation and reassembly: verified vectors (reference/protocols.md §1.6, §1.7),
round trips, and libcsp's drop rules — every loss is counted, none raises."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.link.cfp import (
    CFP1_MAX_PAYLOAD,
    CanFrame,
    CfpEncoder,
    Reassembler,
    ReassemblyCounters,
    fragment_v1,
    fragment_v2,
)
from bench.link.csp import FLAG_CRC32, CspError, CspHeader, CspPacket, append_crc32


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def frames_hex(frames: list[CanFrame]) -> list[str]:
    return [f"{f.can_id:08X} {f.data.hex()}" for f in frames]


HEADER = CspHeader(prio=2, src=10, dst=1, dport=1, sport=40, flags=0)
PACKET_20 = CspPacket(HEADER, bytes(range(20)))


# --- verified vectors ---------------------------------------------------------------------------------


def test_cfp_v1_vector() -> None:
    assert frames_hex(fragment_v1(PACKET_20, ident=5)) == [
        "0A080C05 9410680000140001",
        "0A0C0805 0203040506070809",
        "0A0C0405 0a0b0c0d0e0f1011",
        "0A0C0005 1213",
    ]


def test_cfp_v2_vector() -> None:
    assert frames_hex(fragment_v2(PACKET_20, sender=10, sc=0)) == [
        "10002502 00281a0000010203",
        "10002504 0405060708090a0b",
        "10002509 0c0d0e0f10111213",
    ]


def test_cfp_v1_vector_reassembles() -> None:
    frames = [
        (0x0A080C05, bytes.fromhex("9410680000140001")),
        (0x0A0C0805, bytes.fromhex("0203040506070809")),
        (0x0A0C0405, bytes.fromhex("0a0b0c0d0e0f1011")),
        (0x0A0C0005, bytes.fromhex("1213")),
    ]
    r = Reassembler(1)
    assert [r.push(i, d) for i, d in frames] == [None, None, None, PACKET_20]
    assert r.counters == ReassemblyCounters(frames=4, packets=1)
    assert r.pending == 0


def test_cfp_v2_vector_reassembles() -> None:
    frames = [
        (0x10002502, bytes.fromhex("00281a0000010203")),
        (0x10002504, bytes.fromhex("0405060708090a0b")),
        (0x10002509, bytes.fromhex("0c0d0e0f10111213")),
    ]
    r = Reassembler(2)
    assert [r.push(i, d) for i, d in frames] == [None, None, PACKET_20]
    assert r.counters == ReassemblyCounters(frames=3, packets=1)


def test_v1_begin_layout_and_remain_count() -> None:
    for length in (0, 1, 2, 3, 10, 11, 100, CFP1_MAX_PAYLOAD):
        frames = fragment_v1(CspPacket(HEADER, bytes(length)), ident=0x3FF)
        begin = frames[0]
        assert begin.data[:4] == HEADER.pack_v1()
        assert int.from_bytes(begin.data[4:6], "big") == length
        assert len(begin.data) == 6 + min(length, 2)
        remains = [(f.can_id >> 10) & 0xFF for f in frames]
        assert remains == list(range(len(frames) - 1, -1, -1))
        assert remains[0] == (length + 5) // 8
        assert [(f.can_id >> 18) & 1 for f in frames] == [0] + [1] * (len(frames) - 1)
        assert {f.can_id & 0x3FF for f in frames} == {0x3FF}


def test_v1_ident_uses_low_ten_bits_and_via_is_can_destination() -> None:
    frames = fragment_v1(PACKET_20, ident=0x405, via=4)
    assert {f.can_id & 0x3FF for f in frames} == {5}
    assert {(f.can_id >> 19) & 0x1F for f in frames} == {4}
    assert frames[0].data[:4] == HEADER.pack_v1()  # the CSP header keeps the real destination


def test_v2_single_frame_is_begin_and_end() -> None:
    (frame,) = fragment_v2(CspPacket(HEADER, b"abcd"), sender=10, sc=3)
    assert frame.can_id & 0b11 == 0b11
    assert (frame.can_id >> 5) & 3 == 3
    assert Reassembler(2).feed(frame) == CspPacket(HEADER, b"abcd")


def test_v2_empty_payload() -> None:
    (frame,) = fragment_v2(CspPacket(HEADER, b""), sender=10, sc=0)
    assert len(frame.data) == 4
    assert Reassembler(2).feed(frame) == CspPacket(HEADER, b"")


def test_v2_fragment_counter_wraps_modulo_8() -> None:
    frames = fragment_v2(CspPacket(HEADER, bytes(100)), sender=1, sc=1)
    assert [(f.can_id >> 2) & 7 for f in frames] == [i % 8 for i in range(len(frames))]
    assert len(frames) > 8
    assert next(Reassembler(2).feed_all(frames)).payload == bytes(100)


def test_transmit_validation() -> None:
    with pytest.raises(CspError, match="at most 2042 payload bytes, packet has 2043"):
        fragment_v1(CspPacket(HEADER, bytes(2043)), 0)
    with pytest.raises(CspError, match="v1 src 40 out of range"):
        fragment_v1(CspPacket(CspHeader(2, 40, 1, 1, 1), b""), 0)
    with pytest.raises(CspError, match="next hop 32"):
        fragment_v1(PACKET_20, 0, via=32)
    with pytest.raises(CspError, match="does not fit in 29 bits"):
        CanFrame(1 << 29, b"")
    with pytest.raises(CspError, match="at most 8"):
        CanFrame(0, bytes(9))


def test_encoder_counts_packets() -> None:
    enc = CfpEncoder(1, address=10)
    idents = [enc.encode(PACKET_20)[0].can_id & 0x3FF for _ in range(3)]
    assert idents == [0, 1, 2]
    enc2 = CfpEncoder(2, address=0x4A)  # SENDER keeps the low 6 bits of the address
    ids = [enc2.encode(PACKET_20)[0].can_id for _ in range(5)]
    assert [(i >> 5) & 3 for i in ids] == [0, 1, 2, 3, 0]
    assert {(i >> 7) & 0x3F for i in ids} == {0x0A}


# --- round trips ----------------------------------------------------------------------------------------

v1_headers = st.builds(
    CspHeader,
    prio=st.integers(0, 3),
    src=st.integers(0, 31),
    dst=st.integers(0, 30),
    dport=st.integers(0, 63),
    sport=st.integers(0, 63),
    flags=st.integers(0, 255).map(lambda f: f & ~FLAG_CRC32),
)
v2_headers = st.builds(
    CspHeader,
    prio=st.integers(0, 3),
    src=st.integers(0, 0x3FFF),
    dst=st.integers(0, 0x3FFE),
    dport=st.integers(0, 63),
    sport=st.integers(0, 63),
    flags=st.integers(0, 63).map(lambda f: f & ~FLAG_CRC32),
)


@settings(max_examples=150)
@given(v1_headers, st.binary(max_size=CFP1_MAX_PAYLOAD), st.integers(0, 5000))
def test_v1_round_trip(header: CspHeader, payload: bytes, ident: int) -> None:
    packet = CspPacket(header, payload)
    r = Reassembler(1)
    out = [r.feed(f) for f in fragment_v1(packet, ident)]
    assert out[-1] == packet
    assert all(p is None for p in out[:-1])
    assert r.counters == ReassemblyCounters(frames=len(out), packets=1)


@settings(max_examples=150)
@given(v2_headers, st.binary(max_size=CFP1_MAX_PAYLOAD), st.integers(0, 63), st.integers(0, 3))
def test_v2_round_trip(header: CspHeader, payload: bytes, sender: int, sc: int) -> None:
    packet = CspPacket(header, payload)
    r = Reassembler(2)
    out = [r.feed(f) for f in fragment_v2(packet, sender, sc)]
    assert out[-1] == packet
    assert all(p is None for p in out[:-1])
    assert r.counters == ReassemblyCounters(frames=len(out), packets=1)


@settings(max_examples=50)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=10), st.randoms(use_true_random=False))
def test_interleaved_packets_from_different_sources(payloads: list[bytes], rnd: random.Random) -> None:
    """Fragments of packets from several nodes mixed on the bus, each packet's own order kept."""
    for version in (1, 2):
        packets = [CspPacket(CspHeader(2, src, 10, 7, 33), p) for src, p in enumerate(payloads, start=1)]
        if version == 1:
            queues = [fragment_v1(p, ident=i) for i, p in enumerate(packets)]
        else:
            queues = [fragment_v2(p, sender=p.header.src, sc=0) for p in packets]
        mixed: list[CanFrame] = []
        while any(queues):
            q = rnd.choice([q for q in queues if q])
            mixed.append(q.pop(0))
        r = Reassembler(version)
        received = list(r.feed_all(mixed))
        assert sorted(received, key=lambda p: p.header.src) == packets
        assert r.counters.packets == len(packets)
        assert r.counters.dropped == 0


@settings(max_examples=200)
@given(
    st.lists(st.tuples(st.integers(0, (1 << 29) - 1), st.binary(max_size=8)), max_size=60),
    st.sampled_from([1, 2]),
)
def test_garbage_never_raises(frames: list[tuple[int, bytes]], version: int) -> None:
    r = Reassembler(version)
    for can_id, data in frames:
        r.push(can_id, data)
    c = r.counters
    assert c.frames == len(frames)


# --- drop rules -----------------------------------------------------------------------------------------


@pytest.fixture(params=[1, 2])
def version(request: pytest.FixtureRequest) -> int:
    return int(request.param)


def fragments(version: int, packet: CspPacket, counter: int = 0) -> list[CanFrame]:
    return fragment_v1(packet, counter) if version == 1 else fragment_v2(packet, 10, counter)


def test_lost_fragment_drops_packet_and_counts(version: int) -> None:
    packet = CspPacket(HEADER, bytes(range(40)))
    frames = fragments(version, packet)
    del frames[2]
    r = Reassembler(version)
    assert [r.feed(f) for f in frames] == [None] * len(frames)
    assert r.counters.dropped_sequence == 1
    assert r.counters.packets == 0
    # The frames after the gap found no packet in progress: counted as orphans, the link carries on.
    assert r.counters.dropped_orphan == len(frames) - 3
    assert next(r.feed_all(fragments(version, packet, 1))) == packet


def test_lost_last_fragment_is_found_when_the_key_restarts(version: int) -> None:
    packet = CspPacket(HEADER, bytes(30))
    r = Reassembler(version)
    for f in fragments(version, packet)[:-1]:
        r.feed(f)
    assert r.pending == 1
    # Same key again (v1: same ident; v2: SC wrapped around): BEGIN restarts, the torso is counted.
    assert list(r.feed_all(fragments(version, packet, 0 if version == 1 else 4))) == [packet]
    assert r.counters.dropped_sequence == 1
    assert r.counters.packets == 1


def test_lost_begin_makes_orphans(version: int) -> None:
    frames = fragments(version, CspPacket(HEADER, bytes(30)))
    r = Reassembler(version)
    assert list(r.feed_all(frames[1:])) == []
    assert r.counters.dropped_orphan == len(frames) - 1


def test_out_of_order_fragment_drops_packet(version: int) -> None:
    frames = fragments(version, CspPacket(HEADER, bytes(50)))
    frames[2], frames[3] = frames[3], frames[2]
    r = Reassembler(version)
    assert list(r.feed_all(frames)) == []
    assert r.counters.dropped_sequence == 1


def test_duplicated_fragment_drops_packet(version: int) -> None:
    frames = fragments(version, CspPacket(HEADER, bytes(50)))
    frames.insert(2, frames[1])
    r = Reassembler(version)
    assert list(r.feed_all(frames)) == []
    assert r.counters.dropped_sequence == 1


def test_short_begin_dropped(version: int) -> None:
    r = Reassembler(version)
    begin = fragments(version, CspPacket(HEADER, bytes(30)))[0]
    short = 5 if version == 1 else 3
    assert r.push(begin.can_id, begin.data[:short]) is None
    assert r.counters.dropped_short == 1
    assert r.pending == 0


def test_timeout_of_partial_packet(version: int) -> None:
    clock = FakeClock()
    r = Reassembler(version, timeout_s=1.0, clock=clock)
    frames = fragments(version, CspPacket(HEADER, bytes(30)))
    r.feed(frames[0])
    clock.now += 0.9
    r.feed(frames[1])  # touching it keeps it alive
    clock.now += 1.5
    assert list(r.feed_all(frames[2:])) == []  # too late: not revived
    assert r.counters.dropped_timeout == 1
    assert r.counters.packets == 0


def test_expire_and_sweep_on_new_packet(version: int) -> None:
    clock = FakeClock()
    r = Reassembler(version, timeout_s=1.0, clock=clock)
    a = CspPacket(CspHeader(2, 3, 1, 1, 40), bytes(30))
    b = CspPacket(CspHeader(2, 4, 1, 1, 40), bytes(30))
    c = CspPacket(CspHeader(2, 5, 1, 1, 40), bytes(30))
    r.feed(fragments(version, a)[0])
    clock.now += 2.0
    assert r.expire() == 1
    assert r.pending == 0
    r.feed(fragments(version, b, 1)[0])
    clock.now += 2.0
    # A new packet starting sweeps stale ones (libcsp's csp_can_pbuf_cleanup).
    assert list(r.feed_all(fragments(version, c, 2))) == [c]
    assert r.counters.dropped_timeout == 2
    assert r.pending == 0


def test_crc_error_counted_and_good_crc_stripped(version: int) -> None:
    header = CspHeader(2, 10, 1, 1, 40)
    good = append_crc32(CspPacket(header, bytes(range(25))), version)
    r = Reassembler(version)
    out = list(r.feed_all(fragments(version, good)))
    assert out == [CspPacket(header.with_flags(FLAG_CRC32), bytes(range(25)))]
    bad = CspPacket(good.header, good.payload[:-1] + b"\x00")
    assert list(r.feed_all(fragments(version, bad, 1))) == []
    assert r.counters.crc_errors == 1
    assert r.counters.packets == 1


def test_crc_check_can_be_left_to_the_caller(version: int) -> None:
    good = append_crc32(CspPacket(HEADER, b"abc"), version)
    r = Reassembler(version, check_crc=False)
    assert list(r.feed_all(fragments(version, good))) == [good]


def test_v2_header_crc_accepted_by_reassembler() -> None:
    good = append_crc32(CspPacket(HEADER, b"abcdef"), 2, include_header=True)
    assert next(Reassembler(2).feed_all(fragment_v2(good, 10, 0))).payload == b"abcdef"


def test_v1_overflow_rules() -> None:
    r = Reassembler(1)
    begin = fragment_v1(CspPacket(HEADER, bytes(10)), 0)[0]
    r.push(begin.can_id, begin.data[:4] + (2043).to_bytes(2, "big"))  # announces more than CFP v1 can carry
    assert r.counters.dropped_overflow == 1
    assert r.pending == 0
    frames = fragment_v1(CspPacket(HEADER, bytes(11)), 1)  # BEGIN 2 bytes, MORE 8, MORE 1
    r.feed(frames[0])
    r.feed(frames[1])
    r.push(frames[2].can_id, bytes(8))  # 2 + 8 + 8 > 11 announced
    assert r.counters.dropped_overflow == 2
    assert r.counters.packets == 0
    assert r.pending == 0


def test_v1_begin_with_more_data_than_announced() -> None:
    r = Reassembler(1)
    begin = fragment_v1(CspPacket(HEADER, b"a"), 0)[0]
    r.push(begin.can_id, begin.data + b"b")
    assert r.counters.dropped_overflow == 1


def test_v2_overflow_beyond_max_payload() -> None:
    r = Reassembler(2, max_payload=16)
    frames = fragment_v2(CspPacket(HEADER, bytes(20)), 10, 0)
    assert list(r.feed_all(frames)) == []
    assert r.counters.dropped_overflow == 1
    assert next(r.feed_all(fragment_v2(CspPacket(HEADER, bytes(16)), 10, 1))).payload == bytes(16)


def test_broadcast_rewritten_only_when_asked() -> None:
    v1 = CspPacket(CspHeader(2, 10, 31, 1, 40), b"hi")
    v2 = CspPacket(CspHeader(2, 10, 0x3FFF, 1, 40), b"hi")
    assert next(Reassembler(1).feed_all(fragment_v1(v1, 0))).header.dst == 31
    assert next(Reassembler(1, local_address=10).feed_all(fragment_v1(v1, 0))).header.dst == 10
    assert next(Reassembler(2, local_address=10).feed_all(fragment_v2(v2, 1, 0))).header.dst == 10


def test_frame_timestamp_carried_to_packet() -> None:
    frames = fragment_v1(PACKET_20, 0)
    r = Reassembler(1)
    out = [r.feed(CanFrame(f.can_id, f.data, 10.0 + i)) for i, f in enumerate(frames)]
    assert out[-1] is not None and out[-1].timestamp == 13.0


def test_tuples_accepted_by_feed_all() -> None:
    frames = [(f.can_id, f.data) for f in fragment_v1(PACKET_20, 0)]
    assert list(Reassembler(1).feed_all(frames)) == [PACKET_20]


def test_constructor_validation() -> None:
    with pytest.raises(CspError, match="unknown CFP version 3"):
        Reassembler(3)
    with pytest.raises(CspError, match=r"max_payload must be 0\.\.2042"):
        Reassembler(1, max_payload=3000)
    with pytest.raises(CspError, match="timeout_s must be positive"):
        Reassembler(1, timeout_s=0)


def test_counters_reset_and_clear() -> None:
    r = Reassembler(1)
    r.feed(fragment_v1(PACKET_20, 0)[0])
    r.reset_counters()
    assert r.counters == ReassemblyCounters()
    assert r.pending == 1
    r.clear()
    assert r.pending == 0
