"""PUS-C helpers over spacepackets 0.32 (reference/protocols.md §2). Deprecated spellings are errors here."""

from __future__ import annotations

import datetime
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spacepackets.ecss import PusTc, PusTm
from spacepackets.ecss.fields import PacketFieldEnum
from spacepackets.ecss.pus_1_verification import (
    FailureNotice,
    create_acceptance_failure_tm,
    create_acceptance_success_tm,
    create_completion_failure_tm,
    create_completion_success_tm,
    create_start_success_tm,
    create_step_failure_tm,
    create_step_success_tm,
)
from spacepackets.ecss.pus_17_test import Service17Tm

from bench.link.pus import (
    CCSDS_EPOCH,
    TIMESTAMP_LEN,
    Event,
    HkReport,
    Pong,
    PusError,
    Severity,
    Stage,
    TmPacket,
    VerificationReport,
    build_tc,
    build_tm,
    cds_short,
    cds_short_to_datetime,
    crc16_ccitt_false,
    decode_parameter_report,
    decode_report,
    decode_tc,
    decode_tm,
    decode_tm_reference,
    encode_parameter_values,
    request_id,
    tc_function,
    tc_hk_one_shot,
    tc_ping,
    tc_report_parameters,
    tc_set_parameters,
    tc_set_time,
    tc_time_report_rate,
)

pytestmark = pytest.mark.filterwarnings("error::DeprecationWarning")

APID = 0x65
TS = cds_short(datetime.datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=datetime.UTC))


def test_known_tc_vector() -> None:
    assert tc_ping(apid=1, seq_count=22) == bytes.fromhex("18 01 c0 16 00 06 2f 11 01 00 00 ab 62")
    assert bytes(PusTc(service=17, message_subtype=1, seq_count=22, apid=1).pack()) == tc_ping(1, seq_count=22)


def test_crc16_ccitt_false_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_tc_builders_decode_back() -> None:
    cases = [
        (tc_ping(APID), 17, 1, b""),
        (tc_hk_one_shot(APID, sid=0x01020304), 3, 27, bytes.fromhex("01020304")),
        (tc_function(APID, 0x10, b"\x01\x02"), 8, 1, bytes.fromhex("00000010 0102")),
        (tc_time_report_rate(APID, 3), 9, 1, b"\x03"),
        (tc_report_parameters(APID, [0x42, 0x43]), 20, 1, bytes.fromhex("0002 0042 0043")),
        (tc_set_parameters(APID, [(0x42, struct.pack("!f", 3.3))]), 20, 3, struct.pack("!HHf", 1, 0x42, 3.3)),
    ]
    for raw, service, subtype, data in cases:
        tc = decode_tc(raw)
        assert (tc.apid, tc.service, tc.subtype, tc.app_data) == (APID, service, subtype, data)
        assert tc.ack_flags == 0b1111
        assert tc.request_id == request_id(raw)


def test_set_time_tc_carries_cds_short() -> None:
    when = datetime.datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=datetime.UTC)
    tc = decode_tc(tc_set_time(APID, when, seq_count=5))
    assert (tc.service, tc.subtype, tc.seq_count) == (9, 128, 5)
    assert cds_short_to_datetime(tc.app_data) == when


def test_tc_options_and_errors() -> None:
    tc = decode_tc(tc_ping(APID, seq_count=0x3FFF, source_id=0xBEEF, ack_flags=0b1001))
    assert (tc.seq_count, tc.source_id, tc.ack_flags) == (0x3FFF, 0xBEEF, 0b1001)
    with pytest.raises(PusError, match="APID 2048 out of range"):
        tc_ping(0x800)
    with pytest.raises(PusError, match="sequence count 16384"):
        tc_ping(1, seq_count=0x4000)
    with pytest.raises(PusError, match="SID 4294967296 does not fit in u32"):
        tc_hk_one_shot(1, 1 << 32)
    with pytest.raises(PusError, match="ack flags"):
        build_tc(17, 1, 1, ack_flags=0x10)


def test_cds_short_against_spacepackets() -> None:
    from spacepackets.ccsds.time import CdsShortTimestamp

    when = datetime.datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=datetime.UTC)
    days = (when - CCSDS_EPOCH).days
    assert cds_short(when) == bytes(CdsShortTimestamp(days, 12 * 3_600_000 + 250).pack())
    assert TS[0] == 0x40 and len(TS) == TIMESTAMP_LEN
    with pytest.raises(PusError, match="aware"):
        cds_short(datetime.datetime(2026, 1, 1))  # naive on purpose
    with pytest.raises(PusError, match="P-field 0x41"):
        cds_short_to_datetime(b"\x41" + TS[1:])


# --- TM decoding ----------------------------------------------------------------------------------------


def test_decode_tm_fields() -> None:
    raw = build_tm(
        3, 25, APID, b"\x00\x00\x00\x07abc", timestamp=TS, seq_count=99, message_counter=5, destination_id=10
    )
    tm = decode_tm(raw)
    assert tm == TmPacket(APID, 99, 3, 25, 5, 10, TS, b"\x00\x00\x00\x07abc")
    assert tm.time() == datetime.datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=datetime.UTC)
    assert decode_report(tm) == HkReport(7, b"abc")


@given(
    service=st.integers(0, 255),
    subtype=st.integers(0, 255),
    apid=st.integers(0, 0x7FF),
    seq=st.integers(0, 0x3FFF),
    counter=st.integers(0, 0xFFFF),
    dest=st.integers(0, 0xFFFF),
    data=st.binary(max_size=200),
    ts=st.binary(min_size=7, max_size=7),
)
def test_fast_decoder_equals_spacepackets(
    service: int, subtype: int, apid: int, seq: int, counter: int, dest: int, data: bytes, ts: bytes
) -> None:
    raw = bytes(
        PusTm(
            service=service,
            message_subtype=subtype,
            apid=apid,
            seq_count=seq,
            message_counter=counter,
            destination_id=dest,
            source_data=data,
            timestamp=ts,
        ).pack()
    )
    assert decode_tm(raw) == decode_tm_reference(raw)


def test_malformed_tm_raises_pus_error_naming_the_fault() -> None:
    raw = build_tm(17, 2, APID, timestamp=TS)
    bad_crc = raw[:-1] + bytes([raw[-1] ^ 0xFF])
    with pytest.raises(PusError, match=r"CRC16 mismatch: received 0x[0-9A-F]{4}, computed 0x"):
        decode_tm(bad_crc)
    with pytest.raises(PusError, match="rejected by spacepackets"):
        decode_tm_reference(bad_crc)
    with pytest.raises(PusError, match=f"length field announces {len(raw)} bytes, packet has {len(raw) - 1}"):
        decode_tm(raw[:-1])
    with pytest.raises(PusError, match=f"length field announces {len(raw)} bytes, packet has {len(raw) + 1}"):
        decode_tm(raw + b"\x00")
    with pytest.raises(PusError, match=f"length field announces {len(raw)} bytes, packet has {len(raw) + 1}"):
        decode_tm_reference(raw + b"\x00")
    with pytest.raises(PusError, match="TM is 10 bytes, shorter than headers"):
        decode_tm(raw[:4] + (10 - 7).to_bytes(2, "big") + raw[6:10])  # consistent length, still too short
    with pytest.raises(PusError, match="length field announces 22 bytes, packet has 10"):
        decode_tm(raw[:10])
    with pytest.raises(PusError, match="not a PUS TM: packet type TC"):
        decode_tm(tc_function(APID, 1, bytes(20)))
    with pytest.raises(PusError, match="CCSDS version 1"):
        decode_tm(bytes([raw[0] | 0x20]) + raw[1:])


def test_wrong_pus_version_detected() -> None:
    raw = bytearray(build_tm(17, 2, APID, timestamp=TS))
    raw[6] = 0x10  # PUS-A version 1
    crc = crc16_ccitt_false(raw[:-2])
    raw[-2:] = crc.to_bytes(2, "big")
    with pytest.raises(PusError, match="PUS version 1, expected 2"):
        decode_tm(bytes(raw))


def test_malformed_tc_raises_pus_error() -> None:
    raw = tc_ping(APID)
    with pytest.raises(PusError, match=r"CRC16|rejected"):
        decode_tc(raw[:-1] + bytes([raw[-1] ^ 1]))
    with pytest.raises(PusError, match="announces 13 bytes, packet has 12"):
        decode_tc(raw[:-1])
    with pytest.raises(PusError, match="type bit says TM"):
        decode_tc(build_tm(17, 2, APID, timestamp=TS))


# --- reports --------------------------------------------------------------------------------------------


def test_verification_reports_from_spacepackets() -> None:
    tc = PusTc(service=8, message_subtype=1, apid=APID, seq_count=42, app_data=bytes(4))
    req = request_id(bytes(tc.pack()))
    notice = FailureNotice(code=PacketFieldEnum.with_byte_size(1, 5), data=b"\x01\x02")
    step = PacketFieldEnum.with_byte_size(1, 3)
    cases = [
        (create_acceptance_success_tm(APID, tc, TS), VerificationReport(Stage.ACCEPTANCE, True, req)),
        (
            create_acceptance_failure_tm(APID, tc, notice, TS),
            VerificationReport(Stage.ACCEPTANCE, False, req, None, 5, b"\x01\x02"),
        ),
        (create_start_success_tm(APID, tc, TS), VerificationReport(Stage.START, True, req)),
        (create_step_success_tm(APID, tc, step, TS), VerificationReport(Stage.PROGRESS, True, req, 3)),
        (
            create_step_failure_tm(APID, tc, step, notice, TS),
            VerificationReport(Stage.PROGRESS, False, req, 3, 5, b"\x01\x02"),
        ),
        (create_completion_success_tm(APID, tc, TS), VerificationReport(Stage.COMPLETION, True, req)),
        (
            create_completion_failure_tm(APID, tc, notice, TS),
            VerificationReport(Stage.COMPLETION, False, req, None, 5, b"\x01\x02"),
        ),
    ]
    for tm, expected in cases:
        report = decode_report(decode_tm(bytes(tm.pack())))
        assert report == expected
        assert isinstance(report, VerificationReport)
        assert (report.tc_apid, report.tc_seq_count) == (APID, 42)


def test_verification_wider_failure_code() -> None:
    data = struct.pack("!IHI", 0x1865C001, 0x0102, 0xDEADBEEF)
    tm = decode_tm(build_tm(1, 8, APID, data, timestamp=TS))
    report = decode_report(tm, failure_code_len=2)
    assert report == VerificationReport(Stage.COMPLETION, False, 0x1865C001, None, 0x0102, b"\xde\xad\xbe\xef")


def test_events_severity_from_subtype() -> None:
    for subtype, severity in zip((1, 2, 3, 4), Severity, strict=True):
        tm = decode_tm(build_tm(5, subtype, APID, struct.pack("!HI", 0x0102, 42), timestamp=TS))
        assert decode_report(tm) == Event(severity, 0x0102, struct.pack("!I", 42))
    assert Severity(4) is Severity.HIGH


def test_pong() -> None:
    raw = bytes(Service17Tm(apid=APID, message_subtype=2, timestamp=TS).pack())
    assert decode_report(decode_tm(raw)) == Pong()


def test_unknown_service_has_no_report() -> None:
    assert decode_report(decode_tm(build_tm(200, 1, APID, b"x", timestamp=TS))) is None
    assert decode_report(decode_tm(build_tm(5, 5, APID, b"x", timestamp=TS))) is None


def test_short_report_data_raises() -> None:
    with pytest.raises(PusError, match=r"TM\[3,25\] HK report has 3 data bytes, the SID alone needs 4"):
        decode_report(decode_tm(build_tm(3, 25, APID, b"abc", timestamp=TS)))
    with pytest.raises(PusError, match=r"TM\[5,2\] event has 1 data bytes"):
        decode_report(decode_tm(build_tm(5, 2, APID, b"a", timestamp=TS)))
    with pytest.raises(PusError, match=r"TM\[1,8\] has 4 data bytes, needs at least 5"):
        decode_report(decode_tm(build_tm(1, 8, APID, bytes(4), timestamp=TS)))


def test_parameter_report() -> None:
    data = encode_parameter_values([(0x42, struct.pack("!f", 3.5)), (0x43, b"\x01")])
    tm = decode_tm(build_tm(20, 2, APID, data, timestamp=TS))
    assert decode_parameter_report(tm, {0x42: 4, 0x43: 1}) == ((0x42, struct.pack("!f", 3.5)), (0x43, b"\x01"))
    with pytest.raises(PusError, match="parameter 0x0043 has no known size"):
        decode_parameter_report(tm, {0x42: 4})
    with pytest.raises(PusError, match="1 bytes after its 2 parameters"):
        decode_parameter_report(decode_tm(build_tm(20, 2, APID, data + b"\x00", timestamp=TS)), {0x42: 4, 0x43: 1})
    with pytest.raises(PusError, match="is not a parameter value report"):
        decode_parameter_report(decode_tm(build_tm(20, 1, APID, data, timestamp=TS)), {})
