"""Test-side helpers for the simulated satellite: the twin process, the PSU through pyvisa, and an EGSE that
talks CSP + PUS by hand over a real python-can bus (socketcand or slcan).

The EGSE uses ``twin.csp`` for framing and ``spacepackets`` for PUS; the twin's nodes run in another process and
meet this code only on the wire.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import can
from spacepackets.ecss import PusTc, PusTm
from twin_support import TwinUnderTest

from twin import csp
from twin.icd import Icd, load_icd

ICD: Icd = load_icd()
EGSE = ICD.egse_address
PUS_PORT = ICD.pus_port
T = TypeVar("T")


@dataclass
class Tm:
    node: str
    packet: csp.CspPacket
    tm: PusTm | None  # None: not a valid PUS TM
    raw: bytes

    @property
    def key(self) -> tuple[int, int] | None:
        return (self.tm.service, self.tm.message_subtype) if self.tm else None


NODE_BY_ADDRESS = {n.address: name for name, n in ICD.nodes.items()}


class Egse:
    """The bench's side of the bus, written out by hand: CSP requests, PUS TCs, everything received kept."""

    def __init__(self, bus: can.BusABC, version: int = 1) -> None:
        self.bus = bus
        self.version = version
        self.rx = csp.CfpReassembler(version, EGSE, time.monotonic)
        self.received: list[csp.CspPacket] = []
        self.frames: list[can.Message] = []
        self._counter = 0
        self._sport = 16
        self._seq = 0

    def close(self) -> None:
        self.bus.shutdown()

    def pump(self, timeout: float) -> None:
        message = self.bus.recv(timeout)
        while message is not None:
            self.frames.append(message)
            if message.is_extended_id and not message.is_error_frame:
                packet = self.rx.push(message.arbitration_id, bytes(message.data))
                if packet is not None:
                    self.received.append(packet)
            message = self.bus.recv(0)

    def await_packet(self, predicate: Callable[[csp.CspPacket], bool], timeout: float = 2.0) -> csp.CspPacket:
        deadline = time.monotonic() + timeout
        while True:
            for packet in self.received:
                if predicate(packet):
                    self.received.remove(packet)
                    return packet
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching CSP packet within {timeout:g} s")
            self.pump(min(remaining, 0.05))

    def nothing_for(self, predicate: Callable[[csp.CspPacket], bool], window: float) -> bool:
        """True if no matching packet arrives within ``window`` seconds (a negative check needs a window)."""
        try:
            self.await_packet(predicate, window)
        except AssertionError:
            return True
        return False

    def send(self, dst: int, dport: int, data: bytes, *, crc: bool = False, sport: int | None = None) -> int:
        if sport is None:
            self._sport = 16 + (self._sport - 15) % 40  # ephemeral ports 16..55, as libcsp's outgoing range
            sport = self._sport
        header = csp.CspHeader(2, EGSE, dst, dport, sport, 0)
        if crc:
            header, data = csp.append_crc(header, data)
        self._counter += 1
        for can_id, chunk in csp.fragment(csp.CspPacket(header, data), self.version, self._counter, EGSE):
            self.bus.send(can.Message(arbitration_id=can_id, data=chunk, is_extended_id=True))
        return sport

    def request(self, node: str, port: int, data: bytes = b"", *, crc: bool = False, timeout: float = 2.0) -> bytes:
        address = ICD.nodes[node].address
        sport = self.send(address, port, data, crc=crc)
        packet = self.await_packet(lambda p: p.header.src == address and p.header.dport == sport, timeout)
        body = csp.strip_crc(packet, self.version)
        assert body is not None, "reply with a bad CRC32"
        return body

    # -- PUS --

    def tc(self, node: str, service: int, subtype: int, app_data: bytes = b"", *, raw: bytes | None = None) -> bytes:
        self._seq += 1
        packet = (
            raw
            or PusTc(
                service=service,
                message_subtype=subtype,
                apid=ICD.nodes[node].apid,
                app_data=app_data,
                seq_count=self._seq,
            ).pack()
        )
        self.send(ICD.nodes[node].address, PUS_PORT, bytes(packet), crc=True)
        return bytes(packet[:4])

    def function(self, node: str, name: str, *args: int | float | bool) -> bytes:
        command = next(c for c in ICD.nodes[node].commands if c.name == name)
        data = struct.pack(">I", command.function_id) + b"".join(
            a.pack(v) for a, v in zip(command.args, args, strict=True)
        )
        return self.tc(node, 8, 1, data)

    def await_tm(self, node: str, predicate: Callable[[Tm], bool], timeout: float = 2.0) -> Tm:
        address = ICD.nodes[node].address

        def matches(packet: csp.CspPacket) -> bool:
            return packet.header.src == address and packet.header.sport == PUS_PORT and predicate(self.decode(packet))

        return self.decode(self.await_packet(matches, timeout))

    def decode(self, packet: csp.CspPacket) -> Tm:
        body = csp.strip_crc(packet, self.version) or b""
        try:
            tm = PusTm.unpack(body, timestamp_len=7)
        except Exception:
            tm = None
        return Tm(NODE_BY_ADDRESS.get(packet.header.src, "?"), packet, tm, body)

    def verification(self, node: str, request_id: bytes, subtype: int, timeout: float = 2.0) -> Tm:
        return self.await_tm(
            node,
            lambda t: t.key == (1, subtype) and bytes(t.tm.source_data[:4]) == request_id,
            timeout,  # type: ignore[union-attr]
        )

    def hk(self, node: str, sid: int = 1) -> dict[str, float]:
        """One-shot HK of ``sid`` as engineering values by field name."""
        self.tc(node, 3, 27, struct.pack(">I", sid))
        tm = self.await_tm(node, lambda t: t.key == (3, 25))
        assert tm.tm is not None
        data = bytes(tm.tm.source_data)
        assert struct.unpack(">I", data[:4])[0] == sid
        structure = ICD.nodes[node].hk(sid)
        assert structure is not None
        values, offset = {}, 4
        for field in structure.fields:
            values[field.name] = field.unpack(data[offset:]) * field.scale + field.offset
            offset += field.size
        assert offset == len(data), "HK length does not match the ICD"
        return values


def socketcand_bus(twin: TwinUnderTest) -> can.BusABC:
    ep = twin.endpoints["can_socketcand"]
    return can.Bus(interface="socketcand", channel=ep["channel"], host=ep["host"], port=int(ep["port"]))
