"""COMMS UHF uplink procedure: receiver sensitivity, telecommands over RF, frames for other callsigns.

The generator plays AX.25 UI frames (G3RUH 9600 bit/s GMSK, built by the bench's modulator) once, at a level
set at the antenna port (uplink path loss added; never above the receiver's maximum input). The radio's own
frame counters (COMMS.RX_FRAMES / RX_REJECTED, read over CSP) say what it decoded.
Requirements: OTS-COM-030, OTS-COM-031.
"""

import pytest

from fixtures.evidence import PlotSeries

pytestmark = pytest.mark.subsystem("COM")

SPEC_LEVEL_DBM = -110.0  # OTS-COM-030
SWEEP_DBM = [-124.0 + 2.0 * k for k in range(10)]  # -124 … -106 dBm at the antenna port
SWEEP_FRAMES = 30
SPEC_FRAMES = 200
TEST_PORT = 31  # a CSP port no COMMS service listens on: test frames are counted, then dropped


@pytest.fixture
def radio(satellite_on):
    """The satellite on at nominal bus voltage, every node answering: the radio listens and can beacon."""
    return satellite_on


def rx_counters(satellite):
    hk = satellite.request_hk("COMMS")
    return hk["COMMS.RX_FRAMES"], hk["COMMS.RX_REJECTED"]


def frame_error_rate(rf, satellite, level_dbm, count):
    """Play ``count`` test frames at ``level_dbm``; the share the radio did not receive."""
    packets = [satellite.packet_to("COMMS", TEST_PORT, b"OTS-BERT %04d " % k + bytes(16)) for k in range(count)]
    before, _ = rx_counters(satellite)
    rf.uplink_packets(packets, level_dbm)
    after, _ = rx_counters(satellite)
    return 1.0 - (after - before) / count


@pytest.mark.requirement("OTS-COM-030")
def test_receiver_sensitivity(radio, rf, measure, evidence):
    """Sweep the level up to the FER limit, then confirm the FER at the specified level with 200 frames."""
    fers = [frame_error_rate(rf, radio, level, SWEEP_FRAMES) for level in SWEEP_DBM]
    clean_from = SWEEP_DBM[-1]
    for level, fer in zip(reversed(SWEEP_DBM), reversed(fers), strict=True):
        if fer > 0.0:
            break
        clean_from = level
    evidence.plot(
        "Receiver FER vs level",
        [
            PlotSeries(f"FER ({SWEEP_FRAMES} frames per level)", SWEEP_DBM, fers, style="markers"),
            PlotSeries("1 % limit (OTS-COM-030)", [SWEEP_DBM[0], SWEEP_DBM[-1]], [0.01, 0.01], style="limit"),
        ],
        title=f"Uplink frame error rate; error-free from {clean_from:g} dBm",
        x_label="level at the antenna port",
        x_units="dBm",
        y_label="frame error rate",
        y_units="",
        log_y=True,
    )
    measure("COMMS.RX_SENSITIVITY", clean_from, instrument="generator")
    measure(
        "COMMS.RX_FER_AT_SPEC_LEVEL", frame_error_rate(rf, radio, SPEC_LEVEL_DBM, SPEC_FRAMES), instrument="generator"
    )


@pytest.mark.requirement("OTS-COM-030")
@pytest.mark.parametrize(
    ("command", "args", "telemetry", "expected"),
    [
        ("COMMS.SET_BEACON_PERIOD", {"period_s": 17}, "COMMS.BEACON_PERIOD", 17),  # executed by the radio
        ("EPS.SET_OUTPUT", {"channel": "HEATER", "on": True}, "EPS.OUT_HEATER", True),  # routed onto CAN
    ],
)
def test_telecommand_over_rf(command, args, telemetry, expected, radio, rf):
    """A telecommand uplinked over RF is executed: its verification and the housekeeping come back over CAN."""
    packet, verification = radio.packet_for(command, **args)
    rf.uplink_packets([packet], SPEC_LEVEL_DBM + 20.0)
    radio.await_verification(verification)
    assert verification.ok, str(verification)
    node = telemetry.partition(".")[0]
    assert radio.request_hk(node)[telemetry] == expected


@pytest.mark.requirement("OTS-COM-031")
def test_frames_for_another_callsign_are_rejected(radio, rf, measure):
    """Ten strong frames addressed to another station: all rejected, none received, none executed."""
    packet, _ = radio.packet_for("COMMS.SET_BEACON_PERIOD", period_s=99)
    frames = [rf.ui_frame(packet, dest="NOCALL") for _ in range(10)]
    received, rejected = rx_counters(radio)
    rf.uplink_frames(frames, SPEC_LEVEL_DBM + 20.0)
    received_after, rejected_after = rx_counters(radio)
    measure("COMMS.RX_FOREIGN_FRAMES_ACCEPTED", received_after - received)
    measure("COMMS.RX_FOREIGN_FRAMES_REJECTED", rejected_after - rejected)
    assert radio.request_hk("COMMS")["COMMS.BEACON_PERIOD"] != 99


@pytest.mark.requirement("OTS-COM-030")
def test_telecommand_through_the_bench_cable(radio, rf, operator):
    """The operator confirms the uplink cable; a telecommand played through it is executed by the radio."""
    operator.confirm("Confirm the RF cable J3 is connected to the attenuator")
    packet, verification = radio.packet_for("COMMS.SET_BEACON_PERIOD", period_s=23)
    rf.uplink_packets([packet], SPEC_LEVEL_DBM + 20.0)
    radio.await_verification(verification)
    assert verification.ok, str(verification)
    assert radio.request_hk("COMMS")["COMMS.BEACON_PERIOD"] == 23
