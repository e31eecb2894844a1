"""The bench power supply as a network service: dialect registry, SCPI server, injectable faults.

A new dialect is one module exposing its ratings/behaviour/command set and one line in ``PSU_DIALECTS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from twin import dialect_keysight, dialect_rigol
from twin.dialect_common import scpi_error_for
from twin.psu import Behaviour, NoLoad, PowerSupply, Rating
from twin.scpi import CommandSet, Interpreter, ScpiServer
from twin.world import Fault, World

__all__ = ["PSU_DIALECTS", "DialectSpec", "PsuService"]


@dataclass(frozen=True)
class DialectSpec:
    port: int
    description: str
    ratings: tuple[Rating, ...]
    behaviour: Behaviour
    commands: Callable[[PowerSupply, Callable[[], float]], CommandSet]


PSU_DIALECTS: Final[dict[str, DialectSpec]] = {
    "keysight": DialectSpec(
        dialect_keysight.PORT,
        dialect_keysight.DESCRIPTION,
        dialect_keysight.RATINGS,
        dialect_keysight.BEHAVIOUR,
        lambda psu, clock: dialect_keysight.KeysightE36312A(psu, clock=clock).commands,
    ),
    "rigol": DialectSpec(
        dialect_rigol.PORT,
        dialect_rigol.DESCRIPTION,
        dialect_rigol.RATINGS,
        dialect_rigol.BEHAVIOUR,
        lambda psu, clock: dialect_rigol.RigolDP832(psu).commands,
    ),
}


class PsuService:
    """PSU channel 1 feeds the DUT model; channels 2 and 3 are unloaded."""

    name = "psu"
    kind = "scpi"
    visa = True

    def __init__(self, world: World) -> None:
        self.dialect = world.options.psu_dialect
        spec = PSU_DIALECTS[self.dialect]
        self.description = spec.description
        self.psu = PowerSupply(
            spec.ratings,
            [world.dut, NoLoad(), NoLoad()],
            spec.behaviour,
            clock=world.clock,
            rng=world.rng("psu"),
        )
        interpreter = Interpreter(spec.commands(self.psu, world.clock), translate=scpi_error_for)
        self.server = ScpiServer(interpreter, name="psu", on_io=self.psu.note_io)
        # The supply owns the DUT's timeline (it is what powers it), so world changes go through it.
        world.apply = self.psu.apply
        world.tickers.append(self.psu.advance)
        world.state["psu"] = lambda: {"dialect": self.dialect, "model": spec.description, **self.psu.snapshot()}
        world.faults["psu_silent"] = Fault(
            "psu_silent",
            "the PSU reads and drops every byte: nothing runs, no reply (client timeouts), no watchdog feed",
            self._silent,
            active=lambda: self.server.silent,
        )
        world.faults["psu_drop"] = Fault("psu_drop", "close every PSU connection now", self._drop)

    def _silent(self, on: bool) -> dict[str, object]:
        self.server.silent = on
        return {}

    def _drop(self, on: bool) -> dict[str, object]:
        return {"closed": self.server.drop_all()}

    async def start(self, host: str, port: int) -> int:
        return await self.server.start(host, port)

    async def stop(self) -> None:
        await self.server.stop()


def psu_port(dialect: str) -> int:
    return PSU_DIALECTS[dialect].port
