"""Payload procedure: the imager captures only when powered, says so, and delivers its images intact.

A capture with the imager off must fail (execution failed, code 7) with a CAPTURE_FAILED event giving the
reason; after POWER on, a capture completes, a CAPTURE_DONE event reports it, and the capture counter and
the supply current show the imager working. A small image, read back whole over the payload's IMAGE service,
has the length and CRC-32 the imager reported for it in housekeeping.
Requirements: OTS-PL-010, -011, -012, -020.
"""

import time
import zlib

import pytest

from bench.predicates import equals, greater

pytestmark = pytest.mark.subsystem("PAYLOAD")

EXPOSURE_MS = 100
IMAGE_SIZE_KB = 8  # small enough to read whole over CAN in about a second (the flight default is 2 MiB)


@pytest.fixture
def powered(satellite_on):
    satellite_on.enable_hk("PAYLOAD")
    return satellite_on


@pytest.mark.requirement("OTS-PL-010")
def test_capture_with_imager_off_fails(powered):
    """CAPTURE while the imager is off: completion failure code 7, CAPTURE_FAILED reason 1 (imager off)."""
    assert powered.request_hk("PAYLOAD")["PAYLOAD.IMAGER_POWER"] is False
    mark = powered.event_mark()
    result = powered.send("PAYLOAD.CAPTURE", exposure_ms=EXPOSURE_MS)
    assert not result.ok and result.failure_code == 7, str(result)
    event = powered.await_event("PAYLOAD.CAPTURE_FAILED", since=mark)
    assert event.data["reason"] == 1


@pytest.mark.requirement("OTS-PL-011", "OTS-PL-012")
def test_power_on_and_capture(powered, dut_power, measure):
    """POWER on, then CAPTURE: completion after the exposure, CAPTURE_DONE, CAPTURES + 1, imager current drawn."""
    idle = dut_power.await_stable_current()
    result = powered.send("PAYLOAD.POWER", on=True)
    assert result.ok, str(result)
    powered.await_tm("PAYLOAD.IMAGER_POWER", equals(True), timeout_s=3)
    measure("PL.IMAGER_CURRENT", dut_power.await_stable_current() - idle, instrument="psu")

    before = powered.request_hk("PAYLOAD")["PAYLOAD.CAPTURES"]
    mark = powered.event_mark()
    started = time.monotonic()
    result = powered.send("PAYLOAD.CAPTURE", exposure_ms=EXPOSURE_MS)
    assert result.ok, str(result)
    event = powered.await_event("PAYLOAD.CAPTURE_DONE", since=mark)
    measure("PL.CAPTURE_TIME", time.monotonic() - started)
    assert event.data["exposure_ms"] == EXPOSURE_MS
    assert event.data["capture"] == before + 1
    powered.await_tm("PAYLOAD.CAPTURES", greater(before), timeout_s=3, fresh=False)


@pytest.mark.requirement("OTS-PL-020")
def test_image_downlink_is_byte_exact(powered, measure):
    """An 8 KiB image captured, then read back whole: its length and CRC-32 as the imager reported them in HK."""
    assert powered.set_parameter("PAYLOAD.IMAGE_SIZE_KB", IMAGE_SIZE_KB).ok
    assert powered.send("PAYLOAD.POWER", on=True).ok
    mark = powered.event_mark()
    result = powered.send("PAYLOAD.CAPTURE", exposure_ms=EXPOSURE_MS)
    assert result.ok, str(result)
    capture = powered.await_event("PAYLOAD.CAPTURE_DONE", since=mark).data["capture"]
    hk = powered.request_hk("PAYLOAD")  # a report taken after the capture: the image it describes is this one
    size, crc = hk["PAYLOAD.LAST_IMAGE_SIZE"], hk["PAYLOAD.LAST_IMAGE_CRC"]
    measure("PL.IMAGE_SIZE", size)
    image = powered.read_image(capture, size, timeout_s=5)  # per chunk: a bound on a loaded bench PC, not a pace
    measure("PL.IMAGE_CRC_MISMATCH", 0 if zlib.crc32(image) == crc else 1)
