"""Lifecycle of the twin process: build the simulated world, start every service, publish the endpoint table,
run, stop cleanly.

The app is the one place that wires the twin together. `build_parts` builds, in this order:

1. the `World` (options, clock, seeded noise, the DUT's power, the registries: ``twin/world.py``),
2. the CAN bus (`CanHub`) and the `Satellite` on it, its nodes' host (``twin/nodes/satellite.py``),
3. the RF path cabled to the satellite's COMMS radio (`RfLink`, ``twin/rf_link.py``).

``SERVICES`` is the registry: one line per server (name, fixed port, how to build it from those `Parts`, each
collaborator handed to its constructor). No service looks anything up: what it is wired to, it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol, TextIO

import yaml

from twin.canbus import DEFAULT_SLCAN_PORT, DEFAULT_SOCKETCAND_PORT, CanHub
from twin.control import CONTROL_PORT, ControlService
from twin.icd import DEFAULT_ICD, load_icd
from twin.nodes.comms import CommsNode
from twin.nodes.obc import ObcNode
from twin.nodes.satellite import Satellite
from twin.psu_service import PsuService, psu_port
from twin.rf_instruments import VSA_PORT, VSG_PORT, AnalyzerService, GeneratorService
from twin.rf_link import RfLink
from twin.sidechannels import DEFAULT_CONSOLE_PORT, DEFAULT_USBISS_PORT, ConsoleService, I2cService
from twin.world import Options, World

__all__ = ["SERVICES", "Endpoint", "Parts", "Service", "ServiceSpec", "build_parts", "run"]

_log = logging.getLogger("twin")

TICK_S: Final = 0.005
PARENT_POLL_S: Final = 0.2
_PR_SET_PDEATHSIG: Final = 1


class Service(Protocol):
    # Read-only in the protocol, so services may narrow them (a CAN service's kind is a Literal).
    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def visa(self) -> bool: ...  # reachable as a VISA raw-socket resource

    async def start(self, host: str, port: int) -> int: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class Parts:
    """The simulated world and what is built on it (`build_parts`): what the services are built from."""

    world: World
    can: CanHub  # the satellite's CAN bus, which the bench reaches through the two CAN services
    satellite: Satellite
    rf: RfLink
    # A service whose endpoint record changed while running (a re-plugged USB-ISS has a new pty) calls this:
    # the app rewrites the endpoints file.
    republish: Callable[[], None]


def build_parts(options: Options, *, republish: Callable[[], None] = lambda: None) -> Parts:
    """World, CAN bus, satellite, RF path, in this order (``OSError``, ``ValueError``… for a bad ICD).

    Building registers what each part contributes to the world (tickers, state, faults, commands) in the
    same order; the satellite joins its CAN bus later, in the event loop (`Satellite.attach`)."""
    world = World(options)
    icd = load_icd(options.icd or DEFAULT_ICD)
    can = CanHub()
    satellite = Satellite(world, icd, can=can, csp_version=options.csp_version, cfp_version=options.cfp_version)
    rf = RfLink(world, satellite.node("COMMS", CommsNode))
    return Parts(world, can, satellite, rf, republish)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    fixed_port: Callable[[Options], int]
    build: Callable[[Parts], Service]


SERVICES: Final[tuple[ServiceSpec, ...]] = (
    ServiceSpec("psu", lambda options: psu_port(options.psu_dialect), lambda p: PsuService(p.world)),
    ServiceSpec("control", lambda options: CONTROL_PORT, lambda p: ControlService(p.world)),
    # The satellite's one CAN bus served two ways; its nodes are attached to it.
    ServiceSpec("can_socketcand", lambda options: DEFAULT_SOCKETCAND_PORT, lambda p: p.can.service("socketcand")),
    ServiceSpec("can_slcan", lambda options: DEFAULT_SLCAN_PORT, lambda p: p.can.service("slcan")),
    # Side channels, coupled to the satellite's nodes (twin/sidechannels.py); each also serves a pty.
    ServiceSpec(
        "i2c",
        lambda options: DEFAULT_USBISS_PORT,
        lambda p: I2cService(p.world, p.satellite, republish=p.republish),
    ),
    ServiceSpec(
        "console",
        lambda options: DEFAULT_CONSOLE_PORT,
        lambda p: ConsoleService(p.world, p.satellite.node("OBC", ObcNode)),
    ),
    # The RF front end, cabled to the COMMS radio through the modelled path (twin/rf_link.py).
    ServiceSpec("vsa", lambda options: VSA_PORT, lambda p: AnalyzerService(p.rf)),
    ServiceSpec("vsg", lambda options: VSG_PORT, lambda p: GeneratorService(p.rf.on_emission, clock=p.world.clock)),
)


@dataclass(frozen=True)
class Endpoint:
    name: str
    kind: str
    host: str
    port: int
    description: str
    visa: bool
    extra: dict[str, object] = field(default_factory=dict)  # service-specific fields (CAN: interface, channel…)

    @property
    def resource(self) -> str | None:
        return f"TCPIP0::{self.host}::{self.port}::SOCKET" if self.visa else None

    @property
    def address(self) -> str:
        if "url" in self.extra:
            return str(self.extra["url"])
        if self.kind == "socketcand":
            return f"socketcand://{self.host}:{self.port}/{self.extra.get('channel', '')}"
        return self.resource or f"tcp://{self.host}:{self.port}"

    def to_json(self) -> dict[str, object]:
        entry: dict[str, object] = {"kind": self.kind}
        if self.resource is not None:
            entry["resource"] = self.resource
        entry.update(address=self.address, host=self.host, port=self.port, description=self.description)
        entry.update({k: v for k, v in self.extra.items() if k not in entry})
        return entry


class StartupError(Exception):
    pass


def endpoint_lines(endpoints: list[Endpoint]) -> list[str]:
    """One line per endpoint: name, address, description (and the pty of a serial-device endpoint)."""
    name_width = max(len(e.name) for e in endpoints) + 2
    address_width = max(len(e.address) for e in endpoints) + 2

    def what(e: Endpoint) -> str:
        pty = e.extra.get("pty")
        return f"{e.description} (pty {pty})" if pty else e.description

    return [f"{e.name:<{name_width}}{e.address:<{address_width}}{what(e)}" for e in endpoints]


def write_endpoints_file(path: Path, endpoints: list[Endpoint]) -> None:
    """Atomically (tmp file in the same directory + os.replace): readers never see a partial table."""
    document = {"pid": os.getpid(), "endpoints": {e.name: e.to_json() for e in endpoints}}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as stream:
        json.dump(document, stream, indent=2)
        stream.write("\n")
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(tmp, path)


def _remove_own_endpoints_file(path: Path) -> None:
    """A stale table would send the next reader to dead ports; remove it, but only if it is still ours."""
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()


# ------------------------------------------------------------------------------------------ parent death


def _set_parent_death_signal() -> bool:
    """Ask Linux to send SIGTERM when our parent dies (prctl PR_SET_PDEATHSIG); False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    # A zombie still answers kill(0) until reaped; it is dead for our purpose.
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


async def _watch_parent(pid: int, stop: asyncio.Event) -> None:
    # Polling covers what PDEATHSIG cannot: a --parent-pid that is not our direct parent, non-Linux hosts.
    while not stop.is_set():
        if not process_alive(pid):
            _log.info("parent process %d is gone; stopping", pid)
            stop.set()
            return
        await asyncio.sleep(PARENT_POLL_S)


async def _tick(world: World) -> None:
    while True:
        try:
            world.tick()
        except Exception:
            _log.exception("simulation tick failed")
        await asyncio.sleep(TICK_S)


# ------------------------------------------------------------------------------------------------ run


def _endpoint(name: str, service: Service, host: str, port: int) -> Endpoint:
    extra = dict(getattr(service, "extra", {}))
    return Endpoint(name, service.kind, host, port, service.description, service.visa, extra)


async def _start(parts: Parts, services: list[Service], options: Options) -> list[Endpoint]:
    endpoints: list[Endpoint] = []
    for spec in SERVICES:
        service = spec.build(parts)
        port = 0 if options.ports == "auto" else spec.fixed_port(options)
        try:
            bound = await service.start(options.host, port)
        except OSError as exc:
            raise StartupError(
                f"cannot listen on {options.host}:{port} for {spec.name}: {exc.strerror or exc}"
            ) from exc
        services.append(service)
        endpoints.append(_endpoint(spec.name, service, options.host, bound))
    return endpoints


async def run(options: Options, *, out: TextIO | None = None) -> int:
    """Serve until SIGTERM/SIGINT or the parent's death; 0 on a clean stop, 1 if startup failed."""
    out = out or sys.stdout
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if options.parent_pid is not None:
        # PDEATHSIG fires on the death of the process that forked us, so it only helps if that is the parent.
        if options.parent_pid == os.getppid() and _set_parent_death_signal():
            _log.debug("PR_SET_PDEATHSIG armed for parent %d", options.parent_pid)
        # Checked after arming, so a parent that died in between is not missed.
        if not process_alive(options.parent_pid):
            _log.error("parent process %d is not running; not starting", options.parent_pid)
            return 1

    published: list[tuple[Endpoint, Service]] = []  # filled once the endpoints file is written

    def republish() -> None:
        if options.endpoints_file is not None and published:
            current = [_endpoint(e.name, s, e.host, e.port) for e, s in published]
            write_endpoints_file(options.endpoints_file, current)

    try:
        parts = build_parts(options, republish=republish)
    except (OSError, ValueError, KeyError, yaml.YAMLError) as exc:
        print(f"twin: cannot build the satellite: {exc}", file=sys.stderr, flush=True)
        return 1
    parts.satellite.attach()
    world = parts.world
    services: list[Service] = []
    tasks: list[asyncio.Task[None]] = []
    written = False
    try:
        try:
            endpoints = await _start(parts, services, options)
        except StartupError as exc:
            print(f"twin: {exc}", file=sys.stderr, flush=True)
            return 1
        if options.endpoints_file is not None:
            write_endpoints_file(options.endpoints_file, endpoints)
            written = True
            published.extend(zip(endpoints, services, strict=True))
        for line in endpoint_lines(endpoints):
            print(line, file=out)
        print("twin ready", file=out, flush=True)
        _log.info("twin ready (%s PSU, seed %d)", options.psu_dialect, options.seed)
        if options.defects:
            _log.warning("seeded defects (a satellite wrong on purpose): %s", ", ".join(options.defects))
        tasks.append(asyncio.create_task(_tick(world)))
        if options.parent_pid is not None:
            tasks.append(asyncio.create_task(_watch_parent(options.parent_pid, stop)))
        await stop.wait()
        _log.info("stopping")
        return 0
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for service in reversed(services):
            with contextlib.suppress(Exception):
                await service.stop()
        if written and options.endpoints_file is not None:
            _remove_own_endpoints_file(options.endpoints_file)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
