"""ECSS PUS-C telecommands and telemetry carried in CSP packets, on top of ``spacepackets`` 0.32.

A PUS packet is a CCSDS space packet: a 6-byte primary header (version 0, TC/TM type bit, "secondary header
present" flag, 11-bit APID, sequence flags, 14-bit sequence count, data length = total - 7), then a PUS
secondary header, the application/source data and a CRC-16/CCITT-FALSE over everything before it.

* TC secondary header (5 B): ``PUS version 2 << 4 | ack flags``, service, message subtype, source ID (u16).
* TM secondary header (7 B + time): ``PUS version 2 << 4 | time reference``, service, message subtype,
  message type counter (u16), destination ID (u16), then the time stamp — here CDS short, 7 bytes
  (P-field, u16 days since 1958-01-01, u32 ms of day).

What a (service, subtype) pair means is the standard's; the *layout of its data* is largely left to the
mission. The layouts used until the ICD says otherwise:

=============  =====================================================================================
TC[17,1]       ping — no data; answered by TM[17,2] pong
TC[3,27]       one-shot HK report — SID (u32); answered by TM[3,25]: SID (u32) + parameter bytes
TC[8,1]        perform function — function ID (u32) + argument bytes
TC[9,1]        set time-report rate — exponent (u8); TC[9,128] set on-board time — CDS short time
               (128 is mission-specific, the common fsfw convention; PUS-C defines no "set time")
TC[20,1]/[20,3] report/set parameter values — N (u16), then N × param ID (u16) [+ value bytes]
TM[1,x]        verification — request ID (u32: the TC's first four bytes), step ID for 5/6,
               failure code + data for even subtypes (1 acc ok, 2 acc fail, 3 start ok, 4 start fail,
               5 step ok, 6 step fail, 7 completion ok, 8 completion fail)
TM[5,1..4]     event report, severity = subtype (info, low, medium, high) — event ID (u16) + data
=============  =====================================================================================

Telecommands are built with ``spacepackets.PusTc`` (always with ``message_subtype``; the old ``subservice``
spelling is deprecated in 0.32). Telemetry is decoded by :func:`decode_tm`, a direct reading of the same
wire format that is several times faster than ``PusTm.unpack`` (which builds a dozen helper objects per
packet) but checks the same things and more; :func:`decode_tm_reference` goes through ``PusTm.unpack`` and
the tests hold the two equal.
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from spacepackets.ecss import PusTc, PusTm, check_pus_crc

TIMESTAMP_LEN = 7  # CDS short with P-field
CDS_SHORT_PFIELD = 0x40  # time code CDS (0b100), CCSDS epoch, 16-bit days, no sub-millisecond field
CCSDS_EPOCH = datetime.datetime(1958, 1, 1, tzinfo=datetime.UTC)
PRIMARY_HEADER_LEN = 6
TC_SEC_HEADER_LEN = 5
TM_SEC_HEADER_LEN = 7  # without the time stamp
CRC_LEN = 2
PUS_C_VERSION = 2
MAX_APID = 0x7FF
MAX_SEQ_COUNT = 0x3FFF
SET_TIME_SUBTYPE = 128  # mission-specific, see the module docstring

_HEADERS = struct.Struct(">HHHBBBHH")  # primary header + TM secondary header up to the time stamp


class PusError(ValueError):
    """A PUS packet that is malformed: bad CRC, wrong length, wrong version or type, short data."""


class Service(IntEnum):
    VERIFICATION = 1
    HOUSEKEEPING = 3
    EVENT = 5
    FUNCTION = 8
    TIME = 9
    TEST = 17
    PARAMETER = 20


class Severity(IntEnum):
    """TM[5,x] event severity, which PUS-C encodes as the subtype."""

    INFO = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4


class Stage(IntEnum):
    """TM[1,x] verification stage; the subtype is ``2 * stage - 1`` for success, ``2 * stage`` for failure."""

    ACCEPTANCE = 1
    START = 2
    PROGRESS = 3
    COMPLETION = 4


def crc16_ccitt_false(data: bytes | bytearray) -> int:
    """CRC-16/CCITT-FALSE, bit by bit; only used to name the expected value in error messages."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


# ------------------------------------------------------------------------------------------------------
# Packets
# ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TmPacket:
    """One decoded PUS-C telemetry packet (headers as fields, time stamp and source data as bytes)."""

    apid: int
    seq_count: int
    service: int
    subtype: int
    message_counter: int
    destination_id: int
    timestamp: bytes
    source_data: bytes
    time_reference: int = 0

    def time(self) -> datetime.datetime:
        """The CDS short time stamp as an aware UTC datetime."""
        return cds_short_to_datetime(self.timestamp)


@dataclass(frozen=True, slots=True)
class TcPacket:
    """One decoded PUS-C telecommand."""

    apid: int
    seq_count: int
    service: int
    subtype: int
    source_id: int
    ack_flags: int
    app_data: bytes
    request_id: int  # first four bytes of the packet: what TM[1,x] reports refer to


def _check_length(kind: str, raw: bytes | bytearray) -> None:
    announced = (raw[4] << 8 | raw[5]) + 7
    if announced != len(raw):
        raise PusError(f"{kind} length field announces {announced} bytes, packet has {len(raw)}")


def decode_tm(raw: bytes | bytearray, timestamp_len: int = TIMESTAMP_LEN) -> TmPacket:
    """Decode and check one PUS-C TM packet that fills ``raw`` exactly; raise :class:`PusError` if not."""
    n = len(raw)
    minimum = PRIMARY_HEADER_LEN + TM_SEC_HEADER_LEN + timestamp_len + CRC_LEN
    if n < minimum:
        if n >= PRIMARY_HEADER_LEN:  # a truncated packet: its length field tells the better story
            _check_length("TM", raw)
        raise PusError(f"TM is {n} bytes, shorter than headers + {timestamp_len}-byte time + CRC ({minimum})")
    ident, psc, data_len, sec0, service, subtype, counter, dest = _HEADERS.unpack_from(raw)
    if ident >> 13:
        raise PusError(f"CCSDS version {ident >> 13}, expected 0")
    if ident & 0x1800 != 0x0800:
        kind = "TC" if ident & 0x1000 else "TM"
        flag = "with" if ident & 0x0800 else "without"
        raise PusError(f"not a PUS TM: packet type {kind}, {flag} secondary header")
    if data_len + 7 != n:
        _check_length("TM", raw)
    if not check_pus_crc(raw):
        received = int.from_bytes(raw[-2:], "big")
        raise PusError(f"TM CRC16 mismatch: received 0x{received:04X}, computed 0x{crc16_ccitt_false(raw[:-2]):04X}")
    if sec0 >> 4 != PUS_C_VERSION:
        raise PusError(f"PUS version {sec0 >> 4}, expected {PUS_C_VERSION} (PUS-C)")
    body = PRIMARY_HEADER_LEN + TM_SEC_HEADER_LEN
    return TmPacket(
        ident & MAX_APID,
        psc & MAX_SEQ_COUNT,
        service,
        subtype,
        counter,
        dest,
        bytes(raw[body : body + timestamp_len]),
        bytes(raw[body + timestamp_len : n - CRC_LEN]),
        sec0 & 0x0F,
    )


def decode_tm_reference(raw: bytes | bytearray, timestamp_len: int = TIMESTAMP_LEN) -> TmPacket:
    """The same decoding through ``spacepackets.PusTm.unpack`` (slower; the yardstick for :func:`decode_tm`)."""
    try:
        tm = PusTm.unpack(raw, timestamp_len=timestamp_len)
    except Exception as exc:  # spacepackets raises ValueError subclasses and bare Exceptions for CRC errors
        raise PusError(f"TM rejected by spacepackets: {type(exc).__name__}: {exc}") from exc
    if tm.packet_len != len(raw):
        raise PusError(f"TM length field announces {tm.packet_len} bytes, packet has {len(raw)}")
    return TmPacket(
        tm.apid,
        tm.seq_count,
        tm.service,
        tm.message_subtype,
        tm.pus_tm_sec_header.message_counter,
        tm.pus_tm_sec_header.dest_id,
        bytes(tm.timestamp),
        bytes(tm.source_data),
        tm.pus_tm_sec_header.spacecraft_time_ref,
    )


def decode_tc(raw: bytes | bytearray) -> TcPacket:
    """Decode and check one PUS-C TC packet that fills ``raw`` exactly (e.g. to log what was sent)."""
    if len(raw) < PRIMARY_HEADER_LEN:
        raise PusError(f"TC is {len(raw)} bytes, shorter than the 6-byte primary header")
    _check_length("TC", raw)
    if len(raw) < PRIMARY_HEADER_LEN + TC_SEC_HEADER_LEN + CRC_LEN:
        raise PusError(f"TC is {len(raw)} bytes, shorter than its headers + CRC")
    if not raw[0] & 0x10:
        raise PusError("not a PUS TC: packet type bit says TM")
    try:
        tc = PusTc.unpack(raw)
    except Exception as exc:
        raise PusError(f"TC rejected by spacepackets: {type(exc).__name__}: {exc}") from exc
    return TcPacket(
        tc.apid,
        tc.seq_count,
        tc.service,
        tc.message_subtype,
        tc.source_id,
        tc.pus_tc_sec_header.ack_flags,
        bytes(tc.app_data),
        int.from_bytes(raw[:4], "big"),
    )


def request_id(tc_raw: bytes | bytearray) -> int:
    """The request ID a verification report will carry for this TC: its first four bytes as u32."""
    if len(tc_raw) < 4:
        raise PusError(f"TC is {len(tc_raw)} bytes, a request ID needs 4")
    return int.from_bytes(tc_raw[:4], "big")


# ------------------------------------------------------------------------------------------------------
# Telecommands
# ------------------------------------------------------------------------------------------------------


def build_tc(
    service: int,
    subtype: int,
    apid: int,
    app_data: bytes = b"",
    *,
    seq_count: int = 0,
    source_id: int = 0,
    ack_flags: int = 0b1111,
) -> bytes:
    """Any PUS-C TC as bytes (``ack_flags``: acceptance, start, progress, completion reports wanted)."""
    if not 0 <= apid <= MAX_APID:
        raise PusError(f"APID {apid} out of range 0..{MAX_APID}")
    if not 0 <= seq_count <= MAX_SEQ_COUNT:
        raise PusError(f"sequence count {seq_count} out of range 0..{MAX_SEQ_COUNT}")
    if not 0 <= source_id <= 0xFFFF:
        raise PusError(f"source ID {source_id} out of range 0..65535")
    if not 0 <= ack_flags <= 0xF:
        raise PusError(f"ack flags {ack_flags:#x} do not fit in 4 bits")
    if not (0 <= service <= 0xFF and 0 <= subtype <= 0xFF):
        raise PusError(f"service/subtype {service}/{subtype} out of range 0..255")
    tc = PusTc(
        service=service,
        message_subtype=subtype,
        apid=apid,
        app_data=app_data,
        seq_count=seq_count,
        source_id=source_id,
        ack_flags=ack_flags,
    )
    return bytes(tc.pack())


def _u32(what: str, value: int) -> bytes:
    if not 0 <= value <= 0xFFFFFFFF:
        raise PusError(f"{what} {value} does not fit in u32")
    return value.to_bytes(4, "big")


def _u16(what: str, value: int) -> bytes:
    if not 0 <= value <= 0xFFFF:
        raise PusError(f"{what} {value} does not fit in u16")
    return value.to_bytes(2, "big")


def tc_ping(apid: int, *, seq_count: int = 0, source_id: int = 0, ack_flags: int = 0b1111) -> bytes:
    """TC[17,1] are-you-alive."""
    return build_tc(17, 1, apid, seq_count=seq_count, source_id=source_id, ack_flags=ack_flags)


def tc_hk_one_shot(apid: int, sid: int, *, seq_count: int = 0, source_id: int = 0, ack_flags: int = 0b1111) -> bytes:
    """TC[3,27] generate a one-shot housekeeping report of structure ``sid``."""
    return build_tc(3, 27, apid, _u32("SID", sid), seq_count=seq_count, source_id=source_id, ack_flags=ack_flags)


def tc_function(
    apid: int,
    function_id: int,
    args: bytes = b"",
    *,
    seq_count: int = 0,
    source_id: int = 0,
    ack_flags: int = 0b1111,
) -> bytes:
    """TC[8,1] perform function ``function_id`` with mission-defined argument bytes."""
    data = _u32("function ID", function_id) + args
    return build_tc(8, 1, apid, data, seq_count=seq_count, source_id=source_id, ack_flags=ack_flags)


def tc_time_report_rate(
    apid: int, exponent: int, *, seq_count: int = 0, source_id: int = 0, ack_flags: int = 0b1111
) -> bytes:
    """TC[9,1] set the time-report generation rate to one report every 2**exponent time pulses."""
    if not 0 <= exponent <= 0xFF:
        raise PusError(f"rate exponent {exponent} does not fit in u8")
    return build_tc(9, 1, apid, bytes((exponent,)), seq_count=seq_count, source_id=source_id, ack_flags=ack_flags)


def cds_short(when: datetime.datetime) -> bytes:
    """A CDS short time stamp (7 bytes) for an aware datetime, truncated to the millisecond.

    Integer arithmetic on the datetime, so a time that is a whole millisecond stays exact (going through
    float POSIX seconds, as ``CdsShortTimestamp.from_datetime`` does, can lose the last millisecond).
    """
    if when.tzinfo is None:
        raise PusError("time stamps need an aware datetime (UTC), got a naive one")
    delta = when - CCSDS_EPOCH
    if not 0 <= delta.days <= 0xFFFF:
        raise PusError(f"{when.isoformat()} is outside the CDS short range (1958-01-01 + 65535 days)")
    ms_of_day = delta.seconds * 1000 + delta.microseconds // 1000
    return bytes((CDS_SHORT_PFIELD,)) + delta.days.to_bytes(2, "big") + ms_of_day.to_bytes(4, "big")


def cds_short_to_datetime(raw: bytes | bytearray) -> datetime.datetime:
    """An aware UTC datetime from a 7-byte CDS short time stamp (P-field 0x40)."""
    if len(raw) != TIMESTAMP_LEN:
        raise PusError(f"time stamp is {len(raw)} bytes, CDS short is {TIMESTAMP_LEN}")
    if raw[0] != CDS_SHORT_PFIELD:
        raise PusError(f"time stamp P-field 0x{raw[0]:02X} is not CDS short (0x{CDS_SHORT_PFIELD:02X})")
    days = int.from_bytes(raw[1:3], "big")
    ms_of_day = int.from_bytes(raw[3:7], "big")
    if ms_of_day >= 86_401_000:  # a leap-second day has 86 401 000 ms
        raise PusError(f"CDS short ms of day {ms_of_day} exceeds one day")
    return CCSDS_EPOCH + datetime.timedelta(days=days, milliseconds=ms_of_day)


def tc_set_time(
    apid: int,
    when: datetime.datetime,
    *,
    subtype: int = SET_TIME_SUBTYPE,
    seq_count: int = 0,
    source_id: int = 0,
    ack_flags: int = 0b1111,
) -> bytes:
    """TC[9,128] set the on-board time (CDS short); the subtype is mission-specific, see the module docstring."""
    data = cds_short(when)
    return build_tc(9, subtype, apid, data, seq_count=seq_count, source_id=source_id, ack_flags=ack_flags)


def tc_report_parameters(
    apid: int, param_ids: Sequence[int], *, seq_count: int = 0, source_id: int = 0, ack_flags: int = 0b1111
) -> bytes:
    """TC[20,1] report parameter values: N (u16) then N parameter IDs (u16)."""
    data = _u16("parameter count", len(param_ids)) + b"".join(_u16("parameter ID", p) for p in param_ids)
    return build_tc(20, 1, apid, data, seq_count=seq_count, source_id=source_id, ack_flags=ack_flags)


def tc_set_parameters(
    apid: int,
    values: Sequence[tuple[int, bytes]],
    *,
    seq_count: int = 0,
    source_id: int = 0,
    ack_flags: int = 0b1111,
) -> bytes:
    """TC[20,3] set parameter values: N (u16) then N × (parameter ID (u16), value bytes as the ICD encodes them)."""
    data = encode_parameter_values(values)
    return build_tc(20, 3, apid, data, seq_count=seq_count, source_id=source_id, ack_flags=ack_flags)


def build_tm(
    service: int,
    subtype: int,
    apid: int,
    source_data: bytes = b"",
    *,
    timestamp: bytes = bytes(TIMESTAMP_LEN),
    seq_count: int = 0,
    message_counter: int = 0,
    destination_id: int = 0,
) -> bytes:
    """Any PUS-C TM as bytes (through ``spacepackets.PusTm``): for simulations, tests and benchmarks."""
    try:
        tm = PusTm(
            service=service,
            message_subtype=subtype,
            apid=apid,
            timestamp=timestamp,
            source_data=source_data,
            seq_count=seq_count,
            message_counter=message_counter,
            destination_id=destination_id,
        )
        return bytes(tm.pack())
    except ValueError as exc:
        raise PusError(f"cannot build TM[{service},{subtype}]: {exc}") from exc


# ------------------------------------------------------------------------------------------------------
# Telemetry reports
# ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """TM[1,x]: one verification report, how far a telecommand got (the bench's tracking of one telecommand
    through all its reports is :class:`bench.satellite.Verification`)."""

    stage: Stage
    success: bool
    request_id: int
    step_id: int | None = None
    failure_code: int | None = None
    failure_data: bytes = b""

    @property
    def tc_apid(self) -> int:
        return (self.request_id >> 16) & MAX_APID

    @property
    def tc_seq_count(self) -> int:
        return self.request_id & MAX_SEQ_COUNT


@dataclass(frozen=True, slots=True)
class HkReport:
    """TM[3,25]: a housekeeping structure, still raw (field decoding comes from the ICD)."""

    sid: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Event:
    """TM[5,1..4]: an on-board event."""

    severity: Severity
    event_id: int
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Pong:
    """TM[17,2]: the answer to a ping (PUS-C defines no data; any is kept)."""

    data: bytes = b""


Report = VerificationReport | HkReport | Event | Pong


def decode_report(tm: TmPacket, *, step_id_len: int = 1, failure_code_len: int = 1) -> Report | None:
    """The typed meaning of a TM of a known service/subtype, else ``None``.

    ``step_id_len`` and ``failure_code_len`` are the mission's field sizes in TM[1,x] (spacepackets'
    defaults: 1 byte each). Raises :class:`PusError` if a known report's data is too short.
    """
    service, subtype, data = tm.service, tm.subtype, tm.source_data
    if service == 3 and subtype == 25:
        if len(data) < 4:
            raise PusError(f"TM[3,25] HK report has {len(data)} data bytes, the SID alone needs 4")
        return HkReport(int.from_bytes(data[:4], "big"), data[4:])
    if service == 5 and 1 <= subtype <= 4:
        if len(data) < 2:
            raise PusError(f"TM[5,{subtype}] event has {len(data)} data bytes, the event ID alone needs 2")
        return Event(Severity(subtype), int.from_bytes(data[:2], "big"), data[2:])
    if service == 17 and subtype == 2:
        return Pong(data)
    if service == 1 and 1 <= subtype <= 8:
        return _decode_verification(subtype, data, step_id_len, failure_code_len)
    return None


def _decode_verification(subtype: int, data: bytes, step_id_len: int, failure_code_len: int) -> VerificationReport:
    success = subtype % 2 == 1
    stage = Stage((subtype + 1) // 2)
    needed = 4 + (step_id_len if stage == Stage.PROGRESS else 0) + (0 if success else failure_code_len)
    if len(data) < needed:
        raise PusError(f"TM[1,{subtype}] has {len(data)} data bytes, needs at least {needed}")
    req = int.from_bytes(data[:4], "big")
    offset = 4
    step_id = None
    if stage == Stage.PROGRESS:
        step_id = int.from_bytes(data[offset : offset + step_id_len], "big")
        offset += step_id_len
    if success:
        return VerificationReport(stage, True, req, step_id)
    code = int.from_bytes(data[offset : offset + failure_code_len], "big")
    return VerificationReport(stage, False, req, step_id, code, data[offset + failure_code_len :])


def decode_parameter_report(tm: TmPacket, sizes: Mapping[int, int]) -> tuple[tuple[int, bytes], ...]:
    """TM[20,2] parameter value report: N (u16), then N × (ID (u16), value). Values are variable-sized, so the
    caller supplies each parameter's size in bytes (from the ICD)."""
    if (tm.service, tm.subtype) != (20, 2):
        raise PusError(f"TM[{tm.service},{tm.subtype}] is not a parameter value report TM[20,2]")
    data = tm.source_data
    if len(data) < 2:
        raise PusError("TM[20,2] is too short for its parameter count")
    count = int.from_bytes(data[:2], "big")
    offset = 2
    out: list[tuple[int, bytes]] = []
    for _ in range(count):
        if offset + 2 > len(data):
            raise PusError(f"TM[20,2] ends after {len(out)} of {count} parameters")
        param_id = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        if param_id not in sizes:
            raise PusError(f"TM[20,2] parameter 0x{param_id:04X} has no known size")
        size = sizes[param_id]
        if offset + size > len(data):
            raise PusError(f"TM[20,2] parameter 0x{param_id:04X} needs {size} bytes, {len(data) - offset} left")
        out.append((param_id, data[offset : offset + size]))
        offset += size
    if offset != len(data):
        raise PusError(f"TM[20,2] has {len(data) - offset} bytes after its {count} parameters")
    return tuple(out)


def encode_parameter_values(values: Iterable[tuple[int, bytes]]) -> bytes:
    """N (u16) + (ID (u16), value bytes)…: the data of TM[20,2] and of TC[20,3]."""
    items = list(values)
    parts = [_u16("parameter count", len(items))]
    for param_id, value in items:
        parts += [_u16("parameter ID", param_id), bytes(value)]
    return b"".join(parts)
