"""The twin's own 9600 bit/s UHF physical layer: AX.25 UI frames, HDLC, NRZI, G3RUH scrambling and GMSK.

This is a second, independent implementation of what the bench does in ``bench/dsp`` (the twin may not
import bench code): the two are cross-tested, so a mistake in either shows up as a decode failure.

Transmit chain (the order K9NG/G3RUH modems and Dire Wolf use)::

    frame bytes (LSB first) -> bit stuffing -> 0x7E flags -> NRZI (0 = toggle) -> scrambler 1 + x^12 + x^17 -> GMSK

* **FCS** CRC-16/X.25, computed with :func:`binascii.crc_hqx` (the non-reflected CCITT CRC) on bit-reversed
  bytes, the result bit-reversed and inverted: the same value as the reflected 0x8408 algorithm.
* **Scrambler** ``y[n] = x[n] ^ y[n-12] ^ y[n-17]``. Both taps are at least 12 bits back, so the recursion is
  evaluated twelve bits at a time (one XOR of array slices per 12 bits, no per-bit loop). The descrambler is
  the FIR ``x[n] = y[n] ^ y[n-12] ^ y[n-17]``.
* **GMSK** (h = 0.5, Gaussian BT): the frequency pulse is a rectangle of one bit convolved with a Gaussian,
  whose integral has the closed form ``G(t) = H(t) - H(t - T)`` with ``H(t) = t·Phi(t/s) + s·phi(t/s)``.
  The phase on a fine grid (32 points per bit) is built from exact per-interval increments of ``G`` (so it
  is exact at the grid points), then linearly interpolated at any requested times.
* **Demodulator** (for clean waveforms): unwrapped phase from a one-sample discriminator, coarse offset from
  the mean frequency, per-bit phase advance (integrate and dump, read by interpolation so any samples per bit
  work) at the best of 16 timing phases, offset refined as the midpoint of the two symbol clusters, then
  hard bits -> descrambler -> NRZI decoding -> flag search -> unstuffing -> FCS check.
"""

from __future__ import annotations

import binascii
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "BIT_RATE",
    "UiFrame",
    "ax25_ui_frame",
    "burst_duration_s",
    "crc16_x25",
    "demodulate_frames",
    "gmsk_phase_at",
    "line_bits",
    "modulate",
    "parse_ax25_ui",
]

BIT_RATE: Final = 9600.0
MOD_INDEX: Final = 0.5  # h: +-2400 Hz at 9600 bit/s
_FINE: Final = 32  # phase grid points per bit
_TIMING_PHASES: Final = 16
_GAP_FLAGS: Final = 2  # flags between consecutive frames
_MIN_FRAME: Final = 17  # bytes incl. FCS: 2 addresses + control + FCS
_MAX_FRAME: Final = 400
_FLAG_BITS: Final = np.array([0, 1, 1, 1, 1, 1, 1, 0], dtype=np.uint8)  # 0x7E, LSB first

Bits = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float64]

_REV8: Final = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


# --------------------------------------------------------------------------------------------- AX.25


def crc16_x25(data: bytes) -> int:
    """CRC-16/X.25 (the AX.25 FCS): reflected x^16 + x^12 + x^5 + 1, preset 0xFFFF, inverted."""
    crc = binascii.crc_hqx(bytes(data).translate(_REV8), 0xFFFF)
    reflected = (_REV8[crc & 0xFF] << 8) | _REV8[crc >> 8]
    return reflected ^ 0xFFFF


def _address(call: str, ssid: int, *, c_bit: bool, last: bool) -> bytes:
    if not 1 <= len(call) <= 6 or not all(ch.isascii() and (ch.isupper() or ch.isdigit()) for ch in call):
        raise ValueError(f"callsign {call!r}: 1-6 upper-case ASCII letters or digits")
    if not 0 <= ssid <= 15:
        raise ValueError(f"SSID {ssid} outside 0..15")
    ssid_byte = (0x80 if c_bit else 0x00) | 0x60 | (ssid << 1) | (1 if last else 0)
    return bytes(ord(ch) << 1 for ch in call.ljust(6)) + bytes([ssid_byte])


def ax25_ui_frame(dest: str, src: str, info: bytes, *, dest_ssid: int = 0, src_ssid: int = 0) -> bytes:
    """A UI command frame (control 0x03, PID 0xF0) from ``src`` to ``dest``, FCS appended low byte first."""
    if len(info) > 256:
        raise ValueError(f"info field of {len(info)} bytes exceeds 256")
    body = (
        _address(dest, dest_ssid, c_bit=True, last=False)
        + _address(src, src_ssid, c_bit=False, last=True)
        + b"\x03\xf0"
        + bytes(info)
    )
    fcs = crc16_x25(body)
    return body + fcs.to_bytes(2, "little")


@dataclass(frozen=True)
class UiFrame:
    """The content of a parsed AX.25 UI frame (repeater addresses, if any, are skipped)."""

    dest: str
    dest_ssid: int
    src: str
    src_ssid: int
    info: bytes


def _parse_address(raw: bytes) -> tuple[str, int] | None:
    if any(b & 1 for b in raw[:6]):
        return None
    chars = "".join(chr(b >> 1) for b in raw[:6]).rstrip(" ")
    if not chars or not all(ch.isascii() and (ch.isupper() or ch.isdigit()) for ch in chars):
        return None
    return chars, (raw[6] >> 1) & 0x0F


def parse_ax25_ui(frame_with_fcs: bytes) -> UiFrame | None:
    """Parse a UI frame (FCS included); None when the FCS is wrong, the frame is malformed or not UI."""
    data = bytes(frame_with_fcs)
    if len(data) < _MIN_FRAME + 1 or crc16_x25(data[:-2]) != int.from_bytes(data[-2:], "little"):
        return None
    body = data[:-2]
    end = next((i for i in range(13, min(len(body), 70), 7) if body[i] & 1), None)  # extension bit
    if end is None or len(body) < end + 3:
        return None
    dest = _parse_address(body[0:7])
    src = _parse_address(body[7:14])
    if dest is None or src is None or body[end + 1] & ~0x10 != 0x03:
        return None
    return UiFrame(dest[0], dest[1], src[0], src[1], body[end + 3 :])


# ---------------------------------------------------------------------------------------- bit layer


def _to_bits(data: bytes) -> Bits:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")


def _stuff(bits: Bits) -> Bits:
    """Insert a 0 after every five consecutive 1s (counting restarts after the inserted 0)."""
    out: list[int] = []
    ones = 0
    for b in bits.tolist():
        out.append(b)
        ones = ones + 1 if b else 0
        if ones == 5:
            out.append(0)
            ones = 0
    return np.array(out, dtype=np.uint8)


def _scramble(x: Bits) -> Bits:
    """``y[n] = x[n] ^ y[n-12] ^ y[n-17]`` from an all-zero register, twelve bits per step."""
    y = np.zeros(len(x) + 17, dtype=np.uint8)  # y[0:17] is the (zero) register history
    y[17:] = x
    for s in range(17, len(y), 12):
        e = min(s + 12, len(y))
        y[s:e] ^= y[s - 12 : e - 12] ^ y[s - 17 : e - 17]
    out: Bits = y[17:]
    return out


def _descramble(y: Bits) -> Bits:
    padded = np.concatenate((np.zeros(17, dtype=np.uint8), y))
    out: Bits = y ^ padded[5:-12] ^ padded[:-17]
    return out


def line_bits(frames: Sequence[bytes], *, preamble_flags: int = 16, postamble_flags: int = 4) -> Bits:
    """Frames (FCS included) -> flags + stuffed frames -> NRZI -> G3RUH scrambler: the bits that key GMSK."""
    parts: list[Bits] = [np.tile(_FLAG_BITS, max(preamble_flags, 1))]
    for i, frame in enumerate(frames):
        if i:
            parts.append(np.tile(_FLAG_BITS, _GAP_FLAGS))
        parts.append(_stuff(_to_bits(frame)))
    parts.append(np.tile(_FLAG_BITS, max(postamble_flags, 1)))
    hdlc = np.concatenate(parts).astype(np.uint8)
    levels = np.cumsum(hdlc == 0, dtype=np.int64) & 1  # NRZI: toggle on 0, start level 0
    return _scramble(levels.astype(np.uint8))


def burst_duration_s(n_bits: int) -> float:
    """Air time of ``n_bits`` at 9600 bit/s."""
    return n_bits / BIT_RATE


# -------------------------------------------------------------------------------------------- GMSK


def _pulse_integral(t: Floats, sigma: float) -> Floats:
    """Integral of (one-bit rectangle * unit-area Gaussian) from -inf to t; time in bits."""
    from scipy.special import ndtr  # lazy: scipy.special costs ~0.3 s to import

    def h(u: Floats) -> Floats:
        z = u / sigma
        out: Floats = u * ndtr(z) + sigma * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        return out

    return h(t) - h(t - 1.0)


def _fine_phase(bits: npt.NDArray[np.uint8], bt: float) -> Floats:
    """Phase at t = k/_FINE bits, k = 0 .. len(bits)*_FINE, starting at 0."""
    n = len(bits)
    sigma = math.sqrt(math.log(2.0)) / (2.0 * math.pi * bt)  # Gaussian std in bits
    span = math.ceil(5.0 * sigma) + 1  # pulse reaches this many bits before and after its own bit
    # inc[j, s]: phase added in sub-interval s of bit (k + j - span) by a +1 symbol k (in units of pi*h*2).
    edges = np.arange(-span * _FINE, (span + 1) * _FINE + 1, dtype=np.float64) / _FINE
    g = _pulse_integral(edges, sigma)
    inc = np.diff(g).reshape(2 * span + 1, _FINE)
    a = 2.0 * np.asarray(bits, dtype=np.float64) - 1.0
    acc = np.zeros((n + 2 * span, _FINE))
    for j in range(2 * span + 1):
        acc[j : j + n] += a[:, None] * inc[j]
    steps = acc[span : span + n].reshape(-1) * (math.pi * MOD_INDEX)
    phase: Floats = np.concatenate(([0.0], np.cumsum(steps)))
    return phase


def gmsk_phase_at(
    bits: npt.NDArray[np.uint8], t: npt.NDArray[np.float64], *, bt: float = 0.5
) -> npt.NDArray[np.float64]:
    """Carrier phase (rad; h = 0.5, Gaussian ``bt``) of the burst keyed by ``bits`` at times ``t`` (s).

    ``t = 0`` is the start of the first bit; outside the burst the phase is held at its end values.
    """
    tt = np.asarray(t, dtype=np.float64)
    if len(bits) == 0:
        return np.zeros(tt.shape)
    fine = _fine_phase(bits, bt)
    grid = np.arange(len(fine), dtype=np.float64) / (_FINE * BIT_RATE)
    out: Floats = np.interp(tt, grid, fine)
    return out


def modulate(bits: npt.NDArray[np.uint8], fs: float, *, bt: float = 0.5) -> npt.NDArray[np.complex64]:
    """Unit-amplitude complex baseband of the GMSK burst at sample rate ``fs`` (samples 0 .. ceil(T·fs)-1)."""
    n = math.ceil(burst_duration_s(len(bits)) * fs - 1e-9)
    phase = gmsk_phase_at(bits, np.arange(n, dtype=np.float64) / fs, bt=bt)
    out: npt.NDArray[np.complex64] = np.exp(1j * phase).astype(np.complex64)
    return out


# -------------------------------------------------------------------------------------- demodulator


def _segments(mag: npt.NDArray[np.floating], min_gap: int) -> list[tuple[int, int]]:
    """Active spans of a capture, split at runs of at least ``min_gap`` near-zero samples."""
    if len(mag) == 0:
        return []
    peak = float(mag.max())
    if peak <= 0.0:
        return []
    quiet = np.concatenate(([True], mag < 0.1 * peak, [True])).astype(np.int8)
    change = np.flatnonzero(np.diff(quiet))
    starts, ends = change[0::2], change[1::2]  # active runs [start, end)
    spans: list[tuple[int, int]] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if spans and s - spans[-1][1] < min_gap:
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s, e))
    return spans


def _hard_bits(iq: npt.NDArray[np.complexfloating], fs: float) -> Bits:
    """One clean burst -> hard line bits (polarity arbitrary)."""
    sps = fs / BIT_RATE
    x = np.asarray(iq, dtype=np.complex128)
    if len(x) < 4 * sps:
        return np.zeros(0, dtype=np.uint8)
    step = np.angle(x[1:] * np.conj(x[:-1]))  # rad/sample
    offset = float(step.mean())  # coarse: mean frequency (scrambled data is balanced)
    phase = np.concatenate(([0.0], np.cumsum(step - offset)))
    idx = np.arange(len(phase), dtype=np.float64)
    n_bits = int((len(phase) - 1 - sps) // sps)
    if n_bits < 16:
        return np.zeros(0, dtype=np.uint8)
    k = np.arange(n_bits, dtype=np.float64) * sps
    best: Floats | None = None
    best_metric = -1.0
    for tau in np.arange(_TIMING_PHASES) * (sps / _TIMING_PHASES):
        # Phase advance over one bit ending at the candidate boundary (integrate and dump).
        soft = np.interp(k + tau + sps, idx, phase) - np.interp(k + tau, idx, phase)
        metric = float(np.mean(np.abs(soft)))
        if metric > best_metric:
            best, best_metric = soft, metric
    assert best is not None
    # Refine the offset: midpoint of the two symbol clusters (robust to unequal numbers of 1s and 0s).
    thr = 0.0
    for _ in range(3):
        hi, lo = best[best > thr], best[best <= thr]
        if len(hi) == 0 or len(lo) == 0:
            break
        thr = 0.5 * (float(hi.mean()) + float(lo.mean()))
    out: Bits = (best > thr).astype(np.uint8)
    return out


def _frames_from_bits(bits: Bits) -> list[bytes]:
    """Flag-delimited spans with whole bytes after unstuffing and a valid FCS."""
    if len(bits) < 16:
        return []
    win = np.lib.stride_tricks.sliding_window_view(bits, 8)
    flags = np.flatnonzero((win == _FLAG_BITS).all(axis=1))
    out: list[bytes] = []
    for f0, f1 in zip(flags[:-1].tolist(), flags[1:].tolist(), strict=True):
        span = bits[f0 + 8 : f1]
        if len(span) < 8 * _MIN_FRAME or len(span) > 8 * _MAX_FRAME * 6 // 5 + 8:
            continue
        code = np.lib.stride_tricks.sliding_window_view(span, 6).astype(np.int64) @ (1 << np.arange(6))
        if bool((code == 0b111111).any()):
            continue  # six or more 1s inside: abort
        stuffed = np.flatnonzero(code == 0b011111) + 5  # the 0 after five 1s
        data = np.delete(span, stuffed)
        if len(data) % 8 or not _MIN_FRAME <= len(data) // 8 <= _MAX_FRAME:
            continue
        frame = np.packbits(data, bitorder="little").tobytes()
        if crc16_x25(frame[:-2]) == int.from_bytes(frame[-2:], "little"):
            out.append(frame)
    return out


def demodulate_frames(iq: npt.NDArray[np.complexfloating], fs: float) -> list[bytes]:
    """Frames (FCS included, FCS valid) in a clean GMSK/FSK capture at ``fs`` >= 4·BIT_RATE, offset <= ~2 kHz.

    Bursts separated by at least two bits of silence (zero samples) are timed independently.
    """
    if fs < 4.0 * BIT_RATE:
        raise ValueError(f"sample rate {fs} below 4 x bit rate")
    x = np.asarray(iq)
    frames: list[bytes] = []
    for s, e in _segments(np.abs(x), math.ceil(2 * fs / BIT_RATE)):
        line = _hard_bits(x[s:e], fs)
        if len(line) == 0:
            continue
        levels = _descramble(line)
        hdlc = (1 ^ levels ^ np.concatenate((levels[:1], levels[:-1]))).astype(np.uint8)  # NRZI decode
        frames.extend(_frames_from_bits(hdlc))
    return frames
