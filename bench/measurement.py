"""Measurements, limits and verdicts.

A *limit* is data: a named quantity with units, a low and/or high bound for a model level, and the requirement
IDs it verifies (it lives in the limits file, never in test code). A *measurement* is a value taken by a test
step and judged against its limit, once, at the moment it is taken; the record is immutable from then on.

Verdict: `fail` outside the bounds, or when the value is not a finite number (NaN or ±inf: an instrument's
garbage reply never passes, not even a one-sided limit); `marginal` inside but closer to a bound than the
marginal fraction of the span (for a one-sided limit, of the bound's magnitude); otherwise `pass`.
Margin is the signed distance to the nearest bound in the measurement's units (negative = outside), and
margin % relates it to the span, so reviewers see how much headroom a unit really has.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple


class Verdict(StrEnum):
    PASS = "pass"
    MARGINAL = "marginal"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    units: str
    low: float | None = None
    high: float | None = None
    requirements: tuple[str, ...] = ()
    description: str = ""
    marginal_fraction: float = 0.05

    scale: float = field(init=False, repr=False, compare=False)
    """What margin % is relative to: the span, or the magnitude of a one-sided bound (computed once)."""

    def __post_init__(self) -> None:
        for bound in (self.low, self.high):
            if bound is not None and not math.isfinite(bound):
                raise ValueError(
                    f"limit {self.name}: bound {bound} is not a finite number; leave it out for a one-sided limit"
                )
        if self.low is None and self.high is None:
            raise ValueError(f"limit {self.name}: needs a low and/or a high bound")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"limit {self.name}: low {self.low} is above high {self.high}")
        if self.low is not None and self.high is not None:
            scale = self.high - self.low
        else:
            scale = abs(self.low if self.low is not None else self.high)  # type: ignore[arg-type]
        object.__setattr__(self, "scale", scale)  # frozen: set once, here

    def judge(self, value: float) -> tuple[Verdict, float, float | None]:
        """(verdict, margin in units, margin as % of scale or None when the scale is zero)."""
        if value - value != 0:  # NaN or ±inf (inf - inf is NaN): not a measurement, whatever the bounds
            return Verdict.FAIL, math.nan, None
        low, high = self.low, self.high
        if low is None:
            assert high is not None
            margin = high - value
        elif high is None:
            margin = value - low
        else:
            margin = min(value - low, high - value)
        scale = self.scale
        pct = 100.0 * margin / scale if scale > 0 else None
        if margin < 0:
            return Verdict.FAIL, margin, pct
        if scale > 0 and margin < self.marginal_fraction * scale:
            return Verdict.MARGINAL, margin, pct
        return Verdict.PASS, margin, pct

    def describe(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "+inf" if self.high is None else f"{self.high:g}"
        return f"[{lo}, {hi}] {self.units}"


class Measurement(NamedTuple):
    """One judged value. A NamedTuple: immutable like a frozen dataclass, but about 10× cheaper to create,
    which matters on the per-measurement hot path."""

    name: str
    value: float
    units: str
    low: float | None
    high: float | None
    verdict: Verdict
    margin: float
    margin_pct: float | None
    requirements: tuple[str, ...]
    test_id: str
    time: str
    description: str = ""
    uncertainty: float | None = None
    extra: Mapping[str, object] | None = None

    @property
    def passed(self) -> bool:
        return self.verdict is not Verdict.FAIL

    def result_text(self) -> str:
        """The value against its limits and the verdict: ``2.67 A [-inf, 3.3] -> PASS``."""
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "+inf" if self.high is None else f"{self.high:g}"
        return f"{self.value:.6g} {self.units} [{lo}, {hi}] -> {self.verdict.value.upper()}"

    def summary(self) -> str:
        """``EPS.IDLE_CURRENT = 2.67 A [-inf, 3.3] -> PASS``."""
        return f"{self.name} = {self.result_text()}"
