"""Test-side helpers for the twin's side channels: the twin process, its PSU through raw pyvisa SCPI, the USB-ISS
and the OBC console through plain pyserial ``socket://`` URLs, and a minimal EGSE on the CAN bus (python-can
socketcand, CSP framing from ``twin.csp``, PUS from ``spacepackets``) for the CAN side of the cross-checks.

Nothing here uses ``instruments/``: the point is that the twin speaks the real protocols.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import Any

import can
import serial
from spacepackets.ecss import PusTc, PusTm
from twin_support import wait_for

from twin import csp

EPS_ADDR = 0x02
TMP100_ADDR = 0x48
EGSE = 10
EPS_CSP = 2
OBC_CSP = 1
EPS_APID = 0x066
PUS_PORT = 10
# eps_hk_t as twin/eps_i2c.py documents it, restated so the test does not trust the twin's own packer.
HK_FORMAT = ">3HH3HHHH6H8B8H8H6HII2BII2II6hBBBH"
HK_FIELDS = {"vbatt": 3, "cursys": 8, "curout": slice(10, 16), "output": slice(16, 24), "latchup": slice(40, 46)}
# EPS_HK (SID 1) per docs/icd.md: VBAT IBAT VBUS IBUS, OUT_x ×5 (bool), I_x ×5, LATCHUPS_x ×5, BOOT_COUNT, TBAT.
EPS_HK_FORMAT = ">IHhHH5B5H5HHh"
EPS_CHANNELS = ("OBC", "ADCS", "COMMS", "PAYLOAD", "HEATER")


class RawIss:
    """The USB-ISS byte protocol by hand over pyserial's ``socket://`` (no usb_iss, no instruments)."""

    def __init__(self, url: str) -> None:
        self.port = serial.serial_for_url(url, timeout=2.0)

    def close(self) -> None:
        self.port.close()

    def transact(self, command: bytes, reply_len: int) -> bytes:
        self.port.write(command)
        reply = bytes(self.port.read(reply_len))
        assert len(reply) == reply_len, f"short USB-ISS reply to {command.hex()}: {reply.hex()}"
        return reply

    def present(self, address: int) -> bool:
        return self.transact(bytes([0x58, address << 1]), 1) == b"\x01"

    def eps(self, command: bytes, reply_len: int) -> bytes:
        """A P31u transaction: I2C_AD0 write ``command``, then I2C_AD0 read ``[echo, status, payload…]``."""
        ack = self.transact(bytes([0x54, EPS_ADDR << 1, len(command)]) + command, 1)
        assert ack != b"\x00", "the EPS did not acknowledge the write"
        return self.transact(bytes([0x54, (EPS_ADDR << 1) | 1, reply_len]), reply_len)

    def housekeeping(self) -> tuple[int, ...]:
        size = struct.calcsize(HK_FORMAT)
        reply = self.eps(b"\x08\x00", 2 + size)
        assert reply[:2] == b"\x08\x00", reply[:2].hex()
        return struct.unpack(HK_FORMAT, reply[2:])

    def temperature(self) -> float:
        raw = self.transact(bytes([0x55, (TMP100_ADDR << 1) | 1, 0x00, 2]), 2)
        counts: int = struct.unpack(">h", raw)[0] >> 4
        return counts * 0.0625


class Console:
    """The OBC debug UART over ``socket://``: everything received is kept."""

    def __init__(self, url: str) -> None:
        self.port = serial.serial_for_url(url, timeout=0.05)
        self.received = bytearray()

    def close(self) -> None:
        self.port.close()

    def pump(self) -> bytes:
        chunk = bytes(self.port.read(4096))
        self.received += chunk
        return chunk

    def text(self) -> str:
        return self.received.decode("utf-8", errors="replace")

    def await_text(self, needle: str, timeout: float = 5.0) -> str:
        def seen() -> bool:
            self.pump()
            return needle in self.text()

        wait_for(seen, timeout, f"{needle!r} on the console")
        return self.text()

    def send(self, line: str) -> None:
        self.port.write(line.encode() + b"\r")

    def clear(self) -> None:
        self.pump()
        self.received.clear()


class Egse:
    """The bench on the CAN bus, by hand: CSP v1 over CFP v1, PUS one-shot HK, CMP ident."""

    def __init__(self, endpoint: dict[str, Any]) -> None:
        self.bus = can.Bus(
            interface="socketcand", channel=endpoint["channel"], host=endpoint["host"], port=int(endpoint["port"])
        )
        self.rx = csp.CfpReassembler(1, EGSE, time.monotonic)
        self._counter = 0
        self._sport = 20
        self._seq = 0

    def close(self) -> None:
        self.bus.shutdown()

    def send(self, dst: int, dport: int, data: bytes, *, crc: bool) -> int:
        self._sport = 20 + (self._sport - 19) % 30
        header = csp.CspHeader(2, EGSE, dst, dport, self._sport, 0)
        if crc:
            header, data = csp.append_crc(header, data)
        self._counter += 1
        for can_id, chunk in csp.fragment(csp.CspPacket(header, data), 1, self._counter, EGSE):
            self.bus.send(can.Message(arbitration_id=can_id, data=chunk, is_extended_id=True))
        return self._sport

    def await_packet(self, predicate: Callable[[csp.CspPacket], bool], timeout: float = 3.0) -> bytes:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.bus.recv(0.05)
            if message is None or not message.is_extended_id or message.is_error_frame:
                continue
            packet = self.rx.push(message.arbitration_id, bytes(message.data))
            if packet is not None and predicate(packet):
                body = csp.strip_crc(packet, 1)
                assert body is not None, "reply with a bad CRC32"
                return body
        raise AssertionError(f"no matching CSP packet within {timeout:g} s")

    def eps_hk(self) -> dict[str, float]:
        """TC[3,27] one-shot EPS_HK (SID 1) → engineering values by ICD field name."""
        self._seq += 1
        tc = PusTc(service=3, message_subtype=27, apid=EPS_APID, app_data=struct.pack(">I", 1), seq_count=self._seq)
        self.send(EPS_CSP, PUS_PORT, bytes(tc.pack()), crc=True)

        def is_hk(packet: csp.CspPacket) -> bool:
            if packet.header.src != EPS_CSP or packet.header.sport != PUS_PORT:
                return False
            tm = PusTm.unpack(csp.strip_crc(packet, 1) or b"", timestamp_len=7)
            return (tm.service, tm.message_subtype) == (3, 25)

        tm = PusTm.unpack(self.await_packet(is_hk), timestamp_len=7)
        fields = struct.unpack(EPS_HK_FORMAT, bytes(tm.source_data))
        assert fields[0] == 1
        values: dict[str, float] = {"VBAT": fields[1] / 1000, "VBUS": fields[3] / 1000, "IBUS": fields[4] / 1000}
        for i, channel in enumerate(EPS_CHANNELS):
            values[f"OUT_{channel}"] = fields[5 + i]
            values[f"I_{channel}"] = fields[10 + i] / 1000
        values["TBAT"] = fields[21] / 100
        return values

    def firmware_revision(self, node: int = OBC_CSP) -> str:
        """CMP ident (port 0): the revision string."""
        sport = self.send(node, 0, bytes((csp.CMP_REQUEST, csp.CMP_IDENT)), crc=False)
        body = self.await_packet(lambda p: p.header.src == node and p.header.dport == sport)
        return csp.parse_cstr(body[2 + 20 + 30 : 2 + 20 + 30 + 20])

    def reboot(self, node: int = OBC_CSP) -> None:
        """The CSP reboot port (4) with libcsp's magic."""
        self.send(node, 4, struct.pack(">I", 0x80078007), crc=False)
