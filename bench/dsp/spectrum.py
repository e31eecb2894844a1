"""Spectrum measurements on an IQ capture: Welch PSD, channel power, frequency error, OBW, spectral mask.

**Welch PSD.** A periodogram (|FFT|² of the whole capture) is an unbiased but very noisy estimate of the
power spectral density: its standard deviation equals its mean in every bin, however long the capture.
Welch cuts the capture into overlapping segments (here 50 %), multiplies each by a window (Hann) to
keep one strong signal's sidelobes from burying weak ones, and averages the segments' periodograms:
K averages cut the scatter by √K at the price of resolution (bin spacing fs/nperseg). Scaling to a
density: divide by ``fs·Σw²`` so that summing PSD·Δf over all bins gives the mean power of the samples
(Parseval), whatever the window. The *equivalent noise bandwidth* ``fs·Σw²/(Σw)²`` (1.5 bins for Hann)
is the analyzer's "RBW" for this estimate. IQ is complex, so the spectrum is two-sided: −fs/2…+fs/2
around the analyzer's centre frequency. No per-segment mean removal (scipy's default ``detrend``): in
IQ the DC bin is the centre frequency, where a carrier may well sit.

This module computes it with numpy strides (no copy of the overlapping segments before windowing), one
batched FFT (scipy's, multi-threaded, complex64 throughout) and one fused sum of squares; with the same
segments, window and no detrending it matches ``scipy.signal.welch`` to float32 precision and runs 5–7×
faster here (``benchmarks/bench_dsp.py`` measures both in the same run).

**Channel power** integrates PSD·Δf over a band. The result is in "IQ units²", i.e. dB relative to a
full-scale sample power; ``calibration_db`` (from the analyzer's calibration record: what 0 dB of IQ
power is in dBm at the DUT reference plane, cable loss included) turns it into dBm.

**Frequency error.** For a carrier: the PSD peak, refined by a parabola through the three top bins (in dB).
For a modulated FM/GMSK signal: the power centroid of the spectrum above the noise floor. For a constant-
envelope FM signal the centroid is the time average of the instantaneous frequency, so with random data
it scatters by about deviation/√(bits) (±25 Hz for 1 s of 9600 bit/s at ±2400 Hz); the demodulator's
per-frame "FSK mean" (:mod:`bench.dsp.modem`) does not depend on the data.

**Occupied bandwidth** (ITU-R SM.328/SM.443 "β/2 method"): the width containing 99 % of the total power,
with 0.5 % left below the lower edge and 0.5 % above the upper one, read off the cumulative power
(linear interpolation inside a bin). For GMSK BT = 0.5 the 99 % bandwidth is ≈ 1.04 × the bit rate
(Murota & Hirade 1981) → ≈ 10 kHz at 9600 bit/s; rectangular 2-FSK with ±3 kHz is much wider (spectral
lines and slow sidelobe decay). The noise floor counts as power too, exactly as on an analyzer: measure
with enough SNR or restrict the span.

**Spectral mask.** A mask is a list of ``(offset_hz, max_dBc)`` breakpoints applied symmetrically about
the carrier: from each offset out to the next, the PSD must stay at or below ``max_dBc`` relative to the
PSD peak (same RBW, so the reference and the emission are measured alike). Inside the first offset
there is no limit. The check reports pass/fail, the worst margin (limit − level, negative = violation),
where it occurs and the limit there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from bench.dsp.lazy import np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "MaskResult",
    "ObwResult",
    "Psd",
    "channel_power_db",
    "frequency_error_centroid",
    "mask_check",
    "occupied_bandwidth",
    "peak_frequency",
    "welch_psd",
]

Floats: TypeAlias = "npt.NDArray[np.float64]"


@dataclass(frozen=True)
class Psd:
    """Two-sided PSD: ``freqs_hz`` ascending (offsets from the capture's centre), ``density`` in units²/Hz."""

    freqs_hz: Floats
    density: Floats
    fs: float
    enbw_hz: float
    segments: int

    @property
    def bin_hz(self) -> float:
        return self.fs / len(self.freqs_hz)

    def db(self) -> Floats:
        """10·log10 of the density (floored at 1e-30 so empty bins do not give −inf)."""
        out: Floats = 10.0 * np.log10(np.maximum(self.density, 1e-30))
        return out

    def total_power(self) -> float:
        return float(self.density.sum() * self.bin_hz)


def _hann(n: int) -> npt.NDArray[np.float32]:
    # Periodic Hann (the DFT-even form spectral estimators use), as scipy.signal.get_window("hann", n).
    w: npt.NDArray[np.float32] = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)
    return w


def welch_psd(iq: npt.NDArray[np.complexfloating], fs: float, nperseg: int = 4096, overlap: float = 0.5) -> Psd:
    """Welch PSD of complex IQ (Hann window); see the module docstring. Short captures use one segment."""
    import scipy.fft as sfft  # lazy: scipy costs ~1 s to import

    x = np.asarray(iq, dtype=np.complex64)
    nperseg = min(nperseg, len(x))
    if nperseg < 8:
        raise ValueError("capture too short for a PSD")
    hop = max(1, round(nperseg * (1.0 - overlap)))
    frames = np.lib.stride_tricks.sliding_window_view(x, nperseg)[::hop]
    w = _hann(nperseg)
    spec = sfft.fft(frames * w, axis=1, workers=-1, overwrite_x=True)
    sv = spec.view(np.float32)  # (frames, 2·nperseg): re, im interleaved
    power = np.einsum("ij,ij->j", sv, sv).reshape(nperseg, 2).sum(axis=1, dtype=np.float64)
    power /= len(frames)
    w64 = w.astype(np.float64)
    density = np.fft.fftshift(power / (fs * float((w64**2).sum())))
    freqs = np.fft.fftshift(np.fft.fftfreq(nperseg, 1.0 / fs))
    enbw = fs * float((w64**2).sum()) / float(w64.sum()) ** 2
    return Psd(freqs, density, fs, enbw, len(frames))


def channel_power_db(psd: Psd, bandwidth_hz: float, centre_hz: float = 0.0, calibration_db: float = 0.0) -> float:
    """Power in ``centre ± bandwidth/2`` in dB (IQ units²) + ``calibration_db`` (→ dBm with a calibration)."""
    band = np.abs(psd.freqs_hz - centre_hz) <= bandwidth_hz / 2.0
    p = float(psd.density[band].sum()) * psd.bin_hz
    return (10.0 * math.log10(p) if p > 0 else -math.inf) + calibration_db


def peak_frequency(psd: Psd) -> float:
    """Frequency of the PSD maximum, refined by a parabola through the top three bins (in dB)."""
    d = psd.db()
    k = int(np.argmax(d))
    if 0 < k < len(d) - 1:
        a, b, c = float(d[k - 1]), float(d[k]), float(d[k + 1])
        den = a - 2.0 * b + c
        shift = 0.5 * (a - c) / den if den != 0 else 0.0
        return float(psd.freqs_hz[k]) + shift * psd.bin_hz
    return float(psd.freqs_hz[k])


def frequency_error_centroid(psd: Psd, nominal_hz: float = 0.0, search_hz: float | None = None) -> float:
    """Power centroid of the PSD above its noise floor (median), minus ``nominal_hz``.

    ``search_hz`` limits the centroid to ±search_hz around the first, whole-span estimate (default: 1.5×
    the width holding the excess power's 99 %), which keeps distant noise out of the estimate.
    """
    excess = np.clip(psd.density - float(np.median(psd.density)), 0.0, None)
    total = float(excess.sum())
    if total <= 0:
        raise ValueError("no power above the noise floor")
    f = psd.freqs_hz
    centre = float((f * excess).sum() / total)
    if search_hz is None:
        cum = np.cumsum(excess) / total
        lo, hi = np.interp([0.005, 0.995], cum, f)
        search_hz = 0.75 * float(hi - lo) + 2 * psd.bin_hz
    win = np.abs(f - centre) <= search_hz
    w = excess[win]
    if float(w.sum()) > 0:
        centre = float((f[win] * w).sum() / w.sum())
    return centre - nominal_hz


@dataclass(frozen=True)
class ObwResult:
    """Occupied bandwidth and its edges (Hz, offsets from the capture centre)."""

    bandwidth_hz: float
    low_hz: float
    high_hz: float
    fraction: float

    @property
    def centre_hz(self) -> float:
        return 0.5 * (self.low_hz + self.high_hz)


def occupied_bandwidth(psd: Psd, fraction: float = 0.99, span_hz: float | None = None) -> ObwResult:
    """Bandwidth holding ``fraction`` of the power within ``span_hz`` (default all), equal tails each side."""
    f = psd.freqs_hz
    p = psd.density
    if span_hz is not None:
        sel = np.abs(f) <= span_hz / 2.0
        f, p = f[sel], p[sel]
    df = psd.bin_hz
    cum = np.concatenate(([0.0], np.cumsum(p)))
    total = float(cum[-1])
    if total <= 0:
        raise ValueError("no power in the span")
    edges = np.concatenate((f - df / 2.0, [f[-1] + df / 2.0]))  # bin edges; cum[i] = power below edges[i]
    tail = (1.0 - fraction) / 2.0 * total
    lo, hi = np.interp([tail, total - tail], cum, edges)
    return ObwResult(float(hi - lo), float(lo), float(hi), fraction)


@dataclass(frozen=True)
class MaskResult:
    """Outcome of a mask check; margins in dB (limit − level; negative = violation)."""

    passed: bool
    worst_margin_db: float
    worst_freq_hz: float
    limit_dbc: float
    level_dbc: float
    reference_db: float


def mask_check(psd: Psd, mask: Sequence[tuple[float, float]], centre_hz: float | None = None) -> MaskResult:
    """Check the PSD against ``mask`` (``(offset_hz, max_dBc)`` breakpoints, symmetric; see module docstring).

    ``centre_hz`` defaults to the measured centroid, so a carrier offset does not eat the mask margin.
    """
    if not mask:
        raise ValueError("empty mask")
    pts = sorted((abs(o), lim) for o, lim in mask)
    offsets = np.array([o for o, _ in pts])
    limits = np.array([lim for _, lim in pts])
    if centre_hz is None:
        centre_hz = frequency_error_centroid(psd)
    level = psd.db()
    ref = float(level.max())
    rel = level - ref
    dist = np.abs(psd.freqs_hz - centre_hz)
    seg = np.searchsorted(offsets, dist, side="right") - 1  # the breakpoint at or below each offset
    limited = seg >= 0
    if not limited.any():
        return MaskResult(True, math.inf, math.nan, math.nan, math.nan, ref)
    lim = limits[np.maximum(seg, 0)]
    margin = np.where(limited, lim - rel, np.inf)
    k = int(np.argmin(margin))
    worst = float(margin[k])
    return MaskResult(worst >= 0.0, worst, float(psd.freqs_hz[k]), float(lim[k]), float(rel[k]), ref)
