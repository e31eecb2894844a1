"""Every RF fault of the twin gives the bench a clear outcome — an error that says what to check, or a number
outside its limit — never a crash, a hang or a wrong pass. One twin (and one powered DUT) for the module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rf_rig import rig_fixture  # noqa: F401  (the module's twin-backed bench: fixture `rig`)

from bench.config import ModelLevel
from bench.limits import load_limits
from bench.measurement import Verdict
from bench.rf import AnalyzerOverload, NoRfSignal

BURST_RECORD_S = 0.32
LIMITS = Path(__file__).resolve().parents[2] / "test_plans" / "limits.yaml"
TEST_PORT = 31  # no COMMS service listens there: test frames are counted, then dropped


@pytest.fixture
def fault(rig) -> Iterator:
    """``fault(name)`` switches a twin RF fault on; every fault switched on is off again after the test."""
    names: list[str] = []

    def on(name: str) -> None:
        names.append(name)
        rig.control.fault(name, True)

    try:
        yield on
    finally:
        for name in names:
            rig.control.fault(name, False)


def beacon(rig, timeout_s: float = 10.0):
    return rig.rf.capture(BURST_RECORD_S, after_arming=rig.key_beacon(), timeout_s=timeout_s)


def test_healthy_link_gives_a_beacon_and_no_overload(rig):
    """The baseline the fault tests depart from: a beacon burst decodes, within the frequency limit."""
    report = rig.rf.decode(cap := beacon(rig), cap.burst())
    assert [f.frame.source.callsign for f in report.frames] == [rig.rf.radio.callsign]
    assert abs(report.freq_error_hz) < 2000.0
    assert rig.control.rf()["rx_overdriven"] == 0


def test_tx_off_raises_no_rf_signal_naming_transmitter_and_cable(rig, fault):
    fault("rf_tx_off")
    bursts_before = rig.control.rf()["bursts"]
    with pytest.raises(NoRfSignal) as err:
        beacon(rig, timeout_s=3.0)
    message = str(err.value)
    assert "transmitter keyed" in message and "RF cable connected" in message, message
    assert "437.5000 MHz" in message, message
    assert rig.control.rf()["bursts"] == bursts_before  # the twin agrees: nothing was keyed


def test_cable_disconnected_no_signal_and_no_uplink(rig, fault):
    fault("rf_cable_disconnected")
    with pytest.raises(NoRfSignal, match="RF cable connected"):
        beacon(rig, timeout_s=3.0)
    before = rig.rx_frames()
    packets = [rig.satellite.packet_to("COMMS", TEST_PORT, b"OTS-CABLE %02d" % k) for k in range(5)]
    rig.rf.uplink_packets(packets, -60.0)  # strong at the port, if only the cable were there
    assert rig.rx_frames() == before
    assert rig.control.rf()["rx_overdriven"] == 0


def test_uplink_reaches_the_radio_when_the_cable_is_connected(rig):
    """The counterpart of the disconnected-cable check: the same uplink is received when nothing is wrong."""
    before = rig.rx_frames()
    packets = [rig.satellite.packet_to("COMMS", TEST_PORT, b"OTS-CABLE %02d" % k) for k in range(5)]
    rig.rf.uplink_packets(packets, -60.0)
    assert rig.rx_frames() - before == 5


def test_off_frequency_fails_the_frequency_error_limit(rig, fault):
    fault("rf_off_frequency")
    state = rig.control.rf()
    assert state["off_frequency"]
    expected = state["carrier_hz"] - rig.rf.radio.frequency_hz  # +6 kHz plus the twin's crystal error
    assert 5000.0 < expected < 7000.0
    cap = beacon(rig)
    report = rig.rf.decode(cap, cap.burst())
    assert report.frames, "the off-frequency beacon should still demodulate (the decoder corrects the offset)"
    assert report.freq_error_hz == pytest.approx(expected, abs=150.0)
    limit = load_limits(LIMITS, ModelLevel.EM)["COMMS.FREQUENCY_ERROR"]
    verdict, margin, _ = limit.judge(report.freq_error_hz)
    assert verdict is Verdict.FAIL and margin < -3000.0, (verdict, margin)


def _fer(rig, level_dbm: float, count: int = 20) -> float:
    packets = [rig.satellite.packet_to("COMMS", TEST_PORT, b"OTS-BERT %04d " % k + bytes(16)) for k in range(count)]
    before = rig.rx_frames()
    rig.rf.uplink_packets(packets, level_dbm)
    return 1.0 - (rig.rx_frames() - before) / count


def test_interferer_raises_the_uplink_fer(rig, fault):
    assert _fer(rig, -110.0) == 0.0
    fault("rf_interferer")
    assert _fer(rig, -110.0) > 0.5


def test_analyzer_overload_is_an_error_naming_the_reference_level(rig):
    rf = rig.rf
    beacon(rig)  # one configured capture: the front end will not set the reference level again
    rf._analyzer.set_reference_level(-60.0)
    try:
        with pytest.raises(AnalyzerOverload) as err:
            beacon(rig)
        message = str(err.value)
        assert "reference level -60 dBm" in message and "instruments.rf_path" in message, message
    finally:
        rf._analyzer.set_reference_level(rf.ref_level_dbm)
    beacon(rig)  # and the bench recovers once the reference level is right again
