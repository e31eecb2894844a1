"""A bench session: from a validated config to connected, identified, protected instruments — and back.

Open order matters and is the safety procedure itself:
1. start the twin if the config says so (a separate process; the bench only learns its endpoints);
2. connect every instrument, read its identity (*IDN?) and match its calibration record by serial;
3. put the supply in a known state (outputs off), check the DUT envelope fits the channel ratings;
4. arm instrument-side protection from the envelope: OVP, OCP, current limit, then the I/O watchdog;
5. register safe state for every exit and start the heartbeat that keeps the watchdog fed while we live.
Only then may anything power the DUT. `close()` enters safe state and undoes the rest in reverse.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from bench.calibration import CalibrationState, calibration_of
from bench.config import CanConfig, ConfigError, LoadedConfig
from bench.journal import Journal
from bench.safe_state import SafeState
from bench.safety import GuardedSupply, arm_protection, check_ratings
from bench.twin_launcher import TwinProcess
from instruments.can_adapter import CanAddress
from instruments.errors import InstrumentError
from instruments.power import Identity, PowerSupply
from instruments.registry import open_power_supply
from instruments.vsa import SignalAnalyzer
from instruments.vsg import SignalGenerator

log = logging.getLogger(__name__)


class _Driver(Protocol):
    def close(self) -> None: ...


_DriverT = TypeVar("_DriverT", bound=_Driver)


ANALYZER_DRIVERS = ("rs-fsv",)  # R&S FSV/FSW IQ analyzer (instruments/vsa.py)
GENERATOR_DRIVERS = ("rs-smbv",)  # R&S SMBV/SMW vector generator (instruments/vsg.py)


def check_driver(role: str, driver: str, known: tuple[str, ...], config_path: Path) -> None:
    if driver not in known:
        raise ConfigError(
            f"{config_path}: instruments.{role}.driver: unknown driver {driver!r}; known: {', '.join(known)}"
        )


# Campaigns whose results qualify hardware: every instrument must be in calibration before power-on.
CALIBRATED_CAMPAIGNS = frozenset({"qualification", "acceptance"})


@dataclass
class InstrumentInfo:
    role: str
    driver: str
    resource: str
    identity: Identity
    calibration: CalibrationState

    def as_record(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "driver": self.driver,
            "resource": self.resource,
            "identity": {
                "maker": self.identity.maker,
                "model": self.identity.model,
                "serial": self.identity.serial,
                "firmware": self.identity.firmware,
            },
            "calibration": self.calibration.as_record(),
        }


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
    channel = can.channel or "can0"
    found = twin_endpoint(can.resource, twin, config_path, "can")
    if found is None:
        return CanAddress(can.driver, can.resource, channel, can.bitrate)
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


@dataclass
class BenchSession:
    loaded: LoadedConfig
    journal: Journal | None
    run_dir: Path | None = None
    twin: TwinProcess | None = None
    psu_driver: PowerSupply | None = None
    analyzer_driver: SignalAnalyzer | None = None
    generator_driver: SignalGenerator | None = None
    instruments: dict[str, InstrumentInfo] = field(default_factory=dict)
    safe_state: SafeState = field(default_factory=SafeState)
    watchdog_armed: bool = False
    _heartbeat_stop: threading.Event = field(default_factory=threading.Event)
    _heartbeat: threading.Thread | None = None

    @property
    def config_path(self) -> Path:
        return self.loaded.path

    @property
    def psu(self) -> GuardedSupply:
        assert self.psu_driver is not None, "session not open"
        cfg = self.loaded.config
        return GuardedSupply(self.psu_driver, cfg.instruments["psu"].channels, cfg.dut.envelope, str(self.config_path))

    @classmethod
    def open(
        cls,
        loaded: LoadedConfig,
        journal: Journal | None,
        run_dir: Path | None,
        *,
        install_signals: bool = True,
        campaign: str = "development",
    ) -> BenchSession:
        session = cls(loaded=loaded, journal=journal, run_dir=run_dir, safe_state=SafeState(journal))
        try:
            session._open(install_signals, campaign)
        except BaseException:
            session.close("session set-up failed")
            raise
        return session

    def _open(self, install_signals: bool, campaign: str) -> None:
        cfg = self.loaded.config
        if cfg.twin.autostart:
            log_path = (self.run_dir / "twin.log") if self.run_dir else None
            self.twin = TwinProcess(
                psu_dialect=cfg.twin.psu_dialect,
                seed=cfg.twin.seed,
                log_path=log_path,
                startup_timeout_s=cfg.twin.startup_timeout_s,
            ).start()
            log.info("twin started (pid %s): %s", self.twin.pid, sorted(self.twin.endpoints))

        psu_cfg = cfg.instruments["psu"]
        resource = resolve_resource(psu_cfg.resource, self.twin, self.config_path, "psu")
        driver = open_power_supply(psu_cfg.driver, resource, psu_cfg.timeout_s)
        self.psu_driver = driver
        # Safe state is registered the moment a connection exists: from here on, any exit turns outputs off.
        self.safe_state.register(
            "psu",
            self._safe_action(
                "psu",
                lambda: self.psu_driver,
                lambda: open_power_supply(psu_cfg.driver, resource, psu_cfg.timeout_s),
                lambda psu: psu.all_outputs_off(),
            ),
        )
        if install_signals:
            self.safe_state.install()

        self._identify("psu", psu_cfg.driver, resource, driver.identity(), campaign)
        self._open_rf(campaign)

        envelope = cfg.dut.envelope
        check_ratings(driver, psu_cfg.channels, envelope, str(self.config_path))
        self.watchdog_armed = arm_protection(driver, psu_cfg.channels, envelope, cfg.safety, str(self.config_path))
        if self.watchdog_armed:
            self._start_heartbeat(driver, cfg.safety.heartbeat_s)

    def _identify(self, role: str, driver_name: str, resource: str, ident: Identity, campaign: str) -> None:
        """Journal the instrument with its calibration; an uncalibrated one stops a qualifying campaign."""
        cfg = self.loaded.config
        cal = calibration_of(ident.serial, cfg.calibration, dt.date.today())
        info = InstrumentInfo(role, driver_name, resource, ident, cal)
        self.instruments[role] = info
        if self.journal is not None:
            self.journal.record("instrument", **info.as_record())
        if cal.status.value != "valid":
            if campaign in CALIBRATED_CAMPAIGNS:
                # Before protection is armed and long before power-on: evidence from an uncalibrated instrument
                # cannot qualify flight hardware, so the run must not start at all.
                due = f", due {cal.due.isoformat()}" if cal.due else ""
                raise ConfigError(
                    f"{self.config_path}: calibration.{ident.serial}: the {ident.model} (S/N {ident.serial}) "
                    f"calibration is {cal.status.value}{due}; a {campaign} campaign needs every instrument "
                    "in calibration — recalibrate it, or run as a development campaign"
                )
            log.warning("calibration of %s (serial %s): %s", ident.model, ident.serial, cal.status.value)

    def _open_rf(self, campaign: str) -> None:
        """The analyzer and generator, if the bench has them: generator RF off is part of safe state."""
        instruments = self.loaded.config.instruments
        envelope = self.loaded.config.dut.envelope.rf
        path = instruments.rf_path
        if instruments.analyzer is not None:
            cfg = instruments.analyzer
            check_driver("analyzer", cfg.driver, ANALYZER_DRIVERS, self.config_path)
            resource = resolve_resource(cfg.resource, self.twin, self.config_path, "analyzer")
            self.analyzer_driver = SignalAnalyzer(resource, cfg.timeout_s)
            self._identify("analyzer", cfg.driver, resource, self.analyzer_driver.identity(), campaign)
        if instruments.generator is not None:
            cfg = instruments.generator
            check_driver("generator", cfg.driver, GENERATOR_DRIVERS, self.config_path)
            assert envelope is not None and path is not None  # the config validator requires both
            generator_resource = resolve_resource(cfg.resource, self.twin, self.config_path, "generator")
            # The driver itself refuses any level the DUT receiver could not take through the uplink path.
            ceiling = envelope.max_rx_input_dbm + path.uplink_loss_db
            generator = SignalGenerator(generator_resource, max_level_dbm=ceiling, timeout_s=cfg.timeout_s)
            self.generator_driver = generator
            timeout_s = cfg.timeout_s
            self.safe_state.register(
                "generator",
                self._safe_action(
                    "generator",
                    lambda: self.generator_driver,
                    lambda: SignalGenerator(generator_resource, max_level_dbm=ceiling, timeout_s=timeout_s),
                    lambda gen: gen.safe_state(),
                ),
            )
            self._identify("generator", cfg.driver, generator_resource, generator.identity(), campaign)
            generator.safe_state()

    @staticmethod
    def _safe_action(
        role: str,
        current: Callable[[], _DriverT | None],
        open_fresh: Callable[[], _DriverT],
        make_safe: Callable[[_DriverT], None],
    ) -> Callable[[bool], None]:
        """Safe state of one instrument: on the open connection, else (or when ``fresh``) on a new one —
        the open one may be mid-exchange (a signal) or broken (link lost)."""

        def action(fresh: bool) -> None:
            driver = None if fresh else current()
            if driver is not None:
                try:
                    make_safe(driver)
                    return
                except InstrumentError as exc:
                    log.warning("%s safe state on the open connection failed (%s); retrying on a new one", role, exc)
            fresh_driver = open_fresh()
            try:
                make_safe(fresh_driver)
            finally:
                fresh_driver.close()

        return action

    def _start_heartbeat(self, psu: PowerSupply, period_s: float) -> None:
        def beat() -> None:
            while not self._heartbeat_stop.wait(period_s):
                try:
                    psu.heartbeat()
                except InstrumentError as exc:
                    log.error("heartbeat to the supply failed: %s (its watchdog will switch outputs off)", exc)

        self._heartbeat = threading.Thread(target=beat, name="psu-watchdog-heartbeat", daemon=True)
        self._heartbeat.start()

    def close(self, reason: str = "session end") -> None:
        """Safe state, then stop the heartbeat, disarm the watchdog (outputs are off), disconnect, stop the twin."""
        self.safe_state.enter(reason)
        self._heartbeat_stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
        if self.psu_driver is not None:
            try:
                if self.watchdog_armed and self.safe_state.last_results.get("psu") == "ok":
                    self.psu_driver.disarm_watchdog()
            except InstrumentError as exc:
                log.warning("could not disarm the watchdog: %s", exc)
            self.psu_driver.close()
            self.psu_driver = None
        for driver in (self.analyzer_driver, self.generator_driver):
            if driver is not None:
                driver.close()
        self.analyzer_driver = self.generator_driver = None
        self.safe_state.unregister_all()
        self.safe_state.uninstall()
        if self.twin is not None:
            self.twin.stop()
            self.twin = None
