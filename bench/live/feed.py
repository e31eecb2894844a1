"""What the live page shows, gathered off the run's hot path.

The run does not push anything for the page: every record the page needs is already in the run's journal,
written unbuffered the moment it is taken (bench/journal.py). The server's thread tails that file in batches
(:class:`JournalTail`) and hands the new lines on as they are, undecoded; the power monitor's samples are read
the same way, by index (``PowerMonitor.samples_since``). What the journal does not hold is set here by the
pytest side, as plain attribute writes: the collected test list, the running test's activity, the final
verdict. So the cost of the live view to a measurement is nil (benchmarks/bench_live.py measures it).

For a client that connects late the feed keeps a compact state to replay: every journal record but the
measurements, the running test's measurements (bounded), the last minutes of power samples.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.live.prompts import PromptSlot

__all__ = ["Event", "JournalTail", "LiveFeed", "SampleSource"]

REPLAY_MEASUREMENTS = 5000  # measurements of the running test a late client gets (the journal has all of them)
REPLAY_RECORDS = 20000  # other journal records kept for late clients (a few per test)
POWER_KEPT = 6000  # power samples kept for the chart (5 min at 20 Hz)
_MEASUREMENT = b'{"kind":"measurement"'
_TEST_START = b'{"kind":"test_start"'

Event = tuple[str, str]
"""(event name, JSON data) as the page receives it (server-sent events)."""


class SampleSource(Protocol):
    """The power monitor as the feed reads it (bench.power_monitor.PowerMonitor)."""

    @property
    def roles(self) -> tuple[str, ...]: ...

    def samples_since(self, start: int) -> Sequence[Any]: ...


class JournalTail:
    """The lines appended to a journal since the last read; a line still being written waits for its end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pos = 0
        self._partial = b""

    def read_lines(self) -> list[bytes]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._pos)
                data = f.read()
        except FileNotFoundError:  # the run has not started its journal yet
            return []
        if not data:
            return []
        self._pos += len(data)
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        return [line for line in lines if line]


@dataclass
class LiveFeed:
    """The page's data for one run (``journal`` given) or for a bench without a run (``view`` given)."""

    run_id: str = ""
    journal: Path | None = None
    view: Callable[[], dict[str, Any]] | None = None
    """`bench view`: the benches and the last runs, as plain data (refreshed every few seconds)."""
    prompts: PromptSlot = field(default_factory=PromptSlot)
    controls: bool = False
    """Whether this server takes control actions at all (a run: yes, with the token; `bench view`: never)."""
    tests: list[dict[str, str]] = field(default_factory=list)
    monitor: SampleSource | None = None
    activity: str = ""
    verdict: dict[str, Any] | None = None
    _tail: JournalTail | None = None
    _records: deque[bytes] = field(default_factory=lambda: deque(maxlen=REPLAY_RECORDS))
    _measurements: deque[bytes] = field(default_factory=lambda: deque(maxlen=REPLAY_MEASUREMENTS))
    _power: deque[list[float]] = field(default_factory=lambda: deque(maxlen=POWER_KEPT))
    _monitor_seen: object = None
    _samples_read: int = 0
    _sent: dict[str, object] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.journal is not None:
            self._tail = JournalTail(self.journal)

    # -- the server's side: drained in batches -----------------------------------------------------------
    def poll(self) -> list[Event]:
        """What changed since the last poll, as events for every connected page (the server's thread only)."""
        with self._lock:
            events: list[Event] = []
            self._changed(events, "tests", self.tests)
            if self._tail is not None:
                lines = self._tail.read_lines()
                if lines:
                    self._keep(lines)
                    events.append(("journal", _array(lines)))
            power = self._read_power()
            if power:
                events.append(("power", json.dumps(power)))
            self._changed(events, "activity", self.activity)
            self._changed(events, "prompt", self.prompts.shown())
            self._changed(events, "verdict", self.verdict)
            if self.view is not None:
                self._changed(events, "view", self.view())
            return events

    def replay(self) -> list[Event]:
        """Everything a page that connects now needs to show the run so far."""
        with self._lock:
            events: list[Event] = [("tests", json.dumps(self.tests))]
            lines = [*self._records, *self._measurements]
            if lines:
                events.append(("journal", _array(lines)))
            if self._power:
                events.append(("power", json.dumps(list(self._power))))
            for name in ("activity", "prompt", "verdict", "view"):
                if name in self._sent:
                    events.append((name, json.dumps(self._sent[name])))
            return events

    def hello(self, *, controls: bool) -> Event:
        mode = "run" if self.journal else "view"
        return "hello", json.dumps({"run_id": self.run_id, "mode": mode, "controls": controls})

    def _changed(self, events: list[Event], name: str, value: object) -> None:
        if name in self._sent and self._sent[name] == value:
            return
        self._sent[name] = _copy(value)
        events.append((name, json.dumps(value)))

    def _keep(self, lines: list[bytes]) -> None:
        for line in lines:
            if line.startswith(_MEASUREMENT):
                self._measurements.append(line)
            else:
                if line.startswith(_TEST_START):
                    self._measurements.clear()  # a late client sees the running test's measurements only
                self._records.append(line)

    def _read_power(self) -> list[list[float]]:
        """New samples of the DUT's first supply channel: [time (epoch s), volts, amps] each."""
        monitor = self.monitor
        if monitor is None:
            return []
        if monitor is not self._monitor_seen:  # a new test, a new monitor: its samples count from 0
            self._monitor_seen, self._samples_read = monitor, 0
        samples = monitor.samples_since(self._samples_read)
        self._samples_read += len(samples)
        rows = [[round(s.time, 3), _finite(s.volts[0]), _finite(s.amps[0])] for s in samples]
        self._power.extend(rows)
        return rows


def _array(lines: Sequence[bytes]) -> str:
    """Journal lines as one JSON array, without decoding them (they are JSON already)."""
    return "[" + b",".join(lines).decode("utf-8", "replace") + "]"


def _finite(x: float) -> float | None:
    return x if x - x == 0 else None  # NaN/inf (a failed reading) is a gap in the chart


def _copy(value: object) -> object:
    return json.loads(json.dumps(value))
