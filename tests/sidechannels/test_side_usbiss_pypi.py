"""The unmodified PyPI `usb_iss` client (what a lab would use by hand) against the twin's USB-ISS pty."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from side_harness import I2CTwin
from usb_iss import UsbIss, UsbIssError, defs

HK_FORMAT = ">3HH3HHHH6H8B8H8H6HII2BII2II6hBBBH"  # eps_hk_t, restated here so the test does not trust the twin


@pytest.fixture
def iss(i2c_twin: I2CTwin) -> Iterator[UsbIss]:
    client = UsbIss()
    client.open(i2c_twin.pty_path)
    yield client
    client.close()


def test_module_id_firmware_and_serial(iss: UsbIss) -> None:
    assert iss.read_module_id() == 7
    assert iss.read_fw_version() == 7
    assert iss.read_serial_number() == "00001234"


def test_setup_i2c_then_eps_housekeeping(iss: UsbIss, i2c_twin: I2CTwin) -> None:
    iss.setup_i2c(clock_khz=100)
    assert iss.i2c.test(0x02) and iss.i2c.test(0x48) and not iss.i2c.test(0x23)

    # P31u transaction as the flight software does it: write [cmd, arg], then read [echo, status, payload].
    iss.i2c.write_ad0(0x02, [0x08, 0x00])
    reply = bytes(iss.i2c.read_ad0(0x02, 2 + struct.calcsize(HK_FORMAT)))
    assert reply[:2] == b"\x08\x00"
    fields = struct.unpack(HK_FORMAT, reply[2:])
    assert fields[3] == i2c_twin.state.eps.vbatt_mv == 7812
    assert fields[8] == i2c_twin.state.eps.cursys_ma == 431

    # The register form: AD1 write of "register" 0x01 (PING) with the value, AD1 read = command 0x08 then read.
    iss.i2c.write(0x02, 0x01, [0x5A])
    assert iss.i2c.read_ad0(0x02, 3) == [0x01, 0x00, 0x5A]
    # The client caps AD1 reads at 60 bytes (the real adapter's limit): the first 60 of the same reply.
    assert bytes(iss.i2c.read(0x02, 0x08, 60)) == reply[:60]


def test_temperature_register(iss: UsbIss, i2c_twin: I2CTwin) -> None:
    iss.setup_i2c()
    raw = bytes(iss.i2c.read(0x48, 0x00, 2))
    assert (struct.unpack(">h", raw)[0] >> 4) * 0.0625 == i2c_twin.state.board_temp_c


def test_absent_device_write_raises(iss: UsbIss) -> None:
    iss.setup_i2c()
    with pytest.raises(UsbIssError, match="NACK"):
        iss.i2c.write_ad0(0x23, [0x00])


def test_direct_sequence_with_repeated_start(iss: UsbIss, i2c_twin: I2CTwin) -> None:
    iss.setup_i2c()
    d = defs.I2CDirect
    # START, address 0x48 write + pointer 0, RESTART, address 0x48 read, 1 byte, NACK, last byte, STOP.
    sequence = [d.START, d.WRITE2, 0x90, 0x00, d.RESTART, d.WRITE1, 0x91, d.READ1, d.NACK, d.READ1, d.STOP]
    raw = bytes(iss.i2c.direct(sequence))
    assert (struct.unpack(">h", raw)[0] >> 4) * 0.0625 == i2c_twin.state.board_temp_c
    with pytest.raises(UsbIssError, match="DEVICE"):
        iss.i2c.direct([d.START, d.WRITE1, 0x46, d.STOP])  # 0x23 is absent
