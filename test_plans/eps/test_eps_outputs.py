"""EPS switched outputs procedure: each switchable output, commanded over the satellite link, draws its load.

For ADCS (reaction wheels), PAYLOAD (imager) and HEATER, one at a time: SET_OUTPUT on must complete, EPS_HK
must report the output on, the bench supply must see the load's current step, and the EPS's own main bus
current (EPS.IBUS) must agree with the supply's reading. SET_OUTPUT off must bring the current back. The
always-on outputs (OBC, COMMS) must refuse to be switched off.
Requirements: OTS-EPS-110, -111, -112, -113.
"""

import pytest

from bench.predicates import equals

pytestmark = pytest.mark.subsystem("EPS")


@pytest.fixture
def powered(satellite_on):
    """The satellite on at nominal bus voltage, every node answering, EPS housekeeping flowing."""
    satellite_on.enable_hk("EPS")
    return satellite_on


def _next_ibus(satellite):
    """The first EPS.IBUS sample after the supply reading just taken (HK comes once a second)."""
    return satellite.await_tm("EPS.IBUS", timeout_s=3).value


@pytest.mark.requirement("OTS-EPS-110", "OTS-EPS-111", "OTS-EPS-112")
@pytest.mark.parametrize("channel", ["ADCS", "PAYLOAD", "HEATER"])
def test_output_switches_its_load(channel, powered, dut_power, measure):
    """Switch one output on and off: completion, HK state, the PSU current step, IBUS against the PSU."""
    idle = dut_power.await_stable_current()
    ibus_idle = _next_ibus(powered)
    measure("EPS.IBUS_VS_PSU", ibus_idle - idle, instrument="psu")

    result = powered.send("EPS.SET_OUTPUT", channel=channel, on=True)
    assert result.ok, str(result)
    powered.await_tm(f"EPS.OUT_{channel}", equals(True), timeout_s=3)
    loaded = dut_power.await_stable_current()
    measure(f"EPS.STEP_{channel}", loaded - idle, instrument="psu")
    measure("EPS.IBUS_VS_PSU", _next_ibus(powered) - loaded, instrument="psu")

    result = powered.send("EPS.SET_OUTPUT", channel=channel, on=False)
    assert result.ok, str(result)
    powered.await_tm(f"EPS.OUT_{channel}", equals(False), timeout_s=3)
    measure("EPS.OUTPUT_OFF_RESIDUAL", dut_power.await_stable_current() - idle, instrument="psu")


@pytest.mark.requirement("OTS-EPS-113")
@pytest.mark.parametrize("channel", ["OBC", "COMMS"])
def test_always_on_outputs_refuse_off(channel, powered):
    """Switching OBC or COMMS off is refused with an execution failure; the output stays on."""
    result = powered.send("EPS.SET_OUTPUT", channel=channel, on=False)
    assert not result.ok and result.failure_code == 7, str(result)
    assert powered.request_hk("EPS")[f"EPS.OUT_{channel}"] is True
