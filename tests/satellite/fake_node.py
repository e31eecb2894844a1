"""An in-process stand-in for satellite nodes on python-can's `virtual` bus: pure logic from bench.link plus
spacepackets, enough to exercise the bench's Satellite without the twin (the twin tests the real thing)."""

from __future__ import annotations

import datetime as dt
import struct
import threading
from collections.abc import Callable

import can
from spacepackets.ecss import PusTm

from bench.icd import Icd
from bench.link import services
from bench.link.cfp import CfpEncoder, Reassembler
from bench.link.csp import CspHeader, CspPacket, append_crc32
from bench.link.pus import cds_short, decode_tc

TS = cds_short(dt.datetime(2026, 11, 25, tzinfo=dt.UTC))


def tm(apid: int, service: int, subtype: int, data: bytes, seq: int = 0) -> bytes:
    return bytes(
        PusTm(service=service, message_subtype=subtype, apid=apid, timestamp=TS, source_data=data, seq_count=seq).pack()
    )


class FakeNodes:
    """Every node of the ICD at once. Knobs: `silent`, `reject` (function id → failure code), `uptime`,
    `corrupt_crc` / `drop_fragment` / `bad_pus` (counts of next packets to spoil)."""

    def __init__(self, channel: str, icd: Icd) -> None:
        self.icd = icd
        self.bus = can.Bus(interface="virtual", channel=channel, receive_own_messages=False)
        self.rx = Reassembler(1, check_crc=True)
        self.encoders = {n.address: CfpEncoder(1, n.address) for n in icd.nodes.values()}
        self.silent: set[str] = set()
        self.reject: dict[int, int] = {}
        self.uptime = 42
        self.corrupt_crc = 0
        self.drop_fragment = 0
        self.bad_pus = 0
        self.received: list[CspPacket] = []
        self.on_tc: Callable[[str, int, int, bytes], None] | None = None
        self.image_reply: Callable[[bytes], bytes] | None = None  # answers a node's application port (IMAGE)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.bus.shutdown()

    # -- sending -------------------------------------------------------------------------------------------
    def send_packet(self, src: int, dst: int, dport: int, sport: int, payload: bytes, crc: bool = True) -> None:
        packet = CspPacket(CspHeader(2, src, dst, dport, sport), payload)
        if crc:
            packet = append_crc32(packet)
            if self.corrupt_crc:
                self.corrupt_crc -= 1
                packet = CspPacket(packet.header, packet.payload[:-1] + bytes([packet.payload[-1] ^ 0xFF]))
        frames = self.encoders[src].encode(packet)
        if self.drop_fragment and len(frames) >= 3:
            self.drop_fragment -= 1
            frames = frames[:1] + frames[2:]
        for f in frames:
            self.bus.send(can.Message(arbitration_id=f.can_id, data=f.data, is_extended_id=True))

    def send_tm(self, node: str, service: int, subtype: int, data: bytes) -> None:
        n = self.icd.node(node)
        raw = tm(n.apid, service, subtype, data)
        if self.bad_pus:
            self.bad_pus -= 1
            raw = raw[:-1] + bytes([raw[-1] ^ 0xFF])
        self.send_packet(n.address, self.icd.egse_address, self.icd.pus_port, self.icd.pus_port, raw)

    def send_hk(self, node: str, sid: int, values: bytes) -> None:
        self.send_tm(node, 3, 25, struct.pack(">I", sid) + values)

    def send_event(self, node: str, severity: int, event_id: int, data: bytes) -> None:
        self.send_tm(node, 5, severity, struct.pack(">H", event_id) + data)

    # -- receiving -----------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self.bus.recv(0.05)
            if msg is None:
                continue
            packet = self.rx.push(msg.arbitration_id, msg.data)
            if packet is not None:
                self.received.append(packet)
                self._handle(packet)

    def _handle(self, p: CspPacket) -> None:
        node = self.icd.node_at(p.header.dst)
        if node is None or node.name in self.silent:
            return
        h = p.header
        reply = lambda payload: self.send_packet(h.dst, h.src, h.sport, h.dport, payload)  # noqa: E731
        if h.dport == services.ServicePort.PING:
            reply(p.payload)
        elif h.dport == services.ServicePort.UPTIME:
            reply(services.encode_u32(self.uptime))
        elif h.dport == services.ServicePort.CMP:
            ident = services.CmpIdent(node.name.lower(), "OTS-SAT fake", "v1.4.2", "Nov 25 2026", "19:00:00")
            reply(ident.encode_reply())
        elif h.dport in node.ports.values() and self.image_reply is not None:
            reply(self.image_reply(p.payload))
        elif h.dport == self.icd.pus_port:
            tc = decode_tc(p.payload)
            rid = struct.pack(">I", tc.request_id)
            if self.on_tc is not None:
                self.on_tc(node.name, tc.service, tc.subtype, tc.app_data)
            if (tc.service, tc.subtype) == (17, 1):
                self.send_tm(node.name, 17, 2, b"")
                return
            code = self.reject.get(int.from_bytes(tc.app_data[:4], "big")) if tc.service == 8 else None
            if code is not None and code != 7:
                self.send_tm(node.name, 1, 2, rid + bytes([code]))
                return
            self.send_tm(node.name, 1, 1, rid)
            self.send_tm(node.name, 1, 3, rid)
            if code == 7:
                self.send_tm(node.name, 1, 8, rid + b"\x07")
                return
            if (tc.service, tc.subtype) == (3, 27):
                sid = int.from_bytes(tc.app_data, "big")
                hk = self.icd.hk_structure(node.name, sid)
                assert hk is not None
                self.send_hk(node.name, sid, bytes(struct.calcsize(hk.structure.format)))
            self.send_tm(node.name, 1, 7, rid)
