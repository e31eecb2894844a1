"""COMMS antenna deployment procedure: all four UHF antenna elements deploy on the first attempt at minimum bus
voltage.

The satellite is powered at nominal bus voltage (its EPS leaves undervoltage lockout only above 3.30 V), then the
supply is lowered to the minimum operating bus voltage: the middle of the COMMS.ANT_DEPLOY_BUS_VOLTAGE window of
the limits file, above the EPS lockout and inside the DUT envelope (a battery at the end of its discharge). The
satellite must still be running there (EPS.VBUS in the window) and its four deployment switches must read open.
With the power monitor sampling the supply, DEPLOY_ANTENNA is sent once, and the plan waits for the attempt to end
(COMMS.ANT_DEPLOYED, or COMMS.ANT_DEPLOY_TIMEOUT when an element did not release within the firmware's burn
timeout). Judged: the bus voltage during the burn (the test condition), the switches closed, the attempts the
firmware made for the one telecommand (no retry), the longest element burn, the total time and the burn current
step over idle from the power trace. The whole test is watched against the bus current ceiling.

Requirement: OTS-COM-060, verified at QM only: the plan runs at QM and is skipped, with the reason, at the other
model levels (the VCRM shows it n/a there).
"""

import math
import statistics
import time

import pytest

from bench.predicates import within
from bench.waiting import await_value

pytestmark = pytest.mark.subsystem("COM")

ELEMENTS = 4
IDLE_S = 0.5  # idle samples before the command
EDGE_S = 0.3  # left out at both ends of the burn window: the step's edges and the link's latency
TAIL_S = 0.2  # samples after the attempt's end
LINK_MARGIN_S = 10.0  # beyond four full burn timeouts, for the end event to reach the bench on a loaded host
ENDS = ("COMMS.ANT_DEPLOYED", "COMMS.ANT_DEPLOY_TIMEOUT")


@pytest.mark.requirement("OTS-COM-060")
@pytest.mark.model_levels("QM")
@pytest.mark.power_limit("EPS.BUS_CURRENT_MAX")
def test_antenna_deploys_first_attempt_at_minimum_bus_voltage(
    satellite_on, dut_power, power_monitor, measure, evidence
):
    """At minimum bus voltage, one DEPLOY_ANTENNA: all four switches close, in time, on that one attempt."""
    sat = satellite_on
    window = measure.limits["COMMS.ANT_DEPLOY_BUS_VOLTAGE"]
    assert window.low is not None and window.high is not None, "COMMS.ANT_DEPLOY_BUS_VOLTAGE needs low and high"
    dut_power.set_bus_voltage((window.low + window.high) / 2)  # the envelope guard refuses it outside the envelope
    sat.enable_hk("EPS")
    sat.await_tm("EPS.VBUS", within(window.low, window.high), timeout_s=5)  # lowered, and still running

    before = sat.request_hk("COMMS")
    stowed = [k for k in range(1, ELEMENTS + 1) if not before[f"COMMS.ANT_SW_{k}"]]
    assert len(stowed) == ELEMENTS and before["COMMS.ANT_ATTEMPTS"] == 0, (
        f"the antenna is not stowed and untried before the test: switches open {stowed}, "
        f"attempts {before['COMMS.ANT_ATTEMPTS']}"
    )
    timeout_s = float(sat.get_parameters("COMMS.ANT_BURN_TIMEOUT_MS")["COMMS.ANT_BURN_TIMEOUT_MS"]) / 1000

    t_idle = time.time()
    power_monitor.await_sample_after(t_idle + IDLE_S, timeout_s=5)  # idle samples: awaited, not slept
    mark = sat.event_mark()
    t_cmd = time.time()
    result = sat.send("COMMS.DEPLOY_ANTENNA")  # the one attempt: never repeated by this plan
    assert result.ok, f"DEPLOY_ANTENNA: {result}"

    end = await_value(
        lambda: next((e for e in sat.events_since(mark) if e.mnemonic in ENDS), None),
        lambda event: event is not None,
        timeout_s=ELEMENTS * timeout_s + LINK_MARGIN_S,
        what="the end of the deployment attempt (COMMS.ANT_DEPLOYED or COMMS.ANT_DEPLOY_TIMEOUT)",
        interval_s=0.05,
    )
    trace = power_monitor.await_sample_after(end.time + TAIL_S, timeout_s=5)
    after = sat.request_hk("COMMS")
    assert after["COMMS.ANT_BURNING"] == 0, f"element {after['COMMS.ANT_BURNING']} still burns after {end}"

    events = [e for e in sat.events_since(mark) if e.mnemonic.startswith("COMMS.ANT_")]
    evidence.text("Deployment events", "\n".join(str(e) for e in events))
    burns = [float(e.data["burn_ms"]) / 1000 for e in events if e.mnemonic == "COMMS.ANT_ELEMENT_DEPLOYED"]
    if end.mnemonic == "COMMS.ANT_DEPLOY_TIMEOUT":
        burns.append(timeout_s)  # the element that did not release burnt for the whole timeout

    burn = trace.window(t_cmd + EDGE_S, end.time - EDGE_S)
    idle = finite(trace.window(t_idle, t_cmd).currents("dut_main"))
    burn_a, burn_v = finite(burn.currents("dut_main")), finite(burn.voltages("dut_main"))
    assert idle and burn_a and burn_v, f"power samples: {len(idle)} idle, {len(burn_a)} in the burn"
    measure("COMMS.ANT_DEPLOY_BUS_VOLTAGE", min(burn_v), instrument="psu")
    measure(
        "COMMS.ANT_ELEMENTS_DEPLOYED",
        sum(bool(after[f"COMMS.ANT_SW_{k}"]) for k in range(1, ELEMENTS + 1)),
        ended_with=end.mnemonic,
    )
    measure("COMMS.ANT_DEPLOY_ATTEMPTS", after["COMMS.ANT_ATTEMPTS"], telecommands_sent=1)
    measure("COMMS.ANT_ELEMENT_BURN_TIME_MAX", max(burns), burns_s=[round(b, 3) for b in burns])
    measure("COMMS.ANT_DEPLOY_TOTAL_TIME", end.time - t_cmd)
    idle_median = statistics.median(idle)
    measure(
        "COMMS.ANT_BURN_CURRENT",
        statistics.median(burn_a) - idle_median,
        instrument="psu",
        idle_a=round(idle_median, 4),
        samples=len(burn_a),
    )


def finite(values):
    """The readings that did not fail (a failed one is NaN in the power trace)."""
    return [v for v in values if math.isfinite(v)]
