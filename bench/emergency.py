"""The emergency stop as the bench process sees it: a latch, set once, that every powering action checks.

`bench safe` (any terminal, any user of the PC) makes the instruments safe itself *and* sets an interlock on
the bench in the reservation store (`bench.reservation`). The session holding the bench sees that interlock
at its next lease heartbeat and latches it here. From then on, in this process:

* every action that could power the DUT or radiate — supply output on, a voltage or current setting, an
  inrush capture, generator RF — raises `EmergencyStop` before anything is sent (`check()`);
* every await (`bench.waiting`) ends with `EmergencyStop` at its next poll instead of waiting out its timeout,
  and every wait on the satellite (woken through `on_latch`) at once;
* the running test fails with the stop's reason, the rest of the run is skipped, the verdict is ABORTED.

Switching things *off* is never refused. The latch is cleared only when a new session opens, and a new
session cannot open while the interlock is still set in the store (`bench safe --clear` clears it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["EmergencyStop", "StopRecord", "check", "latch", "latched", "on_latch", "reset"]


@dataclass(frozen=True, slots=True)
class StopRecord:
    """Who stopped the bench, from where, when and why."""

    who: str
    host: str
    time: str
    reason: str

    def describe(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        return f"emergency stop by {self.who}@{self.host} at {self.time}{why}"


class EmergencyStop(RuntimeError):
    """The bench was stopped by an operator; nothing may power the DUT until the interlock is cleared."""

    def __init__(self, record: StopRecord) -> None:
        super().__init__(f"{record.describe()} — the DUT stays off until `bench safe --clear`")
        self.record = record


_lock = threading.Lock()
_latched: StopRecord | None = None
_listeners: list[Callable[[], None]] = []


def latch(record: StopRecord) -> bool:
    """Latch the stop; True the first time (a later stop keeps the first record). Wakes every listener, so
    that a wait blocked on a condition (the satellite's) ends now instead of at its timeout."""
    global _latched
    with _lock:
        if _latched is not None:
            return False
        _latched = record
        listeners = tuple(_listeners)
    for wake in listeners:
        wake()
    return True


def on_latch(wake: Callable[[], None]) -> Callable[[], None]:
    """Call ``wake()`` when the stop latches; returns the call that unsubscribes it."""
    with _lock:
        _listeners.append(wake)

    def unsubscribe() -> None:
        with _lock:
            if wake in _listeners:
                _listeners.remove(wake)

    return unsubscribe


def latched() -> StopRecord | None:
    return _latched


def check() -> None:
    """Raise EmergencyStop if the bench was stopped (a global read: cheap enough for every poll)."""
    record = _latched
    if record is not None:
        raise EmergencyStop(record)


def reset() -> None:
    """Forget the latch: only for a new session, which the store lets open once the interlock is cleared."""
    global _latched
    with _lock:
        _latched = None
