"""The power monitor: the supply's voltage and current sampled in the background while a test holds the DUT.

Lifecycle, one per test that uses ``dut_power``:

1. ``PowerMonitor(reader, channels, rate_hz=...)`` is built over a :class:`PowerReader` — the *read* half of
   the guarded supply (``measure_voltage`` / ``measure_current``). The monitor is typed against that protocol
   only: it cannot set a voltage, switch an output or clear a trip, so it can neither power the DUT nor
   bypass the emergency-stop latch (``bench.emergency``): sampling is a query, never a setting.
2. ``start()`` runs a daemon thread that reads every monitored channel at ``rate_hz``. Each reading is one
   SCPI exchange under the transport's lock (``instruments.scpi``): the test's own queries interleave with
   the sampler's, each waiting at most one short exchange. A reading that fails is counted, not raised
   (the test's own query will meet the same fault and say so).
3. Samples go to a CSV file as they arrive, flushed and fsynced in batches (``batch_s``), so a killed run keeps
   its power trace up to the last batch. Timestamps are ``time.time()``: the clock of the CAN log.
4. ``stop()`` ends the thread (always: it is called on every exit path of the fixture, after the DUT is off)
   and returns the :class:`PowerTrace`: plain data that the fixture judges against the monitored limits,
   summarises into the journal and hands to the report as a plot.

Monitored limits (:class:`MonitoredLimit`) are limits of the limits file (units ``A``: the channel's current,
``V``: its voltage) applied to *every* sample of a window; :func:`check_limit` returns the first violation
with its time ("bus current 1.23 A > 1.0 A at t+2.35 s").
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, NamedTuple, Protocol

from bench.measurement import Limit
from bench.plotdata import PlotSeries
from bench.waiting import await_value

__all__ = [
    "DEFAULT_RATE_HZ",
    "ChannelSummary",
    "MonitoredLimit",
    "PowerMonitor",
    "PowerReader",
    "PowerSample",
    "PowerTrace",
    "Violation",
    "check_limit",
    "csv_header",
    "csv_row",
]

log = logging.getLogger(__name__)

DEFAULT_RATE_HZ: Final = 20.0
"""Default sample rate: each sample costs two short SCPI exchanges per channel; 20 Hz leaves the link free."""

Quantity = Literal["current", "voltage"]
_UNITS_QUANTITY: Final[dict[str, Quantity]] = {"A": "current", "V": "voltage"}


class PowerReader(Protocol):
    """What the monitor may do with the supply: read. (The guarded supply satisfies it.)"""

    def measure_voltage(self, ch: int) -> float: ...

    def measure_current(self, ch: int) -> float: ...


class PowerSample(NamedTuple):
    """One reading of every monitored channel: ``time`` (epoch seconds, ``time.time()``), then per channel (in
    the monitor's channel order) its voltage and current; NaN where the reading failed."""

    time: float
    volts: tuple[float, ...]
    amps: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ChannelSummary:
    role: str
    channel: int
    v_min: float
    v_max: float
    v_mean: float
    i_min: float
    i_max: float
    i_mean: float

    def as_record(self) -> dict[str, object]:
        return {
            "role": self.role,
            "channel": self.channel,
            "v_min": self.v_min,
            "v_max": self.v_max,
            "v_mean": self.v_mean,
            "i_min": self.i_min,
            "i_max": self.i_max,
            "i_mean": self.i_mean,
        }


def _stats(values: Iterable[float]) -> tuple[float, float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan, math.nan
    return min(finite), max(finite), sum(finite) / len(finite)


@dataclass(frozen=True)
class PowerTrace:
    """The samples of one test: channel roles and numbers (in column order), start time and the samples."""

    roles: tuple[str, ...]
    channels: tuple[int, ...]
    t0: float
    samples: tuple[PowerSample, ...]
    errors: int = 0
    """Readings that failed (NaN in the samples)."""

    def index(self, role: str) -> int:
        try:
            return self.roles.index(role)
        except ValueError:
            raise KeyError(f"channel role {role!r} is not monitored (monitored: {', '.join(self.roles)})") from None

    def window(self, since: float | None = None, until: float | None = None) -> PowerTrace:
        """The samples taken in [since, until] (epoch seconds; open where None)."""
        lo = -math.inf if since is None else since
        hi = math.inf if until is None else until
        kept = tuple(s for s in self.samples if lo <= s.time <= hi)
        return PowerTrace(self.roles, self.channels, self.t0, kept, self.errors)

    def currents(self, role: str) -> tuple[float, ...]:
        i = self.index(role)
        return tuple(s.amps[i] for s in self.samples)

    def voltages(self, role: str) -> tuple[float, ...]:
        i = self.index(role)
        return tuple(s.volts[i] for s in self.samples)

    def peak_current(self, role: str) -> tuple[float, float]:
        """(highest finite current, its time) on ``role``; (NaN, NaN) when there is no finite reading."""
        i = self.index(role)
        best = (math.nan, math.nan)
        for s in self.samples:
            a = s.amps[i]
            if math.isfinite(a) and not (a <= best[0]):
                best = (a, s.time)
        return best

    @property
    def rate_hz(self) -> float:
        """Achieved sample rate over the trace (0 with fewer than two samples)."""
        if len(self.samples) < 2:
            return 0.0
        span = self.samples[-1].time - self.samples[0].time
        return (len(self.samples) - 1) / span if span > 0 else 0.0

    def summary(self) -> list[ChannelSummary]:
        out = []
        for k, (role, ch) in enumerate(zip(self.roles, self.channels, strict=True)):
            v = _stats(s.volts[k] for s in self.samples)
            i = _stats(s.amps[k] for s in self.samples)
            out.append(ChannelSummary(role, ch, *v, *i))
        return out

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(csv_header(self.roles, self.channels))
        for s in self.samples:
            writer.writerow(csv_row(s, self.t0))
        return buf.getvalue()

    def current_series(self, limits: Sequence[MonitoredLimit] = ()) -> list[PlotSeries]:
        """Plot data: each channel's current against seconds since ``t0``, and each current limit as a line."""
        x = [s.time - self.t0 for s in self.samples]
        series = [
            PlotSeries(f"{role} (ch {ch}) current", x, [s.amps[k] for s in self.samples])
            for k, (role, ch) in enumerate(zip(self.roles, self.channels, strict=True))
        ]
        for lim in limits:
            if lim.quantity == "current":
                for bound, word in ((lim.limit.high, "max"), (lim.limit.low, "min")):
                    if bound is not None:
                        series.append(PlotSeries(f"{lim.limit.name} {word}", [0.0], [bound], "limit"))
        return series

    def voltage_series(self) -> list[PlotSeries]:
        x = [s.time - self.t0 for s in self.samples]
        return [
            PlotSeries(f"{role} (ch {ch}) voltage", x, [s.volts[k] for s in self.samples])
            for k, (role, ch) in enumerate(zip(self.roles, self.channels, strict=True))
        ]


def csv_header(roles: Sequence[str], channels: Sequence[int]) -> list[str]:
    """``time`` (epoch s, the CAN log's clock), ``t_s`` (since the monitor started), then V and A per channel."""
    head = ["time", "t_s"]
    for role, ch in zip(roles, channels, strict=True):
        head += [f"{role}_ch{ch}_V", f"{role}_ch{ch}_A"]
    return head


def _num(v: float) -> str:
    return f"{v:.6g}" if math.isfinite(v) else "nan"


def csv_row(sample: PowerSample, t0: float) -> list[str]:
    row = [f"{sample.time:.6f}", f"{sample.time - t0:.6f}"]
    for v, a in zip(sample.volts, sample.amps, strict=True):
        row += [_num(v), _num(a)]
    return row


@dataclass(frozen=True, slots=True)
class MonitoredLimit:
    """A limit of the limits file applied to every sample of one channel: ``A`` → its current, ``V`` → its
    voltage."""

    limit: Limit
    role: str = "dut_main"

    def __post_init__(self) -> None:
        lim = self.limit
        if lim.units not in _UNITS_QUANTITY:
            raise ValueError(
                f"limit {lim.name} is in {lim.units!r}: a monitored power limit must be in A (current) or V (voltage)"
            )
        if lim.low is not None or lim.high is None:
            raise ValueError(
                f"limit {lim.name} has a low bound ({lim.low} {lim.units}): a monitored power limit must be a "
                "ceiling (high only), since the samples taken with the DUT off would break any floor; judge a "
                "floor with measure() at a chosen moment"
            )

    @property
    def quantity(self) -> Quantity:
        return _UNITS_QUANTITY[self.limit.units]


@dataclass(frozen=True, slots=True)
class Violation:
    """The first sample outside a monitored limit."""

    limit: MonitoredLimit
    value: float
    time: float
    t_rel: float
    bound: float
    above: bool
    count: int
    """How many samples of the window were outside."""

    def message(self) -> str:
        lim = self.limit.limit
        what = "bus current" if self.limit.quantity == "current" else "bus voltage"
        sign = ">" if self.above else "<"
        reqs = ", ".join(lim.requirements)
        more = f"; {self.count} samples outside" if self.count > 1 else ""
        return (
            f"{what} {self.value:.4g} {lim.units} {sign} {self.bound:g} {lim.units} at t+{self.t_rel:.2f} s "
            f"({lim.name} on {self.limit.role}, {reqs}{more})"
        )


def check_limit(trace: PowerTrace, limit: MonitoredLimit) -> Violation | None:
    """The first sample of ``trace`` outside ``limit`` (NaN readings are gaps, not violations), or None."""
    k = trace.index(limit.role)
    current = limit.quantity == "current"
    low, high = limit.limit.low, limit.limit.high
    first: Violation | None = None
    count = 0
    for s in trace.samples:
        value = s.amps[k] if current else s.volts[k]
        if not math.isfinite(value):
            continue
        if high is not None and value > high:
            bound, above = high, True
        elif low is not None and value < low:
            bound, above = low, False
        else:
            continue
        count += 1
        if first is None:
            first = Violation(limit, value, s.time, s.time - trace.t0, bound, above, 0)
    if first is None:
        return None
    return Violation(first.limit, first.value, first.time, first.t_rel, first.bound, first.above, count)


@dataclass
class PowerMonitor:
    """Samples ``channels`` (role → channel number) of ``reader`` at ``rate_hz`` on a daemon thread."""

    reader: PowerReader
    channels: Mapping[str, int]
    rate_hz: float = DEFAULT_RATE_HZ
    csv_path: Path | None = None
    batch_s: float = 1.0
    clock: Callable[[], float] = time.time
    t0: float = 0.0
    _samples: list[PowerSample] = field(default_factory=list)
    _errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _file: io.TextIOWrapper | None = None

    def __post_init__(self) -> None:
        if not (self.rate_hz > 0 and math.isfinite(self.rate_hz)):
            raise ValueError(f"power monitor: rate must be a positive number of Hz, got {self.rate_hz!r}")
        if not self.channels:
            raise ValueError("power monitor: no channel to monitor")
        self._roles = tuple(self.channels)
        self._numbers = tuple(self.channels[r] for r in self._roles)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> PowerMonitor:
        if self._thread is not None:
            raise RuntimeError("power monitor already started")
        self.t0 = self.clock()
        if self.csv_path is not None:
            self.csv_path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.csv_path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in stop()
            self._file.write(",".join(csv_header(self._roles, self._numbers)) + "\n")
        self._thread = threading.Thread(target=self._run, name="power-monitor", daemon=True)
        self._thread.start()
        return self

    def sample_once(self) -> PowerSample:
        """Read every channel once (V then I per channel); a failed reading is NaN and counted."""
        volts: list[float] = []
        amps: list[float] = []
        t = self.clock()
        for ch in self._numbers:
            volts.append(self._read(self.reader.measure_voltage, ch))
            amps.append(self._read(self.reader.measure_current, ch))
        sample = PowerSample(t, tuple(volts), tuple(amps))
        with self._lock:
            self._samples.append(sample)
        return sample

    def _read(self, read: Callable[[int], float], ch: int) -> float:
        try:
            return float(read(ch))
        except Exception as exc:  # the sampler must never take the test down; the test's own query will tell
            with self._lock:
                self._errors += 1
                first = self._errors == 1
            if first:
                log.warning("power monitor: reading channel %s failed: %s (further failures counted)", ch, exc)
            return math.nan

    def _run(self) -> None:
        period = 1.0 / self.rate_hz
        next_due = time.monotonic()
        written = 0
        last_flush = time.monotonic()
        while not self._stop.is_set():
            self.sample_once()
            now = time.monotonic()
            if self._file is not None and now - last_flush >= self.batch_s:
                written = self._flush(written)
                last_flush = now
            next_due += period
            if next_due < now:  # fell behind (a long exchange of the test held the link): no burst of catch-up
                next_due = now
            self._stop.wait(max(0.0, next_due - now))
        if self._file is not None:
            self._flush(written)

    def _flush(self, written: int) -> int:
        """Append samples [written:] to the CSV and make them durable; returns the new count written."""
        assert self._file is not None
        with self._lock:
            batch = self._samples[written:]
        lines = [",".join(csv_row(s, self.t0)) + "\n" for s in batch]
        try:
            self._file.writelines(lines)
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            log.error("power monitor: writing %s failed: %s", self.csv_path, exc)
        return written + len(batch)

    @property
    def roles(self) -> tuple[str, ...]:
        """The monitored roles, in the order of each sample's values."""
        return self._roles

    def latest(self) -> PowerSample | None:
        """The last sample taken (None before the first): what a progress line shows."""
        with self._lock:
            return self._samples[-1] if self._samples else None

    def samples_since(self, start: int) -> list[PowerSample]:
        """The samples from index ``start`` on (a reader that keeps its own count: the live view's, in batches)."""
        with self._lock:
            return self._samples[start:]

    def snapshot(self) -> PowerTrace:
        """The trace so far (the monitor keeps running)."""
        with self._lock:
            return PowerTrace(self._roles, self._numbers, self.t0, tuple(self._samples), self._errors)

    def await_sample_after(self, t: float, *, timeout_s: float = 2.0) -> PowerTrace:
        """Wait until a sample taken after ``t`` (epoch s) exists; return the trace then (AwaitTimeout if not)."""
        return await_value(
            self.snapshot,
            lambda tr: bool(tr.samples) and tr.samples[-1].time > t,
            timeout_s=timeout_s,
            what=f"a power sample after t+{t - self.t0:.2f} s",
            interval_s=min(0.05, 1.0 / self.rate_hz),
        )

    def stop(self, timeout_s: float = 5.0) -> PowerTrace:
        """Stop sampling (idempotent, never raises), close the CSV and return the whole trace."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=timeout_s)
            if thread.is_alive():
                log.error("power monitor: the sampler did not stop within %.1f s (a stuck exchange)", timeout_s)
        if self._file is not None and (thread is None or not thread.is_alive()):
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        return self.snapshot()
