"""COMMS transmit burst seen from the main bus: the current the UHF transmitter draws while its PA is keyed.

Procedure: with the satellite on and idle, the power monitor (fixtures/power.py) samples the bench supply in the
background. The PA keying time is lengthened to 1 s (parameter COMMS.TX_BURST_MS) so that one burst spans
some twenty samples; the beacon is enabled, which keys the transmitter at once (COMMS.BEACON_SENT marks it).
The idle current is the mean of the samples before the key; the burst window runs from the key to the end of
the keying time after the event. Judged: the peak bus current in the burst against the transmitter's share of
the power budget, and the step above idle (which also proves the burst was seen at all). The whole test is
watched against the bus current ceiling. Afterwards the beacon is disabled and the keying time restored.
Requirement: OTS-COM-040.
"""

import time

import pytest

pytestmark = pytest.mark.subsystem("COM")

BURST_MS = 1000  # PA keying time for this test (ICD range 10–2000 ms; default 250 ms)
IDLE_S = 0.5  # idle samples taken before keying
TAIL_S = 0.2  # air after the keying time, for the current to fall back


@pytest.mark.requirement("OTS-COM-040")
@pytest.mark.power_limit("EPS.BUS_CURRENT_MAX")
def test_bus_current_during_transmit_burst(satellite_on, power_monitor, measure):
    """Key one 1 s beacon burst; the bus current peak and step over idle must stay in the transmitter's budget."""
    sat = satellite_on
    default_ms = sat.get_parameters("COMMS.TX_BURST_MS")["COMMS.TX_BURST_MS"]
    assert sat.set_parameter("COMMS.TX_BURST_MS", BURST_MS).ok
    try:
        assert sat.send("COMMS.SET_BEACON", enabled=False).ok
        t_idle = time.time()
        power_monitor.await_sample_after(t_idle + IDLE_S, timeout_s=5)  # idle samples: awaited, not slept
        mark = sat.event_mark()
        t_key = time.time()
        assert sat.send("COMMS.SET_BEACON", enabled=True).ok  # enabling sends the first beacon at once
        keyed = sat.await_event("COMMS.BEACON_SENT", since=mark, timeout_s=5)
        t_end = max(keyed.time, t_key) + BURST_MS / 1000 + TAIL_S
        trace = power_monitor.await_sample_after(t_end, timeout_s=5)
    finally:
        sat.send("COMMS.SET_BEACON", enabled=False)
        sat.set_parameter("COMMS.TX_BURST_MS", default_ms)

    idle = trace.window(t_idle, t_key).currents("dut_main")
    assert idle, "no power sample before the key: the monitor is not sampling"
    idle_mean = sum(idle) / len(idle)
    burst = trace.window(t_key, t_end)
    peak, at = burst.peak_current("dut_main")
    measure(
        "COMMS.TX_BUS_CURRENT_PEAK",
        peak,
        units="A",
        instrument="psu",
        at_s=round(at - trace.t0, 3),
        samples=len(burst.samples),
    )
    measure("COMMS.TX_BUS_CURRENT_STEP", peak - idle_mean, units="A", instrument="psu", idle_a=round(idle_mean, 4))
