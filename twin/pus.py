"""PUS-C packets as the simulated nodes send and receive them (``spacepackets`` 0.32, ``message_subtype``).

Layouts of application/source data are the ICD's (``docs/icd.md``). Verification reports TM[1,x] carry the
request ID (the TC's first four bytes) and, for failures, a one-byte failure code (`Failure`) and no data.
"""

from __future__ import annotations

import datetime
import enum
import struct
from typing import Final

from spacepackets.ccsds.time import CdsShortTimestamp
from spacepackets.ecss import PusTm

__all__ = ["Failure", "TcHeader", "build_tm", "cds_now", "parse_tc_header"]

TIMESTAMP_LEN: Final = 7
ACK_ACCEPTANCE: Final = 0b0001
ACK_START: Final = 0b0010
ACK_COMPLETION: Final = 0b1000


class Failure(enum.IntEnum):
    """Failure codes of TM[1,2] / [1,4] / [1,8] (one byte)."""

    UNKNOWN_SERVICE = 1  # unknown service or subtype
    UNKNOWN_ID = 2  # unknown function id (also: unknown SID, unknown parameter id)
    OUT_OF_RANGE = 3  # an argument out of its range or enum
    WRONG_LENGTH = 4  # application data of the wrong length
    CRC_ERROR = 5  # PUS CRC-16 mismatch
    NOT_READY = 6  # node busy or not ready
    EXECUTION_FAILED = 7


class TcHeader:
    """What the node needs from a TC, read directly so even a TC with a bad CRC can be answered."""

    __slots__ = ("ack_flags", "apid", "app_data", "request_id", "seq_count", "service", "subtype")

    def __init__(self, raw: bytes) -> None:
        self.request_id = raw[:4]
        first, seq = struct.unpack(">HH", raw[:4])
        self.apid = first & 0x7FF
        self.seq_count = seq & 0x3FFF
        self.ack_flags = raw[6] & 0x0F
        self.service = raw[7]
        self.subtype = raw[8]
        self.app_data = raw[11:-2]


def parse_tc_header(raw: bytes) -> tuple[TcHeader | None, Failure | None]:
    """Header and the first failure found (length, type, CRC), or (None, None) if not even a TC header."""
    if len(raw) < 13:
        return None, None
    first, _, length = struct.unpack(">HHH", raw[:6])
    if not first & 0x1000 or first >> 13:  # not a TC, or not CCSDS version 0
        return None, None
    header = TcHeader(raw)
    if length + 7 != len(raw):
        return header, Failure.WRONG_LENGTH
    if _crc16(raw) != 0:
        return header, Failure.CRC_ERROR
    return header, None


def _crc16(data: bytes) -> int:
    # CRC-16/CCITT-FALSE over the packet including its CRC: 0 when intact.
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = (crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1
        crc &= 0xFFFF
    return crc


def cds_now(unix_time: float) -> bytes:
    when = datetime.datetime.fromtimestamp(unix_time, tz=datetime.UTC)
    return bytes(CdsShortTimestamp.from_datetime(when).pack())


def build_tm(apid: int, service: int, subtype: int, data: bytes, *, seq: int, counter: int, stamp: bytes) -> bytes:
    tm = PusTm(
        service=service,
        message_subtype=subtype,
        timestamp=stamp,
        source_data=data,
        apid=apid,
        seq_count=seq & 0x3FFF,
        message_counter=counter & 0xFFFF,
        destination_id=0,
    )
    return bytes(tm.pack())


def malform(raw: bytes, kind: str) -> bytes:
    """A TM spoiled on purpose (fault ``malformed_pus``): a wrong CRC-16, or a data length field that lies."""
    if kind == "bad_crc":
        return raw[:-1] + bytes((raw[-1] ^ 0xFF,))
    length = struct.unpack(">H", raw[4:6])[0] + 3
    return raw[:4] + struct.pack(">H", length) + raw[6:]
