"""EPS power-path procedure: the satellite's main bus as seen from the umbilical supply.

Powers OTS-SAT from the bench supply within its envelope and verifies inrush, boot settle time, idle
current, bus voltage, the undervoltage lockout at the low envelope edge, and that the bench's over-current
protection removes power. Requirements: OTS-EPS-010, -011, -020, -021, -030, -031, OTS-GSE-010, -011.
"""

import time

import pytest

pytestmark = pytest.mark.subsystem("EPS")


@pytest.mark.requirement("OTS-EPS-010", "OTS-EPS-011")
def test_power_on_inrush(dut_power, measure, evidence):
    """Power on at nominal bus voltage while the supply digitizes the current; peak inrush and settle time."""
    if not dut_power.supply.capabilities.digitizer:
        pytest.skip("the bench supply has no current digitizer; measure inrush with a current probe")
    result = dut_power.on(capture_inrush=True)
    evidence.trace("power-on current", result.inrush, title="Main bus current at power-on")
    measure("EPS.INRUSH_PEAK", result.inrush.peak, instrument="psu")
    measure("EPS.POWER_ON_SETTLE_TIME", result.settle_time_s)


@pytest.mark.requirement("OTS-EPS-020", "OTS-EPS-021")
def test_idle_current_and_bus_voltage(dut_power, measure):
    """With the satellite booted and idle at nominal bus voltage, its current and bus voltage."""
    dut_power.on()
    measure("EPS.IDLE_CURRENT", dut_power.await_stable_current(), instrument="psu")
    measure("EPS.BUS_VOLTAGE", dut_power.voltage(), instrument="psu")


@pytest.mark.requirement("OTS-EPS-030", "OTS-EPS-031")
def test_undervoltage_lockout_at_low_envelope_edge(dut_power, measure):
    """Lower the bus to the envelope minimum: the EPS must shed its loads; restore nominal: it must reboot."""
    dut_power.on()
    dut_power.set_bus_voltage(dut_power.envelope.bus_voltage.min)
    lockout = measure.limits["EPS.UVLO_CURRENT"]
    shed = dut_power.await_stable_current(tolerance_a=lockout.high / 2)
    measure("EPS.UVLO_CURRENT", shed, instrument="psu")

    dut_power.set_bus_voltage(dut_power.envelope.bus_voltage.nominal)
    recovery = measure.limits["EPS.UVLO_RECOVERY_CURRENT"]
    dut_power.await_current(lambda amps: amps >= recovery.low, what="the satellite to reboot and draw idle current")
    measure("EPS.UVLO_RECOVERY_CURRENT", dut_power.await_stable_current(), instrument="psu")


@pytest.mark.requirement("OTS-GSE-010", "OTS-GSE-011")
def test_overcurrent_protection_removes_power(dut_power, psu, measure):
    """Lower the current limit below the idle draw: the armed OCP must latch the output off in time."""
    idle = dut_power.on().settled_current
    ch = dut_power.channel
    started = time.monotonic()
    psu.set_current_limit(ch, idle / 2)
    dut_power.await_protection(lambda p: p.ocp_tripped, what="the OCP to trip")
    measure("GSE.OCP_TRIP_TIME", time.monotonic() - started)
    measure("GSE.OCP_RESIDUAL_CURRENT", dut_power.current(), instrument="psu")
    dut_power.off()
    psu.clear_protection(ch)
    assert not psu.protection(ch).any_tripped, "the OCP trip did not clear"
