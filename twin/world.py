"""The simulated world the twin's servers share: options, clock, noise streams, the DUT, faults, state.

Services (the PSU server, later CAN/I2C/RF servers) receive the ``World`` when they are built and register
what they contribute: a ticker (called every 5 ms), a state provider for the control endpoint, faults that
can be injected, and — for the service that owns the simulation timeline — ``apply``.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from twin.canbus import CanHub
from twin.power_model import SatellitePowerModel

if TYPE_CHECKING:
    from twin.nodes.satellite import Satellite

__all__ = ["Fault", "Options", "World"]


@dataclass(frozen=True)
class Options:
    """The command line of ``python -m twin`` (docs/contracts.md §1)."""

    host: str = "127.0.0.1"
    ports: Literal["fixed", "auto"] = "fixed"
    psu_dialect: Literal["keysight", "rigol"] = "keysight"
    endpoints_file: Path | None = None
    parent_pid: int | None = None
    seed: int = 0
    log_level: str = "INFO"
    csp_version: int | None = None  # None: the ICD's default
    cfp_version: int | None = None
    icd: Path | None = None  # None: bench/icd/ots-sat.yaml of this source tree


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


def _apply_now(clock: Callable[[], float]) -> Callable[[Callable[[float], None]], None]:
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
    can: CanHub = field(default_factory=CanHub)
    apply: Callable[[Callable[[float], None]], None] | None = None
    # The simulated satellite (CAN nodes), set by the app before the services are built: the side channels
    # (I2C, console) couple to its nodes.
    satellite: Satellite | None = None
    # Called by a service whose endpoint record changed while running (a re-plugged USB-ISS has a new pty):
    # the app rewrites the endpoints file.
    republish: Callable[[], None] = lambda: None
    # The RF path between the COMMS radio and the analyzer/generator services (twin/rf_link.py), built by
    # the first RF service.
    rf: object | None = None

    def __post_init__(self) -> None:
        if self.apply is None:
            self.apply = _apply_now(self.clock)
        self.state.setdefault("dut", lambda: self.dut.snapshot(self.clock()))

    def rng(self, stream: str) -> np.random.Generator:
        """An independent noise generator per named stream, so adding a service never shifts another's noise."""
        return np.random.default_rng([self.options.seed, zlib.crc32(stream.encode())])

    def run_at_now(self, change: Callable[[float], None]) -> None:
        """Apply a change to the simulated world at the present instant of its timeline."""
        assert self.apply is not None
        self.apply(change)

    def tick(self) -> None:
        for ticker in self.tickers:
            ticker()
