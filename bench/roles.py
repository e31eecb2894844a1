"""Every instrument of a bench config, opened by role: one table, role → driver → opener.

A bench has up to six instrument roles — ``psu`` (the supply powering the DUT), ``can`` (the adapter on the
satellite's bus), ``i2c`` (the adapter beneath the flight software), ``console`` (the OBC's debug UART),
``analyzer`` and ``generator`` (the RF front end). For each role, `ROLES` holds the one way to open it:

1. resolve the config's resource (``twin:<endpoint>`` → the running twin's address; anything else as given);
2. pick the driver named in the config from `instruments.registry` (the same table ``bench check`` validates
   against, so a config that passed the check cannot name an unknown driver at run time);
3. open it and read its identity; an SCPI instrument must be a model of its driver (`WrongInstrument`,
   before any setting is sent);
4. say how to make it safe (supply outputs off; generator RF off) and whether it needs a calibration record
   (measuring instruments only).

The session (`bench.session.BenchSession`) is the only caller: it journals each opened instrument, registers
its safe-state action and closes it. `bench safe` uses the same openers to reach a bench it does not hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from bench.config import CanConfig, ConfigError, ConsoleConfig, I2cConfig, InstrumentConfig, LoadedConfig
from instruments.registry import SAFE_ACTIONS

if TYPE_CHECKING:  # drivers import pyvisa, numpy, python-can: only when a role is really opened
    from bench.twin_launcher import TwinProcess
    from instruments.can_adapter import CanAddress
    from instruments.scpi import Identity

__all__ = [
    "ROLES",
    "OpenedInstrument",
    "RoleOpener",
    "open_role",
    "resolve_can",
    "resolve_resource",
    "resolve_serial_url",
    "safe_action_of",
    "twin_endpoint",
]


@dataclass(frozen=True)
class OpenedInstrument:
    """An open instrument: its role, the driver name and resolved resource it was opened with, its identity
    as it reported it, and the driver object itself (kept by the session; plans never see it)."""

    role: str
    driver_name: str
    resource: str
    identity: Identity
    handle: Any


@dataclass(frozen=True)
class RoleOpener:
    """How one role is opened and made safe."""

    role: str
    open: Callable[[LoadedConfig, TwinProcess | None, Mapping[str, Any]], OpenedInstrument]
    make_safe: Callable[[Any], object] | None  # safe state on an open handle (instruments.registry.SAFE_ACTIONS)
    calibrated: bool  # a measuring instrument: its calibration record decides whether evidence qualifies
    eager: bool  # opened with the session (safe state needs it from the start) rather than on first use


# -- twin: resources ---------------------------------------------------------------------------------------


def twin_endpoint(
    resource: str, twin: TwinProcess | None, config_path: Path, role: str
) -> tuple[str, str, dict[str, Any]] | None:
    """For `twin:<endpoint>[.<variant>]`: (endpoint name, variant, the running twin's record); None for a real
    address. One place for what every `twin:` resource needs: a twin that is running and serves the endpoint."""
    if not resource.startswith("twin:"):
        return None
    name, _, variant = resource.removeprefix("twin:").partition(".")
    where = f"{config_path}: instruments.{role}.resource"
    if twin is None:
        raise ConfigError(f"{where}: '{resource}' needs the auto-started twin; set twin.autostart: true")
    record = twin.endpoints.get(name)
    if record is None:
        served = ", ".join(sorted(twin.endpoints))
        raise ConfigError(f"{where}: the twin has no endpoint '{name}' (it serves: {served})")
    return name, variant, record


def resolve_resource(resource: str, twin: TwinProcess | None, config_path: Path, role: str) -> str:
    """A VISA resource: `twin:<endpoint>` → the running twin's VISA string; anything else is used as is."""
    found = twin_endpoint(resource, twin, config_path, role)
    if found is None:
        return resource
    name, _, record = found
    if "resource" not in record:
        raise ConfigError(f"{config_path}: instruments.{role}.resource: twin endpoint '{name}' is not a VISA resource")
    return str(record["resource"])


def resolve_can(can: CanConfig, twin: TwinProcess | None, config_path: Path) -> CanAddress:
    """The CAN adapter's address: ``twin:<endpoint>`` is built from the twin's endpoint record (socketcand:
    host, port and channel; slcan: the pyserial URL), anything else is used as the config gives it."""
    from instruments.can_adapter import CanAddress

    channel = can.channel or "can0"
    found = twin_endpoint(can.resource, twin, config_path, "can")
    if found is None:
        return CanAddress(can.driver, can.resource, channel, can.bitrate, dict(can.options))
    name, _, record = found
    kind = record.get("interface", record.get("kind"))
    if kind != can.driver:
        raise ConfigError(
            f"{config_path}: instruments.can.resource: endpoint '{name}' speaks {kind}, "
            f"but instruments.can.driver is {can.driver}"
        )
    if can.driver == "socketcand":
        resource = f"{record['host']}:{record['port']}"
        return CanAddress("socketcand", resource, can.channel or str(record.get("channel", channel)), can.bitrate)
    return CanAddress("slcan", str(record["url"]), channel, can.bitrate)


def resolve_serial_url(resource: str, twin: TwinProcess | None, config_path: Path, role: str) -> str:
    """A serial-port resource: `twin:<endpoint>` → the endpoint's TCP URL, `twin:<endpoint>.pty` → its
    pseudo-terminal path (what a USB device node is on a real bench); anything else as the config gives it."""
    found = twin_endpoint(resource, twin, config_path, role)
    if found is None:
        return resource
    name, variant, record = found
    key = "pty" if variant == "pty" else "url"
    if variant not in ("", "pty") or key not in record:
        raise ConfigError(
            f"{config_path}: instruments.{role}.resource: use twin:{name} (TCP) or twin:{name}.pty (pseudo-terminal)"
        )
    return str(record[key])


# -- openers -----------------------------------------------------------------------------------------------


def _section(loaded: LoadedConfig, role: str) -> Any:
    section = getattr(loaded.config.instruments, role)
    if section is None:
        raise ConfigError(f"{loaded.path}: instruments.{role}: this bench has no {role}; add it to the bench config")
    return section


def _open_scpi(role: str, make: Callable[[InstrumentConfig, str], Any]) -> Callable[..., OpenedInstrument]:
    """An SCPI role: resolve, open, verify the model against the driver before anything else is sent."""

    def opener(loaded: LoadedConfig, twin: TwinProcess | None, options: Mapping[str, Any]) -> OpenedInstrument:
        cfg: InstrumentConfig = _section(loaded, role)
        resource = resolve_resource(cfg.resource, twin, loaded.path, role)
        driver = make(cfg, resource)
        try:
            identity = driver.verify_identity(cfg.driver)
        except BaseException:
            driver.close()
            raise
        return OpenedInstrument(role, cfg.driver, resource, identity, driver)

    return opener


def _make_psu(cfg: InstrumentConfig, resource: str) -> Any:
    from instruments.registry import driver_entry

    return driver_entry("psu", cfg.driver).load()(resource, cfg.timeout_s)


def _make_analyzer(cfg: InstrumentConfig, resource: str) -> Any:
    from instruments.registry import driver_entry

    return driver_entry("analyzer", cfg.driver).load()(resource, cfg.timeout_s)


def generator_ceiling_dbm(loaded: LoadedConfig) -> float:
    """The highest generator level the DUT receiver can take through the uplink path (the driver's ceiling)."""
    envelope, path = loaded.config.dut.envelope.rf, loaded.config.instruments.rf_path
    assert envelope is not None and path is not None  # the config validator requires both with a generator
    return envelope.max_rx_input_dbm + path.uplink_loss_db


def _open_generator(loaded: LoadedConfig, twin: TwinProcess | None, options: Mapping[str, Any]) -> OpenedInstrument:
    from instruments.registry import driver_entry

    ceiling = generator_ceiling_dbm(loaded)  # the driver itself refuses anything above it

    def make(cfg: InstrumentConfig, resource: str) -> Any:
        return driver_entry("generator", cfg.driver).load()(resource, max_level_dbm=ceiling, timeout_s=cfg.timeout_s)

    return _open_scpi("generator", make)(loaded, twin, options)


def _open_can(loaded: LoadedConfig, twin: TwinProcess | None, options: Mapping[str, Any]) -> OpenedInstrument:
    import can

    from instruments.can_adapter import open_can_adapter
    from instruments.scpi import Identity

    cfg: CanConfig = _section(loaded, "can")
    address = resolve_can(cfg, twin, loaded.path)
    adapter = open_can_adapter(address, timeout_s=cfg.timeout_s)
    identity = Identity(cfg.driver, adapter.description, address.channel, f"python-can {can.__version__}")
    return OpenedInstrument("can", cfg.driver, str(address), identity, adapter)


def _open_i2c(loaded: LoadedConfig, twin: TwinProcess | None, options: Mapping[str, Any]) -> OpenedInstrument:
    from instruments.i2c import open_i2c
    from instruments.scpi import Identity

    cfg: I2cConfig = _section(loaded, "i2c")
    resource = resolve_serial_url(cfg.resource, twin, loaded.path, "i2c")
    if cfg.driver == "usb-iss":
        bus = open_i2c(cfg.driver, resource, timeout_s=cfg.timeout_s)
        identity = Identity("Devantech", "USB-ISS", resource, f"firmware {getattr(bus, 'firmware', '?')}")
    else:
        bus = open_i2c(cfg.driver, resource)
        identity = Identity("Linux", "i2c-dev (smbus2)", resource, "")
    return OpenedInstrument("i2c", cfg.driver, resource, identity, bus)


def _open_console(loaded: LoadedConfig, twin: TwinProcess | None, options: Mapping[str, Any]) -> OpenedInstrument:
    from instruments.console import Console
    from instruments.scpi import Identity

    cfg: ConsoleConfig = _section(loaded, "console")
    url = resolve_serial_url(cfg.resource, twin, loaded.path, "console")
    console = Console(url, baudrate=cfg.baudrate, log_path=options.get("log_path"))
    return OpenedInstrument(
        "console", cfg.driver, url, Identity("pyserial", "UART", url, f"{cfg.baudrate} baud"), console
    )


ROLES: Final[Mapping[str, RoleOpener]] = MappingProxyType(
    {
        "psu": RoleOpener("psu", _open_scpi("psu", _make_psu), SAFE_ACTIONS["psu"], calibrated=True, eager=True),
        "analyzer": RoleOpener("analyzer", _open_scpi("analyzer", _make_analyzer), None, calibrated=True, eager=True),
        "generator": RoleOpener("generator", _open_generator, SAFE_ACTIONS["generator"], calibrated=True, eager=True),
        "can": RoleOpener("can", _open_can, None, calibrated=False, eager=False),
        "i2c": RoleOpener("i2c", _open_i2c, None, calibrated=False, eager=False),
        "console": RoleOpener("console", _open_console, None, calibrated=False, eager=False),
    }
)


def open_role(role: str, loaded: LoadedConfig, twin: TwinProcess | None = None, **options: Any) -> OpenedInstrument:
    """Open the instrument of `role` as the bench config describes it (see the module doc)."""
    return ROLES[role].open(loaded, twin, options)


def safe_action_of(role: str) -> Callable[[Any], object] | None:
    """How to make an open instrument of `role` safe (None: it drives nothing)."""
    return ROLES[role].make_safe
