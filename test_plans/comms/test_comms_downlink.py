"""COMMS UHF downlink procedure: the transmitter's RF figures and the beacon, at the antenna port.

The radio is made to send a beacon while the analyzer waits on its IF power trigger; the burst is measured
with the path loss of the bench config removed: power, frequency error, 99 % occupied bandwidth, emission
mask, deviation; the beacon is demodulated and its content compared with housekeeping read over CSP; the
beacon period is timed between two bursts; each transmit-power setting is checked.
Requirements: OTS-COM-010, -011, -012, -013, -020, -021.
"""

import pytest

from bench.dsp.modem import peak_deviation_hz
from bench.dsp.spectrum import mask_check, occupied_bandwidth, welch_psd
from bench.rf import parse_beacon, spectrum_series

pytestmark = pytest.mark.subsystem("COM")

BURST_RECORD_S = 0.32  # the 250 ms burst (COMMS.TX_BURST_MS), 20 ms of pretrigger and some air after it


@pytest.fixture
def radio(satellite_on):
    """The satellite on at nominal bus voltage, every node answering: the radio listens and can beacon."""
    return satellite_on


def key_beacon(satellite):
    """Make the radio transmit a beacon now: enabling the beacon sends the first one at once."""

    def key():
        assert satellite.send("COMMS.SET_BEACON", enabled=False).ok
        assert satellite.send("COMMS.SET_BEACON", enabled=True).ok

    return key


def beacon_burst(rf, satellite):
    return rf.capture(BURST_RECORD_S, after_arming=key_beacon(satellite), timeout_s=10)


@pytest.mark.requirement("OTS-COM-010", "OTS-COM-011", "OTS-COM-012", "OTS-COM-013")
def test_transmitter_rf_figures(radio, rf, measure, evidence):
    """One beacon burst: power at the port, frequency error, OBW, emission mask and deviation."""
    capture = beacon_burst(rf, radio)
    burst = capture.steady()
    measure("COMMS.TX_POWER_AT_PORT", capture.port_power_dbm(), instrument="analyzer")

    report = rf.decode(capture, capture.burst())
    assert report.frames, f"the burst did not demodulate ({report.bad_fcs} frames with a bad FCS)"
    measure("COMMS.FREQUENCY_ERROR", report.freq_error_hz, instrument="analyzer")

    psd = welch_psd(burst, capture.fs, nperseg=2048)
    obw = occupied_bandwidth(psd)
    measure("COMMS.OCCUPIED_BANDWIDTH", obw.bandwidth_hz, instrument="analyzer")
    mask = measure.limits.mask("COMMS.EMISSION_MASK")
    result = mask_check(psd, mask.points, centre_hz=report.freq_error_hz + capture.offset_hz)
    measure("COMMS.MASK_MARGIN", result.worst_margin_db, instrument="analyzer")
    measure("COMMS.DEVIATION", peak_deviation_hz(burst, capture.fs), instrument="analyzer")

    evidence.plot(
        "Beacon burst spectrum",
        spectrum_series(psd, mask, capture.downlink_loss_db, carrier_hz=report.freq_error_hz),
        title=f"Beacon spectrum, OBW {obw.bandwidth_hz / 1e3:.2f} kHz, mask margin {result.worst_margin_db:.1f} dB",
        x_label="offset from 437.5 MHz",
        x_units="kHz",
        y_label="PSD",
        y_units="dBm/Hz",
    )


@pytest.mark.requirement("OTS-COM-021")
def test_beacon_content_matches_housekeeping(radio, rf, measure, evidence):
    """Decode the beacon; every field must equal the housekeeping read over CSP just after it."""
    capture = beacon_burst(rf, radio)
    report = rf.decode(capture)
    ours = [f for f in report.frames if f.frame.source.callsign == rf.radio.callsign]
    measure("COMMS.BEACON_FRAMES_DECODED", len(ours))
    assert ours, "no beacon frame from the satellite's callsign decoded"
    frame = ours[0]
    assert (frame.frame.dest.callsign, frame.frame.source.ssid) == (rf.radio.beacon_destination, rf.radio.ssid)
    evidence.text("Decoded beacon", frame.info.decode("ascii"))
    beacon = parse_beacon(frame.info, rf.radio)

    hk: dict = {}
    for node in sorted({m.partition(".")[0] for m in beacon}):
        hk.update(radio.request_hk(node))
    disagreeing = []
    for mnemonic, value in beacon.items():
        tolerance_limit = f"COMMS.BEACON_DIFF.{mnemonic}"
        if tolerance_limit in measure.limits:
            measure(tolerance_limit, float(hk[mnemonic]) - value)
        elif float(hk[mnemonic]) != value:
            disagreeing.append(f"{mnemonic}: beacon {value:g}, CSP {float(hk[mnemonic]):g}")
    measure("COMMS.BEACON_FIELDS_DISAGREEING", len(disagreeing))
    assert not disagreeing, "; ".join(disagreeing)


@pytest.mark.requirement("OTS-COM-020")
def test_beacon_period(radio, rf, measure):
    """Time two consecutive beacons at the default period, from one record that holds both bursts."""
    period = radio.request_hk("COMMS")["COMMS.BEACON_PERIOD"]
    capture = rf.capture(period + 1.5, sample_rate=24_000.0, after_arming=key_beacon(radio), timeout_s=10)
    starts = [span.start / capture.fs for span in capture.bursts()]
    assert len(starts) >= 2, f"{len(starts)} burst(s) in {period + 1.5:g} s; the beacon should repeat every {period} s"
    measure("COMMS.BEACON_PERIOD", starts[1] - starts[0], instrument="analyzer")


@pytest.mark.requirement("OTS-COM-011")
@pytest.mark.parametrize("setting_dbm", [27, 30, 33])
def test_transmit_power_setting(setting_dbm, radio, rf, measure):
    """Each COMMS.SET_TX_POWER setting delivers its power at the antenna port."""
    assert radio.send("COMMS.SET_TX_POWER", dbm=setting_dbm).ok
    capture = beacon_burst(rf, radio)
    measure("COMMS.TX_POWER_STEP_ERROR", capture.port_power_dbm() - setting_dbm, instrument="analyzer")
