"""A bench session: it owns the bench — from a validated config to connected, identified, protected
instruments, and back.

Open order matters and is the safety procedure itself:
1. take the bench's lease (`bench.reservation`): one session per bench; a held bench, or one whose emergency-stop
   interlock is still set, is refused at once with one line naming the holder or the stop;
2. start the twin if the config says so (a separate process; the bench only learns its endpoints);
3. open every instrument the session needs from the start through the one role table (`bench.roles`): resolve,
   open, check the model against the driver, journal its identity and calibration, register its safe state;
4. put the supply in a known state (outputs off), check the DUT envelope fits the channel ratings;
5. arm instrument-side protection from the envelope: OVP, OCP, current limit, then the I/O watchdog;
6. start the heartbeats: one feeds the supply's watchdog, one renews the lease and watches the interlock.
Only then may anything power the DUT. The CAN adapter, I2C adapter and console are opened through the same table
when a test first asks for them. `close()` enters safe state and undoes the rest in reverse.

Plans never get a driver: the session hands out the guarded supply (`psu`), the RF front end, and the
satellite-side adapters; protection can only be tightened, and an emergency stop latches (`bench.emergency`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import emergency
from bench.asrun import new_run_id
from bench.calibration import CalibrationState, CalStatus, calibration_of
from bench.campaign import CAMPAIGN_KINDS, policies_for
from bench.config import ConfigError, LoadedConfig
from bench.envelope import GuardedSupply, arm_protection, check_ratings
from bench.journal import Journal
from bench.roles import ROLES, OpenedInstrument, open_role, resolve_resource
from bench.safe_state import SafeState
from bench.twin_launcher import TwinProcess
from instruments.errors import InstrumentError

if TYPE_CHECKING:
    from bench.icd import RadioDef
    from bench.reservation import Interlock, LeaseHandle, LeaseKeeper, SafeTarget
    from bench.rf import RfFrontEnd
    from instruments.can_adapter import CanAdapter
    from instruments.console import Console
    from instruments.i2c import I2CBus
    from instruments.power import PowerSupply
    from instruments.scpi import Identity

log = logging.getLogger(__name__)

# Campaigns whose results qualify hardware: every instrument must be in calibration before power-on.
CALIBRATED_CAMPAIGNS = frozenset(k for k in CAMPAIGN_KINDS if policies_for(k).calibration_enforced)


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


def bench_key(loaded: LoadedConfig, run_id: str, worker: str | None = None) -> str:
    """The name a bench is reserved under: the config's bench name; a bench with its own auto-started twin is
    private to its run (nothing else can reach that twin), so each such run reserves its own. A parallel run's
    workers each own a twin, so each reserves `<name>/<run-id>/<worker>`: all under the run's id, none colliding."""
    name = loaded.config.bench.name
    if not loaded.config.twin.autostart:
        return name
    return f"{name}/{run_id}/{worker}" if worker else f"{name}/{run_id}"


def reservation_url(loaded: LoadedConfig) -> str | None:
    """Where the bench's leases live (bench.stop.reservation_url: the one rule `bench safe` follows too)."""
    from bench.stop import reservation_url as url_of

    return url_of(loaded.config.bench.reservation)


def twin_log_name(worker: str | None) -> str:
    """The auto-started twin's log in the run directory: one per worker in a parallel run."""
    return f"twin-{worker}.log" if worker else "twin.log"


@dataclass
class BenchSession:
    loaded: LoadedConfig
    journal: Journal | None
    run_dir: Path | None = None
    run_id: str = field(default_factory=new_run_id)
    worker: str | None = None
    """The parallel-run worker this session serves (xdist's "gw0", ...), None in a serial run."""
    twin: TwinProcess | None = None
    instruments: dict[str, InstrumentInfo] = field(default_factory=dict)
    safe_state: SafeState = field(default_factory=SafeState)
    watchdog_armed: bool = False
    # Told (from the lease keeper's thread) once an emergency stop or a lost lease has made the bench safe.
    on_stop: Callable[[emergency.StopRecord], None] | None = None
    _campaign: str = "development"
    _opened: dict[str, OpenedInstrument] = field(default_factory=dict)
    _supply: GuardedSupply | None = None
    _lease: LeaseHandle | None = None
    _keeper: LeaseKeeper | None = None
    _current_test: str | None = None
    _stop: emergency.StopRecord | None = None
    _heartbeat_stop: threading.Event = field(default_factory=threading.Event)
    _heartbeat: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop_lock: threading.Lock = field(default_factory=threading.Lock)  # not _lock: an instrument opening holds it

    @property
    def config_path(self) -> Path:
        return self.loaded.path

    @property
    def bench_name(self) -> str:
        """The name this session holds the bench under."""
        return bench_key(self.loaded, self.run_id, self.worker)

    @property
    def stop_record(self) -> emergency.StopRecord | None:
        """The emergency stop (or lost lease) that ended this session's right to power the DUT, if any."""
        return self._stop

    @property
    def psu(self) -> GuardedSupply:
        """The DUT supply, limited to the envelope (the only handle on it anyone outside the session gets)."""
        if self._supply is None:
            raise RuntimeError("the bench session is not open")
        return self._supply

    @classmethod
    def open(
        cls,
        loaded: LoadedConfig,
        journal: Journal | None,
        run_dir: Path | None,
        *,
        run_id: str | None = None,
        install_signals: bool = True,
        campaign: str = "development",
        worker: str | None = None,
    ) -> BenchSession:
        session = cls(loaded=loaded, journal=journal, run_dir=run_dir, safe_state=SafeState(journal), worker=worker)
        if run_id:
            session.run_id = run_id
        session._campaign = campaign
        try:
            session._open(install_signals)
        except BaseException:
            session.close("session set-up failed")
            raise
        return session

    def _open(self, install_signals: bool) -> None:
        from bench.reservation import local_identity, open_store

        cfg = self.loaded.config
        emergency.reset()
        store = open_store(reservation_url(self.loaded))
        holder, host = local_identity()
        if cfg.twin.autostart:  # a private twin: starting it touches nobody's bench
            self._start_twin()
        self._lease = store.acquire(
            self.bench_name,
            run_id=self.run_id,
            holder=holder,
            host=host,
            pid=os.getpid(),
            ttl_s=max(5.0, 5 * cfg.safety.heartbeat_s),
            config=str(self.loaded.path.resolve()),
            safe_targets=self._safe_targets(),
        )
        if self.journal is not None:
            lease = self._lease.lease
            self.journal.record(
                "lease",
                bench=lease.bench,
                holder=lease.holder,
                host=lease.host,
                pid=lease.pid,
                since=lease.since.isoformat(),
            )
        if install_signals:
            self.safe_state.install()
        for role, opener in ROLES.items():
            if opener.eager and getattr(cfg.instruments, role) is not None:
                self._open_role(role)
        driver = self._driver("psu")
        psu_cfg = cfg.instruments["psu"]
        self._supply = GuardedSupply(driver, psu_cfg.channels, cfg.dut.envelope, str(self.config_path))
        envelope = cfg.dut.envelope
        check_ratings(driver, psu_cfg.channels, envelope, str(self.config_path))
        self.watchdog_armed = arm_protection(driver, psu_cfg.channels, envelope, cfg.safety, str(self.config_path))
        if self.watchdog_armed:
            self._start_heartbeat(driver, cfg.safety.heartbeat_s)
        self._start_keeper(cfg.safety.heartbeat_s)

    def _start_twin(self) -> None:
        twin_cfg = self.loaded.config.twin
        self.twin = TwinProcess(
            psu_dialect=twin_cfg.psu_dialect,
            seed=twin_cfg.seed,
            log_path=(self.run_dir / twin_log_name(self.worker)) if self.run_dir else None,
            startup_timeout_s=twin_cfg.startup_timeout_s,
            extra_args=tuple(arg for name in twin_cfg.defects for arg in ("--defect", name)),
        ).start()
        log.info("twin started (pid %s): %s", self.twin.pid, sorted(self.twin.endpoints))

    def _safe_targets(self) -> tuple[SafeTarget, ...]:
        """What `bench safe` without a config must switch off on this bench: the resolved addresses."""
        from bench.reservation import SafeTarget

        targets = []
        for role in ("psu", "generator"):
            section = self.loaded.config.instruments.get(role)
            if section is not None:
                resource = resolve_resource(section.resource, self.twin, self.config_path, role)
                targets.append(SafeTarget(role, section.driver, resource))
        return tuple(targets)

    # -- instruments by role ----------------------------------------------------------------------------
    def _open_role(self, role: str, **options: Any) -> OpenedInstrument:
        """Open `role` through the role table, journal it, register its safe state."""
        opened = open_role(role, self.loaded, self.twin, **options)
        spec = ROLES[role]
        if spec.make_safe is not None:
            # Registered the moment a connection exists: from here on, any exit makes it safe.
            self.safe_state.register(role, self._safe_action(role, spec.make_safe))
        if role != "console":  # a console is opened afresh per test; its record is the first one
            self._opened[role] = opened
        if role not in self.instruments:
            self._identify(opened, calibrated=spec.calibrated)
        return opened

    def _driver(self, role: str) -> Any:
        with self._lock:
            opened = self._opened.get(role)
            if opened is None:
                opened = self._open_role(role)
            return opened.handle

    def _identify(self, opened: OpenedInstrument, *, calibrated: bool) -> None:
        """Journal the instrument with its calibration; an uncalibrated one stops a qualifying campaign."""
        cfg = self.loaded.config
        ident = opened.identity
        if calibrated:
            cal = calibration_of(ident.serial, cfg.calibration, dt.date.today())
        else:  # adapters and consoles carry the link, they measure nothing
            cal = CalibrationState(ident.serial, CalStatus.NOT_REQUIRED)
        info = InstrumentInfo(opened.role, opened.driver_name, opened.resource, ident, cal)
        self.instruments[opened.role] = info
        if self.journal is not None:
            self.journal.record("instrument", **info.as_record())
        if cal.status in (CalStatus.VALID, CalStatus.NOT_REQUIRED):
            return
        if self._campaign in CALIBRATED_CAMPAIGNS:
            # Before protection is armed and long before power-on: evidence from an uncalibrated instrument
            # cannot qualify flight hardware, so the run must not start at all.
            due = f", due {cal.due.isoformat()}" if cal.due else ""
            raise ConfigError(
                f"{self.config_path}: calibration.{ident.serial}: the {ident.model} (S/N {ident.serial}) "
                f"calibration is {cal.status.value}{due}; a {self._campaign} campaign needs every instrument "
                "in calibration — recalibrate it, or run as a development campaign"
            )
        log.warning("calibration of %s (serial %s): %s", ident.model, ident.serial, cal.status.value)

    def can_adapter(self) -> CanAdapter:
        """The CAN adapter on the satellite's bus (opened on first use; closed with the session)."""
        adapter: CanAdapter = self._driver("can")
        return adapter

    def i2c_bus(self) -> I2CBus:
        """The I2C adapter beneath the flight software (opened on first use; closed with the session)."""
        bus: I2CBus = self._driver("i2c")
        return bus

    def open_console(self, log_path: Path | None = None) -> Console:
        """A fresh connection to the OBC's debug UART, its lines logged to `log_path`; the caller closes it."""
        console: Console = self._open_role("console", log_path=log_path).handle
        return console

    def rf_front_end(self, radio: RadioDef) -> RfFrontEnd | None:
        """The analyzer and generator seen from the DUT antenna port, or None on a bench without an analyzer."""
        from bench.rf import RfFrontEnd

        instruments = self.loaded.config.instruments
        envelope = self.loaded.config.dut.envelope.rf
        if instruments.analyzer is None or instruments.rf_path is None or envelope is None:
            return None
        generator = self._driver("generator") if instruments.generator is not None else None
        return RfFrontEnd(self._driver("analyzer"), generator, instruments.rf_path, envelope, radio, self.config_path)

    def has_role(self, role: str) -> bool:
        return getattr(self.loaded.config.instruments, role) is not None

    # -- safe state -------------------------------------------------------------------------------------
    def _safe_action(self, role: str, make_safe: Callable[[Any], object]) -> Callable[[bool], None]:
        """Safe state of one instrument: on the open connection, else (or when ``fresh``) on a new one —
        the open one may be mid-exchange (a signal) or broken (link lost)."""

        def action(fresh: bool) -> None:
            opened = None if fresh else self._opened.get(role)
            if opened is not None:
                try:
                    make_safe(opened.handle)
                    return
                except InstrumentError as exc:
                    log.warning("%s safe state on the open connection failed (%s); retrying on a new one", role, exc)
            fresh_instrument = open_role(role, self.loaded, self.twin).handle
            try:
                make_safe(fresh_instrument)
            finally:
                fresh_instrument.close()

        return action

    def protection_trips(self) -> list[str]:
        """The supply's latched protection faults on the DUT's channels, in words ("OCP on channel 1 (dut_main)");
        empty when none tripped or the supply cannot be asked."""
        if self._supply is None:
            return []
        trips = []
        try:
            for role, ch in self._supply.roles.items():
                state = self._supply.protection(ch)
                kinds = [k for k, on in (("OVP", state.ovp_tripped), ("OCP", state.ocp_tripped),
                                         ("watchdog", state.watchdog_tripped)) if on]  # fmt: skip
                trips += [f"{kind} on channel {ch} ({role})" for kind in kinds]
        except InstrumentError as exc:  # the supply itself is the problem: the test says so already
            log.warning("could not read the supply's protection state: %s", exc)
        return trips

    def after_test(self) -> None:
        """Between tests: protection a plan tightened goes back to the envelope's own settings."""
        if self._supply is not None and self._supply.tightened and self._stop is None:
            self._supply.restore_protection()

    # -- heartbeats: the supply's watchdog and the bench's lease ----------------------------------------
    def _start_heartbeat(self, psu: PowerSupply, period_s: float) -> None:
        def beat() -> None:
            while not self._heartbeat_stop.wait(period_s):
                try:
                    psu.heartbeat()
                except InstrumentError as exc:
                    log.error("heartbeat to the supply failed: %s (its watchdog will switch outputs off)", exc)

        self._heartbeat = threading.Thread(target=beat, name="psu-watchdog-heartbeat", daemon=True)
        self._heartbeat.start()

    def _start_keeper(self, period_s: float) -> None:
        from bench.reservation import LeaseKeeper

        assert self._lease is not None
        self._keeper = LeaseKeeper(self._lease, period_s, self._on_interlock, self._on_lease_lost).start()

    @property
    def current_test(self) -> str | None:
        return self._current_test

    @current_test.setter
    def current_test(self, test_id: str | None) -> None:
        """The test now running: shown by `bench status` and named in an emergency stop's record."""
        self._current_test = test_id
        if self._keeper is not None:
            self._keeper.current_test = test_id

    def _on_interlock(self, interlock: Interlock) -> None:
        """`bench safe` stopped this bench: latch, journal who/when/which test, make everything safe."""
        self.stop_now(interlock.who, interlock.host, interlock.reason, at=interlock.time.isoformat())

    def stop_now(self, who: str, host: str, reason: str, *, at: str | None = None) -> None:
        """The emergency stop, latched now (the live view's button, after setting the interlock as `bench safe`
        does, rather than waiting for the next heartbeat to see it): journal, make safe. Once per session."""
        with self._stop_lock:
            if self._stop is not None:
                return
            record = emergency.StopRecord(who, host, at or dt.datetime.now(dt.UTC).isoformat(), reason)
            self._stop = record
        emergency.latch(record)
        log.critical("%s (test %s): making the bench safe", record.describe(), self._current_test or "-")
        if self.journal is not None and not self.journal.closed:
            self.journal.record(
                "emergency_stop", who=who, host=host, stop_time=record.time, reason=reason, test_id=self._current_test
            )
        self.safe_state.enter(f"emergency stop by {who}@{host}", fresh=True)
        self._told_stop(record)

    def _on_lease_lost(self, reason: str) -> None:
        """The lease is gone (the shared store lost our connection): we no longer own the bench; stop."""
        record = emergency.StopRecord("bench", socket.gethostname(), dt.datetime.now(dt.UTC).isoformat(), reason)
        if self._stop is not None:
            return
        self._stop = record
        emergency.latch(record)
        log.critical("lease on bench %s lost (%s): making the bench safe", self.bench_name, reason)
        if self.journal is not None and not self.journal.closed:
            self.journal.record(
                "emergency_stop", who="bench", host=record.host, stop_time=record.time,
                reason=f"lease lost: {reason}", test_id=self._current_test,
            )  # fmt: skip
        self.safe_state.enter("lease lost", fresh=True)
        self._told_stop(record)

    def _told_stop(self, record: emergency.StopRecord) -> None:
        if self.on_stop is not None:
            try:
                self.on_stop(record)
            except Exception:  # the listener's problem must not hide the stop
                log.exception("on_stop listener failed")

    # -- closing ----------------------------------------------------------------------------------------
    def close(self, reason: str = "session end") -> None:
        """Safe state, then stop the heartbeats, disarm the watchdog (outputs are off), disconnect, release the
        bench, stop the twin."""
        self.safe_state.enter(reason)
        if self._keeper is not None:
            self._keeper.stop()
            self._keeper = None
        self._heartbeat_stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
        psu = self._opened.get("psu")
        if psu is not None and self.watchdog_armed and self.safe_state.last_results.get("psu") == "ok":
            try:
                psu.handle.disarm_watchdog()
            except InstrumentError as exc:
                log.warning("could not disarm the watchdog: %s", exc)
        for role in reversed(list(self._opened)):
            try:
                self._opened[role].handle.close()
            except (InstrumentError, OSError) as exc:  # closing a dead link: nothing left to protect
                log.debug("closing %s: %s", role, exc)
        self._opened.clear()
        self._supply = None
        self.safe_state.unregister_all()
        self.safe_state.uninstall()
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        if self.twin is not None:
            self.twin.stop()
            self.twin = None
        emergency.reset()  # the latch guarded this session's instruments; the store's interlock stays set
