"""The receive chain frames → CFP → CSP (CRC32) → PUS TM, and the benchmark script's plumbing."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bench.link.cfp import CanFrame, fragment_v1, fragment_v2
from bench.link.csp import CspHeader, CspPacket, append_crc32
from bench.link.pipeline import LinkDecoder, LinkMessage
from bench.link.pus import Event, HkReport, Severity, build_tm, decode_tm
from bench.link.services import encode_u32

pytestmark = pytest.mark.filterwarnings("error::DeprecationWarning")

TS = bytes.fromhex("40 5a 1b 01 02 03 04")
PUS_PORT = 10


def frames_for(version: int, packet: CspPacket, counter: int = 0) -> list[CanFrame]:
    packet = append_crc32(packet, version)
    return fragment_v1(packet, counter) if version == 1 else fragment_v2(packet, packet.header.src, counter)


@pytest.fixture(params=[1, 2])
def version(request: pytest.FixtureRequest) -> int:
    return int(request.param)


def test_hk_and_event_end_to_end(version: int) -> None:
    hk = build_tm(3, 25, 0x41, struct.pack(">I", 2) + bytes(range(60)), timestamp=TS, seq_count=7)
    ev = build_tm(5, 3, 0x42, struct.pack(">HI", 0x0101, 9), timestamp=TS)
    header_obc = CspHeader(2, 1, 10, PUS_PORT, PUS_PORT)
    header_eps = CspHeader(2, 2, 10, PUS_PORT, PUS_PORT)
    a = frames_for(version, CspPacket(header_obc, hk))
    b = frames_for(version, CspPacket(header_eps, ev))
    mixed = [f for pair in zip(a, b, strict=False) for f in pair] + a[len(b) :] + b[len(a) :]
    decoder = LinkDecoder(version, pus_ports={PUS_PORT})
    out = list(decoder.decode(mixed))
    by_src = {m.packet.header.src: m for m in out}
    assert by_src[1].report == HkReport(2, bytes(range(60)))
    assert by_src[1].tm == decode_tm(hk)
    assert by_src[2].report == Event(Severity.MEDIUM, 0x0101, struct.pack(">I", 9))
    assert all(m.error is None for m in out)
    counters = decoder.counters
    assert counters.tm_packets == 2
    assert counters.reassembly.frames == len(a) + len(b)
    assert counters.reassembly.dropped == 0


def test_push_frame_by_frame(version: int) -> None:
    hk = build_tm(3, 25, 0x41, bytes(8), timestamp=TS)
    decoder = LinkDecoder(version)
    frames = frames_for(version, CspPacket(CspHeader(2, 1, 10, PUS_PORT, PUS_PORT), hk))
    results = [decoder.feed(f) for f in frames]
    assert results[:-1] == [None] * (len(frames) - 1)
    last = results[-1]
    assert isinstance(last, LinkMessage) and last.report == HkReport(0, bytes(4))


def test_non_pus_port_passed_through(version: int) -> None:
    uptime = CspPacket(CspHeader(2, 1, 10, 40, 6), encode_u32(3600))
    decoder = LinkDecoder(version, pus_ports={PUS_PORT})
    (msg,) = decoder.decode(frames_for(version, uptime))
    assert msg.tm is None and msg.error is None
    assert msg.packet.payload == encode_u32(3600)
    assert decoder.counters.other_packets == 1


def test_malformed_pus_is_reported_not_raised(version: int) -> None:
    good = build_tm(17, 2, 0x41, timestamp=TS)
    bad = good[:-1] + bytes([good[-1] ^ 0x5A])  # CSP CRC is computed over the damage: only PUS sees it
    decoder = LinkDecoder(version)
    (msg,) = decoder.decode(frames_for(version, CspPacket(CspHeader(2, 1, 10, PUS_PORT, PUS_PORT), bad)))
    assert msg.tm is None
    assert msg.error is not None and "CRC16 mismatch" in msg.error
    assert decoder.counters.pus_errors == 1


def test_malformed_report_keeps_the_tm(version: int) -> None:
    short_hk = build_tm(3, 25, 0x41, b"\x00\x01", timestamp=TS)
    decoder = LinkDecoder(version)
    (msg,) = decoder.decode(frames_for(version, CspPacket(CspHeader(2, 1, 10, PUS_PORT, PUS_PORT), short_hk)))
    assert msg.tm is not None and msg.report is None
    assert msg.error is not None and "SID alone needs 4" in msg.error


def test_csp_crc_error_counted(version: int) -> None:
    tm = build_tm(17, 2, 0x41, timestamp=TS)
    packet = append_crc32(CspPacket(CspHeader(2, 1, 10, PUS_PORT, PUS_PORT), tm), version)
    damaged = CspPacket(packet.header, bytes([packet.payload[0] ^ 1]) + packet.payload[1:])
    frames = fragment_v1(damaged, 0) if version == 1 else fragment_v2(damaged, 1, 0)
    decoder = LinkDecoder(version)
    assert list(decoder.decode(frames)) == []
    assert decoder.counters.reassembly.crc_errors == 1


def _load_benchmark() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_link_decode.py"
    spec = importlib.util.spec_from_file_location("bench_link_decode", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def test_benchmark_is_importable_and_decodes_everything() -> None:
    bench_module = _load_benchmark()
    results = bench_module.run(packets=60, repeat=1)
    assert [r.version for r in results] == [1, 2]
    for r in results:
        assert r.packets == 60 and r.frames > 60
        assert r.pipeline_fps > 0 and r.baseline_fps > 0
    assert "vs 100k target" in bench_module.report(results)
