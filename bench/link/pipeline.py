"""The receive chain from CAN frames to PUS telemetry: frames → CFP reassembly → CSP (CRC32) → PUS TM.

Each stage is a pure function of its input, so the chain is just their composition with counters kept
along the way: the :class:`~bench.link.cfp.Reassembler` counts what was lost on the bus, this module
counts what arrived whole but was not valid PUS. A malformed PUS packet never raises out of the chain —
it comes out as a :class:`LinkMessage` carrying the CSP packet and the reason, so the journal can record
what the DUT actually sent.

Which CSP packets carry PUS is a mission choice (a port). ``pus_ports=None`` tries every packet; with a
set of ports, only packets whose destination or source port is in it are decoded as PUS, the rest are
handed on as plain CSP packets (service replies, for instance).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass

from bench.link.cfp import DEFAULT_TIMEOUT_S, CanFrame, Reassembler, ReassemblyCounters
from bench.link.csp import CspPacket, CspVersion
from bench.link.pus import TIMESTAMP_LEN, PusError, Report, TmPacket, decode_report, decode_tm


@dataclass(frozen=True, slots=True)
class LinkMessage:
    """One CSP packet off the bus and, if it carried PUS telemetry, what that said.

    ``tm``/``report`` are ``None`` for packets not on a PUS port, for TMs of services without a typed
    report, or when decoding failed — then ``error`` says why.
    """

    packet: CspPacket
    tm: TmPacket | None = None
    report: Report | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class LinkCounters:
    reassembly: ReassemblyCounters
    tm_packets: int = 0  # valid PUS TMs decoded
    pus_errors: int = 0  # packets on a PUS port that were no valid TM, or whose report data was malformed
    other_packets: int = 0  # CSP packets not on a PUS port


class LinkDecoder:
    """Frames in, :class:`LinkMessage` out. ``push`` returns ``None`` until a frame completes a packet."""

    def __init__(
        self,
        version: int = CspVersion.V1,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
        timestamp_len: int = TIMESTAMP_LEN,
        pus_ports: Collection[int] | None = None,
        decode_reports: bool = True,
        step_id_len: int = 1,
        failure_code_len: int = 1,
        local_address: int | None = None,
    ) -> None:
        self.reassembler = Reassembler(version, timeout_s, clock, check_crc=True, local_address=local_address)
        self.timestamp_len = timestamp_len
        self.pus_ports = frozenset(pus_ports) if pus_ports is not None else None
        self.decode_reports = decode_reports
        self.step_id_len = step_id_len
        self.failure_code_len = failure_code_len
        self.tm_packets = 0
        self.pus_errors = 0
        self.other_packets = 0

    def push(self, can_id: int, data: bytes | bytearray, timestamp: float | None = None) -> LinkMessage | None:
        packet = self.reassembler.push(can_id, data, timestamp)
        if packet is None:
            return None
        return self.decode_packet(packet)

    def feed(self, frame: CanFrame) -> LinkMessage | None:
        return self.push(frame.can_id, frame.data, frame.timestamp)

    def decode(self, frames: Iterable[CanFrame | tuple[int, bytes]]) -> Iterator[LinkMessage]:
        """Every message completed by ``frames`` (CanFrame objects or ``(can_id, data)`` pairs), in order."""
        for packet in self.reassembler.feed_all(frames):
            yield self.decode_packet(packet)

    def decode_packet(self, packet: CspPacket) -> LinkMessage:
        """The PUS stage alone, for a packet that is already reassembled and CRC-checked."""
        ports = self.pus_ports
        if ports is not None and packet.header.dport not in ports and packet.header.sport not in ports:
            self.other_packets += 1
            return LinkMessage(packet)
        try:
            tm = decode_tm(packet.payload, self.timestamp_len)
        except PusError as exc:
            self.pus_errors += 1
            return LinkMessage(packet, error=str(exc))
        self.tm_packets += 1
        if not self.decode_reports:
            return LinkMessage(packet, tm)
        try:
            report = decode_report(tm, step_id_len=self.step_id_len, failure_code_len=self.failure_code_len)
        except PusError as exc:
            # A sound TM whose report data is malformed: keep the TM, say what is wrong with its data.
            self.pus_errors += 1
            return LinkMessage(packet, tm, error=str(exc))
        return LinkMessage(packet, tm, report)

    @property
    def counters(self) -> LinkCounters:
        return LinkCounters(self.reassembler.counters, self.tm_packets, self.pus_errors, self.other_packets)
