"""Composable predicates over telemetry values, each with a description for timeout messages.

``satellite.await_tm("EPS.IBUS", within(0.4, 0.6), timeout_s=5)`` — and when it times out, the error says
"EPS.IBUS within 0.4..0.6" and the last value seen. Combine with ``all_of``, ``any_of``, ``not_`` or the
operators ``&``, ``|``, ``~``.

Most predicates look at one value. ``changed``, ``rising`` and ``falling`` compare with what they saw
before: the awaiting code *primes* them with the value already known when the wait starts (so
``changed()`` means "different from now"), and feeds them every later sample in order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = [
    "Predicate",
    "all_of",
    "any_of",
    "as_predicate",
    "changed",
    "equals",
    "falling",
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "not_",
    "rising",
    "satisfies",
    "within",
]

_UNSET: Any = object()


class Predicate:
    """A test on one value with a readable description. Subclasses override ``test``."""

    def __init__(self, description: str) -> None:
        self.description = description

    def test(self, value: Any) -> bool:
        raise NotImplementedError

    def prime(self, value: Any) -> None:
        """The value known when a wait starts; only history-aware predicates care."""

    def __call__(self, value: Any) -> bool:
        try:
            return bool(self.test(value))
        except TypeError:  # e.g. comparing an enum name with a number: simply not satisfied
            return False

    def __str__(self) -> str:
        return self.description

    def __repr__(self) -> str:
        return f"<predicate {self.description}>"

    def __and__(self, other: Predicate) -> Predicate:
        return all_of(self, other)

    def __or__(self, other: Predicate) -> Predicate:
        return any_of(self, other)

    def __invert__(self) -> Predicate:
        return not_(self)


class _Fn(Predicate):
    def __init__(self, description: str, fn: Callable[[Any], bool]) -> None:
        super().__init__(description)
        self._fn = fn

    def test(self, value: Any) -> bool:
        return self._fn(value)


def satisfies(fn: Callable[[Any], bool], description: str | None = None) -> Predicate:
    """Any callable as a predicate."""
    return _Fn(description or str(getattr(fn, "__name__", "a condition")), fn)


def as_predicate(p: Predicate | Callable[[Any], bool] | Any) -> Predicate:
    """A predicate as is, a callable wrapped, anything else means ``equals(it)``."""
    if isinstance(p, Predicate):
        return p
    if callable(p):
        return satisfies(p)
    return equals(p)


def equals(expected: Any, *, tol: float = 0.0) -> Predicate:
    if tol:
        return _Fn(f"== {expected!r} ± {tol:g}", lambda v: abs(v - expected) <= tol)
    return _Fn(f"== {expected!r}", lambda v: v == expected)


def within(lo: float, hi: float) -> Predicate:
    if lo > hi:
        raise ValueError(f"within({lo}, {hi}): low bound above high bound")
    return _Fn(f"within {lo:g}..{hi:g}", lambda v: lo <= v <= hi)


def greater(x: float) -> Predicate:
    return _Fn(f"> {x:g}", lambda v: v > x)


def greater_equal(x: float) -> Predicate:
    return _Fn(f">= {x:g}", lambda v: v >= x)


def less(x: float) -> Predicate:
    return _Fn(f"< {x:g}", lambda v: v < x)


def less_equal(x: float) -> Predicate:
    return _Fn(f"<= {x:g}", lambda v: v <= x)


class _Changed(Predicate):
    def __init__(self, from_: Any) -> None:
        super().__init__("changed" if from_ is _UNSET else f"changed from {from_!r}")
        self._base = from_

    def prime(self, value: Any) -> None:
        if self._base is _UNSET:
            self._base = value

    def test(self, value: Any) -> bool:
        if self._base is _UNSET:  # nothing known before: the first value is the baseline
            self._base = value
            return False
        return bool(value != self._base)


def changed(from_: Any = _UNSET) -> Predicate:
    """Different from ``from_``, or from the value known when the wait started."""
    return _Changed(from_)


class _Trend(Predicate):
    def __init__(self, rising: bool, by: float) -> None:
        word = "rising" if rising else "falling"
        super().__init__(word + (f" by more than {by:g}" if by else ""))
        self._rising = rising
        self._by = by
        self._last: Any = _UNSET

    def prime(self, value: Any) -> None:
        self._last = value

    def test(self, value: Any) -> bool:
        last, self._last = self._last, value
        if last is _UNSET or (isinstance(value, float) and math.isnan(value)):
            return False
        return bool(value - last > self._by if self._rising else last - value > self._by)


def rising(by: float = 0.0) -> Predicate:
    """Greater than the previous sample (by more than ``by``)."""
    return _Trend(True, by)


def falling(by: float = 0.0) -> Predicate:
    """Less than the previous sample (by more than ``by``)."""
    return _Trend(False, by)


class _All(Predicate):
    def __init__(self, parts: tuple[Predicate, ...]) -> None:
        super().__init__(" and ".join(f"({p})" for p in parts))
        self.parts = parts

    def prime(self, value: Any) -> None:
        for p in self.parts:
            p.prime(value)

    def test(self, value: Any) -> bool:
        # Every part sees every value (no short-circuit), so history-aware parts stay in step.
        return all([p(value) for p in self.parts])


class _Any(_All):
    def __init__(self, parts: tuple[Predicate, ...]) -> None:
        super().__init__(parts)
        self.description = " or ".join(f"({p})" for p in parts)

    def test(self, value: Any) -> bool:
        return any([p(value) for p in self.parts])


def all_of(*parts: Predicate | Callable[[Any], bool] | Any) -> Predicate:
    return _All(tuple(as_predicate(p) for p in parts))


def any_of(*parts: Predicate | Callable[[Any], bool] | Any) -> Predicate:
    return _Any(tuple(as_predicate(p) for p in parts))


class _Not(Predicate):
    def __init__(self, inner: Predicate) -> None:
        super().__init__(f"not ({inner})")
        self.inner = inner

    def prime(self, value: Any) -> None:
        self.inner.prime(value)

    def test(self, value: Any) -> bool:
        return not self.inner(value)


def not_(p: Predicate | Callable[[Any], bool] | Any) -> Predicate:
    return _Not(as_predicate(p))
