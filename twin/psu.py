"""A three-channel bench power supply: setpoints, outputs, protection, I/O watchdog, CH1 digitizer.

Protocol-free: the SCPI dialects (``dialect_keysight``, ``dialect_rigol``) translate commands into these
calls. Time comes from an injected clock; ``advance()`` walks the simulation up to "now" in small steps
(1 ms while a transient is under way, else 5 ms) so that protection timers, the undervoltage lockout of the
load and the digitizer see the same history whatever the query pattern. Every setter first advances to now,
changes the state, then re-evaluates protection at once, so a query right after a command sees its effect.

Protection (all latch the output off until cleared):
* OVP: the terminal voltage exceeds the OVP level.
* OCP, Keysight style (``OcpMode.CC``): in constant current for longer than the OCP delay.
* OCP, Rigol style (``OcpMode.LEVEL``): the output current reaches the OCP value for longer than the fixed
  delay (in current limit the current sits exactly at the limit, so "reaches" is what can be observed).
* I/O watchdog (Keysight, protocols.md §8): enabled and no I/O within the delay → every output latched off.
Keysight keeps the programmed output state while latched (``OUTP?`` still reads 1; clearing restores the
output); Rigol switches the output off on a trip.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

__all__ = [
    "Behaviour",
    "Channel",
    "Digitizer",
    "Load",
    "NoLoad",
    "OcpMode",
    "PowerSupply",
    "PsuError",
    "Rating",
    "Reading",
    "Reason",
]

NOISE_V = 1e-3
NOISE_A = 1.5e-3
_FINE_STEP_S = 1e-3
_COARSE_STEP_S = 5e-3
_TRANSIENT_S = 0.05  # after a source step, walk finely for this long (≈ 16 inrush time constants)
_MAX_STEPS = 20_000  # a long stall (or a test's fake clock jump) is walked coarsely instead


class Reason(enum.Enum):
    OUT_OF_RANGE = "out of range"
    CONFLICT = "settings conflict"
    NO_DATA = "no data"
    TRIGGER_IGNORED = "trigger ignored"


class PsuError(Exception):
    """A request the supply refuses; the dialect maps ``reason`` to its error code."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Load(Protocol):
    """What a channel feeds (see ``power_model.SatellitePowerModel``)."""

    def source_step(self, t: float, v_source: float) -> None: ...

    def demand(self, t: float, v_source: float) -> float: ...

    def settle(self, t: float, v_terminal: float) -> None: ...


class NoLoad:
    """Nothing connected: no current."""

    def source_step(self, t: float, v_source: float) -> None:
        pass

    def demand(self, t: float, v_source: float) -> float:
        return 0.0

    def settle(self, t: float, v_terminal: float) -> None:
        pass


class OcpMode(enum.Enum):
    CC = "cc"
    LEVEL = "level"


@dataclass(frozen=True)
class Rating:
    v_max: float
    i_max: float
    ovp_max: float
    ocp_max: float
    i_reset: float  # current limit after *RST


@dataclass(frozen=True)
class Behaviour:
    """What differs between makers, as data."""

    ocp_mode: OcpMode
    ocp_delay_reset: float
    ocp_delay_max: float
    trip_turns_output_off: bool
    ovp_always_on: bool
    has_watchdog: bool
    has_digitizer: bool


@dataclass(frozen=True)
class Reading:
    voltage: float
    current: float
    cc: bool


@dataclass
class Channel:
    number: int
    rating: Rating
    load: Load
    v_set: float = 0.0
    i_set: float = 0.0
    output: bool = False  # the programmed state
    ovp_level: float = 0.0
    ovp_enabled: bool = True
    ovp_tripped: bool = False
    ocp_enabled: bool = False
    ocp_level: float = 0.0
    ocp_delay: float = 0.0
    ocp_tripped: bool = False
    wdog_tripped: bool = False
    over_since: float | None = None  # start of the over-current condition the OCP timer is running on
    off_since: float | None = None  # when the output last stopped delivering (twin clock); None while delivering

    @property
    def latched(self) -> bool:
        return self.ovp_tripped or self.ocp_tripped or self.wdog_tripped

    @property
    def delivering(self) -> bool:
        return self.output and not self.latched

    @property
    def v_source(self) -> float:
        return self.v_set if self.delivering else 0.0


@dataclass
class Digitizer:
    """Settings and record of the CH1 current/voltage digitizer."""

    points: int = 1024
    interval: float = 20.48e-6
    source: Literal["BUS", "IMM"] = "BUS"
    state: Literal["idle", "armed", "triggered"] = "idle"
    t_trigger: float = 0.0
    filled: int = 0
    volts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    amps: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def complete_at(self) -> float:
        return self.t_trigger + self.points * self.interval


class PowerSupply:
    """Channels 1..n with their loads; one watchdog; a current/voltage digitizer on channel 1."""

    DIGITIZER_MAX_POINTS = 16384
    DIGITIZER_MIN_INTERVAL = 10e-6
    DIGITIZER_MAX_INTERVAL = 40_000.0
    WATCHDOG_DELAY_RANGE = (1.0, 3600.0)

    def __init__(
        self,
        ratings: Sequence[Rating],
        loads: Sequence[Load],
        behaviour: Behaviour,
        *,
        clock: Callable[[], float],
        rng: np.random.Generator,
    ) -> None:
        self.behaviour = behaviour
        self.channels = [Channel(n + 1, r, ld) for n, (r, ld) in enumerate(zip(ratings, loads, strict=True))]
        self._clock = clock
        self._rng = rng
        self._t = clock()
        self._fine_until = self._t
        self.wdog_enabled = False
        self.wdog_delay = 60.0
        self._last_io = self._t
        self._wdog_fired = False
        self._dig = Digitizer()
        self.reset()

    # -- time --------------------------------------------------------------------------------------------

    def advance(self) -> float:
        """Walk the simulation up to now; return now."""
        now = self._clock()
        if now > self._t:
            while self._t < now:
                step = _FINE_STEP_S if self._t < self._fine_until else _COARSE_STEP_S
                step = max(step, (now - self._t) / _MAX_STEPS)
                t1 = min(now, self._t + step)
                self._sample(t1)
                self._t = t1
                self._evaluate(t1)
        else:
            self._evaluate(self._t)
        return self._t

    def _reading(self, ch: Channel, t: float) -> Reading:
        v_source = ch.v_source
        if v_source <= 0.0:
            return Reading(0.0, 0.0, False)
        demand = ch.load.demand(t, v_source)
        if demand > ch.i_set:
            # Constant current: the load behaves as its equivalent resistance V²/P at the setpoint, so the
            # voltage sags in proportion.
            return Reading(v_source * ch.i_set / demand, ch.i_set, True)
        return Reading(v_source, demand, False)

    def _evaluate(self, t: float) -> None:
        expired = t - self._last_io >= self.wdog_delay
        if self.behaviour.has_watchdog and self.wdog_enabled and expired and not self._wdog_fired:
            self._wdog_fired = True
            for ch in self.channels:
                self._latch(ch, t, "wdog")
        for ch in self.channels:
            reading = self._reading(ch, t)
            if ch.delivering:
                self._protect(ch, t, reading)
                if not ch.delivering:
                    reading = Reading(0.0, 0.0, False)
            ch.load.settle(t, reading.voltage)

    def _protect(self, ch: Channel, t: float, reading: Reading) -> None:
        if ch.ovp_enabled and reading.voltage > ch.ovp_level + 1e-9:
            self._latch(ch, t, "ovp")
            return
        if not ch.ocp_enabled:
            ch.over_since = None
            return
        if self.behaviour.ocp_mode is OcpMode.CC:
            over = reading.cc
        else:
            over = reading.current > 0.0 and reading.current >= ch.ocp_level - 1e-9
        if not over:
            ch.over_since = None
            return
        if ch.over_since is None:
            ch.over_since = t
            self._fine_until = max(self._fine_until, t + ch.ocp_delay + _FINE_STEP_S)
        if t - ch.over_since >= ch.ocp_delay - 1e-9:
            self._latch(ch, t, "ocp")

    def _latch(self, ch: Channel, t: float, kind: Literal["ovp", "ocp", "wdog"]) -> None:
        before, was_delivering = ch.v_source, ch.delivering
        if kind == "ovp":
            ch.ovp_tripped = True
        elif kind == "ocp":
            ch.ocp_tripped = True
        else:
            ch.wdog_tripped = True
        ch.over_since = None
        if self.behaviour.trip_turns_output_off:
            ch.output = False
        self._delivery_changed(ch, t, was_delivering)
        self._source_changed(ch, t, before)

    @staticmethod
    def _delivery_changed(ch: Channel, t: float, was_delivering: bool) -> None:
        """Note when an output stops delivering (switched off, latched by protection, reset)."""
        if was_delivering and not ch.delivering:
            ch.off_since = t
        elif ch.delivering:
            ch.off_since = None

    def _source_changed(self, ch: Channel, t: float, before: float) -> None:
        if ch.v_source != before:
            ch.load.source_step(t, ch.v_source)
            self._fine_until = max(self._fine_until, t + _TRANSIENT_S)

    def _change(self, number: int, change: Callable[[Channel], None]) -> None:
        """Advance to now, apply ``change`` to one channel, tell its load, re-evaluate protection."""
        now = self.advance()
        ch = self.channel(number)
        before, was_delivering = ch.v_source, ch.delivering
        change(ch)
        self._delivery_changed(ch, now, was_delivering)
        self._source_changed(ch, now, before)
        self._evaluate(now)

    def apply(self, change: Callable[[float], None]) -> None:
        """Run a change to the loads (e.g. a switched EPS output) at now, between two evaluations."""
        now = self.advance()
        change(now)
        self._evaluate(now)

    # -- channels ----------------------------------------------------------------------------------------

    def channel(self, number: int) -> Channel:
        if not 1 <= number <= len(self.channels):
            raise PsuError(Reason.OUT_OF_RANGE, f"no channel {number}")
        return self.channels[number - 1]

    @staticmethod
    def _check(value: float, low: float, high: float, what: str) -> None:
        if not (math.isfinite(value) and low <= value <= high):
            raise PsuError(Reason.OUT_OF_RANGE, f"{what} {value:g} outside {low:g}..{high:g}")

    def reset(self) -> None:
        """*RST: outputs off, 0 V, reset current limit, OCP off, OVP at max, watchdog off, trips cleared."""
        now = self.advance()
        for ch in self.channels:
            before, was_delivering = ch.v_source, ch.delivering
            ch.v_set = 0.0
            ch.i_set = ch.rating.i_reset
            ch.output = False
            ch.ovp_level = ch.rating.ovp_max
            ch.ovp_enabled = self.behaviour.ovp_always_on
            ch.ovp_tripped = ch.ocp_tripped = ch.wdog_tripped = False
            ch.ocp_enabled = False
            ch.ocp_level = ch.rating.ocp_max
            ch.ocp_delay = self.behaviour.ocp_delay_reset
            ch.over_since = None
            self._delivery_changed(ch, now, was_delivering)
            self._source_changed(ch, now, before)
        self.wdog_enabled = False
        self.wdog_delay = 60.0
        self._wdog_fired = False
        self._dig = Digitizer()
        self._evaluate(now)

    def set_voltage(self, number: int, volts: float) -> None:
        self._check(volts, 0.0, self.channel(number).rating.v_max, "voltage")
        self._change(number, lambda ch: setattr(ch, "v_set", volts))

    def set_current(self, number: int, amps: float) -> None:
        self._check(amps, 0.0, self.channel(number).rating.i_max, "current")
        self._change(number, lambda ch: setattr(ch, "i_set", amps))

    def set_output(self, number: int, on: bool) -> None:
        self._change(number, lambda ch: setattr(ch, "output", on))

    def set_ovp_level(self, number: int, volts: float) -> None:
        self._check(volts, 0.0, self.channel(number).rating.ovp_max, "OVP level")
        self._change(number, lambda ch: setattr(ch, "ovp_level", volts))

    def set_ovp_enabled(self, number: int, on: bool) -> None:
        self._change(number, lambda ch: setattr(ch, "ovp_enabled", on or self.behaviour.ovp_always_on))

    def set_ocp_enabled(self, number: int, on: bool) -> None:
        self._change(number, lambda ch: setattr(ch, "ocp_enabled", on))

    def set_ocp_level(self, number: int, amps: float) -> None:
        self._check(amps, 0.0, self.channel(number).rating.ocp_max, "OCP level")
        self._change(number, lambda ch: setattr(ch, "ocp_level", amps))

    def set_ocp_delay(self, number: int, seconds: float) -> None:
        self._check(seconds, 0.0, self.behaviour.ocp_delay_max, "OCP delay")
        self._change(number, lambda ch: setattr(ch, "ocp_delay", seconds))

    def clear_protection(self, number: int, which: Literal["all", "ovp", "ocp"] = "all") -> None:
        """Clear latched protection; if the cause persists it trips again at once."""

        def clear(ch: Channel) -> None:
            if which in ("all", "ovp"):
                ch.ovp_tripped = False
            if which in ("all", "ocp"):
                ch.ocp_tripped = False
                ch.over_since = None
            if which == "all":
                ch.wdog_tripped = False

        self._change(number, clear)

    def reading(self, number: int) -> Reading:
        """True (noise-free) output at now."""
        now = self.advance()
        return self._reading(self.channel(number), now)

    def measure(self, number: int) -> tuple[float, float]:
        """(volts, amps) as the instrument measures them: true value plus gaussian noise."""
        reading = self.reading(number)
        noise_v, noise_a = self._rng.normal(0.0, (NOISE_V, NOISE_A))
        return reading.voltage + float(noise_v), reading.current + float(noise_a)

    # -- watchdog ----------------------------------------------------------------------------------------

    def note_io(self) -> None:
        """SCPI I/O happened on some connection: feed the watchdog."""
        # Walk to now first, so a watchdog that expired during a stalled event loop still fires.
        self._last_io = self.advance()
        self._wdog_fired = False

    def set_watchdog(self, on: bool) -> None:
        self.advance()
        self.wdog_enabled = on
        self._last_io = self._clock()
        self._wdog_fired = False

    def set_watchdog_delay(self, seconds: float) -> None:
        self._check(seconds, *self.WATCHDOG_DELAY_RANGE, "watchdog delay")
        self.advance()
        self.wdog_delay = seconds

    @property
    def watchdog_tripped(self) -> bool:
        return any(ch.wdog_tripped for ch in self.channels)

    # -- digitizer (channel 1) ---------------------------------------------------------------------------

    @property
    def digitizer(self) -> Digitizer:
        return self._dig

    def configure_digitizer(
        self,
        *,
        points: int | None = None,
        interval: float | None = None,
        source: Literal["BUS", "IMM"] | None = None,
    ) -> None:
        """Sweep settings; changing them discards any record in progress (its size would no longer fit)."""
        if points is not None:
            self._check(points, 1, self.DIGITIZER_MAX_POINTS, "sweep points")
            self._dig.points = int(points)
        if interval is not None:
            self._check(interval, self.DIGITIZER_MIN_INTERVAL, self.DIGITIZER_MAX_INTERVAL, "sample interval")
            self._dig.interval = interval
        if source is not None:
            self._dig.source = source
        if self._dig.state != "idle":
            self.abort_acquisition()

    def arm_acquisition(self) -> None:
        """INIT:ACQ: discard the previous record and wait for a trigger (immediate with source IMM)."""
        now = self.advance()
        dig = self._dig
        dig.state = "armed"
        dig.filled = 0
        dig.volts = np.zeros(dig.points)
        dig.amps = np.zeros(dig.points)
        if dig.source == "IMM":
            self._start_acquisition(now)

    def trigger_acquisition(self) -> None:
        """*TRG / TRIG:ACQ: start the record now if armed, else the trigger is ignored."""
        now = self.advance()
        if self._dig.state != "armed":
            raise PsuError(Reason.TRIGGER_IGNORED, "acquisition not armed")
        self._start_acquisition(now)

    def abort_acquisition(self) -> None:
        self.advance()
        self._dig = Digitizer(points=self._dig.points, interval=self._dig.interval, source=self._dig.source)

    def _start_acquisition(self, now: float) -> None:
        self._dig.state = "triggered"
        self._dig.t_trigger = now
        self._fine_until = max(self._fine_until, self._dig.complete_at)
        self._sample(now)

    def acquisition_complete_at(self) -> float:
        """When the record will be complete; refuses if there is nothing to wait for."""
        if self._dig.state == "triggered":
            return self._dig.complete_at
        if self._dig.state == "armed":
            raise PsuError(Reason.CONFLICT, "acquisition armed but not triggered")
        raise PsuError(Reason.NO_DATA, "no acquisition initiated")

    def fetch(self, quantity: Literal["volts", "amps"]) -> list[float]:
        """The completed record (call once ``acquisition_complete_at()`` has passed)."""
        complete_at = self.acquisition_complete_at()
        self.advance()
        if self._dig.filled < self._dig.points:
            raise PsuError(Reason.CONFLICT, f"record completes at t={complete_at:.6f}")
        data = self._dig.volts if quantity == "volts" else self._dig.amps
        return [float(x) for x in data]

    def _sample(self, t1: float) -> None:
        """Fill digitizer samples due up to ``t1`` with the state in force now."""
        dig = self._dig
        if dig.state != "triggered" or dig.filled >= dig.points:
            return
        last = min(dig.points - 1, math.floor((t1 - dig.t_trigger) / dig.interval + 1e-9))
        if last < dig.filled:
            return
        ch = self.channels[0]
        index = range(dig.filled, last + 1)
        readings = [self._reading(ch, dig.t_trigger + k * dig.interval) for k in index]
        n = len(readings)
        dig.volts[dig.filled : last + 1] = [r.voltage for r in readings] + self._rng.normal(0.0, NOISE_V, n)
        dig.amps[dig.filled : last + 1] = [r.current for r in readings] + self._rng.normal(0.0, NOISE_A, n)
        dig.filled = last + 1

    # -- introspection -----------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, object]:
        now = self.advance()
        channels: list[dict[str, object]] = []
        for ch in self.channels:
            reading = self._reading(ch, now)
            channels.append(
                {
                    "channel": ch.number,
                    "voltage_setpoint": ch.v_set,
                    "current_limit": ch.i_set,
                    "output": ch.output,
                    "delivering": ch.delivering,
                    "off_since": ch.off_since,
                    "voltage": round(reading.voltage, 6),
                    "current": round(reading.current, 6),
                    "cc": reading.cc,
                    "ovp_enabled": ch.ovp_enabled,
                    "ovp_level": ch.ovp_level,
                    "ovp_tripped": ch.ovp_tripped,
                    "ocp_enabled": ch.ocp_enabled,
                    "ocp_level": ch.ocp_level,
                    "ocp_delay": ch.ocp_delay,
                    "ocp_tripped": ch.ocp_tripped,
                    "watchdog_tripped": ch.wdog_tripped,
                }
            )
        return {
            "channels": channels,
            "watchdog": {
                "available": self.behaviour.has_watchdog,
                "enabled": self.wdog_enabled,
                "delay": self.wdog_delay,
                "tripped": self.watchdog_tripped,
            },
            "digitizer": {"state": self._dig.state, "points": self._dig.points, "interval": self._dig.interval},
        }
