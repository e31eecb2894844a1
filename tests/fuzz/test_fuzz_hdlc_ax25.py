"""Fuzz: the 9600 bit/s downlink's bit layer (G3RUH, NRZI, HDLC deframing) and AX.25 frame parsing.

Any bit stream off the demodulator — noise, or real beacons with bit errors — goes through descrambling, NRZI
decoding and flag search without an exception; every candidate frame is whole bytes within the size bounds and
is exactly its span of the stream unstuffed. ``parse_frame`` returns a frame or raises :class:`Ax25Error` (its
documented error) for any bytes, including bytes that carry a correct FCS and so reach the address parsing. The
invertible steps (stuffing, NRZI, scrambler) invert for every input and register state.
"""

from __future__ import annotations

import contextlib

import numpy as np
from fuzz_strategies import bit_lists, bytes_or_mutation, fuzz
from hypothesis import given
from hypothesis import strategies as st

from bench.dsp import hdlc
from bench.dsp.ax25 import Ax25Error, Ax25Frame, build_ui_frame, crc16_x25, fcs_ok, parse_frame
from bench.dsp.modem import line_bits, line_to_payload_bits

callsigns = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), min_size=1, max_size=6)
ui_frames = st.builds(
    build_ui_frame,
    callsigns,
    callsigns,
    st.binary(max_size=64),
    dest_ssid=st.integers(0, 15),
    source_ssid=st.integers(0, 15),
    command=st.sampled_from((True, False, None)),
    repeaters=st.lists(st.tuples(callsigns, st.integers(0, 15)), max_size=3).map(tuple),
)


def deframe(payload: hdlc.Bits, min_bytes: int, max_bytes: int) -> list[Ax25Frame]:
    """The receive bit layer after NRZI: flag search, then FCS and AX.25 parsing, as ``modem.decode`` does."""
    frames = []
    for cand in hdlc.find_frames(payload, min_bytes, max_bytes):
        assert 0 <= cand.start_bit < cand.end_bit <= len(payload)
        assert min_bytes <= len(cand.data) <= max_bytes
        assert hdlc.bits_to_bytes(hdlc.unstuff(payload[cand.start_bit : cand.end_bit])) == cand.data
        if fcs_ok(cand.data):
            with contextlib.suppress(Ax25Error):
                frames.append(parse_frame(cand.data, check_fcs=False))
    return frames


@fuzz(100)
@given(bits=bit_lists, min_bytes=st.integers(0, 20), max_bytes=st.integers(0, 400))
def test_deframing_arbitrary_line_bits(bits: list[int], min_bytes: int, max_bytes: int) -> None:
    line = np.array(bits, dtype=np.uint8)
    deframe(line_to_payload_bits(line), min_bytes, max_bytes)
    deframe(line, min_bytes, max_bytes)  # also as if it were already descrambled


@fuzz(100)
@given(
    frames=st.lists(ui_frames, min_size=1, max_size=3),
    noise=bit_lists.map(lambda b: b[:200]),
    flips=st.lists(st.integers(0, 1 << 20), max_size=4),
    state=st.integers(0, (1 << 17) - 1),
)
def test_beacons_with_bit_errors(frames: list[bytes], noise: list[int], flips: list[int], state: int) -> None:
    """Beacons after line noise: decoded exactly when no bit is flipped; never an exception when some are."""
    line = np.concatenate((np.array(noise, dtype=np.uint8), line_bits(frames, scrambler_state=state)))
    for at in flips:
        line[at % len(line)] ^= 1
    decoded = deframe(line_to_payload_bits(line), hdlc.MIN_FRAME_BYTES, hdlc.MAX_FRAME_BYTES)
    if not flips:
        assert [f.encode() for f in decoded] == frames


@fuzz(100)
@given(body=bytes_or_mutation(ui_frames.map(lambda f: f[:-2]), garbage_max=80), check_fcs=st.booleans())
def test_parse_frame_with_a_correct_fcs(body: bytes, check_fcs: bool) -> None:
    fcs = crc16_x25(body)
    data = body + bytes((fcs & 0xFF, fcs >> 8))
    try:
        frame = parse_frame(data, check_fcs=check_fcs)
    except Ax25Error:
        return
    assert body.endswith(frame.info)
    assert len(frame.repeaters) <= 8


@fuzz(100)
@given(bits=bit_lists, state=st.integers(0, (1 << 17) - 1), level=st.integers(0, 1))
def test_bit_layer_steps_invert(bits: list[int], state: int, level: int) -> None:
    x = np.array(bits, dtype=np.uint8)
    assert np.array_equal(hdlc.unstuff(hdlc.stuff(x)), x)
    assert np.array_equal(hdlc.nrzi_decode(hdlc.nrzi_encode(x, level), level), x)
    assert np.array_equal(hdlc.descramble(hdlc.scramble(x, state), state), x)
