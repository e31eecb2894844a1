"""Await a predicate with a timeout: the bench's only way to synchronise with the outside world.

Fixed sleeps hide races and waste time; polling a predicate returns as soon as the condition holds and,
when it never does, the error says what was awaited and what was last seen. An emergency stop
(`bench.emergency`) ends every wait at its next poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from bench import emergency

T = TypeVar("T")


class AwaitTimeout(TimeoutError):
    """The awaited condition did not hold within the timeout."""

    def __init__(self, what: str, timeout_s: float, last_seen: object) -> None:
        super().__init__(f"timed out after {timeout_s:g} s awaiting {what}; last seen: {last_seen!r}")
        self.what = what
        self.timeout_s = timeout_s
        self.last_seen = last_seen


def await_value(
    sample: Callable[[], T],
    predicate: Callable[[T], bool],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.01,
) -> T:
    """Sample until `predicate(sample())` holds; return that sample or raise AwaitTimeout."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while True:
        emergency.check()  # an operator's stop ends every wait at once, not after its timeout
        last = sample()
        if predicate(last):
            return last
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AwaitTimeout(what, timeout_s, last)
        # A poll interval, not a synchronisation sleep: the loop ends on the predicate, not on time.
        time.sleep(min(interval_s, remaining))


def await_true(condition: Callable[[], bool], *, timeout_s: float, what: str, interval_s: float = 0.01) -> None:
    """Wait until `condition()` is true."""
    await_value(condition, bool, timeout_s=timeout_s, what=what, interval_s=interval_s)
