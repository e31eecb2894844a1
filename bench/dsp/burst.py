"""Bursts in an IQ capture: where the transmitter was keyed, and its power.

IQ samples are volts into 50 Ω (the analyzer's convention, docs/rf.md): P[dBm] = 10·log10(mean|x|² / 50 Ω) + 30.
A burst is a run of samples whose smoothed power stays within ``threshold_db`` of the capture's peak; its
*steady* part leaves out ``guard_s`` at each end, so the PA's ramps do not pull the mean power down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.dsp.lazy import np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["BurstSpan", "find_bursts", "power_dbm"]

_V2_PER_MW = 50.0 * 1e-3


def power_dbm(iq: npt.NDArray[np.complexfloating]) -> float:
    """Mean power of the samples in dBm (−inf for an empty or all-zero record)."""
    if len(iq) == 0:
        return -math.inf
    mean = float(np.mean(iq.real.astype(np.float64) ** 2 + iq.imag.astype(np.float64) ** 2))
    return 10.0 * math.log10(mean / _V2_PER_MW) if mean > 0 else -math.inf


@dataclass(frozen=True)
class BurstSpan:
    """Sample indices of one burst (``stop`` exclusive) and its steady part."""

    start: int
    stop: int
    steady_start: int
    steady_stop: int

    def duration_s(self, fs: float) -> float:
        return (self.stop - self.start) / fs


def find_bursts(
    iq: npt.NDArray[np.complexfloating],
    fs: float,
    *,
    threshold_db: float = 10.0,
    guard_s: float = 0.002,
    smooth_s: float = 0.0005,
    min_duration_s: float = 0.005,
) -> list[BurstSpan]:
    """Bursts at most ``threshold_db`` below the peak, at least ``min_duration_s`` long."""
    if len(iq) == 0:
        return []
    p = iq.real.astype(np.float32) ** 2 + iq.imag.astype(np.float32) ** 2
    width = max(1, int(smooth_s * fs))
    smooth = np.convolve(p, np.full(width, 1.0 / width, dtype=np.float32), mode="same")
    on = smooth >= float(smooth.max()) * 10.0 ** (-threshold_db / 10.0)
    edges = np.flatnonzero(np.diff(on.astype(np.int8)))
    starts = list(edges[~on[edges]] + 1)
    stops = list(edges[on[edges]] + 1)
    if on[0]:
        starts.insert(0, 0)
    if on[-1]:
        stops.append(len(on))
    guard = int(guard_s * fs)
    spans = []
    for start, stop in zip(starts, stops, strict=True):
        if (stop - start) / fs >= min_duration_s:
            spans.append(
                BurstSpan(int(start), int(stop), int(start) + guard, max(int(start) + guard + 1, int(stop) - guard))
            )
    return spans
