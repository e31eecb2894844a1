"""Bit-error rate against a known pattern, and frame-error rate.

**PRBS.** Bit-error tests send a pseudo-random binary sequence from a maximal-length LFSR, so that the
receiver can regenerate the reference instead of storing it. ITU-T O.150: PRBS9 = x^9 + x^5 + 1 (period
511), PRBS15 = x^15 + x^14 + 1 (period 32767); the output obeys ``s[n] = s[n−5] ^ s[n−9]`` resp.
``s[n] = s[n−14] ^ s[n−15]``. Some instruments send PRBS15 inverted; the check detects and reports that.

**Synchronisation.** The received bits start at an unknown phase of the pattern (and possibly inverted).
Mapping bits to ±1, the circular cross-correlation of (up to) one period of the capture with one period
of the pattern — one FFT product — peaks at the phase offset with magnitude ≈ the number of bits
compared; its sign says whether the stream is inverted. Then every received bit is compared with the
pattern at that phase. The same works for any repeating known pattern (:func:`ber_against_pattern`).
A received bit stream with slips (bits lost or duplicated by the clock recovery) loses sync after the
slip; this estimator then reads ~50 % and says so — the BER of a slipped stream is not meaningful.

**On the radio link.** A PRBS sent raw (no HDLC) is checked on the demodulator's line bits,
``ber_prbs(modem.demodulate(iq, fs).bits)``; if the radio scrambles it, on ``hdlc.descramble(bits)``
(each channel error then counts three times — the descrambler's error multiplication). Frame-level
tests use :func:`fer` on the frames :func:`bench.dsp.modem.decode_ax25_frames` returns.

**FER.** Frames sent vs frames received intact (FCS good and content identical): sent frames are matched
as a multiset, so duplicates and reordering are handled and corrupt or foreign frames count for nothing.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from bench.dsp.lazy import np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["BerResult", "FerResult", "ber_against_pattern", "ber_prbs", "fer", "prbs"]

Bits: TypeAlias = "npt.NDArray[np.uint8]"

_PRBS_TAPS = {9: (5, 9), 15: (14, 15)}


@functools.lru_cache(maxsize=4)
def _prbs_period(order: int) -> bytes:
    a, b = _PRBS_TAPS[order]
    period = (1 << order) - 1
    s = np.zeros(period + b, dtype=np.uint8)
    s[:b] = 1  # all-ones start state
    # The recurrence reaches back at least `a` bits, so `a` bits at a time can be filled at once.
    for n in range(b, period + b, a):
        m = min(a, period + b - n)
        s[n : n + m] = s[n - a : n - a + m] ^ s[n - b : n - b + m]
    return s[:period].tobytes()


def prbs(order: int, n: int | None = None) -> Bits:
    """``n`` bits (default one period) of PRBS9 or PRBS15 from the all-ones state."""
    if order not in _PRBS_TAPS:
        raise ValueError(f"PRBS{order} not supported (9 or 15)")
    period = np.frombuffer(_prbs_period(order), dtype=np.uint8)
    if n is None:
        return period.copy()
    return np.resize(period, n)


@dataclass(frozen=True)
class BerResult:
    """``errors`` out of ``bits`` compared; ``offset`` = pattern phase of the first received bit."""

    bits: int
    errors: int
    offset: int
    inverted: bool

    @property
    def ber(self) -> float:
        return self.errors / self.bits if self.bits else float("nan")

    @property
    def synchronised(self) -> bool:
        """False when the error ratio is near the 50 % of an unrelated stream (no real lock)."""
        return self.bits > 0 and self.ber < 0.25


def ber_against_pattern(rx: npt.ArrayLike, pattern: npt.ArrayLike) -> BerResult:
    """BER of ``rx`` against a repeating ``pattern``, synchronised by FFT cross-correlation."""
    r = np.asarray(rx, dtype=np.uint8).ravel()
    pat = np.asarray(pattern, dtype=np.uint8).ravel()
    p = len(pat)
    if len(r) == 0 or p == 0:
        return BerResult(0, 0, 0, False)
    head = r[: min(len(r), p)]
    rs = np.zeros(p)
    rs[: len(head)] = 2.0 * head - 1.0
    ps = 2.0 * pat - 1.0
    # corr[k] = Σ_i rs[i]·ps[(i + k) mod p]
    corr = np.fft.irfft(np.conj(np.fft.rfft(rs)) * np.fft.rfft(ps), n=p)
    k = int(np.argmax(np.abs(corr)))
    inverted = bool(corr[k] < 0)
    ref = pat[(np.arange(len(r)) + k) % p]
    errors = int(np.count_nonzero((r ^ ref) != (1 if inverted else 0)))
    return BerResult(len(r), errors, k, inverted)


def ber_prbs(rx: npt.ArrayLike, order: int = 9) -> BerResult:
    """BER of ``rx`` against PRBS9/PRBS15 (phase and polarity found automatically)."""
    return ber_against_pattern(rx, prbs(order))


@dataclass(frozen=True)
class FerResult:
    sent: int
    received: int
    lost: int

    @property
    def fer(self) -> float:
        return self.lost / self.sent if self.sent else float("nan")


def fer(sent: Sequence[bytes], received: Sequence[bytes]) -> FerResult:
    """Frame-error rate: sent frames not found (byte-identical) among the received ones."""
    want = Counter(bytes(f) for f in sent)
    got = Counter(bytes(f) for f in received)
    ok = sum(min(n, got[f]) for f, n in want.items())
    total = sum(want.values())
    return FerResult(total, ok, total - ok)
