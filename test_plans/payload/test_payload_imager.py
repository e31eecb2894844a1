"""Payload procedure: the imager captures only when powered, and says so.

A capture with the imager off must fail (execution failed, code 7) with a CAPTURE_FAILED event giving the
reason; after POWER on, a capture completes, a CAPTURE_DONE event reports it, and the capture counter and
the supply current show the imager working.
Requirements: OTS-PL-010, -011, -012.
"""

import time

import pytest

from bench.predicates import equals, greater

pytestmark = pytest.mark.subsystem("PAYLOAD")

EXPOSURE_MS = 100


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
