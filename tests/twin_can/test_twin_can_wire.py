"""The CAN wire formats and bit lengths, without sockets."""

from __future__ import annotations

import pytest

from twin.canbus_wire import (
    BITS,
    CanErrorClass,
    CanFrame,
    frame_bits,
    max_frame_rate,
    parse_slcan_frame,
    parse_socketcand_send,
    sec_usec,
    slcan_frame,
    socketcand_frame,
)


def test_bit_lengths_match_the_textbook_figures() -> None:
    assert frame_bits(True, 8) == (131, 160)  # extended, 8 bytes
    assert frame_bits(False, 8) == (111, 135)  # standard, 8 bytes
    assert frame_bits(False, 0) == (47, 55)
    assert frame_bits(True, 0) == (67, 80)
    assert BITS[(True, 8)] == (131, 160)


def test_saturated_bus_ceiling() -> None:
    nominal, worst = max_frame_rate(1_000_000)
    assert nominal == pytest.approx(7633.6, abs=0.1)
    assert worst == pytest.approx(6250.0)


def test_timestamp_keeps_six_digits_and_never_rounds_up() -> None:
    assert sec_usec(12.5) == b"12.500000"
    assert sec_usec(12.9999999) == b"12.999999"
    assert sec_usec(1_795_632_781.000001) == b"1795632781.000001"


def test_socketcand_rx_lines() -> None:
    ext = CanFrame(0x0C8A0001, bytes([0, 1, 0xAB]), timestamp=1.25)
    assert socketcand_frame(ext) == b"< frame 0C8A0001 1.250000 0001AB >"
    std0 = CanFrame(0x12, b"", is_extended_id=False, timestamp=2.0)
    assert socketcand_frame(std0) == b"< frame 012 2.000000  >"  # as socketcand: two spaces around no data
    err = CanFrame(CanErrorClass.BUSOFF, b"", is_error_frame=True, timestamp=3.0)
    assert socketcand_frame(err) == b"< error 040 3.000000 >"
    assert socketcand_frame(CanFrame(0x123, is_extended_id=False, is_remote_frame=True, dlc=2)) is None


def test_socketcand_send_parsing_as_python_can_writes_it() -> None:
    tokens = b"send 0C8A0001 8 0 1 2 3 4 5 6 ff".split()
    assert parse_socketcand_send(tokens) == (0x0C8A0001, True, bytes([0, 1, 2, 3, 4, 5, 6, 255]))
    assert parse_socketcand_send(b"send 7FF 0".split()) == (0x7FF, False, b"")
    assert parse_socketcand_send(b"send 00000001 2 0A b".split()) == (1, True, b"\x0a\x0b")


@pytest.mark.parametrize(
    "line",
    [
        b"send",
        b"send 123",
        b"send XYZ 1 0",
        b"send 800 0",  # 11-bit id too large
        b"send 20000000 0",  # 29-bit id too large
        b"send 123 9 0 0 0 0 0 0 0 0 0",  # DLC > 8
        b"send 123 2 1",  # fewer bytes than DLC
        b"send 123 1 1 2",  # more bytes than DLC
        b"send 123 1 100",  # byte with 3 digits
        b"send 123 1 0x1",
        b"send 123 1 g",
        b"send 123 A 0 0 0 0 0 0 0 0 0 0",
        b"send 123456789 0",
    ],
)
def test_socketcand_send_rejects(line: bytes) -> None:
    with pytest.raises(ValueError):
        parse_socketcand_send(line.split())


def test_slcan_rx_lines() -> None:
    assert slcan_frame(CanFrame(0x0C8A0001, bytes([0xDE, 0xAD]))) == b"T0C8A00012DEAD\r"
    assert slcan_frame(CanFrame(0x7FF, b"", is_extended_id=False)) == b"t7FF0\r"
    assert slcan_frame(CanFrame(0x123, is_extended_id=False, is_remote_frame=True, dlc=4)) == b"r1234\r"
    assert slcan_frame(CanFrame(0x1FFFFFFF, is_remote_frame=True, dlc=8)) == b"R1FFFFFFF8\r"
    assert slcan_frame(CanFrame(CanErrorClass.PROT, is_error_frame=True)) is None


def test_slcan_tx_parsing() -> None:
    assert parse_slcan_frame(b"t1232ABcd") == CanFrame(0x123, b"\xab\xcd", is_extended_id=False)
    assert parse_slcan_frame(b"T1FFFFFFF0") == CanFrame(0x1FFFFFFF, b"")
    assert parse_slcan_frame(b"r0013") == CanFrame(1, is_extended_id=False, is_remote_frame=True, dlc=3)
    assert parse_slcan_frame(b"R000000018") == CanFrame(1, is_remote_frame=True, dlc=8)


@pytest.mark.parametrize(
    "line",
    [b"t12", b"t1231", b"t1231AAA", b"t1239" + b"00" * 9, b"T200000000", b"T1234", b"r1231AA", b"t 1231A", b"d1230"],
)
def test_slcan_tx_rejects(line: bytes) -> None:
    with pytest.raises(ValueError):
        parse_slcan_frame(line)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"arbitration_id": 0x800, "is_extended_id": False},
        {"arbitration_id": 0x20000000},
        {"arbitration_id": 1, "data": bytes(9)},
        {"arbitration_id": 1, "data": b"\x01", "is_remote_frame": True},
        {"arbitration_id": 1, "data": b"\x01", "dlc": 2},
    ],
)
def test_frame_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CanFrame(**kwargs)  # type: ignore[arg-type]
