"""HDLC bit layer: LSB-first bytes, bit stuffing, deframing, NRZI and the G3RUH scrambler."""

from __future__ import annotations

import numpy as np

from bench.dsp import hdlc
from bench.dsp.ax25 import build_ui_frame


def reference_scrambler(bits: np.ndarray) -> np.ndarray:
    """y[n] = x[n] ^ y[n-12] ^ y[n-17], one bit at a time, zero initial register."""
    y: list[int] = []
    for n, x in enumerate(bits.tolist()):
        y.append(x ^ (y[n - 12] if n >= 12 else 0) ^ (y[n - 17] if n >= 17 else 0))
    return np.array(y, dtype=np.uint8)


def test_bytes_go_lsb_first() -> None:
    assert hdlc.bytes_to_bits(b"\x01\x80").tolist() == [1, 0, 0, 0, 0, 0, 0, 0] + [0] * 7 + [1]
    assert hdlc.bytes_to_bits(bytes([hdlc.FLAG])).tolist() == [0, 1, 1, 1, 1, 1, 1, 0]
    assert hdlc.bits_to_bytes(hdlc.bytes_to_bits(b"\x12\xab")) == b"\x12\xab"


def test_stuffing_0xff_and_0x7e() -> None:
    assert hdlc.stuff(hdlc.bytes_to_bits(b"\xff")).tolist() == [1, 1, 1, 1, 1, 0, 1, 1, 1]
    assert hdlc.stuff(hdlc.bytes_to_bits(b"\x7e")).tolist() == [0, 1, 1, 1, 1, 1, 0, 1, 0]
    ten_ones = np.ones(10, dtype=np.uint8)
    assert hdlc.stuff(ten_ones).tolist() == [1] * 5 + [0] + [1] * 5 + [0]
    # five 1s at the very end still get their 0 (the closing flag must not look like six 1s)
    assert hdlc.stuff(np.array([0, 1, 1, 1, 1, 1], dtype=np.uint8)).tolist() == [0, 1, 1, 1, 1, 1, 0]


def test_unstuff_inverts_stuff() -> None:
    rng = np.random.default_rng(1)
    for p in (0.5, 0.9):
        bits = (rng.random(5000) < p).astype(np.uint8)
        stuffed = hdlc.stuff(bits)
        assert hdlc.ones_run_length(stuffed).max() <= 5
        assert np.array_equal(hdlc.unstuff(stuffed), bits)


def test_frames_with_flag_and_ff_bytes_are_recovered() -> None:
    frames = [
        build_ui_frame("CQ", "OTSSAT", bytes([0x7E]) * 20, source_ssid=1),
        build_ui_frame("CQ", "OTSSAT", bytes([0xFF]) * 20 + b"\x7e\xff\x7e", source_ssid=1),
        build_ui_frame("CQ", "OTSSAT", b"", source_ssid=1),
    ]
    stream = hdlc.hdlc_stream(frames, preamble_flags=3, gap_flags=1, postamble_flags=1)
    found = hdlc.find_frames(stream)
    assert [c.data for c in found] == frames
    assert stream[found[0].start_bit - 8 : found[0].start_bit].tolist() == [0, 1, 1, 1, 1, 1, 1, 0]


def test_abort_discards_frame() -> None:
    frame = build_ui_frame("CQ", "OTSSAT", b"abort me please")
    bits = hdlc.hdlc_stream([frame], preamble_flags=2, postamble_flags=1)
    bits[60:68] = 1  # seven+ ones inside the frame = abort
    assert hdlc.find_frames(bits) == []


def test_nrzi_zero_is_a_transition() -> None:
    assert hdlc.nrzi_encode(np.array([0, 0, 1, 1, 0], dtype=np.uint8)).tolist() == [1, 0, 0, 0, 1]
    rng = np.random.default_rng(2)
    bits = rng.integers(0, 2, 1000).astype(np.uint8)
    levels = hdlc.nrzi_encode(bits)
    assert np.array_equal(hdlc.nrzi_decode(levels), bits)
    assert np.array_equal(hdlc.nrzi_decode(1 - levels, initial_level=1), bits)  # polarity does not matter


def test_scrambler_matches_the_recurrence_and_round_trips() -> None:
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2, 3000).astype(np.uint8)
    scrambled = hdlc.scramble(bits)
    assert np.array_equal(scrambled, reference_scrambler(bits))
    assert np.array_equal(hdlc.descramble(scrambled), bits)
    # a non-zero register on both sides, continuing a stream: split = whole
    state = int(rng.integers(0, 1 << 17))
    assert np.array_equal(hdlc.descramble(hdlc.scramble(bits, state), state), bits)
    first = hdlc.scramble(bits[:1000])
    reg = int(sum(int(b) << i for i, b in enumerate(first[::-1][:17])))
    assert np.array_equal(np.concatenate((first, hdlc.scramble(bits[1000:], reg))), scrambled)


def test_descrambler_self_synchronises_and_triples_errors() -> None:
    rng = np.random.default_rng(4)
    bits = rng.integers(0, 2, 2000).astype(np.uint8)
    scrambled = hdlc.scramble(bits, state=0x1ABCD)
    wrong = hdlc.descramble(scrambled, state=0)  # receiver joins mid-stream, register unknown
    assert np.array_equal(wrong[17:], bits[17:])
    hit = scrambled.copy()
    hit[500] ^= 1
    errors = np.flatnonzero(hdlc.descramble(hit, state=0x1ABCD) != bits)
    assert errors.tolist() == [500, 512, 517]
    # an inverted demodulator inverts the descrambler output; NRZI decoding then cancels it
    levels = hdlc.nrzi_encode(bits)
    line = hdlc.scramble(levels)
    assert np.array_equal(hdlc.nrzi_decode(hdlc.descramble(1 - line))[18:], bits[18:])
