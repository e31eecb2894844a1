"""Verdicts and margins: the numbers a review signs."""

import math

import pytest

from bench.measurement import Limit, Verdict


def test_two_sided_pass_marginal_fail():
    lim = Limit("EPS.IDLE_CURRENT", "A", low=0.35, high=0.65, marginal_fraction=0.05)
    assert lim.judge(0.5)[0] is Verdict.PASS
    verdict, margin, pct = lim.judge(0.64)
    assert verdict is Verdict.MARGINAL
    assert margin == pytest.approx(0.01) and pct == pytest.approx(100 * 0.01 / 0.30)
    verdict, margin, _ = lim.judge(0.70)
    assert verdict is Verdict.FAIL and margin == pytest.approx(-0.05)
    assert lim.judge(0.30)[0] is Verdict.FAIL


def test_bounds_are_inclusive():
    lim = Limit("X.Y", "V", low=1.0, high=2.0, marginal_fraction=0.0)
    assert lim.judge(1.0)[0] is Verdict.PASS
    assert lim.judge(2.0)[0] is Verdict.PASS


def test_one_sided_limit_margin_relative_to_bound():
    lim = Limit("EPS.INRUSH_PEAK", "A", high=3.0, marginal_fraction=0.05)
    verdict, margin, pct = lim.judge(2.7)
    assert verdict is Verdict.PASS and margin == pytest.approx(0.3) and pct == pytest.approx(10.0)
    assert lim.judge(2.9)[0] is Verdict.MARGINAL


def test_nan_fails():
    verdict, margin, pct = Limit("X.Y", "V", low=0.0).judge(math.nan)
    assert verdict is Verdict.FAIL and math.isnan(margin) and pct is None


def test_limit_needs_a_bound_and_order():
    with pytest.raises(ValueError):
        Limit("X.Y", "V")
    with pytest.raises(ValueError):
        Limit("X.Y", "V", low=2, high=1)
