"""EPS side-channel procedure: the EPS over I2C, beneath the flight software, cross-checked against CSP/PUS.

The EPS answers a ping on its I2C interface; the battery voltage, bus current, battery temperature and output
states it reports
over I2C agree with its housekeeping over CAN; a ground-watchdog kick over I2C restores the full watchdog
period. Requirements: OTS-EPS-120, OTS-EPS-121.
"""

import pytest

pytestmark = pytest.mark.subsystem("EPS")

OUTPUTS = ("OBC", "ADCS", "COMMS", "PAYLOAD", "HEATER")  # P31u output n = ICD EPS.SET_OUTPUT channel n


@pytest.mark.requirement("OTS-EPS-120")
def test_i2c_housekeeping_agrees_with_can(dut_power, eps_i2c, satellite, measure):
    """Ping over I2C, then read housekeeping over I2C and over CAN and compare them."""
    dut_power.on()
    satellite.await_nodes_alive(nodes=["EPS"])
    eps_i2c.ping()
    over_i2c = eps_i2c.get_housekeeping()
    over_can = satellite.request_hk("EPS")
    measure("EPS.I2C_VBAT_VS_CAN", over_i2c.vbatt_mv / 1000 - float(over_can["EPS.VBAT"]))
    measure("EPS.I2C_IBUS_VS_CAN", over_i2c.cursys_ma / 1000 - float(over_can["EPS.IBUS"]))
    measure("EPS.I2C_TBAT_VS_CAN", over_i2c.temps_c[0] - float(over_can["EPS.TBAT"]))  # I2C: whole degrees
    states = {name: (over_i2c.outputs[n], bool(over_can[f"EPS.OUT_{name}"])) for n, name in enumerate(OUTPUTS)}
    differ = {name: pair for name, pair in states.items() if pair[0] != pair[1]}
    assert not differ, f"output states differ between I2C and CAN (i2c, can): {differ}"


@pytest.mark.requirement("OTS-EPS-121")
def test_ground_watchdog_kick_over_i2c(dut_power, eps_i2c, measure):
    """Kick the ground watchdog over I2C: its time left returns to the full period."""
    dut_power.on()
    before = eps_i2c.get_housekeeping().wdt_gnd_time_left_s
    eps_i2c.reset_wdt()
    after = eps_i2c.get_housekeeping().wdt_gnd_time_left_s
    measure("EPS.I2C_WDT_GND_AFTER_KICK", after)
    assert after >= before, f"the kick did not restore the watchdog: {before} s before, {after} s after"
