"""The twin's CSP/CFP (twin.csp) against the bench's independent codec (bench.link): same bytes on the wire.

The two were written separately from the same reference; agreeing here is what lets each stand for libcsp
when testing the other.
"""

from __future__ import annotations

import pytest

from bench.link import cfp as bench_cfp
from bench.link import csp as bench_csp
from twin import csp

SIZES = [0, 1, 2, 5, 6, 13, 64, 255, 700]


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("crc", [False, True])
def test_twin_frames_reassemble_in_the_bench(version: int, size: int, crc: bool) -> None:
    header, data = csp.CspHeader(2, 3, 10, 10, 10, 0), bytes((i * 7) & 0xFF for i in range(size))
    if crc:
        header, data = csp.append_crc(header, data)
    frames = csp.fragment(csp.CspPacket(header, data), version, counter=9, sender=3)
    rx = bench_cfp.Reassembler(version, check_crc=True)
    out = [rx.push(can_id, chunk) for can_id, chunk in frames]
    assert all(p is None for p in out[:-1]) and out[-1] is not None
    assert out[-1].payload == data[:size] and out[-1].header.pack(version) == header.pack(version)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("size", SIZES)
def test_bench_frames_reassemble_in_the_twin(version: int, size: int) -> None:
    header = bench_csp.CspHeader(prio=2, src=10, dst=2, dport=10, sport=33, flags=0)
    payload = bytes((i * 3) & 0xFF for i in range(size))
    frames = bench_cfp.CfpEncoder(version, address=10).encode(bench_csp.CspPacket(header, payload))
    ours = csp.fragment(csp.CspPacket(csp.CspHeader(2, 10, 2, 10, 33, 0), payload), version, counter=0, sender=10)
    assert [(f.can_id, f.data) for f in frames] == ours
    rx = csp.CfpReassembler(version, address=2, clock=lambda: 0.0)
    out = [rx.push(f.can_id, f.data) for f in frames]
    assert out[-1] is not None and out[-1].data == payload
