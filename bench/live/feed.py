"""What the live page shows, gathered off the run's hot path.

The run does not push anything for the page: every record the page needs is already in the run's journal,
written unbuffered the moment it is taken (bench/journal.py). The server's thread tails that file in batches
(:class:`JournalTail`) and hands the new lines on as they are, undecoded; the power monitor's samples are read
the same way, by index (``PowerMonitor.samples_since``). The CAN bus load and the last telemetry per node are
sampled once a second from the satellite link's own counters and stores (:class:`BusSource`), nothing added to
its receive path. What the journal does not hold is set here by the pytest side, as plain attribute writes: the
collected test list, the running test's activity, the satellite link once a test opened it, the final verdict.
So the cost of the live view to a measurement is nil (benchmarks/bench_live.py measures it).

For a client that connects late the feed keeps a compact state to replay: every journal record but the
measurements, the running test's measurements (bounded), the last minutes of power samples.
"""

from __future__ import annotations

import heapq
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.live.prompts import PromptSlot

__all__ = ["MEASUREMENT_PREFIX", "BusSource", "Event", "JournalTail", "LiveFeed", "SampleSource"]

SEND_MEASUREMENTS = 300  # measurements sent per batch (every ~0.25 s): more than the page can show anyway
REPLAY_MEASUREMENTS = 500  # measurements of the running test a late client gets (as many as the page shows)
REPLAY_RECORDS = 20000  # other journal records kept for late clients (a few per test)
POWER_KEPT = 6000  # power samples kept for the chart (5 min at 20 Hz)
BUS_EVERY_S = 1.0  # how often the bus load and the last telemetry are sampled (HK comes at 1 Hz)
CAN_FRAME_BITS = 131
"""Bits of an extended CAN data frame with 8 data bytes, stuffing not counted: what CSP over CAN (CFP) sends
nearly always, so frames/s × this / bitrate is the bus load to within the stuffing (up to ~20 % more)."""
MEASUREMENT_PREFIX = b'{"kind":"measurement"'  # how the journal's encoder starts a measurement line
_OTHER_RECORD = re.compile(rb'\n\{"kind":"(?!measurement")[^\n]*')  # a record that is not a measurement
_TEST_START = b'{"kind":"test_start"'

Event = tuple[str, str]
"""(event name, JSON data) as the page receives it (server-sent events)."""


class SampleSource(Protocol):
    """The power monitor as the feed reads it (bench.power_monitor.PowerMonitor)."""

    @property
    def roles(self) -> tuple[str, ...]: ...

    def samples_since(self, start: int) -> Sequence[Any]: ...


class BusSource(Protocol):
    """The satellite link as the feed reads it (bench.satellite.Satellite)."""

    @property
    def counters(self) -> Any: ...

    @property
    def icd(self) -> Any: ...

    def latest_telemetry(self) -> Sequence[Any]: ...


class JournalTail:
    """The whole lines appended to a journal since the last read, as one chunk of bytes (ending with a newline);
    a line still being written waits for its end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pos = 0
        self._partial = b""

    def read_chunk(self) -> bytes:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._pos)
                data = f.read()
        except FileNotFoundError:  # the run has not started its journal yet
            return b""
        if not data:
            return b""
        self._pos += len(data)
        data = self._partial + data
        end = data.rfind(b"\n") + 1
        self._partial = data[end:]
        return data[:end]

    def read_lines(self) -> list[bytes]:
        return [line for line in self.read_chunk().split(b"\n") if line]


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
    bus: BusSource | None = None
    """The satellite link, once a test opened it (it lives for the whole run)."""
    bitrate: int = 0
    """The CAN bit rate of the bench config (0: unknown, no load shown)."""
    activity: str = ""
    clock: Callable[[], float] = time.monotonic
    verdict: dict[str, Any] | None = None
    _tail: JournalTail | None = None
    _records: deque[bytes] = field(default_factory=lambda: deque(maxlen=REPLAY_RECORDS))
    _measurements: deque[bytes] = field(default_factory=lambda: deque(maxlen=REPLAY_MEASUREMENTS))
    _power: deque[list[float]] = field(default_factory=lambda: deque(maxlen=POWER_KEPT))
    _monitor_seen: object = None
    _samples_read: int = 0
    _bus_mark: tuple[float, int] | None = None  # (monotonic time, frames on the bus) at the last bus sample
    _bus_next: float = 0.0
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
                chunk = self._tail.read_chunk()
                if chunk:
                    events.append(("journal", _array(self._keep(chunk))))
            power = self._read_power()
            if power:
                events.append(("power", json.dumps(power)))
            if self.bus is not None and self.clock() >= self._bus_next:
                self._bus_next = self.clock() + BUS_EVERY_S
                self._changed(events, "bus", self._read_bus(self.bus))
                self._changed(events, "telemetry", _telemetry_by_node(self.bus))
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
            for name in ("bus", "telemetry", "activity", "prompt", "verdict", "view"):
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

    def _keep(self, chunk: bytes) -> list[bytes]:
        """Keep a chunk of journal lines for late clients; return the lines to send: every record but the
        measurements, and the last SEND_MEASUREMENTS of those. The chunk is never split line by line in Python:
        a plan measuring thousands of values a second would pay for it (benchmarks/bench_live.py); the page
        shows the last few hundred anyway, the journal and the report have them all."""
        data = b"\n" + chunk
        others = [(m.start(), m.group()[1:]) for m in _OTHER_RECORD.finditer(data)]
        starts = [pos for pos, line in others if line.startswith(_TEST_START)]
        self._records.extend(line for _, line in others)
        if starts:
            self._measurements.clear()  # a late client sees the running test's measurements only
        kept = _last_lines(data, starts[-1] + 1 if starts else 0, REPLAY_MEASUREMENTS)
        self._measurements.extend(line for _, line in reversed(kept) if line.startswith(MEASUREMENT_PREFIX))
        recent = [(pos, line) for pos, line in reversed(_last_lines(data, 0, SEND_MEASUREMENTS))]
        recent = [(pos, line) for pos, line in recent if line.startswith(MEASUREMENT_PREFIX)]
        return [line for _, line in heapq.merge(others, recent)]

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

    def _read_bus(self, bus: BusSource) -> dict[str, Any]:
        """The bus as the link counted it: frames per second since the last sample and the load they make."""
        c = bus.counters
        now, frames = self.clock(), c.frames_rx + c.frames_tx + c.non_csp_frames
        mark, self._bus_mark = self._bus_mark, (now, frames)
        rate = load = None
        if mark is not None and frames >= mark[1] and now > mark[0]:  # fewer frames: the counters were reset
            rate = (frames - mark[1]) / (now - mark[0])
            load = 100.0 * rate * CAN_FRAME_BITS / self.bitrate if self.bitrate else None
        return {
            "frames_per_s": None if rate is None else round(rate, 1),
            "load_pct": None if load is None else round(load, 2),
            "bitrate": self.bitrate,
            "frames_rx": c.frames_rx,
            "frames_tx": c.frames_tx,
            "error_frames": c.error_frames,
            "dropped": c.dropped,
            "bus_off": bool(c.bus_off),
        }


def _telemetry_by_node(bus: BusSource) -> dict[str, dict[str, Any]]:
    """The last value of every telemetry point received, by node: ``{node: {"time": t, "values": [[name, value,
    units, t], ...]}}`` (t: UNIX seconds of the frame that brought it)."""
    nodes: dict[str, dict[str, Any]] = {}
    for sample in bus.latest_telemetry():
        try:
            point = bus.icd.tm_point(sample.mnemonic)
        except Exception:  # the ICD names every point the link decodes; a page never fails on one
            continue
        value = sample.value
        if isinstance(value, float):
            value = _finite(value)
        elif not isinstance(value, (int, str, bool)):
            value = str(value)
        entry = nodes.setdefault(point.node, {"time": 0.0, "values": []})
        entry["time"] = max(entry["time"], round(sample.time, 3))
        entry["values"].append([point.field.name, value, point.field.units, round(sample.time, 3)])
    return nodes


def _last_lines(data: bytes, start: int, n: int) -> list[tuple[int, bytes]]:
    """The last ``n`` lines of ``data`` (which starts with a newline and ends with one) after offset ``start``,
    last first, each with the offset of the newline before it."""
    lines: list[tuple[int, bytes]] = []
    hi = len(data) - 1
    while len(lines) < n and hi > start:
        lo = data.rfind(b"\n", start, hi)
        if lo < 0:
            break
        if hi > lo + 1:
            lines.append((lo, data[lo + 1 : hi]))
        hi = lo
    return lines


def _array(lines: Sequence[bytes]) -> str:
    """Journal lines as one JSON array, without decoding them (they are JSON already)."""
    return "[" + b",".join(lines).decode("utf-8", "replace") + "]"


def _finite(x: float) -> float | None:
    return x if x - x == 0 else None  # NaN/inf (a failed reading) is a gap in the chart


def _copy(value: object) -> object:
    return json.loads(json.dumps(value))
