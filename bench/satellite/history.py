"""What has arrived from the satellite, and waiting for it: the bench's histories of the link.

The receive thread (:mod:`bench.satellite.link`) files everything it decodes here, holding ONE
``threading.Condition`` — :attr:`History.cond` — and notifies it once per packet. Every wait of the package
(telemetry, events, verification reports, CSP replies, the link counters) is :meth:`History.wait` on that
condition: it checks, sleeps until the next arrival, checks again, and ends the moment what it awaits is filed.
Nothing polls. A wait that runs out raises :class:`SatelliteTimeout` saying what was awaited and what was
last seen; a broken link (:meth:`History.link_down`) ends every wait at once with :class:`LinkDown`.

The stores, all guarded by the condition:

* telemetry — per mnemonic (``EPS.VBAT``) a bounded history of :class:`TmSample` and a count of every sample
  ever received, so an await keeps its place (a cursor) even when the history overflows;
* events — :class:`ReceivedEvent` in arrival order, numbered: :meth:`History.event_mark` is a bookmark;
* replies — HK reports counted per (node, SID), TM[17,2] pongs per node, CSP service replies per
  (source, source port, destination port).
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from bench import emergency
from bench.icd import EventRecord, Icd, Value
from bench.link.csp import CspPacket
from bench.predicates import Predicate, as_predicate
from bench.waiting import AwaitTimeout

__all__ = [
    "DEFAULT_TIMEOUTS",
    "EVENTS",
    "HISTORY",
    "History",
    "LinkDown",
    "PredicateLike",
    "ReceivedEvent",
    "SatelliteTimeout",
    "Timeouts",
    "TmSample",
    "clock",
]

T = TypeVar("T")
C = TypeVar("C")

HISTORY = 1000  # samples kept per mnemonic
EVENTS = 10_000  # events kept
PredicateLike = Predicate | Callable[[Any], bool] | Value


class SatelliteTimeout(AwaitTimeout):
    """Nothing (or nothing matching) arrived in time; the message says what was awaited, last seen and what
    went wrong on the link meanwhile (a bus-off, lost fragments, a reboot) — the likely cause of the silence."""

    def __init__(self, what: str, timeout_s: float, last_seen: str, meanwhile: Sequence[str] = ()) -> None:
        super().__init__(what, timeout_s, last_seen)
        self.meanwhile = tuple(meanwhile)
        text = f"timed out after {timeout_s:g} s awaiting {what}; last seen: {last_seen}"
        if self.meanwhile:
            text += "; meanwhile the link saw: " + ", ".join(self.meanwhile)
        self.args = (text,)


class LinkDown(ConnectionError):
    """The CAN link broke; every wait fails at once with the reason instead of running into its timeout."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    acceptance_s: float = 2.0  # TC sent → TM[1,1]/[1,2]
    completion_s: float = 5.0  # acceptance → TM[1,7]/[1,8]
    service_s: float = 1.0  # CSP service request → reply
    tm_s: float = 5.0  # default for await_tm / await_event


DEFAULT_TIMEOUTS = Timeouts()


def clock(t: float) -> str:
    """UNIX seconds as the traces and messages show them: ``HH:MM:SS.mmm`` UTC."""
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M:%S.%f")[:-3]


@dataclass(frozen=True, slots=True)
class TmSample:
    """One value of one mnemonic as received. ``seq`` orders every sample of the session; ``index`` counts
    the samples of this mnemonic."""

    mnemonic: str
    value: Value
    time: float  # UNIX seconds, from the CAN frame that completed the packet
    monotonic: float
    seq: int
    index: int

    def __str__(self) -> str:
        value = f"{self.value:.6g}" if isinstance(self.value, float) else repr(self.value)
        return f"{self.mnemonic}={value} at {clock(self.time)}"


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """An event (TM[5,x]) with when it arrived."""

    mnemonic: str
    node: str
    event_id: int
    severity: str
    data: dict[str, Value]
    time: float
    index: int

    def __str__(self) -> str:
        data = ", ".join(f"{k}={v!r}" for k, v in self.data.items())
        return f"{self.mnemonic}({data}) [{self.severity}] at {clock(self.time)}"


def _waker(ref: weakref.ref[History]) -> Callable[[], None]:
    """Wakes the history's waits when the emergency stop latches (weak: a dropped history is not kept alive)."""

    def wake() -> None:
        history = ref()
        if history is not None:
            with history.cond:
                history.cond.notify_all()

    return wake


class History:
    """The stores of what arrived, the one condition that guards them, and every await on them.

    ``file_*`` methods are the receive thread's, called with :attr:`cond` held; everything else takes it.
    """

    def __init__(self, icd: Icd, *, timeouts: Timeouts = DEFAULT_TIMEOUTS, depth: int = HISTORY) -> None:
        self.icd = icd
        self.timeouts = timeouts  # the defaults of every await of the package
        self.cond = threading.Condition()  # wraps an RLock: a check may take it again
        self._unsubscribe = emergency.on_latch(_waker(weakref.ref(self)))
        self.link_error: str | None = None
        self._depth = depth
        self._seq = 0
        self._tm: dict[str, deque[TmSample]] = {}
        self._tm_counts: dict[str, int] = {}
        self.events: deque[ReceivedEvent] = deque(maxlen=EVENTS)
        self._event_count = 0
        self._hk_reports: dict[tuple[str, int], int] = {}
        self._pongs: dict[str, list[float]] = {}
        self._service_replies: dict[tuple[int, int, int], deque[CspPacket]] = {}
        # Set by the link: witness(lookback_s) marks "now" and returns what went wrong on it since (for a
        # timeout's message).
        self.witness: Callable[[float], Callable[[], list[str]]] | None = None

    # ------------------------------------------------------------------------------------------------
    # filing (receive thread, with cond held)
    # ------------------------------------------------------------------------------------------------
    def file_samples(self, values: Mapping[str, Value], t: float) -> None:
        """Telemetry values that came in one packet (an HK or a parameter report)."""
        now = time.monotonic()
        counts = self._tm_counts
        tm = self._tm
        for mnemonic, value in values.items():
            self._seq += 1
            index = counts.get(mnemonic, 0)
            counts[mnemonic] = index + 1
            store = tm.get(mnemonic)
            if store is None:
                store = tm[mnemonic] = deque(maxlen=self._depth)
            store.append(TmSample(mnemonic, value, t, now, self._seq, index))

    def file_hk(self, node: str, sid: int, values: Mapping[str, Value], t: float) -> None:
        """One HK report (TM[3,25]) of ``node``'s structure ``sid``, decoded."""
        key = (node, sid)
        self._hk_reports[key] = self._hk_reports.get(key, 0) + 1
        self.file_samples(values, t)

    def file_event(self, record: EventRecord, t: float) -> None:
        self.events.append(
            ReceivedEvent(record.mnemonic, record.node, record.event_id, record.severity, record.data, t,
                          self._event_count)
        )  # fmt: skip
        self._event_count += 1

    def file_pong(self, node: str) -> None:
        self._pongs.setdefault(node, []).append(time.monotonic())

    def file_service_reply(self, src: int, sport: int, dport: int, packet: CspPacket) -> None:
        self._service_replies.setdefault((src, sport, dport), deque(maxlen=8)).append(packet)

    def close(self) -> None:
        """No more waits: stop listening for the emergency stop."""
        self._unsubscribe()

    def link_down(self, reason: str) -> None:
        """The link is gone: every wait, now and later, fails at once with ``reason``."""
        with self.cond:
            self.link_error = reason
            self.cond.notify_all()

    # ------------------------------------------------------------------------------------------------
    # the one wait
    # ------------------------------------------------------------------------------------------------
    def wait(self, check: Callable[[], T | None], timeout_s: float, what: str, last_seen: Callable[[], str]) -> T:
        """Until ``check()`` (called with :attr:`cond` held, at the start and after each arrival) returns
        something other than None; that is returned. Raises :class:`SatelliteTimeout` naming ``what`` and
        ``last_seen()``, or :class:`LinkDown`."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            meanwhile = self.witness(timeout_s) if self.witness is not None else None
            while True:
                result = check()
                if result is not None:
                    return result
                emergency.check()  # a stop ends the wait now (latching wakes the condition), not at its timeout
                if self.link_error is not None:
                    raise LinkDown(f"CAN link down while awaiting {what}: {self.link_error}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SatelliteTimeout(what, timeout_s, last_seen(), meanwhile() if meanwhile else ())
                self.cond.wait(remaining)

    def await_counters(self, read: Callable[[], C], predicate: Callable[[C], bool], timeout_s: float, what: str) -> C:
        """Until the snapshot ``read()`` (the link's counters) satisfies ``predicate``; returns that snapshot."""

        def check() -> C | None:
            snapshot = read()
            return snapshot if predicate(snapshot) else None

        return self.wait(check, timeout_s, what, lambda: str(read()))

    # ------------------------------------------------------------------------------------------------
    # telemetry
    # ------------------------------------------------------------------------------------------------
    def latest(self, mnemonic: str) -> TmSample | None:
        """The last sample of ``mnemonic`` received so far (None if none yet)."""
        self.icd.tm_point(mnemonic)  # unknown mnemonic → a clear error with near matches
        with self.cond:
            store = self._tm.get(mnemonic)
            return store[-1] if store else None

    def latest_all(self) -> list[TmSample]:
        """The last sample of every mnemonic received so far, in the order they first arrived (one pass under
        the lock over a few dozen values: cheap enough for the live page to ask every second)."""
        with self.cond:
            return [store[-1] for store in self._tm.values() if store]

    def history(self, mnemonic: str) -> list[TmSample]:
        self.icd.tm_point(mnemonic)
        with self.cond:
            return list(self._tm.get(mnemonic, ()))

    def sample_count(self, mnemonic: str) -> int:
        """How many samples of ``mnemonic`` ever arrived (call with :attr:`cond` held to compare later)."""
        with self.cond:
            return self._tm_counts.get(mnemonic, 0)

    def last_value(self, mnemonic: str) -> Value:
        """The value of the last sample of ``mnemonic``, which must have arrived."""
        with self.cond:
            return self._tm[mnemonic][-1].value

    def await_tm(
        self,
        mnemonic: str,
        predicate: PredicateLike | None = None,
        timeout_s: float | None = None,
        *,
        fresh: bool = True,
    ) -> TmSample:
        """The first sample of ``mnemonic`` satisfying ``predicate`` (documented on :meth:`Satellite.await_tm`)."""
        point = self.icd.tm_point(mnemonic)
        pred = as_predicate(predicate) if predicate is not None else None
        timeout = self.timeouts.tm_s if timeout_s is None else timeout_s
        with self.cond:
            store = self._tm.get(mnemonic)
            latest = store[-1] if store else None
            cursor = self._tm_counts.get(mnemonic, 0)
            if latest is not None and pred is not None:
                pred.prime(latest.value)
            if not fresh and latest is not None:
                cursor -= 1

        def check() -> TmSample | None:
            nonlocal cursor
            samples = self._tm.get(mnemonic)
            if not samples:
                return None
            first_kept = samples[-1].index - len(samples) + 1
            if cursor < first_kept:  # history overflowed while we slept: judge what is left
                cursor = first_kept
            while cursor <= samples[-1].index:
                sample = samples[cursor - first_kept]
                cursor += 1
                if pred is None or pred(sample.value):
                    return sample
            return None

        def last_seen() -> str:
            samples = self._tm.get(mnemonic)
            if not samples:
                where = f"HK SID {point.sid}" if point.sid is not None else "a parameter report"
                return f"no {mnemonic} received at all (it comes in {where} of {point.node})"
            return str(samples[-1])

        what = f"{mnemonic} {pred}" if pred is not None else f"a new {mnemonic} sample"
        return self.wait(check, timeout, what, last_seen)

    # ------------------------------------------------------------------------------------------------
    # events
    # ------------------------------------------------------------------------------------------------
    def await_event(
        self,
        mnemonic: str,
        predicate: PredicateLike | None = None,
        timeout_s: float | None = None,
        *,
        since: int | None = None,
    ) -> ReceivedEvent:
        """The first event ``mnemonic`` (whose data satisfies ``predicate``, given the data dict) arriving
        after the call — or after event number ``since`` (:meth:`event_mark`), to catch one triggered before."""
        self.icd.event(mnemonic)
        pred = as_predicate(predicate) if predicate is not None else None
        timeout = self.timeouts.tm_s if timeout_s is None else timeout_s
        with self.cond:
            cursor = self._event_count if since is None else since

        def check() -> ReceivedEvent | None:
            nonlocal cursor
            skip = max(0, len(self.events) - (self._event_count - cursor))
            for event in itertools.islice(self.events, skip, None):
                cursor = event.index + 1
                if event.mnemonic == mnemonic and (pred is None or pred(event.data)):
                    return event
            cursor = self._event_count
            return None

        def last_seen() -> str:
            if not self.events:
                return "no event received at all"
            return "; ".join(str(e) for e in list(self.events)[-3:])

        what = f"event {mnemonic}" + (f" with data matching {pred}" if pred is not None else "")
        return self.wait(check, timeout, what, last_seen)

    def event_mark(self) -> int:
        """A bookmark in the event stream for :meth:`await_event` (``since=``)."""
        with self.cond:
            return self._event_count

    def events_since(self, mark: int) -> list[ReceivedEvent]:
        """The events received since :meth:`event_mark` returned ``mark`` (those still kept)."""
        with self.cond:
            return [e for e in self.events if e.index >= mark]

    def events_named(self, mnemonic: str) -> list[ReceivedEvent]:
        with self.cond:
            return [e for e in self.events if e.mnemonic == mnemonic]

    # ------------------------------------------------------------------------------------------------
    # replies: HK reports, pongs, CSP service replies
    # ------------------------------------------------------------------------------------------------
    def hk_report_count(self, node: str, sid: int) -> int:
        with self.cond:
            return self._hk_reports.get((node, sid), 0)

    def await_hk_report(self, node: str, sid: int, before: int, timeout_s: float, what: str,
                        last_seen: Callable[[], str]) -> None:  # fmt: skip
        """Until more than ``before`` (:meth:`hk_report_count`) HK reports of (``node``, ``sid``) arrived."""
        key = (node, sid)
        self.wait(lambda: True if self._hk_reports.get(key, 0) > before else None, timeout_s, what, last_seen)

    def pong_count(self, node: str) -> int:
        with self.cond:
            return len(self._pongs.get(node, ()))

    def await_pong(self, node: str, before: int, timeout_s: float, what: str, last_seen: Callable[[], str]) -> float:
        """The monotonic arrival time of ``node``'s pong number ``before`` (:meth:`pong_count`)."""
        return self.wait(
            lambda: self._pongs[node][before] if len(self._pongs.get(node, ())) > before else None,
            timeout_s,
            what,
            last_seen,
        )

    def forget_service_reply(self, src: int, sport: int, dport: int) -> None:
        """Drop what came to a port before a new request from it: a stale late reply is not its answer."""
        with self.cond:
            self._service_replies.pop((src, sport, dport), None)

    def await_service_reply(self, src: int, sport: int, dport: int, timeout_s: float, what: str,
                            last_seen: Callable[[], str]) -> CspPacket:  # fmt: skip
        """The next CSP reply from ``src``'s ``sport`` to the bench's ``dport`` (taken off the store)."""
        key = (src, sport, dport)
        replies = self._service_replies
        return self.wait(lambda: replies[key].popleft() if replies.get(key) else None, timeout_s, what, last_seen)
