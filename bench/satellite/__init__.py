"""The satellite as the bench talks to it: PUS telecommands and telemetry, CSP services, over CSP over CAN.

Test plans see one object, :class:`Satellite` (the ``satellite`` fixture): send a command, await telemetry or
an event, ask a service — and assert. Behind it the work is split the way fprime-gds splits its test API into
a pipeline, histories and predicates; each module does one job:

    link        SatelliteLink: the CAN adapter both ways, the receive thread (frames → packets with
                bench.link.LinkDecoder) and the dispatch of what arrives; the one EGSE CSP header; listeners
                (CAN log) and tracers (decoded trace); error frames, bus-off, a broken link; the counters
    history     History: what arrived — telemetry samples, events, replies — under ONE threading.Condition,
                and every await on it (await_tm, await_event, event marks, await_counters), each timing out
                with "timed out after T s awaiting X; last seen: Y"
    commanding  Commanding: telecommands checked against the ICD before sending, sequence counts, the
                Verification of each one (acceptance, start, completion) tracked by request ID and awaited
    services    PusServices (HK, are-you-alive, parameters) and CspServices (ping, uptime, ident, reboot,
                await_nodes_alive), built on the three above

The receive thread files each packet holding the condition and notifies it, so a wait ends the moment what it
awaits arrives — nothing polls, nothing sleeps. Predicates (:mod:`bench.predicates`) say what is awaited and
name it in the timeout message.

A telecommand the satellite rejects is a *value* — ``Verification.ok`` is False, ``failure_code`` says why —
so a plan can assert on the rejection itself; only silence is an error (:class:`SatelliteTimeout`), and a
broken CAN link ends every wait at once (:class:`LinkDown`). Nothing here raises in the receive thread:
malformed traffic is counted (:class:`SatelliteCounters`) and kept with its reason (:class:`MalformedTraffic`).

``open_satellite(loaded_config, adapter)`` starts the link as the bench config says.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import can

from bench.config import ConfigError, LoadedConfig
from bench.icd import Icd, Node, Value, icd_path, load_icd
from bench.link import services as csp_services
from bench.satellite.commanding import FAILURE_CODES, Commanding, StageReport, Verification, Verifications, Wait
from bench.satellite.history import (
    DEFAULT_TIMEOUTS,
    HISTORY,
    History,
    LinkDown,
    PredicateLike,
    ReceivedEvent,
    SatelliteTimeout,
    Timeouts,
    TmSample,
)
from bench.satellite.link import MalformedTraffic, SatelliteCounters, SatelliteLink
from bench.satellite.services import CspServices, PusServices, RequestRefused
from instruments.can_adapter import CanAdapter

__all__ = [
    "FAILURE_CODES",
    "LinkDown",
    "MalformedTraffic",
    "PredicateLike",
    "ReceivedEvent",
    "RequestRefused",
    "Satellite",
    "SatelliteCounters",
    "SatelliteTimeout",
    "StageReport",
    "Timeouts",
    "TmSample",
    "Verification",
    "Wait",
    "open_satellite",
]


class Satellite:
    """The bench's link to OTS-SAT. Use as a context manager, or call :meth:`start` and :meth:`close`.

    A facade: every method hands over to the module that does the job (see the package docstring)."""

    def __init__(
        self,
        adapter: CanAdapter,
        icd: Icd,
        *,
        csp_version: int | None = None,
        egse_address: int | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        crc32: bool = True,
        history: int = HISTORY,
    ) -> None:
        version = csp_version if csp_version is not None else icd.csp_version
        egse = egse_address if egse_address is not None else icd.egse_address
        self._history = History(icd, timeouts=timeouts, depth=history)
        verifications = Verifications(self._history.cond)
        self._link = SatelliteLink(adapter, icd, self._history, verifications.file, version=version, egse=egse,
                                   crc32=crc32)  # fmt: skip
        self._commanding = Commanding(self._link, self._history, verifications)
        self._pus = PusServices(self._commanding, self._link, self._history)
        self._csp = CspServices(self._link, self._history)

    # -- what the link is --------------------------------------------------------------------------------------
    @property
    def icd(self) -> Icd:
        return self._link.icd

    @property
    def version(self) -> int:
        """CSP version of the link (1 or 2)."""
        return self._link.version

    @property
    def egse(self) -> int:
        """The bench's CSP address."""
        return self._link.egse

    @property
    def pus_port(self) -> int:
        return self._link.pus_port

    @property
    def crc32(self) -> bool:
        """Whether the bench appends CRC32 to what it sends."""
        return self._link.crc32

    @crc32.setter
    def crc32(self, on: bool) -> None:
        self._link.crc32 = on

    @property
    def timeouts(self) -> Timeouts:
        """The defaults of every wait (acceptance, completion, CSP service, telemetry)."""
        return self._history.timeouts

    @timeouts.setter
    def timeouts(self, timeouts: Timeouts) -> None:
        self._history.timeouts = timeouts

    @property
    def on_ident(self) -> Callable[[str, csp_services.CmpIdent], None] | None:
        """Told about every CMP ident reply: the fixtures journal it as the DUT's own identity (report cover)."""
        return self._csp.on_ident

    @on_ident.setter
    def on_ident(self, callback: Callable[[str, csp_services.CmpIdent], None] | None) -> None:
        self._csp.on_ident = callback

    # -- lifecycle, listeners (link) ---------------------------------------------------------------------------
    @property
    def link_description(self) -> str:
        """Which CAN adapter and bus the link runs on (for traces and logs)."""
        return self._link.description

    @property
    def link_error(self) -> str | None:
        return self._link.error

    def start(self) -> Satellite:
        self._link.start()
        return self

    def close(self) -> None:
        self._link.close()
        self._history.close()

    def __enter__(self) -> Satellite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_listener(self, listener: Callable[[can.Message], None]) -> None:
        """Every frame received (from the receive thread) and sent (from the sender), as a python-can Message."""
        self._link.add_listener(listener)

    def remove_listener(self, listener: Callable[[can.Message], None]) -> None:
        self._link.remove_listener(listener)

    def add_tracer(self, tracer: Callable[[str], None]) -> None:
        """One decoded line per CSP packet received or sent, and per link event (drops, bus errors)."""
        self._link.add_tracer(tracer)

    def remove_tracer(self, tracer: Callable[[str], None]) -> None:
        self._link.remove_tracer(tracer)

    @property
    def malformed(self) -> deque[MalformedTraffic]:
        """The last 1000 packets the link could not use, with the reason (a deque of MalformedTraffic)."""
        return self._link.malformed

    # -- counters (link; awaited in the history) -----------------------------------------------------------------
    @property
    def counters(self) -> SatelliteCounters:
        return self._link.counters

    def reset_counters(self) -> None:
        self._link.reset_counters()

    def await_counters(
        self, predicate: Callable[[SatelliteCounters], bool], timeout_s: float, what: str
    ) -> SatelliteCounters:
        """Wait (on arrivals, not by polling) until the link counters satisfy ``predicate``."""
        return self._history.await_counters(lambda: self._link.counters, predicate, timeout_s, what)

    def counters_since(self, before: SatelliteCounters) -> dict[str, int]:
        """Which counters moved since ``before`` (for a test's evidence)."""
        return self._link.counters.since(before)

    # -- telemetry and events (history) ----------------------------------------------------------------------
    @property
    def events(self) -> deque[ReceivedEvent]:
        """The last 10,000 events received, oldest first (a deque of ReceivedEvent)."""
        return self._history.events

    def latest(self, mnemonic: str) -> TmSample | None:
        """The last sample of ``mnemonic`` received so far (None if none yet)."""
        return self._history.latest(mnemonic)

    def latest_telemetry(self) -> list[TmSample]:
        """The last sample of every telemetry value received so far (what the live page shows per node)."""
        return self._history.latest_all()

    def history(self, mnemonic: str) -> list[TmSample]:
        """The samples of ``mnemonic`` kept so far, oldest first."""
        return self._history.history(mnemonic)

    def await_tm(
        self,
        mnemonic: str,
        predicate: PredicateLike | None = None,
        timeout_s: float | None = None,
        *,
        fresh: bool = True,
    ) -> TmSample:
        """The first sample of ``mnemonic`` that satisfies ``predicate`` (any sample if None).

        ``fresh=True`` (default) considers only samples that arrive after the call; ``fresh=False`` also the
        latest one already received. The predicate is primed with that latest value, so ``changed()`` and
        ``rising()`` compare with the value known now.
        """
        return self._history.await_tm(mnemonic, predicate, timeout_s, fresh=fresh)

    def await_event(
        self,
        mnemonic: str,
        predicate: PredicateLike | None = None,
        timeout_s: float | None = None,
        *,
        since: int | None = None,
    ) -> ReceivedEvent:
        """The first event ``mnemonic`` (whose data satisfies ``predicate``, given the data dict) arriving
        after the call — or after event number ``since`` (:meth:`event_mark`), to catch one triggered before."""
        return self._history.await_event(mnemonic, predicate, timeout_s, since=since)

    def event_mark(self) -> int:
        """A bookmark in the event stream for :meth:`await_event` (``since=``)."""
        return self._history.event_mark()

    def events_named(self, mnemonic: str) -> list[ReceivedEvent]:
        return self._history.events_named(mnemonic)

    def events_since(self, mark: int) -> list[ReceivedEvent]:
        """The events received since :meth:`event_mark` returned ``mark`` (those still kept), oldest first."""
        return self._history.events_since(mark)

    # -- telecommands (commanding) -----------------------------------------------------------------------------
    def send_tc(
        self,
        node: str | Node,
        service: int,
        subtype: int,
        app_data: bytes = b"",
        *,
        label: str | None = None,
        args: Mapping[str, Any] | None = None,
        wait: Wait = "completion",
        timeout_s: float | None = None,
    ) -> Verification:
        """Any PUS TC to ``node``; waits for its verification reports as ``send`` does."""
        return self._commanding.send_tc(node, service, subtype, app_data, label=label, args=args, wait=wait,
                                        timeout_s=timeout_s)  # fmt: skip

    def send(
        self,
        cmd: str,
        /,
        *,
        timeout_s: float | None = None,
        check: bool = True,
        wait: Wait = "completion",
        **args: Any,
    ) -> Verification:
        """Perform function ``cmd`` (``NODE.NAME`` from the ICD) with ``args``: TC[8,1], then its reports.

        Arguments are checked against the ICD first (``check=False`` sends an out-of-range value anyway,
        to test the satellite's own checks). Returns the :class:`Verification`; raises
        :class:`SatelliteTimeout` only if a report due does not come (``timeout_s`` overrides the
        completion timeout).
        """
        return self._commanding.send(cmd, timeout_s=timeout_s, check=check, wait=wait, **args)

    def packet_for(self, cmd: str, /, *, check: bool = True, **args: Any) -> tuple[bytes, Verification]:
        """The CSP packet (header, TC[8,1], CRC32) of ``cmd`` for another path to the satellite — the RF
        uplink — and its Verification, whose reports still come back over CAN (`await_verification`)."""
        return self._commanding.packet_for(cmd, check=check, **args)

    def packet_to(self, node: str, port: int, payload: bytes) -> bytes:
        """A CSP packet from the bench to ``node``'s ``port`` (e.g. uplink test frames to an unused port)."""
        return self._commanding.packet_to(node, port, payload)

    def await_verification(self, v: Verification, wait: Wait = "completion", timeout_s: float | None = None) -> None:
        """Wait for the reports of a telecommand sent by another path (see `packet_for`)."""
        self._commanding.await_verification(v, wait, timeout_s)

    # -- PUS services ------------------------------------------------------------------------------------------
    def request_hk(self, what: str, timeout_s: float | None = None) -> dict[str, Value]:
        """One-shot HK (TC[3,27]) of a node's structures (``"EPS"``) or one (``"EPS.EPS_HK"``); returns the
        values of the reports that answer it, {mnemonic: value}."""
        return self._pus.request_hk(what, timeout_s)

    def enable_hk(self, what: str) -> list[Verification]:
        """TC[3,5] periodic reporting on, for a node's structures or one."""
        return self._pus.enable_hk(what)

    def disable_hk(self, what: str) -> list[Verification]:
        """TC[3,6] periodic reporting off."""
        return self._pus.disable_hk(what)

    def pus_ping(self, node: str, timeout_s: float | None = None) -> float:
        """TC[17,1] are-you-alive → TM[17,2]; returns the round trip in seconds."""
        return self._pus.pus_ping(node, timeout_s)

    def get_parameters(self, *mnemonics: str, timeout_s: float | None = None) -> dict[str, Value]:
        """TC[20,1] → TM[20,2]: the current values of parameters of one node."""
        return self._pus.get_parameters(*mnemonics, timeout_s=timeout_s)

    def set_parameter(self, mnemonic: str, value: Any, *, check: bool = True) -> Verification:
        """TC[20,3] one parameter, range-checked against the ICD first."""
        return self._pus.set_parameter(mnemonic, value, check=check)

    # -- CSP services ------------------------------------------------------------------------------------------
    def ping(self, node: str, size: int = 16, timeout_s: float | None = None) -> float:
        """CSP ping (port 1); returns the round trip in seconds. The echo must match byte for byte."""
        return self._csp.ping(node, size, timeout_s)

    def uptime(self, node: str, timeout_s: float | None = None) -> int:
        """CSP uptime (port 6), seconds since the node booted."""
        return self._csp.uptime(node, timeout_s)

    def ident(self, node: str, timeout_s: float | None = None) -> csp_services.CmpIdent:
        """CMP ident (port 0): hostname, model, revision, build date and time."""
        return self._csp.ident(node, timeout_s)

    def read_image(self, capture: int, size: int, node: str = "PAYLOAD", timeout_s: float | None = None) -> bytes:
        """Image ``capture`` (numbered as in CAPTURE_DONE), ``size`` bytes, from the node's IMAGE service."""
        return self._csp.read_image(capture, size, node, timeout_s)

    def reboot(self, node: str) -> None:
        """CSP reboot (port 4). No reply is due: await the node's return (uptime, BOOT event) yourself."""
        self._csp.reboot(node)

    def await_nodes_alive(
        self, timeout_s: float = 10.0, nodes: Iterable[str] | None = None, *, attempt_s: float = 0.3
    ) -> dict[str, float]:
        """Ping every node (or ``nodes``) until each has answered once; returns their round trips.

        Each unanswered ping is itself the wait before the next try, so nothing sleeps.
        """
        return self._csp.await_nodes_alive(timeout_s, nodes, attempt_s=attempt_s)


def open_satellite(loaded: LoadedConfig, adapter: CanAdapter) -> Satellite:
    """Start the satellite link on the bench's CAN adapter (opened by the session) as the bench config says.

    Raises ConfigError (no CAN entry, ICD problems, versions that disagree), each in one line saying what to fix.
    """
    cfg = loaded.config
    can_cfg = cfg.instruments.can
    if can_cfg is None:
        raise ConfigError(
            f"{loaded.path}: instruments.can: this bench has no CAN adapter, so it cannot talk to the satellite; "
            "add one (see bench/configs/twin.yaml)"
        )
    icd = load_icd(icd_path(loaded.path, cfg.icd))
    if icd.csp_version != can_cfg.csp_version:
        raise ConfigError(
            f"{loaded.path}: instruments.can.csp_version: {can_cfg.csp_version}, but the ICD {icd.path} says the "
            f"satellite speaks CSP v{icd.csp_version}"
        )
    timeouts = Timeouts(
        acceptance_s=can_cfg.acceptance_timeout_s,
        completion_s=can_cfg.completion_timeout_s,
        service_s=can_cfg.service_timeout_s,
    )
    sat = Satellite(
        adapter, icd, csp_version=can_cfg.csp_version, egse_address=can_cfg.egse_address, timeouts=timeouts,
        crc32=can_cfg.crc32,
    )  # fmt: skip
    return sat.start()
