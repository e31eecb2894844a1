"""AX.25 UI frames and the CRC-16/X.25 FCS against the standard's definitions."""

from __future__ import annotations

import random

import pytest

from bench.dsp.ax25 import (
    CHECK_VALUE,
    Address,
    Ax25Error,
    build_ui_frame,
    crc16_x25,
    fcs_ok,
    parse_frame,
)


def bitwise_crc16_x25(data: bytes) -> int:
    """The definition, one bit at a time: reflected 0x1021 = 0x8408, preset 0xFFFF, inverted result."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def test_check_value() -> None:
    assert crc16_x25(b"123456789") == CHECK_VALUE == 0x906E


def test_table_matches_bitwise_definition() -> None:
    rnd = random.Random(7)
    for n in (0, 1, 2, 17, 255):
        data = bytes(rnd.randrange(256) for _ in range(n))
        assert crc16_x25(data) == bitwise_crc16_x25(data)


# Hand-derived from AX.25 v2.2 §3.12/§6.1.2: "CQ" SSID 0 (command: C bit set) ← "OTSSAT" SSID 1, UI, PID F0, "HI".
KNOWN_BODY = bytes(
    [
        *[0x86, 0xA2, 0x40, 0x40, 0x40, 0x40, 0xE0],  # 'C'<<1, 'Q'<<1, 4 × ' '<<1, 0b1110_0000 (C=1, RR=11, SSID 0)
        *[0x9E, 0xA8, 0xA6, 0xA6, 0x82, 0xA8, 0x63],  # "OTSSAT" <<1, 0b0110_0011 (C=0, RR=11, SSID 1, E=1)
        *[0x03, 0xF0, 0x48, 0x49],  # control UI, PID no layer 3, "HI"
    ]
)


def test_known_frame_bytes() -> None:
    frame = build_ui_frame("CQ", "OTSSAT", b"HI", source_ssid=1)
    fcs = bitwise_crc16_x25(KNOWN_BODY)
    assert frame == KNOWN_BODY + bytes([fcs & 0xFF, fcs >> 8])  # FCS low byte first
    assert frame[-2:] == bytes.fromhex("0a45")  # pinned (from the bitwise definition above)
    assert fcs_ok(frame)


def test_round_trip_and_fields() -> None:
    frame = build_ui_frame("CQ", "OTSSAT", b"OTS-SAT beacon \x00\xff", source_ssid=1, dest_ssid=15)
    parsed = parse_frame(frame)
    assert parsed.dest == Address("CQ", 15, True)
    assert parsed.source == Address("OTSSAT", 1, False)
    assert parsed.command is True
    assert parsed.is_ui and parsed.control == 0x03 and parsed.pid == 0xF0
    assert parsed.info == b"OTS-SAT beacon \x00\xff"
    assert parsed.encode() == frame
    assert str(parsed.source) == "OTSSAT-1"


def test_v1_style_and_repeaters() -> None:
    frame = build_ui_frame("CQ", "OTSSAT", b"x", command=None, repeaters=(("RELAY", 2),))
    assert frame[6] == 0x60 and frame[13] == 0x60 and frame[20] == 0x65  # extension bit only on the last
    parsed = parse_frame(frame)
    assert parsed.command is None
    assert parsed.repeaters == (Address("RELAY", 2),)


def test_errors_are_ax25error() -> None:
    frame = bytearray(build_ui_frame("CQ", "OTSSAT", b"HI"))
    frame[16] ^= 0x01
    with pytest.raises(Ax25Error, match="FCS"):
        parse_frame(bytes(frame))
    with pytest.raises(Ax25Error, match="callsign"):
        build_ui_frame("cq", "OTSSAT", b"")
    with pytest.raises(Ax25Error, match="SSID"):
        build_ui_frame("CQ", "OTSSAT", b"", source_ssid=16)
    with pytest.raises(Ax25Error, match="shorter"):
        parse_frame(b"\x00" * 10)
    assert issubclass(Ax25Error, ValueError)
