"""Throughput of the bench's receive chain: CAN frames → CFP reassembly → CSP (CRC32) → PUS TM decode.

Run:  .venv/bin/python benchmarks/bench_link_decode.py [--packets N] [--repeat R]
Import: ``run(packets=..., repeat=...)`` returns the results without printing.

The stream imitates a busy bus: the OBC, EPS, ADCS, UHF and payload nodes each send PUS-C housekeeping
reports (40-120 bytes of PUS packet, plus a few events and verification reports) to the bench EGSE, CSP
CRC32 on, fragmented by CFP and interleaved fragment by fragment as several transmitters would be. The
same stream is built for CSP/CFP v1 and v2.

Two numbers per version, both best-of-R wall-clock runs over the whole pre-built stream:

* **baseline** — the floor any decoder pays in Python: iterate the frames and take the CAN ID apart
  (key mask, frame type). Nothing is reassembled or checked.
* **pipeline** — :class:`bench.link.pipeline.LinkDecoder` fed frame by frame, as a CAN reader thread would.

The target is 100 000 frames/s (a 1 Mbit/s CAN bus carries at most ~8 000-9 000 extended frames/s, so
the target leaves an order of magnitude for the rest of the bench and for log replay).
"""

from __future__ import annotations

import argparse
import datetime
import random
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import bench.link  # noqa: F401 — only probing whether the project is importable
except ImportError:  # run as a plain script from a checkout: make the project root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.link.cfp import (
    CFP1_CONN_MASK,
    CFP2_BEGIN,
    CFP2_CONN_MASK,
    CanFrame,
    fragment_v1,
    fragment_v2,
)
from bench.link.csp import CspHeader, CspPacket, CspVersion, append_crc32
from bench.link.pipeline import LinkDecoder
from bench.link.pus import build_tm, cds_short

TARGET_FRAMES_PER_S = 100_000
NODES = {"OBC": 1, "EPS": 2, "ADCS": 3, "UHF": 4, "PAYLOAD": 5}
EGSE = 10
PUS_PORT = 10  # the mission's PUS port (an ICD choice; any non-reserved port)
EPOCH = datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True, slots=True)
class Stream:
    version: int
    frames: tuple[tuple[int, bytes], ...]
    packets: int
    payload_bytes: int


@dataclass(frozen=True, slots=True)
class Result:
    version: int
    frames: int
    packets: int
    baseline_s: float
    pipeline_s: float

    @property
    def baseline_fps(self) -> float:
        return self.frames / self.baseline_s

    @property
    def pipeline_fps(self) -> float:
        return self.frames / self.pipeline_s

    @property
    def vs_target(self) -> float:
        return self.pipeline_fps / TARGET_FRAMES_PER_S

    @property
    def vs_baseline(self) -> float:
        """Pipeline throughput as a fraction of the bare-iteration throughput."""
        return self.pipeline_fps / self.baseline_fps


def _tm(rng: random.Random, apid: int, seq: int) -> bytes:
    when = cds_short(EPOCH + datetime.timedelta(milliseconds=seq * 250))
    kind = rng.random()
    if kind < 0.85:  # housekeeping: SID + parameters, PUS packet of 40..120 bytes
        size = rng.randint(40, 120) - (6 + 7 + 7 + 2) - 4
        data = struct.pack(">I", rng.randint(1, 8)) + rng.randbytes(size)
        return build_tm(3, 25, apid, data, timestamp=when, seq_count=seq, destination_id=EGSE)
    if kind < 0.95:
        data = struct.pack(">H", rng.randint(0, 0xFFFF)) + rng.randbytes(rng.randint(0, 12))
        return build_tm(5, rng.randint(1, 4), apid, data, timestamp=when, seq_count=seq)
    data = struct.pack(">I", 0x1800C000 | seq)
    return build_tm(1, rng.choice((1, 3, 7)), apid, data, timestamp=when, seq_count=seq)


def build_stream(version: int, packets: int = 3000, seed: int = 1) -> Stream:
    """A pre-built, interleaved frame stream: ``(can_id, data)`` pairs as a CAN reader would hand them on."""
    rng = random.Random(seed)
    payload_bytes = 0
    active: dict[int, list[CanFrame]] = {}  # node -> frames still to send
    out: list[tuple[int, bytes]] = []
    counters = dict.fromkeys(NODES.values(), 0)
    made = 0
    while made < packets or active:
        # Keep three transmitters busy so their fragments interleave; like a libcsp interface, each node
        # sends one packet's frames back to back before its next packet.
        while made < packets and len(active) < 3:
            node = rng.choice([n for n in NODES.values() if n not in active])
            tm = _tm(rng, apid=0x40 + node, seq=made & 0x3FFF)
            payload_bytes += len(tm)
            header = CspHeader(prio=2, src=node, dst=EGSE, dport=PUS_PORT, sport=PUS_PORT)
            packet = append_crc32(CspPacket(header, tm), version)
            n = counters[node]
            counters[node] += 1
            frames = fragment_v1(packet, n) if version == CspVersion.V1 else fragment_v2(packet, node, n)
            active[node] = list(frames)
            made += 1
        node = rng.choice(list(active))
        frame = active[node].pop(0)
        out.append((frame.can_id, frame.data))
        if not active[node]:
            del active[node]
    return Stream(version, tuple(out), packets, payload_bytes)


def _baseline(stream: Stream) -> float:
    """Iterate the frames and take each CAN ID apart (connection key, BEGIN bit) — and nothing else."""
    v1 = stream.version == CspVersion.V1
    mask = CFP1_CONN_MASK if v1 else CFP2_CONN_MASK
    begin_bit = 1 << 18 if v1 else CFP2_BEGIN
    begin_value = 0 if v1 else CFP2_BEGIN
    keys = 0
    begins = 0
    start = time.perf_counter()
    for can_id, _data in stream.frames:
        keys ^= can_id & mask
        if can_id & begin_bit == begin_value:
            begins += 1
    elapsed = time.perf_counter() - start
    if begins != stream.packets:  # also keeps the loop's work observable
        raise RuntimeError(f"baseline found {begins} BEGIN frames for {stream.packets} packets")
    return elapsed


def _pipeline(stream: Stream) -> float:
    decoder = LinkDecoder(stream.version, pus_ports={PUS_PORT})
    push = decoder.push
    start = time.perf_counter()
    for can_id, data in stream.frames:
        push(can_id, data)
    elapsed = time.perf_counter() - start
    c = decoder.counters
    # A benchmark that silently drops packets measures nothing: insist every packet came out decoded.
    if c.tm_packets != stream.packets or c.reassembly.dropped or c.pus_errors:
        raise RuntimeError(f"pipeline lost packets: {c}")
    return elapsed


def run(packets: int = 3000, repeat: int = 5, versions: tuple[int, ...] = (1, 2)) -> list[Result]:
    results = []
    for version in versions:
        stream = build_stream(version, packets)
        baseline = min(_baseline(stream) for _ in range(repeat))
        pipeline = min(_pipeline(stream) for _ in range(repeat))
        results.append(Result(version, len(stream.frames), stream.packets, baseline, pipeline))
    return results


def report(results: list[Result]) -> str:
    lines = [
        f"{'CFP':>4} {'frames':>8} {'packets':>8} {'baseline f/s':>14} {'pipeline f/s':>14} "
        f"{'vs 100k target':>15} {'vs baseline':>12} {'us/frame':>9}",
    ]
    for r in results:
        lines.append(
            f"{'v' + str(r.version):>4} {r.frames:>8} {r.packets:>8} {r.baseline_fps:>14,.0f} {r.pipeline_fps:>14,.0f} "
            f"{r.vs_target:>14.2f}x {r.vs_baseline:>11.3f}x {1e6 / r.pipeline_fps:>9.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--packets", type=int, default=3000, help="CSP packets in the stream (default 3000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement, best is kept (default 5)")
    args = parser.parse_args(argv)
    results = run(args.packets, args.repeat)
    print(f"Python {sys.version.split()[0]}, {args.packets} packets per stream, best of {args.repeat}")
    print(report(results))
    worst = min(r.pipeline_fps for r in results)
    verdict = "meets" if worst >= TARGET_FRAMES_PER_S else "BELOW"
    print(f"slowest pipeline {worst:,.0f} frames/s {verdict} the {TARGET_FRAMES_PER_S:,} frames/s target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
