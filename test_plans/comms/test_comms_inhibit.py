"""COMMS transmit inhibit procedure: the ground's inhibit keeps the transmitter silent, and releasing it frees it.

With the satellite on, the inhibit telecommand is sent, housekeeping must show it in force, and the beacon is
keyed while the signal analyzer waits for a burst at the antenna port: none may come. The inhibit is then
released and the same keying must produce a burst (the analyzer and the RF path could see one all along).
Requirement: OTS-COM-050.
"""

import pytest

from bench.predicates import equals
from bench.rf import NoRfSignal

pytestmark = pytest.mark.subsystem("COM")

RECORD_S = 0.32  # one 250 ms beacon burst and its pretrigger
LISTEN_S = 3.0  # the beacon goes out at once when keyed: three seconds of silence is no transmission


def key_beacon(satellite):
    def key():
        assert satellite.send("COMMS.SET_BEACON", enabled=False).ok
        assert satellite.send("COMMS.SET_BEACON", enabled=True).ok

    return key


@pytest.mark.requirement("OTS-COM-050")
def test_transmit_inhibit_silences_the_transmitter(satellite_on, rf, measure, evidence):
    """Inhibit, key the beacon: no burst; release: the beacon's burst is seen."""
    satellite = satellite_on
    assert satellite.send("COMMS.SET_TX_INHIBIT", inhibited=True).ok
    satellite.enable_hk("COMMS")
    satellite.await_tm("COMMS.TX_INHIBITED", equals(True), timeout_s=3)
    try:
        rf.capture(RECORD_S, after_arming=key_beacon(satellite), timeout_s=LISTEN_S)
        bursts = 1
    except NoRfSignal as silence:
        bursts = 0
        evidence.text("While inhibited", str(silence))
    measure("COMMS.TX_BURSTS_WHILE_INHIBITED", bursts, instrument="analyzer")

    # Released, the same keying must be seen: proves the silence above was the inhibit, not a deaf analyzer.
    capture = rf.capture(
        RECORD_S,
        after_arming=lambda: satellite.send("COMMS.SET_TX_INHIBIT", inhibited=False),
        timeout_s=10,
    )
    assert capture.port_power_dbm() > 20, f"the burst after the release is only {capture.port_power_dbm():.1f} dBm"
    satellite.await_tm("COMMS.TX_INHIBITED", equals(False), timeout_s=3)
    assert satellite.send("COMMS.SET_BEACON", enabled=False).ok
