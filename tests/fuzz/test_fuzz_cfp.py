"""Fuzz: CFP v1/v2 reassembly and the frames → CSP → PUS receive chain never raise on any CAN traffic.

The module contract (``bench.link.cfp``): "Nothing here raises on bad input from the bus: malformed traffic is
counted, never a crash." So for any sequence of 29-bit IDs and 0..8 data bytes — garbage, or real packets'
fragments after a faulty bus (lost, repeated, swapped, damaged frames), with the clock jumping past the timeout —
``push`` returns a packet or ``None``, and the counters stay consistent: every frame counted, every delivered
packet counted, and no more outcomes (packets, drops) than frames. Babble on other connection keys never costs a
good packet. The pipeline (``LinkDecoder``) turns every completed packet into one message, never an exception.
"""

from __future__ import annotations

from fuzz_strategies import (
    can_data,
    can_ids,
    clock_steps,
    faulty_frames,
    fuzz,
    interleaved,
    raw_frames,
)
from hypothesis import given
from hypothesis import strategies as st

from bench.link.cfp import (
    CFP1_CONN_MASK,
    CFP1_MAX_PAYLOAD,
    CFP2_CONN_MASK,
    Reassembler,
    fragment_v1,
    fragment_v2,
)
from bench.link.csp import MAX_FLAGS_V2, CspHeader, CspPacket, append_crc32
from bench.link.pipeline import LinkDecoder
from bench.link.pus import build_tm


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def headers(version: int) -> st.SearchStrategy[CspHeader]:
    host = 0x1F if version == 1 else 0x3FFF
    return st.builds(
        CspHeader,
        prio=st.integers(0, 3),
        src=st.integers(0, host),
        dst=st.integers(0, host),
        dport=st.integers(0, 63),
        sport=st.integers(0, 63),
        flags=st.integers(0, 0xFF if version == 1 else MAX_FLAGS_V2),
    )


@st.composite
def packets(draw: st.DrawFn, version: int, max_payload: int = 300) -> CspPacket:
    packet = CspPacket(draw(headers(version)), draw(st.binary(max_size=max_payload)))
    if draw(st.booleans()):
        packet = append_crc32(packet, version)
    return packet


def fragments(version: int, packet: CspPacket, counter: int) -> list[tuple[int, bytes]]:
    frames = fragment_v1(packet, counter) if version == 1 else fragment_v2(packet, packet.header.src, counter)
    return [(f.can_id, f.data) for f in frames]


@st.composite
def bus_traffic(draw: st.DrawFn, version: int) -> list[tuple[int, bytes]]:
    """A few real packets' fragments, damaged by a faulty bus, interleaved with garbage frames."""
    streams = [
        draw(faulty_frames(fragments(version, draw(packets(version)), draw(st.integers(0, 1023)))))
        for _ in range(draw(st.integers(0, 3)))
    ]
    streams.append(draw(st.lists(raw_frames, max_size=20)))
    return draw(interleaved(streams))


def check_reassembler(r: Reassembler, clock: Clock, frames: list[tuple[int, bytes]], steps: list[float]) -> None:
    delivered = 0
    for i, (can_id, data) in enumerate(frames):
        clock.now += steps[i % len(steps)] if steps else 0.0
        packet = r.push(can_id, data, clock.now)
        if packet is not None:
            assert isinstance(packet, CspPacket)
            packet.header.pack(r.version)  # a delivered header is valid for its version
            assert len(packet.payload) <= r.max_payload
            delivered += 1
    c = r.counters
    assert c.frames == len(frames)
    assert c.packets == delivered
    # Each frame starts at most one packet or one immediate drop, and each packet ends at most once.
    assert c.packets + c.dropped + r.pending <= c.frames
    clock.now += r.timeout_s + 1.0
    r.expire()
    assert r.pending == 0


@fuzz(100)
@given(
    version=st.sampled_from((1, 2)),
    frames=st.lists(raw_frames, max_size=80),
    steps=st.lists(clock_steps, max_size=10),
    check_crc=st.booleans(),
    max_payload=st.integers(0, CFP1_MAX_PAYLOAD),
    local_address=st.none() | st.integers(0, 31),
)
def test_garbage_frames_are_counted_never_raised(
    version: int,
    frames: list[tuple[int, bytes]],
    steps: list[float],
    check_crc: bool,
    max_payload: int,
    local_address: int | None,
) -> None:
    clock = Clock()
    r = Reassembler(version, clock=clock, check_crc=check_crc, max_payload=max_payload, local_address=local_address)
    check_reassembler(r, clock, frames, steps)


@fuzz(100)
@given(data=st.data(), version=st.sampled_from((1, 2)), steps=st.lists(clock_steps, max_size=10))
def test_damaged_packets_are_counted_never_raised(data: st.DataObject, version: int, steps: list[float]) -> None:
    clock = Clock()
    r = Reassembler(version, clock=clock)
    check_reassembler(r, clock, data.draw(bus_traffic(version)), steps)


@fuzz(100)
@given(data=st.data(), version=st.sampled_from((1, 2)))
def test_babble_on_other_keys_costs_no_good_packet(data: st.DataObject, version: int) -> None:
    """Whatever arrives on other connection keys, every packet on its own key arrives whole."""
    mask = CFP1_CONN_MASK if version == 1 else CFP2_CONN_MASK
    sent = [data.draw(packets(version)) for _ in range(data.draw(st.integers(1, 3)))]
    # One connection key per packet: counter i (v1 ident / v2 SC) keeps keys apart even for equal headers.
    streams = [fragments(version, p, i) for i, p in enumerate(sent)]
    keys = {can_id & mask for stream in streams for can_id, _ in stream}
    babble = data.draw(st.lists(st.tuples(can_ids.filter(lambda i: i & mask not in keys), can_data), max_size=40))
    r = Reassembler(version, clock=Clock(), check_crc=False)
    mixed: list[tuple[int, bytes]] = data.draw(interleaved([*streams, babble]))
    received = list(r.feed_all(mixed))
    # Babble may complete packets of its own; the good ones must all be among what was delivered.
    assert all(p in received for p in sent)
    assert r.counters.crc_errors == 0


@fuzz(100)
@given(data=st.data(), version=st.sampled_from((1, 2)), pus_only=st.booleans())
def test_pipeline_turns_every_packet_into_one_message(data: st.DataObject, version: int, pus_only: bool) -> None:
    """Frames carrying PUS TMs (some damaged) and garbage: one message per packet, the counters add up."""
    streams: list[list[tuple[int, bytes]]] = []
    for i in range(data.draw(st.integers(0, 3))):
        tm = build_tm(
            data.draw(st.integers(0, 255)),
            data.draw(st.integers(0, 255)),
            data.draw(st.integers(0, 0x7FF)),
            data.draw(st.binary(max_size=40)),
        )
        header = data.draw(headers(version))
        packet = append_crc32(CspPacket(CspHeader(header.prio, header.src, header.dst, 10, 10), tm), version)
        streams.append(data.draw(faulty_frames(fragments(version, packet, i))))
    streams.append(data.draw(st.lists(raw_frames, max_size=20)))
    decoder = LinkDecoder(version, clock=Clock(), pus_ports={10} if pus_only else None)
    frames: list[tuple[int, bytes]] = data.draw(interleaved(streams))
    messages = list(decoder.decode(frames))
    c = decoder.counters
    assert len(messages) == c.reassembly.packets
    for m in messages:
        assert (m.tm is not None) or (m.error is not None) or (pus_only and m.packet.header.dport != 10)
        assert m.report is None or m.tm is not None
    assert c.tm_packets + c.other_packets + sum(1 for m in messages if m.tm is None and m.error) == len(messages)
