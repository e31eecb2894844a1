"""Spectrum measurements: Welch PSD, channel power, frequency error, 99 % OBW, spectral mask."""

from __future__ import annotations

import numpy as np
import pytest

from bench.dsp import modem, spectrum

FS = 96000.0


def tone(freq: float, n: int = 96000, amplitude: float = 1.0) -> np.ndarray:
    return (amplitude * np.exp(2j * np.pi * freq * np.arange(n) / FS)).astype(np.complex64)


def gmsk(seconds: float = 2.0, offset: float = 0.0, seed: int = 5) -> np.ndarray:
    bits = np.random.default_rng(seed).integers(0, 2, int(9600 * seconds)).astype(np.uint8)
    return modem.gmsk_modulate(bits, FS, freq_offset_hz=offset)


def test_tone_peaks_at_its_frequency_and_keeps_its_power() -> None:
    psd = spectrum.welch_psd(tone(12345.6, amplitude=0.5), FS)
    assert spectrum.peak_frequency(psd) == pytest.approx(12345.6, abs=2.0)
    assert psd.total_power() == pytest.approx(0.25, rel=1e-3)  # Parseval: density·Δf sums to mean |x|²
    assert psd.enbw_hz == pytest.approx(1.5 * FS / 4096, rel=1e-3)  # Hann: 1.5 bins


def test_matches_scipy_welch() -> None:
    import scipy.signal

    x = gmsk(0.5) + 0.01 * tone(-20000.0, 48000)
    psd = spectrum.welch_psd(x, FS, nperseg=1024)
    _, ref = scipy.signal.welch(x, FS, nperseg=1024, return_onesided=False, detrend=False)
    assert np.allclose(psd.density, np.fft.fftshift(ref), rtol=1e-3, atol=1e-12)


def test_channel_power_with_calibration() -> None:
    psd = spectrum.welch_psd(tone(1000.0, amplitude=0.1) + tone(30000.0, amplitude=0.1), FS)
    # -20 dB in IQ units per tone; only one tone in a 25 kHz channel at 0 Hz; calibration 10 dB → -10 dBm
    assert spectrum.channel_power_db(psd, 25000.0, calibration_db=10.0) == pytest.approx(-10.0, abs=0.05)
    assert spectrum.channel_power_db(psd, 80000.0) == pytest.approx(-16.99, abs=0.05)


def test_gmsk_occupied_bandwidth() -> None:
    # GMSK BT 0.5: 99 % power bandwidth ≈ 1.04 × Rb (Murota & Hirade) → ≈ 10 kHz at 9600 bit/s.
    obw = spectrum.occupied_bandwidth(spectrum.welch_psd(gmsk(offset=1500.0), FS))
    assert 9400.0 < obw.bandwidth_hz < 10600.0
    assert obw.centre_hz == pytest.approx(1500.0, abs=150.0)
    # rectangular 2-FSK with ±3 kHz (G3RUH-style deviation, no shaping) is much wider
    bits = np.random.default_rng(1).integers(0, 2, 19200).astype(np.uint8)
    fsk = modem.gmsk_modulate(bits, FS, bt=None, deviation_hz=3000.0)
    assert spectrum.occupied_bandwidth(spectrum.welch_psd(fsk, FS)).bandwidth_hz > 14000.0


def test_frequency_error_of_shifted_signal() -> None:
    for offset in (-2500.0, 1500.0, 4321.0):
        rx = modem.add_awgn(gmsk(offset=offset), FS, ebn0_db=20.0, rng=3)
        assert spectrum.frequency_error_centroid(spectrum.welch_psd(rx, FS)) == pytest.approx(offset, abs=50.0)


MASK = [(7500.0, -25.0), (12500.0, -45.0), (20000.0, -60.0)]


def test_mask_passes_clean_gmsk_and_flags_an_interferer() -> None:
    clean = gmsk(offset=1000.0)
    result = spectrum.mask_check(spectrum.welch_psd(clean, FS), MASK)
    assert result.passed and result.worst_margin_db > 3.0
    spur = clean + tone(1000.0 + 25000.0, len(clean), amplitude=10 ** (-40 / 20))  # -40 dBc CW at +25 kHz
    bad = spectrum.mask_check(spectrum.welch_psd(spur, FS), MASK)
    assert not bad.passed
    assert bad.worst_freq_hz == pytest.approx(26000.0, abs=50.0)
    assert bad.limit_dbc == -60.0 and bad.worst_margin_db < -5.0
