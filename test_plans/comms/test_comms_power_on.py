"""COMMS power-on procedure: the UHF transceiver is on the bus and identifies itself soon after power-on.

From the satellite unpowered, switch the bench supply on and time how long the transceiver takes to answer a
CSP ping and then its CMP ident (hostname, model, firmware revision).
Requirement: OTS-COM-001 (ping and identification within 5 s of power-on).
"""

import time

import pytest

pytestmark = pytest.mark.subsystem("COM")

ANSWER_WAIT_S = 10.0  # how long to keep asking; the limit (5 s) judges the time it took


@pytest.mark.requirement("OTS-COM-001")
def test_transceiver_answers_ping_and_ident_after_power_on(dut_power, satellite, measure, evidence):
    """Power on from off; the time to the transceiver's first ping answer and its CMP ident."""
    dut_power.off()
    switched_on = time.monotonic()
    dut_power.on(settle=False)
    satellite.await_nodes_alive(timeout_s=ANSWER_WAIT_S, nodes=["COMMS"])
    ident = satellite.ident("COMMS")
    measure("COMMS.POWER_ON_TO_IDENT", time.monotonic() - switched_on)
    evidence.text("COMMS identity", str(ident))
    assert ident.hostname and ident.revision, f"CMP ident of COMMS is incomplete: {ident}"
