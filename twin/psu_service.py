"""The bench power supply as a network service: dialect registry, SCPI server, injectable faults.

A new dialect is one module exposing its ratings/behaviour/command set and one line in ``PSU_DIALECTS``.

Faults: ``psu_silent`` (on: a hung instrument), ``psu_drop`` (every connection closed now), ``psu_error``
(``count``, ``code``: the next N settings are refused with that SCPI error, as a supply whose state forbids
them), and ``brownout`` (``seconds``: the umbilical contact to the DUT opens; the supply stays on, the
satellite's bus collapses and it reboots — the supply owns the DUT's timeline, so the fault lives here).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from twin import dialect_keysight, dialect_rigol
from twin.dialect_common import scpi_error_for
from twin.dialects import PsuDialect
from twin.psu import Behaviour, NoLoad, PowerSupply, Rating
from twin.scpi import (
    ERROR_TEXT,
    SETTINGS_CONFLICT,
    CommandSet,
    Interpreter,
    ScpiError,
    ScpiServer,
    Session,
    split_units,
)
from twin.world import Fault, World

__all__ = ["PSU_DIALECTS", "DialectSpec", "PsuService"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DialectSpec:
    port: int
    description: str
    ratings: tuple[Rating, ...]
    behaviour: Behaviour
    commands: Callable[[PowerSupply, Callable[[], float]], CommandSet]


PSU_DIALECTS: Final[dict[PsuDialect, DialectSpec]] = {
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


BROWNOUT_MAX_S: Final = 10.0
ERROR_COUNT_MAX: Final = 20


class _RefusingInterpreter(Interpreter):
    """The dialect's interpreter, plus the ``psu_error`` fault: the next ``refusals`` settings (program message
    units that are neither queries nor common commands) are not executed; each queues ``refusal_code``."""

    def __init__(self, commands: CommandSet, translate: Callable[[Exception], ScpiError | None]) -> None:
        super().__init__(commands, translate)
        self.refusals = 0
        self.refusal_code = SETTINGS_CONFLICT

    async def execute(self, session: Session, message: str) -> str | None:
        if self.refusals > 0:
            kept: list[str] = []
            for unit in split_units(message):
                header = unit.strip().split(None, 1)[0] if unit.strip() else ""
                if self.refusals > 0 and header and not header.endswith("?") and not header.startswith("*"):
                    self.refusals -= 1
                    session.error(self.refusal_code)
                    _log.info("%s: %r refused (psu_error fault)", session.peer, unit.strip())
                    continue
                kept.append(unit)
            message = ";".join(kept)
        return await super().execute(session, message)


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
        self.interpreter = _RefusingInterpreter(spec.commands(self.psu, world.clock), translate=scpi_error_for)
        self.server = ScpiServer(self.interpreter, name="psu", on_io=self.psu.note_io)
        self.world = world
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
        world.faults["psu_error"] = Fault(
            "psu_error",
            f"count (1..{ERROR_COUNT_MAX}, default 1), code (default {SETTINGS_CONFLICT}): the PSU refuses its next N "
            "settings with that SCPI error (queries still answer)",
            lambda on: {},
            apply_request=self._refuse,
        )
        world.faults["brownout"] = Fault(
            "brownout",
            f"seconds (≤{BROWNOUT_MAX_S:g}, default 0.3): the umbilical contact opens with the supply on; over 0.1 s "
            "the EPS locks out and the satellite reboots when it closes (reset cause brownout)",
            lambda on: {},
            apply_request=self._brownout,
        )

    def _silent(self, on: bool) -> dict[str, object]:
        self.server.silent = on
        return {}

    def _drop(self, on: bool) -> dict[str, object]:
        return {"closed": self.server.drop_all()}

    def _refuse(self, request: dict[str, object]) -> dict[str, object]:
        count, code = request.get("count", 1), request.get("code", SETTINGS_CONFLICT)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= ERROR_COUNT_MAX:
            raise ValueError(f"'count' must be an integer 1..{ERROR_COUNT_MAX}, not {count!r}")
        if not isinstance(code, int) or isinstance(code, bool) or code >= 0 or code not in ERROR_TEXT:
            known = ", ".join(str(c) for c in sorted(ERROR_TEXT) if c < 0)
            raise ValueError(f"'code' must be a SCPI error code the twin knows ({known}), not {code!r}")
        self.interpreter.refusals, self.interpreter.refusal_code = count, code
        return {"count": count, "code": code}

    def _brownout(self, request: dict[str, object]) -> dict[str, object]:
        seconds = request.get("seconds", 0.3)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= BROWNOUT_MAX_S:
            raise ValueError(f"'seconds' must be a number in (0, {BROWNOUT_MAX_S:g}], not {seconds!r}")
        duration = float(seconds)
        self.world.run_at_now(lambda t: self.world.dut.interrupt(t, duration))
        return {"seconds": duration}

    async def start(self, host: str, port: int) -> int:
        return await self.server.start(host, port)

    async def stop(self) -> None:
        await self.server.stop()


def psu_port(dialect: PsuDialect) -> int:
    return PSU_DIALECTS[dialect].port
