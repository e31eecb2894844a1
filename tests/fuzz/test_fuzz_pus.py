"""Fuzz: PUS-C TM/TC decoding and the typed reports raise only :class:`PusError` on any bytes.

``bench.link.pus`` documents one error for malformed packets, ``PusError`` (a ``ValueError``): bad CRC, wrong
length, version or type, short data. Inputs are garbage and real TMs/TCs with bus faults applied (so the CRC gate
is sometimes passed with a damaged header, and often passed intact). Where the fast decoder accepts a TM, the
``spacepackets`` reference decoder must accept it too and read the same fields: the fast path may be stricter,
never looser or different.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime

from fuzz_strategies import bytes_or_mutation, fuzz
from hypothesis import given
from hypothesis import strategies as st

from bench.link.pus import (
    TIMESTAMP_LEN,
    PusError,
    TmPacket,
    build_tc,
    build_tm,
    cds_short_to_datetime,
    decode_parameter_report,
    decode_report,
    decode_tc,
    decode_tm,
    decode_tm_reference,
    encode_parameter_values,
)

u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
apids = st.integers(0, 0x7FF)

valid_tms = st.builds(
    build_tm,
    u8,
    u8,
    apids,
    st.binary(max_size=64),
    timestamp=st.binary(min_size=TIMESTAMP_LEN, max_size=TIMESTAMP_LEN),
    seq_count=st.integers(0, 0x3FFF),
    message_counter=u16,
    destination_id=u16,
)
valid_tcs = st.builds(
    build_tc,
    u8,
    u8,
    apids,
    st.binary(max_size=64),
    seq_count=st.integers(0, 0x3FFF),
    source_id=u16,
    ack_flags=st.integers(0, 15),
)


@fuzz(300)
@given(raw=bytes_or_mutation(valid_tms), timestamp_len=st.sampled_from((TIMESTAMP_LEN, TIMESTAMP_LEN, 0, 1, 10)))
def test_tm_decoding_raises_only_pus_error_and_agrees_with_spacepackets(raw: bytes, timestamp_len: int) -> None:
    try:
        tm = decode_tm(raw, timestamp_len)
    except PusError:
        return
    assert len(tm.timestamp) == timestamp_len
    assert decode_tm_reference(raw, timestamp_len) == tm


# Known reports, the subtypes around them, and others.
REPORT_KINDS = [(1, s) for s in (0, 1, 2, 5, 6, 8, 9)] + [
    (3, 25),
    (5, 0),
    (5, 1),
    (5, 4),
    (5, 5),
    (17, 2),
    (20, 2),
    (0, 0),
]


@fuzz(100)
@given(
    tm=st.builds(TmPacket, apids, st.integers(0, 0x3FFF), u8, u8, u16, u16, st.binary(max_size=7), st.binary()),
    service_subtype=st.sampled_from(REPORT_KINDS),
    step_id_len=st.integers(0, 4),
    failure_code_len=st.integers(0, 4),
)
def test_report_decoding_raises_only_pus_error(
    tm: TmPacket, service_subtype: tuple[int, int], step_id_len: int, failure_code_len: int
) -> None:
    service, subtype = service_subtype
    tm = dataclasses.replace(tm, service=service, subtype=subtype, source_data=tm.source_data[:24])
    with contextlib.suppress(PusError):
        decode_report(tm, step_id_len=step_id_len, failure_code_len=failure_code_len)
    try:
        when = tm.time()
    except PusError:
        return
    assert when.tzinfo is datetime.UTC


@fuzz(100)
@given(raw=bytes_or_mutation(valid_tcs))
def test_tc_decoding_raises_only_pus_error(raw: bytes) -> None:
    try:
        tc = decode_tc(raw)
    except PusError:
        return
    assert tc.request_id == int.from_bytes(raw[:4], "big")
    assert raw[-2 - len(tc.app_data) : len(raw) - 2] == tc.app_data


@fuzz(300)
@given(raw=st.binary(max_size=9))
def test_cds_short_time_stamps(raw: bytes) -> None:
    try:
        when = cds_short_to_datetime(raw)
    except PusError:
        return
    assert len(raw) == TIMESTAMP_LEN and raw[0] == 0x40
    assert datetime.datetime(1958, 1, 1, tzinfo=datetime.UTC) <= when


@fuzz(100)
@given(
    data=bytes_or_mutation(
        st.lists(st.tuples(st.integers(0, 5), st.binary(max_size=4)), max_size=5).map(encode_parameter_values)
    ),
    sizes=st.dictionaries(st.integers(0, 5), st.integers(0, 4), max_size=6),
)
def test_parameter_reports_raise_only_pus_error(data: bytes, sizes: dict[int, int]) -> None:
    tm = TmPacket(0x41, 0, 20, 2, 0, 0, bytes(7), data)
    try:
        values = decode_parameter_report(tm, sizes)
    except PusError:
        return
    assert encode_parameter_values(values) == data  # accepted means every byte was accounted for
