"""PRBS generators, BER with pattern synchronisation, FER."""

from __future__ import annotations

import numpy as np
import pytest

from bench.dsp.ber import ber_against_pattern, ber_prbs, fer, prbs


@pytest.mark.parametrize(("order", "a", "b"), [(9, 5, 9), (15, 14, 15)])
def test_prbs_is_maximal_length(order: int, a: int, b: int) -> None:
    period = (1 << order) - 1
    s = prbs(order, 2 * period + 50)
    assert np.array_equal(s[:period], s[period : 2 * period])  # repeats after 2^n − 1
    assert int(s[:period].sum()) == 1 << (order - 1)  # one more 1 than 0s: maximal length
    n = np.arange(b, len(s))
    assert np.array_equal(s[n], s[n - a] ^ s[n - b])  # the O.150 recurrence
    assert s[:order].tolist() == [1] * order  # all-ones start


def test_ber_finds_phase_polarity_and_errors() -> None:
    rx = prbs(15, 100_000 + 1234)[1234:] ^ 1  # joins at phase 1234, inverted
    rx[::1000] ^= 1  # 100 errors
    result = ber_prbs(rx, 15)
    assert (result.offset, result.inverted, result.errors, result.bits) == (1234, True, 100, 100_000)
    assert result.ber == pytest.approx(1e-3)
    assert result.synchronised


def test_short_capture_and_unrelated_stream() -> None:
    rx = prbs(9, 700)[300:]
    assert ber_prbs(rx, 9).errors == 0 and ber_prbs(rx, 9).offset == 300
    junk = np.random.default_rng(0).integers(0, 2, 5000).astype(np.uint8)
    assert not ber_prbs(junk, 9).synchronised
    assert ber_against_pattern([1, 0, 0, 1, 0, 0], [0, 0, 1]).errors == 0


def test_fer_matches_frames_as_a_multiset() -> None:
    sent = [b"a", b"b", b"b", b"c"]
    result = fer(sent, [b"b", b"a", b"zz", b"a"])
    assert (result.sent, result.received, result.lost) == (4, 2, 2)
    assert result.fer == 0.5
