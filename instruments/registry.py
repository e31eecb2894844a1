"""Driver names → drivers, per instrument role: the bench config's `driver:` picks an entry here.

One table, as python-can's ``can.interfaces.BACKENDS`` maps an interface name to its Bus class: each role of a
bench (``psu``, ``can``, ``i2c``, ``console``, ``analyzer``, ``generator``) lists the driver names it accepts,
each with the module and class that implement it. Entries are strings, imported only when a driver is opened,
so validating a config (``bench check``) never loads pyvisa, numpy or python-can.

A new power-supply dialect is one module (a `ScpiPowerSupply` subclass) plus one line in `DRIVERS["psu"]`.
The CAN role also accepts every interface python-can knows (``socketcan`` on a Linux bench PC's ``can0``,
``pcan``, ``kvaser``, ``gs_usb``, ``vector``, ``virtual``, ...); the explicit ``socketcand`` and ``slcan``
entries add a reachability probe and a version handshake on top of python-can's own.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:  # the table must stay importable without pyvisa/numpy: `bench check` validates names only
    from instruments.power import PowerSupply

__all__ = [
    "DRIVERS",
    "POWER_SUPPLIES",
    "ROLES",
    "SAFE_ACTIONS",
    "DriverEntry",
    "UnknownDriver",
    "check_driver",
    "driver_entry",
    "driver_names",
    "make_safe_at",
    "open_power_supply",
    "python_can_interfaces",
]

ROLES: Final = ("psu", "can", "i2c", "console", "analyzer", "generator")


@dataclass(frozen=True, slots=True)
class DriverEntry:
    """One driver a role accepts: its config name, where its class lives, and what it drives."""

    role: str
    name: str
    target: str  # "module:attribute", imported on first use
    description: str

    def load(self) -> Any:
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


def _entries(role: str, *rows: tuple[str, str, str]) -> Mapping[str, DriverEntry]:
    return MappingProxyType({name: DriverEntry(role, name, target, text) for name, target, text in rows})


DRIVERS: Final[Mapping[str, Mapping[str, DriverEntry]]] = MappingProxyType(
    {
        "psu": _entries(
            "psu",
            ("keysight-e36312a", "instruments.psu_keysight:KeysightE36312A", "Keysight E36312A triple supply"),
            ("rigol-dp832", "instruments.psu_rigol:RigolDP832", "Rigol DP832 triple supply (no I/O watchdog)"),
        ),
        "can": _entries(
            "can",
            ("socketcand", "instruments.can_adapter:open_can_adapter", "socketcand daemon on a CAN gateway"),
            ("slcan", "instruments.can_adapter:open_can_adapter", "Lawicel/slcan adapter on a serial port"),
        ),
        "i2c": _entries(
            "i2c",
            ("usb-iss", "instruments.i2c:UsbIssI2C", "Devantech USB-ISS on a serial port"),
            ("smbus2", "instruments.i2c:SMBus2I2C", "Linux i2c-dev (/dev/i2c-N)"),
        ),
        "console": _entries(
            "console",
            ("serial", "instruments.console:Console", "a UART through pyserial (device path or URL)"),
        ),
        "analyzer": _entries("analyzer", ("rs-fsv", "instruments.vsa:SignalAnalyzer", "R&S FSV/FSW IQ analyzer")),
        "generator": _entries(
            "generator", ("rs-smbv", "instruments.vsg:SignalGenerator", "R&S SMBV/SMW vector generator with ARB")
        ),
    }
)

_PYTHON_CAN = "instruments.can_adapter:open_can_adapter"


def python_can_interfaces() -> tuple[str, ...]:
    """Every interface name python-can can open (its BACKENDS table plus installed plugins)."""
    from can.interfaces import VALID_INTERFACES  # ~0.4 s: only when a config names a less common interface

    return tuple(sorted(VALID_INTERFACES))


def driver_names(role: str) -> tuple[str, ...]:
    """The driver names a role accepts (for the CAN role: ours plus every python-can interface)."""
    names = tuple(DRIVERS[role])
    if role == "can":
        names += tuple(n for n in python_can_interfaces() if n not in names)
    return names


class UnknownDriver(ValueError):
    """The bench config names a driver that is not in the registry."""

    def __init__(self, driver: str, known: list[str], role: str = "psu") -> None:
        what = {"psu": "power-supply"}.get(role, role)
        super().__init__(
            f"unknown {what} driver {driver!r}; known drivers: {', '.join(known)}"
            f" — fix 'instruments.{role}.driver' in the bench config"
        )
        self.driver = driver
        self.known = known
        self.role = role


def driver_entry(role: str, name: str) -> DriverEntry:
    """The entry for `name` in `role`; UnknownDriver (naming the known ones) otherwise."""
    entry = DRIVERS[role].get(name)
    if entry is not None:
        return entry
    if role == "can" and name in python_can_interfaces():
        return DriverEntry("can", name, _PYTHON_CAN, f"python-can interface '{name}'")
    raise UnknownDriver(name, list(driver_names(role)), role)


def check_driver(role: str, name: str) -> None:
    """Raise UnknownDriver unless `role` accepts `name` (no driver module is imported)."""
    if name not in DRIVERS[role]:
        driver_entry(role, name)


# The power supplies by name (kept for callers that know only this role).
POWER_SUPPLIES: Final[Mapping[str, DriverEntry]] = DRIVERS["psu"]


def open_power_supply(driver: str, resource: str, timeout_s: float = 2.0, *, verify: bool = True) -> PowerSupply:
    """Connect to the supply at `resource` with the driver registered as `driver`, and (with `verify`) refuse
    an instrument that is not a model of that driver (`WrongInstrument`) before anything else is sent.

    Raises UnknownDriver for a name not in the table, InstrumentUnreachable if it cannot connect.
    """
    cls = driver_entry("psu", driver).load()
    supply = cls(resource, timeout_s)
    if verify:
        try:
            supply.verify_identity(driver)
        except BaseException:
            supply.close()
            raise
    return supply  # type: ignore[no-any-return]


# -- safe state ------------------------------------------------------------------------------------------------


def _supply_off(driver: Any) -> str:
    driver.all_outputs_off()
    return "all outputs off"


def _generator_off(driver: Any) -> str:
    driver.safe_state()
    return "RF and ARB off"


# How an open instrument of each role is made safe (None: it drives nothing, there is nothing to switch off):
# the one table the session's safe state and the emergency stop (`bench safe`) share.
SAFE_ACTIONS: Final[Mapping[str, Callable[[Any], str] | None]] = MappingProxyType(
    {"psu": _supply_off, "generator": _generator_off, "analyzer": None, "can": None, "i2c": None, "console": None}
)


def make_safe_at(role: str, driver: str | None, resource: str, timeout_s: float = 2.0) -> str:
    """Safe state of an instrument known only by its role, driver and address (the emergency stop on a bench it
    does not hold); the model is checked against the driver first. Without a driver, the first of the role's
    drivers whose models match the instrument's `*IDN?` is used. Returns what was done, in words."""
    from instruments.errors import WrongInstrument

    make_safe = SAFE_ACTIONS[role]
    if make_safe is None:
        return f"{role} drives nothing"
    candidates = [driver] if driver is not None else list(DRIVERS[role])
    for name in candidates:
        cls = DRIVERS[role][name].load()
        # The generator's level ceiling guards level settings only; safe state sets none.
        instrument = (
            cls(resource, max_level_dbm=-200.0, timeout_s=timeout_s)
            if role == "generator"
            else cls(resource, timeout_s)
        )
        try:
            instrument.verify_identity(name)
        except WrongInstrument:
            instrument.close()
            if name == candidates[-1]:
                raise
            continue
        try:
            done = make_safe(instrument)
        finally:
            instrument.close()
        return f"{name} at {resource}: {done}"
    raise AssertionError("unreachable: the loop returns or raises")
