"""What the bench expects of a programmable power supply, and the values it exchanges with one.

`PowerSupply` is a structural `typing.Protocol`: the bench, the fixtures and the safe-state code are written
against it, and each dialect (Keysight E36312A, Rigol DP832, ...) is a class in its own module that
satisfies it and is listed in `instruments.registry`.

Units are SI throughout (V, A, s). Channels are numbered as on the front panel (1-based). A driver refuses
a channel that does not exist or a setting above the channel's rating *before* sending anything
(`SettingOutOfRange`), and raises `NotSupported` for a capability its model lacks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from instruments.scpi import Identity

__all__ = [
    "Capabilities",
    "ChannelRating",
    "Identity",
    "PowerSupply",
    "ProtectionState",
    "Trace",
]


@dataclass(frozen=True, slots=True)
class ChannelRating:
    """The most a channel can be programmed to."""

    max_voltage: float
    max_current: float


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Optional features: an I/O watchdog (outputs off when the bench PC goes quiet) and a current digitizer."""

    io_watchdog: bool
    digitizer: bool


@dataclass(frozen=True, slots=True)
class ProtectionState:
    """Latched protection faults of one channel (the watchdog is instrument-wide, reported on every channel)."""

    ovp_tripped: bool
    ocp_tripped: bool
    watchdog_tripped: bool

    @property
    def any_tripped(self) -> bool:
        return self.ovp_tripped or self.ocp_tripped or self.watchdog_tripped


@dataclass(frozen=True, slots=True)
class Trace:
    """Output current sampled every `interval_s`, starting at the trigger (sample i at i * interval_s)."""

    interval_s: float
    current: tuple[float, ...]

    @property
    def duration_s(self) -> float:
        return self.interval_s * len(self.current)

    @property
    def peak(self) -> float:
        """Largest sample, in A (0.0 for an empty trace)."""
        return max(self.current, default=0.0)

    def times(self) -> tuple[float, ...]:
        """Sample times in s from the trigger."""
        return tuple(i * self.interval_s for i in range(len(self.current)))


@runtime_checkable
class PowerSupply(Protocol):
    """A multi-channel programmable DC supply."""

    @property
    def resource(self) -> str:
        """The VISA resource string the driver talks to."""
        ...

    def identity(self) -> Identity: ...

    @property
    def channels(self) -> Mapping[int, ChannelRating]:
        """Channel number → rating."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    def reset(self) -> None:
        """`*RST` state: outputs off, protections at defaults; clears the error queue."""
        ...

    def set_voltage(self, channel: int, volts: float) -> None: ...

    def voltage_setpoint(self, channel: int) -> float: ...

    def set_current_limit(self, channel: int, amps: float) -> None: ...

    def current_limit(self, channel: int) -> float: ...

    def set_output(self, channel: int, on: bool) -> None: ...

    def output(self, channel: int) -> bool: ...

    def measure_voltage(self, channel: int) -> float: ...

    def measure_current(self, channel: int) -> float: ...

    def set_ovp(self, channel: int, level: float) -> None:
        """Arm over-voltage protection at `level` V."""
        ...

    def set_ocp(self, channel: int, enabled: bool, delay_s: float = 0.0) -> None:
        """Over-current protection: trip (output off) when the channel sits at its current limit for `delay_s`."""
        ...

    def protection(self, channel: int) -> ProtectionState: ...

    def clear_protection(self, channel: int) -> None:
        """Clear latched OVP/OCP/watchdog faults.

        Remove the cause first (e.g. `set_output(ch, False)`): some models (Keysight) return the output to
        its programmed state on clear, so a persisting cause trips again at once.
        """
        ...

    def arm_watchdog(self, delay_s: float) -> None:
        """Outputs off if no I/O reaches the instrument for `delay_s`. NotSupported without a watchdog."""
        ...

    def disarm_watchdog(self) -> None: ...

    def heartbeat(self) -> None:
        """The cheapest exchange, to keep the I/O watchdog fed."""
        ...

    def capture_current(self, channel: int, points: int, interval_s: float, start: Callable[[], None]) -> Trace:
        """Arm and trigger the digitizer, call `start()` (e.g. output on), return the trace.

        NotSupported on models without a digitizer.
        """
        ...

    def all_outputs_off(self) -> None:
        """Safe state: every output off, verified; retries once on a fresh connection. Raises if it cannot."""
        ...

    def close(self) -> None: ...
