"""Powering the DUT: a small state machine (off → on) over the guarded supply.

Power-on always goes the same way: voltage and current limit from the envelope, protection trips cleared,
output on, then wait until the current has settled (the DUT has booted) — awaited as a predicate on
consecutive readings, never a fixed delay. An optional current capture records the inrush.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from bench.config import Envelope, Safety
from bench.envelope import GuardedSupply
from bench.waiting import await_value
from instruments.power import ProtectionState, Trace

log = logging.getLogger(__name__)


class PowerState(StrEnum):
    OFF = "off"
    ON = "on"


@dataclass(frozen=True, slots=True)
class PowerOn:
    """What power-on observed: the settled current and, if captured, the inrush trace."""

    volts: float
    settled_current: float
    settle_time_s: float
    inrush: Trace | None


class DutPower:
    def __init__(self, supply: GuardedSupply, envelope: Envelope, safety: Safety, role: str = "dut_main") -> None:
        self.supply = supply
        self.envelope = envelope
        self.safety = safety
        self.channel = supply.channel(role)
        self.state = PowerState.ON if supply.output(self.channel) else PowerState.OFF

    def on(
        self,
        volts: float | None = None,
        *,
        capture_inrush: bool = False,
        points: int = 2000,
        interval_s: float = 50e-6,
        settle: bool = True,
    ) -> PowerOn:
        volts = self.envelope.bus_voltage.nominal if volts is None else volts
        ch = self.channel
        self.supply.set_voltage(ch, volts)  # envelope-checked before anything is sent
        self.supply.set_current_limit(ch, self.envelope.max_current)
        self.supply.clear_protection(ch)
        t0 = time.monotonic()
        trace = None
        if capture_inrush:
            trace = self.supply.capture_current(ch, points, interval_s, start=lambda: self.supply.set_output(ch, True))
        else:
            self.supply.set_output(ch, True)
        self.state = PowerState.ON
        current = self.await_stable_current() if settle else self.supply.measure_current(ch)
        result = PowerOn(volts, current, time.monotonic() - t0, trace)
        log.info("DUT on at %.3f V: %.4f A after %.2f s", volts, current, result.settle_time_s)
        return result

    def off(self) -> None:
        self.supply.set_output(self.channel, False)
        self.state = PowerState.OFF

    def set_bus_voltage(self, volts: float) -> None:
        self.supply.set_voltage(self.channel, volts)

    def current(self) -> float:
        return self.supply.measure_current(self.channel)

    def voltage(self) -> float:
        return self.supply.measure_voltage(self.channel)

    def await_stable_current(
        self,
        *,
        timeout_s: float | None = None,
        window: int = 10,
        tolerance_a: float = 0.01,
        interval_s: float = 0.05,
    ) -> float:
        """Wait until `window` consecutive readings lie within `tolerance_a`; return their mean.

        The window (0.5 s by default) must outlast any plateau of the boot sequence, or a boot phase would be
        mistaken for the settled idle current.
        """
        readings: list[float] = []

        def sample() -> list[float]:
            readings.append(self.current())
            del readings[:-window]
            return readings

        await_value(
            sample,
            lambda r: len(r) == window and max(r) - min(r) <= tolerance_a,
            timeout_s=timeout_s or self.safety.stable_current_timeout_s,
            what=f"a stable DUT current (±{tolerance_a / 2:g} A over {window} readings)",
            interval_s=interval_s,
        )
        return sum(readings) / len(readings)

    def await_current(self, predicate: Callable[[float], bool], *, what: str, timeout_s: float | None = None) -> float:
        """Wait until the DUT current satisfies `predicate`; return that reading."""
        return await_value(
            self.current,
            predicate,
            timeout_s=timeout_s or self.safety.stable_current_timeout_s,
            what=what,
            interval_s=0.02,
        )

    def await_protection(
        self, predicate: Callable[[ProtectionState], bool], *, what: str, timeout_s: float = 2.0
    ) -> ProtectionState:
        """Wait until the channel's protection state satisfies `predicate`."""
        return await_value(
            lambda: self.supply.protection(self.channel), predicate, timeout_s=timeout_s, what=what, interval_s=0.01
        )
