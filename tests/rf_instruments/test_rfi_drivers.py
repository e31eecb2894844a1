"""The VSA/VSG drivers against the twin's RF instrument services (real TCP, pyvisa-py SOCKET resources)."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from loop_support import LoopThread
from rfi_rig import TONE_HZ, EmissionLog, ToneSource

from instruments.errors import (
    ConnectionLost,
    InstrumentRejected,
    InstrumentTimeout,
    InstrumentUnreachable,
    SettingOutOfRange,
)
from instruments.vsa import SignalAnalyzer
from instruments.vsg import SignalGenerator, build_wv
from twin.rf_instruments import AnalyzerService, GeneratorService
from twin.rf_instruments import build_wv as twin_build_wv

Analyzer = tuple[AnalyzerService, ToneSource, str]
Generator = tuple[GeneratorService, EmissionLog, str]


def _configured(resource: str, n: int, timeout_s: float = 2.0) -> SignalAnalyzer:
    vsa = SignalAnalyzer(resource, timeout_s, capture_timeout_s=timeout_s)
    vsa.reset()
    vsa.set_centre_frequency(437.5e6)
    vsa.set_sample_rate(100e3)
    vsa.set_record_length(n)
    vsa.set_reference_level(-10.0)
    return vsa


# -- analyzer --------------------------------------------------------------------------------------------


def test_capture_returns_the_providers_samples(analyzer: Analyzer) -> None:
    _, source, resource = analyzer
    with _configured(resource, 100_000) as vsa:
        assert vsa.identity().maker == "Rohde&Schwarz"
        capture = vsa.capture_iq()
    assert [(r.centre_hz, r.sample_rate, r.n_samples, r.ref_level_dbm, r.trigger) for r in source.requests] == [
        (437.5e6, 100e3, 100_000, -10.0, "IMM")
    ]
    assert capture.samples.dtype == np.complex64
    assert capture.samples.shape == (100_000,)
    assert source.last is not None
    np.testing.assert_array_equal(capture.samples, source.last)
    assert (capture.sample_rate, capture.centre_hz, capture.ref_level_dbm, capture.overload) == (
        100e3, 437.5e6, -10.0, False,
    )  # fmt: skip
    spectrum = np.abs(np.fft.fft(capture.samples))
    freqs = np.fft.fftfreq(len(spectrum), 1 / capture.sample_rate)
    assert freqs[int(np.argmax(spectrum))] == pytest.approx(TONE_HZ, abs=1.0)


def test_capture_data_containing_newlines_and_repeated_captures(analyzer: Analyzer) -> None:
    _, source, resource = analyzer
    with _configured(resource, 4096) as vsa:
        for _ in range(3):
            capture = vsa.capture_iq()
            assert source.last is not None
            np.testing.assert_array_equal(capture.samples, source.last)
            assert b"\n" in capture.samples.tobytes()
        # the stream is still in sync for text exchanges afterwards
        assert vsa.record_length() == 4096
    assert len(source.requests) == 3


def test_overload_flag_propagates(analyzer: Analyzer) -> None:
    _, source, resource = analyzer
    with _configured(resource, 100) as vsa:
        source.overload = True
        assert vsa.capture_iq().overload is True
        source.overload = False
        assert vsa.capture_iq().overload is False


def test_reference_level_above_safe_input_refused_before_sending(analyzer: Analyzer) -> None:
    service, _, resource = analyzer
    with SignalAnalyzer(resource, 2.0) as vsa:
        assert vsa.max_safe_input_dbm == 30.0
        before = len(service.server.received)
        with pytest.raises(SettingOutOfRange):
            vsa.set_reference_level(31.0)
        assert len(service.server.received) == before


def test_fetch_without_capture_times_out_with_the_bench_error(analyzer: Analyzer, loop_thread: LoopThread) -> None:
    _, _, resource = analyzer
    with SignalAnalyzer(resource, 0.3, capture_timeout_s=0.3) as vsa:
        vsa.reset()
        with pytest.raises(InstrumentTimeout):
            vsa.fetch_iq()
        # reconnected and usable again; the twin queued why it did not answer
        assert vsa.scpi.query("*IDN?").startswith("Rohde&Schwarz")


def test_silent_analyzer_times_out(analyzer: Analyzer, loop_thread: LoopThread) -> None:
    service, _, resource = analyzer
    with _configured(resource, 1000, timeout_s=0.3) as vsa:
        loop_thread.call(lambda: setattr(service.server, "silent", True))
        with pytest.raises(InstrumentTimeout):
            vsa.capture_iq()


def test_dropped_link_during_block_is_connection_lost(analyzer: Analyzer, loop_thread: LoopThread) -> None:
    service, _, resource = analyzer
    with _configured(resource, 1000, timeout_s=1.0) as vsa:
        vsa.scpi.query("INIT:IMM;*OPC?")
        loop_thread.call(service.server.drop_all)
        with pytest.raises(ConnectionLost):
            vsa.fetch_iq()


def test_unreachable_analyzer() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(InstrumentUnreachable):
        SignalAnalyzer(f"TCPIP0::127.0.0.1::{port}::SOCKET", 0.5)


# -- generator -------------------------------------------------------------------------------------------


def test_level_above_maximum_refused_before_sending(generator: Generator) -> None:
    service, _, resource = generator
    with SignalGenerator(resource, max_level_dbm=-20.0) as vsg:
        vsg.set_level(-20.0)
        before = list(service.server.received)
        with pytest.raises(SettingOutOfRange):
            vsg.set_level(-19.9)
        with pytest.raises(SettingOutOfRange):
            vsg.set_level(float("nan"))
        assert service.server.received == before
        assert service.level_dbm == -20.0


def test_settings_and_rf_on_reach_the_sink(generator: Generator) -> None:
    _, log, resource = generator
    with SignalGenerator(resource, max_level_dbm=0.0) as vsg:
        vsg.set_frequency(437.5e6)
        vsg.set_level(-90.0)
        vsg.set_rf(True)
        assert vsg.rf_on() and vsg.frequency() == 437.5e6 and vsg.level() == -90.0
    last = log.events[-1]
    assert (last.freq_hz, last.level_dbm, last.rf_on, last.iq, last.started_at) == (437.5e6, -90.0, True, None, None)


def test_waveform_upload_round_trips_exactly(generator: Generator) -> None:
    service, log, resource = generator
    rng = np.random.default_rng(7)
    iq = rng.integers(-32768, 32767, size=(50_000, 2), dtype=np.int16)
    iq[:100] = 0x0A0A  # newline bytes, and a bare '\n' block of them
    iq[100:200, 0] = 0x000A
    assert b"\n" in iq.tobytes()
    with SignalGenerator(resource, max_level_dbm=0.0) as vsg:
        vsg.upload_waveform("/var/user/beacon.wv", iq, 76.8e3)
        vsg.select_waveform("/var/user/beacon.wv")
        vsg.set_arb(True)
        vsg.set_frequency(437.5e6)
        vsg.set_level(-90.0)
        vsg.set_rf(True)
        assert vsg.arb_on()
        assert vsg.scpi.query("SOUR:BB:ARB:WAV:SEL?") == "'/var/user/beacon.wv'"
    np.testing.assert_array_equal(service.waveforms["/var/user/beacon.wv"].iq, iq)
    last = log.events[-1]
    assert (last.freq_hz, last.level_dbm, last.rf_on, last.clock_hz, last.repeat) == (
        437.5e6,
        -90.0,
        True,
        76.8e3,
        True,
    )
    assert last.iq is not None and last.iq.dtype == np.int16
    np.testing.assert_array_equal(last.iq, iq)


def test_complex_waveform_is_scaled_to_int16(generator: Generator) -> None:
    service, _, resource = generator
    iq = np.exp(2j * np.pi * np.arange(1000) / 100).astype(np.complex64) * 0.5
    with SignalGenerator(resource, max_level_dbm=0.0) as vsg:
        vsg.upload_waveform("tone", iq, 1e6)
    got = service.waveforms["tone"].iq
    np.testing.assert_allclose(got[:, 0] / 32767, iq.real, atol=1 / 32767)
    np.testing.assert_allclose(got[:, 1] / 32767, iq.imag, atol=1 / 32767)


def test_corrupt_waveform_is_rejected_by_the_instrument(generator: Generator) -> None:
    service, _, resource = generator
    with SignalGenerator(resource, max_level_dbm=0.0) as vsg:
        vsg.scpi.write("SOUR:BB:ARB:WAV:DATA 'bad',#15hello\n".rstrip("\n"), check=False)
        assert vsg.scpi.drain_errors()[0][0] == -224
        with pytest.raises(InstrumentRejected):
            vsg.select_waveform("missing")
    assert "bad" not in service.waveforms


def test_driver_and_twin_wv_formats_agree() -> None:
    iq = np.arange(-50, 50, dtype=np.int16).reshape(-1, 2)
    assert build_wv(iq, 1e6) == twin_build_wv(iq, 1e6)


def test_safe_state_turns_rf_off_and_verifies(generator: Generator) -> None:
    service, log, resource = generator
    with SignalGenerator(resource, max_level_dbm=0.0) as vsg:
        vsg.set_rf(True)
        assert service.rf_on
        vsg.safe_state()
        assert not service.rf_on and not vsg.rf_on()
    assert log.events[-1].rf_on is False


def test_safe_state_recovers_from_a_dropped_link(generator: Generator, loop_thread: LoopThread) -> None:
    service, _, resource = generator
    with SignalGenerator(resource, max_level_dbm=0.0, timeout_s=0.5) as vsg:
        vsg.set_rf(True)
        loop_thread.call(service.server.drop_all)
        vsg.safe_state()
    assert not service.rf_on


def test_silent_generator_times_out(generator: Generator, loop_thread: LoopThread) -> None:
    service, _, resource = generator
    with SignalGenerator(resource, max_level_dbm=0.0, timeout_s=0.3) as vsg:
        loop_thread.call(lambda: setattr(service.server, "silent", True))
        with pytest.raises(InstrumentTimeout):
            vsg.set_frequency(1e9)
