"""Driver names → classes: the bench config's `driver:` picks a class here.

A new power-supply dialect is one module (a `ScpiPowerSupply` subclass) plus one line in `POWER_SUPPLIES`.
"""

from __future__ import annotations

from instruments.power import PowerSupply
from instruments.psu_base import ScpiPowerSupply
from instruments.psu_keysight import KeysightE36312A
from instruments.psu_rigol import RigolDP832

__all__ = ["POWER_SUPPLIES", "UnknownDriver", "open_power_supply"]

POWER_SUPPLIES: dict[str, type[ScpiPowerSupply]] = {
    "keysight-e36312a": KeysightE36312A,
    "rigol-dp832": RigolDP832,
}


class UnknownDriver(ValueError):
    """The bench config names a driver that is not in the registry."""

    def __init__(self, driver: str, known: list[str]) -> None:
        super().__init__(
            f"unknown power-supply driver {driver!r}; known drivers: {', '.join(known)}"
            " — fix 'driver:' in the bench config"
        )
        self.driver = driver
        self.known = known


def open_power_supply(driver: str, resource: str, timeout_s: float = 2.0) -> PowerSupply:
    """Connect to the supply at `resource` with the driver registered as `driver`.

    Raises UnknownDriver for a name not in POWER_SUPPLIES, InstrumentUnreachable if it cannot connect.
    """
    try:
        cls = POWER_SUPPLIES[driver]
    except KeyError:
        raise UnknownDriver(driver, sorted(POWER_SUPPLIES)) from None
    return cls(resource, timeout_s)
