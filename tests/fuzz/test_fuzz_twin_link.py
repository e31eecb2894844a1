"""Fuzz: a babbling bench does not crash the twin's satellite — its CSP/CFP codec, PUS TC parsing and nodes.

The twin's nodes receive whatever the bench puts on the CAN bus. In the running twin an exception in a node's
frame callback is caught by the hub and counted as a callback error: the node has crashed on that frame. Here the
five nodes run in-process (no sockets) and take CAN frames straight into ``Node.on_frame``: garbage frames
addressed to them, and real CSP packets (reserved-port requests, PUS TCs for their APID — known services with
sound or odd application data, function commands from the ICD with arbitrary argument bytes) fragmented by CFP and
damaged by a faulty bus. Nothing may raise, every TC received is either accepted or rejected, and the nodes keep
ticking. The twin's codec pieces (header unpack, CRC strip, CFP reassembly, TC header parse) are fuzzed on their own
too: their contract is a value or ``None``, never an exception.
"""

from __future__ import annotations

import struct

from fuzz_strategies import (
    bytes_or_mutation,
    can_data,
    clock_steps,
    faulty_frames,
    fuzz,
    interleaved,
    mutated,
    raw_frames,
)
from hypothesis import given
from hypothesis import strategies as st
from spacepackets.ecss import PusTc

from twin import csp
from twin.icd import load_icd
from twin.nodes.satellite import Satellite
from twin.pus import Failure, parse_tc_header
from twin.world import Options, World

ICD = load_icd()
NODES = list(ICD.nodes.values())
EGSE = ICD.egse_address


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


# --- the codec pieces on their own -------------------------------------------------------------------------------


@fuzz(100)
@given(
    version=st.sampled_from((1, 2)),
    address=st.sampled_from([n.address for n in NODES] + [EGSE]),
    frames=st.lists(raw_frames, max_size=60),
    steps=st.lists(clock_steps, max_size=8),
)
def test_twin_cfp_reassembler_on_garbage(
    version: int, address: int, frames: list[tuple[int, bytes]], steps: list[float]
) -> None:
    clock = Clock()
    r = csp.CfpReassembler(version, address, clock)
    delivered = 0
    for i, (can_id, data) in enumerate(frames):
        clock.now += steps[i % len(steps)] if steps else 0.0
        packet = r.push(can_id, data)
        if packet is not None:
            assert r.addressed(can_id)
            delivered += 1
    assert r.completed == delivered
    # A BEGIN can count twice (it cut a packet short and is itself too short); nothing counts more.
    assert r.completed + r.lost + r.timeouts <= 2 * len(frames)


@fuzz(300)
@given(raw=st.binary(max_size=16), version=st.sampled_from((1, 2)), data=st.binary(max_size=40))
def test_twin_header_and_crc(raw: bytes, version: int, data: bytes) -> None:
    size = csp.CspHeader.size(version)
    if len(raw) >= size:
        header = csp.CspHeader.unpack(raw, version)
        assert header.pack(version) == raw[:size]
        assert csp.strip_crc(csp.CspPacket(header, data), version) in (None, data, data[:-4])


valid_tcs = st.builds(
    lambda service, subtype, apid, data, seq: bytes(
        PusTc(service=service, message_subtype=subtype, apid=apid, app_data=data, seq_count=seq).pack()
    ),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 0x7FF),
    st.binary(max_size=32),
    st.integers(0, 0x3FFF),
)


@fuzz(100)
@given(raw=bytes_or_mutation(valid_tcs))
def test_twin_tc_header_parse(raw: bytes) -> None:
    header, failure = parse_tc_header(raw)
    if header is None:
        assert failure is None
        return
    assert failure in (None, Failure.WRONG_LENGTH, Failure.CRC_ERROR)
    assert header.request_id == raw[:4]


# --- the nodes --------------------------------------------------------------------------------------------------


def satellite(version: int, clock: Clock) -> Satellite:
    sat = Satellite(World(Options(), clock=clock), ICD, csp_version=version)
    for node in sat.nodes.values():
        node.boot(clock(), "power_on")
    return sat


u8 = st.integers(0, 255)
short_data = st.binary(max_size=24)
one_in_ten = st.integers(0, 9)
one_in_four = st.integers(0, 3)


@st.composite
def app_data(draw: st.DrawFn, node_index: int, service: int, subtype: int) -> bytes:
    """Application data that often gets past acceptance: right sizes, known IDs, arbitrary values."""
    node = NODES[node_index]
    if (service, subtype) == (8, 1) and node.commands and draw(st.booleans()):
        command = node.commands[draw(st.integers(0, len(node.commands) - 1))]
        args = draw(st.binary(min_size=command.args_size, max_size=command.args_size))
        return struct.pack(">I", command.function_id) + args
    if service == 3 and node.housekeeping and draw(st.booleans()):
        return struct.pack(">I", node.housekeeping[draw(st.integers(0, len(node.housekeeping) - 1))].sid)
    if service == 20 and node.parameters and draw(st.booleans()):
        params = [node.parameters[i] for i in draw(st.lists(st.integers(0, len(node.parameters) - 1), max_size=3))]
        if subtype == 1:
            return struct.pack(f">H{len(params)}H", len(params), *(p.id for p in params))
        values = [
            struct.pack(">H", p.id) + draw(st.binary(min_size=p.field.size, max_size=p.field.size)) for p in params
        ]
        return struct.pack(">H", len(params)) + b"".join(values)
    if (service, subtype) == (9, 128) and draw(st.booleans()):
        return b"\x40" + draw(st.binary(min_size=6, max_size=6))
    return draw(short_data)


known = st.sampled_from([(17, 1), (3, 5), (3, 6), (3, 27), (8, 1), (9, 1), (9, 128), (20, 1), (20, 3), (1, 1)])
service_subtypes = st.one_of(known, st.tuples(u8, u8))


@st.composite
def node_tc(draw: st.DrawFn, node_index: int) -> bytes:
    service, subtype = draw(service_subtypes)
    apid = NODES[node_index].apid if draw(one_in_ten) else draw(st.integers(0, 0x7FF))
    tc = PusTc(
        service=service,
        message_subtype=subtype,
        apid=apid,
        app_data=draw(app_data(node_index, service, subtype)),
        seq_count=draw(st.integers(0, 0x3FFF)),
        ack_flags=draw(st.integers(0, 15)),
    )
    raw = bytes(tc.pack())
    return draw(mutated(raw)) if draw(one_in_four) == 0 else raw  # mostly intact: acceptance is the deeper code


ports = st.sampled_from((0, 1, 2, 3, 4, 5, 6, ICD.pus_port, ICD.pus_port, ICD.pus_port, 40))
cmp_requests = st.tuples(st.sampled_from((0, 0, 0xFF)), st.sampled_from((1, 3, 6, 2, 99)), st.binary(max_size=100))
reboot_requests = st.sampled_from((struct.pack(">I", csp.REBOOT_MAGIC), b"\x00\x00", b""))


@st.composite
def node_packet(draw: st.DrawFn, version: int) -> tuple[csp.CspHeader, bytes]:
    index = draw(st.integers(0, len(NODES) - 1))
    node = NODES[index]
    dport = draw(ports)
    if dport == ICD.pus_port:
        data = draw(node_tc(index))
    elif dport == csp.PORT_CMP:
        kind, code, body = draw(cmp_requests)
        data = bytes((kind, code)) + body
    elif dport == csp.PORT_REBOOT:
        data = draw(reboot_requests)
    else:
        data = draw(st.binary(max_size=60))
    dst = node.address if draw(one_in_ten) else (csp.BROADCAST_V1 if version == 1 else csp.BROADCAST_V2)
    header = csp.CspHeader(draw(st.integers(0, 3)), EGSE, dst, dport, draw(st.integers(0, 63)), 0)
    if draw(st.booleans()):
        header, data = csp.append_crc(header, data, corrupt=draw(one_in_ten) == 0)
    return header, data


def _to_node(version: int, can_id: int, node_index: int) -> int:
    """``can_id`` with its destination field set to a node, so it gets past the node's address filter."""
    address = NODES[node_index].address
    if version == 1:
        return (can_id & ~(0x1F << 19)) | address << 19
    return (can_id & ~(0x3FFF << 13)) | address << 13


node_garbage = st.lists(st.tuples(st.integers(0, 0x1FFFFFFF), st.integers(0, len(NODES) - 1), can_data), max_size=10)


@st.composite
def node_traffic(draw: st.DrawFn, version: int) -> list[tuple[int, bytes]]:
    streams = []
    for counter in range(draw(st.integers(1, 4))):
        header, data = draw(node_packet(version))
        if version == 1 and len(data) > 2042:
            data = data[:2042]
        frames = csp.fragment(csp.CspPacket(header, data), version, counter, EGSE)
        streams.append(draw(faulty_frames(frames)) if draw(st.booleans()) else frames)  # half of them intact
    streams.append([(_to_node(version, can_id, node), data) for can_id, node, data in draw(node_garbage)])
    return draw(interleaved(streams))


@fuzz(100)
@given(data=st.data(), version=st.sampled_from((1, 2)), steps=st.lists(clock_steps, max_size=6))
def test_nodes_survive_any_bus_traffic(data: st.DataObject, version: int, steps: list[float]) -> None:
    clock = Clock()
    sat = satellite(version, clock)
    for i, (can_id, payload) in enumerate(data.draw(node_traffic(version))):
        for node in sat.nodes.values():
            node.on_frame(can_id, payload)  # what the hub's node callback does with a frame
        clock.now += steps[i % len(steps)] if steps else 0.0
        for node in sat.nodes.values():
            if node.alive:
                node.tick(clock())
    for node in sat.nodes.values():
        c = node.counters
        assert c.tc_received == c.tc_accepted + c.tc_rejected
        node.state()  # the control endpoint's view still renders
