"""The bit layer of a 9600 bit/s G3RUH packet link: HDLC framing, NRZI and the G3RUH scrambler.

What goes on the air, transmit side, in this order (the order K9NG/G3RUH modems, Dire Wolf and the
gr-satellites G3RUH decoders use)::

    frame bytes ──LSB first──▶ bits ──bit stuffing──▶ flags around ──NRZI──▶ scrambler ──▶ FSK/GMSK
                                                       (0x7E)        (0 = toggle)  (1 + x^12 + x^17)

and the receiver undoes it in reverse: descrambler, NRZI decoding, flag search, unstuffing, bytes, FCS.

* **Bit order.** HDLC sends every byte least-significant bit first (``np.unpackbits(..., bitorder="little")``).
* **Flags and stuffing.** A frame is delimited by the flag ``0x7E`` = ``01111110``. So that the data can never
  imitate a flag, the sender inserts a 0 after every run of five 1s inside the frame; the receiver drops a 0
  that follows exactly five 1s. Six 1s are only ever part of a flag; seven or more mean *abort* (or noise).
* **NRZI.** The line level toggles for a 0 and stays for a 1. With stuffing this guarantees a transition at
  least every six bits, and it makes the link blind to polarity: decoding looks only at whether two
  consecutive levels are equal.
* **G3RUH scrambler.** A multiplicative (self-synchronising) scrambler with polynomial 1 + x^12 + x^17:
  ``y[n] = x[n] ^ y[n-12] ^ y[n-17]``. It whitens the line (long runs of flags or zeros would otherwise leave
  the FM demodulator's DC level and the clock recovery without transitions). The descrambler
  ``x[n] = y[n] ^ y[n-12] ^ y[n-17]`` needs no synchronisation: it only looks at the last 17 received bits,
  so after 17 bits it is right whatever the transmitter's register held, and one channel bit error causes
  exactly three output errors (at n, n+12, n+17). The scrambler sits *after* NRZI on transmit, so on receive
  the descrambler comes first and NRZI decoding second; an inverted FM demodulator inverts every descrambler
  output (three inverted terms XOR to an inverted result), which NRZI decoding then cancels.

Vectorisation. The descrambler is a feed-forward XOR of shifted copies, trivially vectorised. The scrambler
is recursive (an IIR filter over GF(2)), so it cannot be written as one shifted XOR: instead it is computed
as a product. Over GF(2) the scrambler divides the input polynomial by ``1 + p`` with ``p = D^12 + D^17``
(``D`` = one-bit delay), and ``1/(1+p) = (1+p)(1+p^2)(1+p^4)…`` because ``(1+p)^2 = 1+p^2`` in GF(2). Each
factor ``1 + p^(2^k) = 1 + D^(12·2^k) + D^(17·2^k)`` is again a feed-forward XOR of two shifted copies, and
after ``k`` factors the product is exact for the first ``12·2^k`` bits. So ~log2(n/12) vectorised passes
scramble n bits (13 passes for 10 s at 9600 bit/s) instead of n Python steps.

Deframing is vectorised too: one pass computes, for every bit, the length of the run of 1s that ends at it
(index minus the index of the last 0, via ``np.maximum.accumulate``). Flags are the 0s preceded by exactly
six 1s, stuffed bits the 0s preceded by exactly five, aborts any run of seven. Candidate frames are the
spans between consecutive flags; length checks, abort checks and the whole-bytes check run on arrays of
cumulative counts, and only the few surviving spans are unstuffed and packed (a Python loop over frames,
never over bits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from bench.dsp.lazy import np

if TYPE_CHECKING:
    import numpy.typing as npt

Bits: TypeAlias = "npt.NDArray[np.uint8]"

FLAG = 0x7E
SCRAMBLER_TAPS = (12, 17)  # 1 + x^12 + x^17
MIN_FRAME_BYTES = 17  # AX.25: 14 address + control + 2 FCS (a UI frame adds the PID: 18)
MAX_FRAME_BYTES = 400  # 2 x 7 + 8 x 7 digipeaters + 2 + 256 info + 2 FCS = 330, with margin

__all__ = [
    "FLAG",
    "MAX_FRAME_BYTES",
    "MIN_FRAME_BYTES",
    "Bits",
    "HdlcCandidate",
    "bits_to_bytes",
    "bytes_to_bits",
    "descramble",
    "find_frames",
    "frame_bits",
    "hdlc_stream",
    "nrzi_decode",
    "nrzi_encode",
    "ones_run_length",
    "scramble",
    "stuff",
    "unstuff",
]


def bytes_to_bits(data: bytes) -> Bits:
    """Bytes to a 0/1 array in transmission order (each byte LSB first)."""
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")


def bits_to_bytes(bits: npt.NDArray[np.uint8] | npt.NDArray[np.bool_]) -> bytes:
    """Inverse of :func:`bytes_to_bits`; the length must be a multiple of 8."""
    if len(bits) % 8:
        raise ValueError(f"{len(bits)} bits is not a whole number of bytes")
    return np.packbits(np.asarray(bits, dtype=np.uint8), bitorder="little").tobytes()


def ones_run_length(bits: Bits) -> npt.NDArray[np.int64]:
    """For each position, how many consecutive 1s end there (0 where the bit is 0)."""
    idx = np.arange(len(bits), dtype=np.int64)
    last_zero = np.maximum.accumulate(np.where(bits == 0, idx, -1))
    return idx - last_zero


def stuff(bits: Bits) -> Bits:
    """Insert a 0 after every run of five 1s (the run restarts after the inserted 0)."""
    run = ones_run_length(bits)
    # A run of L ones gets a 0 after its 5th, 10th, ... one: the stuffed 0 restarts the count.
    after = np.flatnonzero((run > 0) & (run % 5 == 0)) + 1
    return np.insert(bits, after, np.uint8(0))


def unstuff(bits: Bits) -> Bits:
    """Drop every 0 that follows exactly five 1s. Raises ``ValueError`` on six or more 1s (flag/abort)."""
    run = ones_run_length(bits)
    if len(bits) and run.max() > 5:
        raise ValueError("six or more consecutive 1s inside a frame (flag or abort)")
    prev = np.concatenate(([0], run[:-1]))
    keep = ~((bits == 0) & (prev == 5))
    out: Bits = bits[keep]
    return out


def frame_bits(frame: bytes) -> Bits:
    """One frame (FCS included) as stuffed bits, without flags."""
    return stuff(bytes_to_bits(frame))


def hdlc_stream(frames: list[bytes], preamble_flags: int = 32, gap_flags: int = 2, postamble_flags: int = 4) -> Bits:
    """Flags, frames separated by flags, trailing flags: the bit stream before NRZI.

    The preamble ("TX delay") lets the receiver's descrambler, AGC and clock recovery settle before the
    first frame; ``gap_flags`` >= 1 separate consecutive frames.
    """
    flag = bytes_to_bits(bytes([FLAG]))
    parts: list[Bits] = [np.tile(flag, preamble_flags)]
    for i, frame in enumerate(frames):
        if i:
            parts.append(np.tile(flag, max(gap_flags, 1)))
        else:
            parts.append(flag)  # the opening flag of the first frame
        parts.append(frame_bits(frame))
    parts.append(np.tile(flag, max(postamble_flags, 1)))
    return np.concatenate(parts).astype(np.uint8)


def nrzi_encode(bits: Bits, initial_level: int = 0) -> Bits:
    """NRZI: the level toggles for a 0 and holds for a 1."""
    toggles = (1 - bits).astype(np.uint8)
    levels: Bits = np.bitwise_xor.accumulate(toggles) ^ np.uint8(initial_level & 1)
    return levels


def nrzi_decode(levels: Bits, initial_level: int = 0) -> Bits:
    """Inverse of :func:`nrzi_encode`: 1 where the level did not change."""
    prev = np.concatenate(([np.uint8(initial_level & 1)], levels[:-1]))
    out: Bits = (1 ^ levels ^ prev).astype(np.uint8)
    return out


def scramble(bits: Bits, state: int = 0) -> Bits:
    """G3RUH scrambler ``y[n] = x[n] ^ y[n-12] ^ y[n-17]`` (vectorised, see the module docstring).

    ``state`` holds the 17 previous outputs, bit 0 = y[-1] (the most recent) … bit 16 = y[-17].
    """
    n = len(bits)
    a, b = SCRAMBLER_TAPS
    # Prepend the register contents as if they were earlier outputs, so one recurrence covers both.
    hist = np.array([(state >> (16 - i)) & 1 for i in range(17)], dtype=np.uint8)  # y[-17] … y[-1]
    # x' = x for n >= 0; for the history positions choose x' so that y = history: x' = y ^ y[-12] ^ y[-17]
    # restricted to history only (earlier values taken as 0) — this is exactly the descrambler of hist.
    x = np.concatenate((_descramble_zero_start(hist), bits.astype(np.uint8)))
    y = x.copy()
    shift_a, shift_b = a, b
    while shift_a < len(y):
        # Multiply by (1 + D^shift_a + D^shift_b): XOR in delayed copies of the current product.
        prev = y.copy()
        y[shift_a:] ^= prev[:-shift_a]
        if shift_b < len(y):
            y[shift_b:] ^= prev[:-shift_b]
        shift_a *= 2
        shift_b *= 2
    out: Bits = y[17 : 17 + n]
    return out


def _descramble_zero_start(y: Bits) -> Bits:
    a, b = SCRAMBLER_TAPS
    x = y.copy()
    x[a:] ^= y[:-a]
    x[b:] ^= y[:-b]
    return x


def descramble(bits: Bits, state: int = 0) -> Bits:
    """G3RUH descrambler ``x[n] = y[n] ^ y[n-12] ^ y[n-17]``; ``state`` as in :func:`scramble`.

    Self-synchronising: with the wrong ``state`` only the first 17 outputs can be wrong.
    """
    hist = np.array([(state >> (16 - i)) & 1 for i in range(17)], dtype=np.uint8)
    y = np.concatenate((hist, bits.astype(np.uint8)))
    a, b = SCRAMBLER_TAPS
    out: Bits = y[17:] ^ y[17 - a : len(y) - a] ^ y[: len(y) - b]
    return out


@dataclass(frozen=True)
class HdlcCandidate:
    """A span between two flags that unstuffs to a plausible number of whole bytes.

    ``start_bit``/``end_bit`` index the (NRZI-decoded) bit stream: first bit after the opening flag, first
    bit of the closing flag. ``data`` is the unstuffed content, FCS still attached.
    """

    start_bit: int
    end_bit: int
    data: bytes


def find_frames(bits: Bits, min_bytes: int = MIN_FRAME_BYTES, max_bytes: int = MAX_FRAME_BYTES) -> list[HdlcCandidate]:
    """Every flag-delimited span of ``bits`` that unstuffs to ``min_bytes``..``max_bytes`` whole bytes.

    No FCS check here (that belongs to the frame layer): noise produces flags and spans too, and those
    mostly fail the FCS. Spans containing an abort (seven or more 1s) are dropped.
    """
    bits = np.asarray(bits, dtype=np.uint8)
    if len(bits) < 16:
        return []
    run = ones_run_length(bits)
    prev = np.concatenate(([0], run[:-1]))
    is_zero = bits == 0
    flag_end = np.flatnonzero(is_zero & (prev == 6))  # the closing 0 of each flag
    if len(flag_end) < 2:
        return []
    stuffed = (is_zero & (prev == 5)).astype(np.int64)
    aborts = (run == 7).astype(np.int64)  # count each run of >= 7 once, where it reaches 7
    c_stuffed = np.concatenate(([0], np.cumsum(stuffed)))
    c_abort = np.concatenate(([0], np.cumsum(aborts)))
    starts = flag_end[:-1] + 1
    ends = flag_end[1:] - 7  # first bit of the next flag
    raw_len = ends - starts
    n_stuffed = c_stuffed[ends] - c_stuffed[starts]
    n_abort = c_abort[ends] - c_abort[starts]
    data_len = raw_len - n_stuffed
    ok = (
        (raw_len >= 8 * min_bytes)
        & (data_len >= 8 * min_bytes)
        & (data_len <= 8 * max_bytes)
        & (data_len % 8 == 0)
        & (n_abort == 0)
    )
    keep_bit = stuffed == 0
    out: list[HdlcCandidate] = []
    for s, e in zip(starts[ok].tolist(), ends[ok].tolist(), strict=True):
        span = bits[s:e][keep_bit[s:e]]
        out.append(HdlcCandidate(s, e, np.packbits(span, bitorder="little").tobytes()))
    return out
