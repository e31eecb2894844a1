"""The UHF antenna deployment mechanism: four stowed elements, each held by a nylon line across a burn wire.

The COMMS firmware deploys on ``COMMS.DEPLOY_ANTENNA``: it asks the EPS for the burn output (a resistive heater
straight on the main bus, ``twin.power_model.RESISTIVE_LOADS_OHM``, so the supply current steps by ``V/R`` while
it burns) and heats the wires one element at a time, 1 to 4, skipping any already released. An element is
released when its wire has put ``melt_j`` joules into the line beyond what it loses to its surroundings; its
deployment switch then closes and the next element's wire is heated at once. The burn time therefore depends
on the bus voltage::

    t_burn(V) = melt_j / (V² / R − P_loss)        (never, when V² / R ≤ P_loss)

The firmware gives each element ``ANT_BURN_TIMEOUT_MS`` (a COMMS parameter): an element not released by then
ends the attempt — heater off, ``ANT_DEPLOY_TIMEOUT`` — with it and the elements after it still stowed. There
is no automatic retry: a new attempt is a new telecommand (``ANT_ATTEMPTS`` counts them since power-on).

Times are simulation times, exact between ticks: a release or a timeout that falls inside a tick interval is
placed where the energy balance puts it, so a stalled twin process neither lengthens a burn nor fires a false
timeout (only the events arrive late).

The elements are physical: a software reboot of COMMS stops a burn but leaves released elements released;
power-on (and a brownout) stows them all again — a twin's convenience, so that every test starts stowed.

Faults (control endpoint, ``{"cmd": "fault", "name": "antenna_jam", "element": 3, "on": true}``): a jammed
element's line does not part however long it burns (its switch never closes), so an attempt ends at its timeout.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from twin.power_model import RESISTIVE_LOADS_OHM

__all__ = [
    "BURN_LOAD",
    "ELEMENTS",
    "MELT_J",
    "P_LOSS_W",
    "AntennaDeployer",
    "Deployed",
    "ElementReleased",
    "TimedOut",
    "burn_time_s",
]

ELEMENTS: Final = 4
BURN_LOAD: Final = "antenna_burn"  # the EPS burn output's load in the power model
BURN_OHM: Final = RESISTIVE_LOADS_OHM[BURN_LOAD]
MELT_J: Final = 1.5  # energy into the line to part it (nominal element)
P_LOSS_W: Final = 0.8  # what the wire loses to the line holder and by radiation while hot
MELT_SPREAD: Final = 0.04  # this unit's elements differ by a few percent (drawn once, seeded)


def burn_power_w(volts: float) -> float:
    """Heat the burn wire develops at bus voltage ``volts``."""
    return volts * volts / BURN_OHM


def burn_time_s(volts: float, melt_j: float = MELT_J) -> float:
    """Seconds to release one element at a steady bus voltage ``volts`` (``math.inf``: it never releases)."""
    net = burn_power_w(volts) - P_LOSS_W
    return melt_j / net if net > 0.0 else math.inf


@dataclass(frozen=True)
class ElementReleased:
    element: int
    burn_s: float
    at: float


@dataclass(frozen=True)
class Deployed:
    elements: int
    total_s: float
    at: float


@dataclass(frozen=True)
class TimedOut:
    element: int
    deployed: int
    at: float


Outcome = ElementReleased | Deployed | TimedOut


@dataclass
class AntennaDeployer:
    """The mechanism and the firmware's deployment sequence. ``burn`` switches the EPS burn output (False:
    refused); the owner calls `tick` with the bus voltage and turns the outcomes into events."""

    burn: Callable[[bool], bool]
    melt_j: tuple[float, ...] = (MELT_J,) * ELEMENTS
    released: list[bool] = field(default_factory=lambda: [False] * ELEMENTS)
    jammed: set[int] = field(default_factory=set)  # elements (1..4) whose line does not part (fault / defect)
    attempts: int = 0
    burning: int = 0  # the element being burnt now, 0 when idle
    current_a: float = 0.0  # the burn output's current at the last tick
    _timeout_s: float = 0.0
    _attempt_start: float = 0.0
    _element_start: float = 0.0
    _energy_j: float = 0.0
    _last_t: float = 0.0
    _finished: bool = False  # an attempt with nothing left to burn: Deployed on the next tick

    @classmethod
    def for_unit(cls, burn: Callable[[bool], bool], rng: np.random.Generator) -> AntennaDeployer:
        """A unit whose elements' melt energies are drawn from ``rng`` (the same seed, the same unit)."""
        spread = np.clip(rng.normal(1.0, MELT_SPREAD, ELEMENTS), 1.0 - 3 * MELT_SPREAD, 1.0 + 3 * MELT_SPREAD)
        return cls(burn, tuple(MELT_J * float(s) for s in spread))

    @property
    def deployed(self) -> int:
        return sum(self.released)

    def stow(self) -> None:
        """Power-on: every element stowed again, no attempt made (a twin's convenience, see the module doc)."""
        self.abort()
        self.released = [False] * ELEMENTS
        self.attempts = 0

    def abort(self) -> None:
        """The firmware stops (reboot): heater off, the attempt abandoned; released elements stay released."""
        if self.burning:
            self.burn(False)
        self.burning = 0
        self.current_a = 0.0

    def start(self, t: float, timeout_s: float) -> bool:
        """Begin an attempt at ``t``; False if the EPS refused the burn output. With every element released
        already, the attempt ends at once (``Deployed`` on the next tick)."""
        if self.burning:
            raise RuntimeError("a deployment attempt is under way")
        self.attempts += 1
        self._timeout_s = timeout_s
        self._attempt_start = self._last_t = t
        nxt = self._next_stowed(0)
        if nxt == 0:
            self._finished = True
            return True
        if not self.burn(True):
            return False
        self._begin(nxt, t)
        return True

    def _next_stowed(self, after: int) -> int:
        return next((k for k in range(after + 1, ELEMENTS + 1) if not self.released[k - 1]), 0)

    def _begin(self, element: int, t: float) -> None:
        self.burning = element
        self._element_start = t
        self._energy_j = 0.0

    def tick(self, t: float, volts: float) -> list[Outcome]:
        """Advance to ``t`` with the bus at ``volts`` since the last tick; what happened, in order."""
        out: list[Outcome] = []
        if self._finished:
            self._finished = False
            out.append(Deployed(self.deployed, 0.0, t))
            return out
        if not self.burning:
            return out
        self.current_a = volts / BURN_OHM
        net = burn_power_w(volts) - P_LOSS_W
        while self.burning:
            k = self.burning
            deadline = self._element_start + self._timeout_s
            need = self.melt_j[k - 1] - self._energy_j
            release = math.inf if k in self.jammed or net <= 0.0 else self._last_t + need / net
            if release <= min(t, deadline):
                self.released[k - 1] = True
                out.append(ElementReleased(k, release - self._element_start, release))
                self._last_t = release
                nxt = self._next_stowed(k)
                if nxt:
                    self._begin(nxt, release)
                    continue
                self._end()
                out.append(Deployed(self.deployed, release - self._attempt_start, release))
            elif deadline <= t:
                self._end()
                out.append(TimedOut(k, self.deployed, deadline))
            else:
                self._energy_j += max(0.0, net) * (t - self._last_t) if k not in self.jammed else 0.0
                self._last_t = t
                break
        return out

    def _end(self) -> None:
        self.burn(False)
        self.burning = 0
        self.current_a = 0.0
