"""ADCS procedure: modes, detumble, magnetometer plausibility, reaction wheel spin-up and argument checking.

With the satellite powered: every ADCS mode is commanded and confirmed by HK and a MODE_CHANGED event; in
DETUMBLE the B-dot loop, closed through the bench's dynamics stimulation, damps the separation tumble in time
(which only a magnetometer wired right achieves: its polarity and axes are checked here, not by the field's
magnitude); the magnetometer's field magnitude lies within the range expected on the bench (Earth field in the
lab, or the Helmholtz cage setting); a reaction wheel, powered by the EPS, reaches its commanded speed in time;
an out-of-range wheel speed sent despite the bench's own check is rejected by the ADCS with code 3.
Requirements: OTS-ADCS-010, -011, -012, -020, -030, -031, -040.
"""

import math
import time

import pytest

from bench.predicates import equals, within

pytestmark = pytest.mark.subsystem("ADCS")

WHEEL_TARGET_RPM = 2000


@pytest.fixture
def powered(satellite_on):
    satellite_on.enable_hk("ADCS")
    return satellite_on


@pytest.mark.requirement("OTS-ADCS-010", "OTS-ADCS-011")
def test_mode_changes(powered, measure):
    """DETUMBLE, SUN_POINTING, NADIR, then IDLE: each completes, HK reports it, an event announces it."""
    modes = powered.icd.enum("ADCS.SET_MODE", "mode")
    for mode in ("DETUMBLE", "SUN_POINTING", "NADIR", "IDLE"):
        mark = powered.event_mark()
        result = powered.send("ADCS.SET_MODE", mode=mode)
        assert result.ok, str(result)
        powered.await_tm("ADCS.MODE", equals(modes[mode]), timeout_s=3)
        event = powered.await_event("ADCS.MODE_CHANGED", since=mark)
        assert event.data["new"] == modes[mode]
        measure("ADCS.MODE_CHANGE_TIME", result.duration_s)


def _body_rate(sat):
    """|ω| in deg/s from the next ADCS_HK report (X, Y and Z of one sample)."""
    sat.await_tm("ADCS.GYRO_Z", timeout_s=3)
    return math.sqrt(sum(sat.latest(f"ADCS.GYRO_{axis}").value ** 2 for axis in "XYZ"))


@pytest.mark.requirement("OTS-ADCS-012")
def test_detumble_damps_the_body_rates(powered, measure):
    """DETUMBLE from the separation tumble: HK by HK until |ω| is below its limit (or the time limit has passed),
    then |ω| three reports later: the rates stay damped."""
    assert _body_rate(powered) > 1.0, "no tumble to damp: the dynamics stimulation is not running"
    threshold = measure.limits["ADCS.BODY_RATE_DETUMBLED"].high
    limit = measure.limits["ADCS.DETUMBLE_TIME"].high
    started = time.monotonic()
    result = powered.send("ADCS.SET_MODE", mode="DETUMBLE")
    assert result.ok, str(result)
    rate = _body_rate(powered)
    while rate >= threshold and time.monotonic() - started <= limit:
        rate = _body_rate(powered)
    measure("ADCS.DETUMBLE_TIME", time.monotonic() - started)
    for _ in range(3):
        rate = _body_rate(powered)
    measure("ADCS.BODY_RATE_DETUMBLED", rate)


@pytest.mark.requirement("OTS-ADCS-020")
def test_magnetometer_field_magnitude(powered, measure):
    """|B| from one fresh ADCS_HK report."""
    powered.await_tm("ADCS.MAG_Z", timeout_s=3)  # a report after HK was enabled: X, Y and Z of one sample
    b = [powered.latest(f"ADCS.MAG_{axis}").value for axis in "XYZ"]
    measure("ADCS.MAG_NORM", math.sqrt(sum(v * v for v in b)))


@pytest.mark.requirement("OTS-ADCS-030")
def test_wheel_spin_up(powered, measure):
    """With the ADCS output on, wheel X commanded to 2000 rpm reaches it (±2 %) within its time limit."""
    result = powered.send("EPS.SET_OUTPUT", channel="ADCS", on=True)
    assert result.ok, str(result)
    started = time.monotonic()
    result = powered.send("ADCS.SET_WHEEL_SPEED", axis="X", rpm=WHEEL_TARGET_RPM)
    assert result.ok, str(result)
    tol = 0.02 * WHEEL_TARGET_RPM
    limit = measure.limits["ADCS.WHEEL_SPINUP_TIME"].high
    reached = within(WHEEL_TARGET_RPM - tol, WHEEL_TARGET_RPM + tol)
    sample = powered.await_tm("ADCS.WHEEL_X", reached, timeout_s=limit + 2)
    measure("ADCS.WHEEL_SPINUP_TIME", time.monotonic() - started)
    measure("ADCS.WHEEL_SPEED_ERROR", sample.value - WHEEL_TARGET_RPM)
    powered.send("ADCS.SET_WHEEL_SPEED", axis="X", rpm=0)


@pytest.mark.requirement("OTS-ADCS-031")
def test_out_of_range_wheel_speed_rejected(powered):
    """7000 rpm (limit 6000): the bench refuses to send it; sent anyway, the ADCS rejects it with code 3."""
    with pytest.raises(ValueError, match="above the maximum"):
        powered.send("ADCS.SET_WHEEL_SPEED", axis="Y", rpm=7000)
    result = powered.send("ADCS.SET_WHEEL_SPEED", axis="Y", rpm=7000, check=False)
    assert result.failed_stage == "acceptance", str(result)
    assert result.failure_code == 3, f"expected code 3 (argument out of range), got {result}"


@pytest.mark.requirement("OTS-ADCS-040")
def test_wheel_command_fails_without_actuator_power(powered):
    """With the ADCS output off, a wheel command is accepted but fails (code 7) and raises WHEEL_FAULT."""
    mark = powered.event_mark()
    result = powered.send("ADCS.SET_WHEEL_SPEED", axis="Z", rpm=1000)
    assert result.accepted and result.failure_code == 7, str(result)
    assert powered.await_event("ADCS.WHEEL_FAULT", since=mark).data["axis"] == 2
