"""GMSK modem and the IQ → AX.25 pipeline, end to end with offset, noise and clock error."""

from __future__ import annotations

import numpy as np
import pytest

from bench.dsp import hdlc, modem
from bench.dsp.ax25 import build_ui_frame
from bench.dsp.ber import fer


def beacon(i: int, size: int = 40) -> bytes:
    info = f"OTS-SAT beacon {i:04d} ".encode().ljust(size, b".")
    return build_ui_frame("CQ", "OTSSAT", info, source_ssid=1)


def with_silence(iq: np.ndarray, fs: float, seconds: float = 0.05) -> np.ndarray:
    pad = np.zeros(int(fs * seconds), dtype=np.complex64)
    return np.concatenate((pad, iq, pad))


def test_modulator_is_gmsk_h05() -> None:
    fs = 96000.0
    bits = np.array([1] * 40 + [0] * 40, dtype=np.uint8)
    iq = modem.gmsk_modulate(bits, fs)
    assert np.allclose(np.abs(iq), 1.0, atol=1e-5)  # constant envelope
    freq = np.angle(iq[1:] * np.conj(iq[:-1])) * fs / (2 * np.pi)
    assert freq[200] == pytest.approx(2400.0, abs=1.0)  # +Rb/4 for a long run of 1s
    assert freq[600] == pytest.approx(-2400.0, abs=1.0)


@pytest.mark.parametrize("fs", [48000.0, 96000.0, 76800.0])
def test_clean_burst_decodes(fs: float) -> None:
    frames = [beacon(i) for i in range(5)]
    report = modem.decode(with_silence(modem.modulate_frames(frames, fs), fs), fs)
    assert [f.data for f in report.frames] == frames
    assert report.bad_fcs == 0 and report.malformed == 0


def test_line_bits_are_the_inverse_of_the_receiver_chain() -> None:
    frames = [beacon(1)]
    payload = modem.line_to_payload_bits(modem.line_bits(frames))
    assert [c.data for c in hdlc.find_frames(payload)] == frames


@pytest.mark.parametrize("fs", [48000.0, 96000.0])
def test_full_chain_offset_and_noise(fs: float) -> None:
    # 1.5 kHz carrier offset and AWGN at Eb/N0 12 dB. At 12 dB the non-coherent line BER is ~3e-4, so a
    # 40-byte beacon (~520 line bits) is lost now and then (FER ~10-15 %); the noise is seeded.
    frame = build_ui_frame("CQ", "OTSSAT", b"OTS-SAT 12U beacon: EPS 7.9 V, T +21 C", source_ssid=1)
    iq = modem.modulate_frames([frame], fs, freq_offset_hz=1500.0)
    rx = modem.add_awgn(with_silence(iq, fs), fs, ebn0_db=12.0, rng=11)
    report = modem.decode(rx, fs)
    assert len(report.frames) == 1
    got = report.frames[0]
    assert got.data == frame
    assert got.frame.info == b"OTS-SAT 12U beacon: EPS 7.9 V, T +21 C"
    assert str(got.frame.source) == "OTSSAT-1" and got.frame.dest.callsign == "CQ"
    assert got.freq_error_hz == pytest.approx(1500.0, abs=50.0)
    burst_start = int(0.05 * fs) + 32 * 8 * fs / 9600  # silence + preamble flags
    assert got.start_sample == pytest.approx(burst_start, abs=2 * fs / 9600 * 8)


def test_fer_rises_as_ebn0_falls() -> None:
    fs = 48000.0
    frames = [beacon(i) for i in range(20)]
    iq = with_silence(modem.modulate_frames(frames, fs, freq_offset_hz=-800.0, gap_flags=3), fs)
    rates = []
    for ebn0 in (14.0, 10.0, 7.0, 4.0):
        got = modem.decode_ax25_frames(modem.add_awgn(iq, fs, ebn0_db=ebn0, rng=5), fs)
        rates.append(fer(frames, [f.data for f in got]).fer)
    assert rates == sorted(rates), rates
    assert rates[0] <= 0.1 and rates[-1] >= 0.9, rates


def test_clock_error_is_tracked() -> None:
    # The satellite's bit clock 300 ppm fast: 3 bits of drift over the 1 s burst.
    fs = 48000.0
    frames = [beacon(i, 100) for i in range(8)]
    bits = modem.line_bits(frames)
    iq = modem.gmsk_modulate(bits, fs, bit_rate=9600.0 * (1 + 300e-6))
    got = modem.decode_ax25_frames(with_silence(iq, fs), fs)
    assert [f.data for f in got] == frames


def test_fsk_3khz_rectangular_decodes() -> None:
    fs = 96000.0
    frames = [beacon(i) for i in range(3)]
    iq = modem.modulate_frames(frames, fs, bt=None, deviation_hz=3000.0, freq_offset_hz=-2000.0)
    report = modem.decode(modem.add_awgn(with_silence(iq, fs), fs, ebn0_db=20.0, rng=1), fs)
    assert [f.data for f in report.frames] == frames
    assert report.freq_error_hz == pytest.approx(-2000.0, abs=50.0)


def test_noise_only_decodes_nothing() -> None:
    fs = 48000.0
    rng = np.random.default_rng(9)
    noise = (rng.standard_normal(int(fs)) + 1j * rng.standard_normal(int(fs))).astype(np.complex64)
    report = modem.decode(noise, fs)
    assert report.frames == [] and report.malformed == 0


@pytest.mark.parametrize(("fs", "offset"), [(50000.0, 0.0), (62500.0, -3000.0), (96000.0, 8000.0), (192000.0, 2000.0)])
def test_non_integer_samples_per_bit_and_large_offsets(fs: float, offset: float) -> None:
    frames = [beacon(i) for i in range(3)]
    iq = modem.modulate_frames(frames, fs, freq_offset_hz=offset)
    report = modem.decode(modem.add_awgn(with_silence(iq, fs), fs, ebn0_db=18.0, rng=2), fs)
    assert [f.data for f in report.frames] == frames
    assert report.freq_error_hz == pytest.approx(offset, abs=50.0)


@pytest.mark.parametrize("n", [0, 1, 10, 100, 5000])
def test_short_or_empty_captures(n: int) -> None:
    assert modem.decode_ax25_frames(np.full(n, 0.001, dtype=np.complex64), 48000.0) == []


def test_bad_fcs_is_counted_not_returned() -> None:
    fs = 48000.0
    good = beacon(1)
    corrupt = bytearray(beacon(2))
    corrupt[20] ^= 0x04  # one info bit flipped after the FCS was computed
    iq = modem.modulate_frames([good, bytes(corrupt), beacon(3)], fs)
    report = modem.decode(with_silence(iq, fs), fs)
    assert [f.data for f in report.frames] == [good, beacon(3)]
    assert report.bad_fcs == 1
