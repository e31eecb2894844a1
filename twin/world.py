"""What the twin's simulated world shares: options, clock, seeded noise, the DUT's power, and the registries.

The world holds only what is world-wide. The satellite, its CAN bus, the RF path and the servers are built by
the app (``twin/app.py``), in order, and handed to whoever needs them through their constructors; nothing is
looked up here. What each part contributes to the whole it registers when it is built:

* a ticker (called every 5 ms, in registration order),
* a state provider for the control endpoint's ``{"cmd": "state"}``,
* faults that can be injected, and extra control commands,
* and — for the supply, which integrates the DUT's power in time — ``apply``: how a change to the DUT is made
  at the present instant of that timeline (before a supply exists: at once, at the clock's now).

The DUT's power state (``dut``, the umbilical's load) is world-wide physics: the supply feeds it, the satellite's
EPS switches its loads, the side channels see it powered, the control endpoint reports and switches it.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from twin.defects import Defects
from twin.dialects import DEFAULT_PSU_DIALECT, PsuDialect
from twin.power_model import IDLE_POWER_W, UVLO_FALLING_V, SatellitePowerModel

__all__ = ["Apply", "Fault", "Options", "World"]

# Runs a change to the world (given the instant it happens at) at the present instant of the DUT's timeline.
Apply = Callable[[Callable[[float], None]], None]


@dataclass(frozen=True)
class Options:
    """The command line of ``python -m twin`` (docs/contracts.md §1)."""

    host: str = "127.0.0.1"
    ports: Literal["fixed", "auto"] = "fixed"
    psu_dialect: PsuDialect = DEFAULT_PSU_DIALECT
    endpoints_file: Path | None = None
    parent_pid: int | None = None
    seed: int = 0
    log_level: str = "INFO"
    csp_version: int | None = None  # None: the ICD's default
    cfp_version: int | None = None
    icd: Path | None = None  # None: bench/icd/ots-sat.yaml of this source tree
    defects: tuple[str, ...] = ()  # seeded defects (twin/defects.py): a satellite wrong in a known way


@dataclass(frozen=True)
class Fault:
    """An injectable fault. ``active`` is None for one-shot actions (``apply`` ignores its argument).

    A fault with ``apply_request`` takes its parameters from the whole control request (node, count, seconds…)
    and raises ``ValueError`` to refuse it; ``apply`` is then unused. ``apply_async`` is the same for a fault that
    has to await something (re-plugging the USB-ISS opens a server); the control endpoint awaits it.
    """

    name: str
    description: str
    apply: Callable[[bool], dict[str, object]]
    active: Callable[[], bool] | None = None
    apply_request: Callable[[dict[str, object]], dict[str, object]] | None = None
    apply_async: Callable[[dict[str, object]], Awaitable[dict[str, object]]] | None = None


def _apply_now(clock: Callable[[], float]) -> Apply:
    def apply(change: Callable[[float], None]) -> None:
        change(clock())

    return apply


@dataclass
class World:
    options: Options
    clock: Callable[[], float] = time.monotonic
    dut: SatellitePowerModel = field(default_factory=SatellitePowerModel)
    faults: dict[str, Fault] = field(default_factory=dict)
    state: dict[str, Callable[[], dict[str, object]]] = field(default_factory=dict)
    tickers: list[Callable[[], object]] = field(default_factory=list)
    # Extra control-endpoint commands ({"cmd": name, ...} → reply fields; ValueError refuses).
    commands: dict[str, Callable[[dict[str, object]], dict[str, object]]] = field(default_factory=dict)
    # The DUT's timeline: at once until the supply, which owns it, replaces it (twin/psu_service.py).
    apply: Apply = field(init=False)
    # The seeded defects the satellite carries (twin/defects.py); node models read ``defects.active(NAME)``.
    defects: Defects = field(init=False)

    def __post_init__(self) -> None:
        self.apply = _apply_now(self.clock)
        self.defects = Defects(self.options.defects)
        self.apply_power_defects()
        self.state.setdefault("dut", lambda: self.dut.snapshot(self.clock()))

    def apply_power_defects(self) -> None:
        """The power model's defects are its numbers: set them from the defects now in force."""
        self.dut.uvlo_falling_v = self.defects.value("EPS_UVLO_LOW") or UVLO_FALLING_V
        self.dut.idle_power_w = IDLE_POWER_W + (self.defects.value("EPS_IDLE_POWER_HIGH") or 0.0)

    def rng(self, stream: str) -> np.random.Generator:
        """An independent noise generator per named stream, so adding a service never shifts another's noise."""
        return np.random.default_rng([self.options.seed, zlib.crc32(stream.encode())])

    def run_at_now(self, change: Callable[[float], None]) -> None:
        """Apply a change to the simulated world at the present instant of its timeline."""
        self.apply(change)

    def tick(self) -> None:
        for ticker in self.tickers:
            ticker()
