"""The payload's image downlink service on its ICD port: chunks as stored, refusals with a status, and the
seeded defect that flips a bit after the imager took its CRC (the twin side of OTS-PL-020)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import pytest
from twin_sat_harness import ICD, Egse
from twin_support import TwinUnderTest

from bench.icd import load_icd
from bench.link.pus import encode_parameter_values

BENCH_ICD = load_icd()
DEFAULT_SIZE_KB = int(BENCH_ICD.parameter("PAYLOAD.IMAGE_SIZE_KB")[1].default)
IMAGE_PORT = ICD.nodes["PAYLOAD"].port("IMAGE")


@pytest.fixture
def imager(egse: Egse) -> Iterator[Egse]:
    """The imager powered for the test and off again after it, the image size back at its default (the twin is
    shared by the session: the next test finds the payload as the ICD leaves it)."""
    egse.verification("PAYLOAD", egse.function("PAYLOAD", "POWER", True), 7)
    try:
        yield egse
    finally:
        _set_image_size(egse, DEFAULT_SIZE_KB)
        egse.verification("PAYLOAD", egse.function("PAYLOAD", "POWER", False), 7)


def _set_image_size(egse: Egse, size_kb: int) -> None:
    _, pid, raw = BENCH_ICD.encode_parameter("PAYLOAD.IMAGE_SIZE_KB", size_kb)
    egse.verification("PAYLOAD", egse.tc("PAYLOAD", 20, 3, encode_parameter_values([(pid, raw)])), 7)


def _capture(egse: Egse, size_kb: int) -> tuple[int, int, int]:
    """An image of ``size_kb`` KiB: its capture number, size and CRC as the payload's HK reports them."""
    _set_image_size(egse, size_kb)
    egse.verification("PAYLOAD", egse.function("PAYLOAD", "CAPTURE", 10), 7)  # completion: the image is stored
    hk = egse.hk("PAYLOAD")
    return int(hk["CAPTURES"]), int(hk["LAST_IMAGE_SIZE"]), int(hk["LAST_IMAGE_CRC"])


def _read(egse: Egse, capture: int, size: int) -> bytes:
    out = b""
    while len(out) < size:
        reply = egse.request("PAYLOAD", IMAGE_PORT, struct.pack(">IIH", capture, len(out), min(192, size - len(out))))
        got_capture, offset, status = struct.unpack(">IIB", reply[:9])
        assert (got_capture, offset, status) == (capture, len(out), 0)
        out += reply[9:]
    return out


def test_an_image_reads_back_as_the_imager_stored_it(imager: Egse) -> None:
    capture, size, crc = _capture(imager, 1)
    assert size == 1024
    assert zlib.crc32(_read(imager, capture, size)) == crc


def test_unknown_images_and_bad_ranges_are_refused_with_a_status(imager: Egse) -> None:
    egse = imager
    capture, size, _ = _capture(egse, 1)
    assert egse.request("PAYLOAD", IMAGE_PORT, struct.pack(">IIH", 999_999, 0, 16))[8] == 1
    assert egse.request("PAYLOAD", IMAGE_PORT, struct.pack(">IIH", capture, size + 1, 16))[8] == 2
    assert egse.request("PAYLOAD", IMAGE_PORT, struct.pack(">IIH", capture, 0, 193))[8] == 2


def test_the_crc_defect_stores_a_flipped_bit(imager: Egse, sat_twin: TwinUnderTest) -> None:
    egse = imager
    sat_twin.control({"cmd": "defect", "name": "PAYLOAD_IMAGE_CRC_BAD", "on": True})
    try:
        capture, size, crc = _capture(egse, 1)
        image = _read(egse, capture, size)
    finally:
        sat_twin.control({"cmd": "defect", "name": "PAYLOAD_IMAGE_CRC_BAD", "on": False})
    assert len(image) == size and zlib.crc32(image) != crc
