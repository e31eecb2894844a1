"""The satellite as the bench talks to it: PUS telecommands and telemetry, CSP services, over CSP over CAN.

A :class:`Satellite` owns one CAN adapter and one receive thread. The thread turns frames into packets with
:class:`bench.link.LinkDecoder` (CFP reassembly, CRC32, PUS decoding, every drop counted) and files what
arrives:

* verification reports (TM[1,x]) against the telecommand they answer (by request ID);
* housekeeping (TM[3,25]) and parameter reports (TM[20,2]) as samples in a store keyed by mnemonic
  (``EPS.VBAT``): latest value, when it came, and a bounded history;
* events (TM[5,x]) in a list; CSP service replies (ping, uptime, CMP ident) to whoever asked;
* malformed traffic as a counted reason, never an exception in the thread.

Test plans never poll: ``await_tm``/``await_event`` and every request wait on one ``threading.Condition``
that the receive thread notifies, so a wait ends the moment the awaited packet is filed. A timeout raises
:class:`SatelliteTimeout` naming what was awaited and what was last seen.

``send("ADCS.SET_MODE", mode="NADIR")`` checks the arguments against the ICD before anything leaves the
bench (:class:`bench.icd.CommandRefused`), sends TC[8,1] and returns a :class:`Verification` — the
satellite's acceptance, start and completion reports. A TC the satellite rejects is a *value* (``ok`` is
False, ``failure_code`` says why), so a plan can assert on the rejection itself; only silence is an error.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import can

from bench.config import ConfigError, LoadedConfig
from bench.icd import Command, EventRecord, Icd, Node, UnknownMnemonic, Value, icd_path, load_icd
from bench.link import services
from bench.link.cfp import CfpEncoder
from bench.link.csp import CspHeader, CspPacket, Priority, append_crc32
from bench.link.pipeline import LinkDecoder, LinkMessage
from bench.link.pus import (
    Event,
    HkReport,
    Pong,
    Stage,
    VerificationReport,
    build_tc,
    decode_parameter_report,
    encode_parameter_values,
    request_id,
    tc_function,
    tc_ping,
    tc_report_parameters,
)
from bench.predicates import Predicate, as_predicate
from bench.waiting import AwaitTimeout
from instruments.can_adapter import CanAdapter
from instruments.errors import InstrumentError

__all__ = [
    "FAILURE_CODES",
    "LinkDown",
    "RequestRefused",
    "Satellite",
    "SatelliteCounters",
    "SatelliteTimeout",
    "Timeouts",
    "TmSample",
    "Verification",
    "open_satellite",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

FAILURE_CODES: dict[int, str] = {
    1: "unknown service/subtype",
    2: "unknown function",
    3: "argument out of range",
    4: "wrong length",
    5: "CRC error",
    6: "not ready",
    7: "execution failed",
}
SERVICE_PORTS = frozenset(int(p) for p in services.ServicePort)
EPHEMERAL_PORTS = range(32, 64)  # libcsp's outgoing-connection ports lie above CSP_MAX_BIND_PORT (31)
HISTORY = 1000  # samples kept per mnemonic
EXPIRE_EVERY_S = 0.2  # how often the receive thread discards stale partial packets when the bus is quiet
SEVERITIES = {1: "info", 2: "low", 3: "medium", 4: "high"}
CAN_ERR_BUSOFF = 0x040
CAN_ERR_RESTARTED = 0x100

Wait = Literal["completion", "acceptance", "none"]
PredicateLike = Predicate | Callable[[Any], bool] | Value


class SatelliteTimeout(AwaitTimeout):
    """Nothing (or nothing matching) arrived in time; the message says what was awaited and last seen."""

    def __init__(self, what: str, timeout_s: float, last_seen: str) -> None:
        super().__init__(what, timeout_s, last_seen)
        self.args = (f"timed out after {timeout_s:g} s awaiting {what}; last seen: {last_seen}",)


class RequestRefused(RuntimeError):
    """A request whose answer the bench needs (HK, parameters) was refused; ``verification`` says why."""

    def __init__(self, what: str, verification: Verification) -> None:
        super().__init__(f"{what} refused: {verification}")
        self.verification = verification


class LinkDown(ConnectionError):
    """The CAN link broke; every wait fails at once with the reason instead of running into its timeout."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    acceptance_s: float = 2.0  # TC sent → TM[1,1]/[1,2]
    completion_s: float = 5.0  # acceptance → TM[1,7]/[1,8]
    service_s: float = 1.0  # CSP service request → reply
    tm_s: float = 5.0  # default for await_tm / await_event


@dataclass(frozen=True, slots=True)
class TmSample:
    """One value of one mnemonic as received. ``seq`` orders every sample of the session; ``index`` counts
    the samples of this mnemonic."""

    mnemonic: str
    value: Value
    time: float  # UNIX seconds, from the CAN frame that completed the packet
    monotonic: float
    seq: int
    index: int

    def __str__(self) -> str:
        value = f"{self.value:.6g}" if isinstance(self.value, float) else repr(self.value)
        return f"{self.mnemonic}={value} at {_clock(self.time)}"


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """An event (TM[5,x]) with when it arrived."""

    mnemonic: str
    node: str
    event_id: int
    severity: str
    data: dict[str, Value]
    time: float
    index: int

    def __str__(self) -> str:
        data = ", ".join(f"{k}={v!r}" for k, v in self.data.items())
        return f"{self.mnemonic}({data}) [{self.severity}] at {_clock(self.time)}"


@dataclass(frozen=True, slots=True)
class StageReport:
    stage: str  # acceptance, start, progress, completion
    success: bool
    code: int | None
    data: bytes
    time: float

    @property
    def meaning(self) -> str | None:
        return None if self.code is None else FAILURE_CODES.get(self.code, f"mission-specific code {self.code}")


@dataclass
class Verification:
    """What the satellite said about one telecommand: its acceptance, start and completion reports.

    ``ok`` is True only when the completion report says success. A rejection is data: ``failed_stage``,
    ``failure_code`` and ``failure_meaning`` tell where and why.
    """

    command: str
    node: str
    request_id: int
    args: dict[str, Any]
    sent_at: float
    acceptance: StageReport | None = None
    start: StageReport | None = None
    progress: list[StageReport] = field(default_factory=list)
    completion: StageReport | None = None

    @property
    def accepted(self) -> bool:
        return self.acceptance is not None and self.acceptance.success

    @property
    def ok(self) -> bool:
        return self.completion is not None and self.completion.success

    @property
    def done(self) -> bool:
        """No further report is due: completed, or failed at some stage."""
        return self.completion is not None or self.failed_stage is not None

    @property
    def failed_stage(self) -> str | None:
        for report in (self.acceptance, self.start, *self.progress, self.completion):
            if report is not None and not report.success:
                return report.stage
        return None

    @property
    def failure(self) -> StageReport | None:
        for report in (self.acceptance, self.start, *self.progress, self.completion):
            if report is not None and not report.success:
                return report
        return None

    @property
    def failure_code(self) -> int | None:
        failure = self.failure
        return None if failure is None else failure.code

    @property
    def failure_meaning(self) -> str | None:
        failure = self.failure
        return None if failure is None else failure.meaning

    @property
    def duration_s(self) -> float | None:
        """From sending to the completion (or failure) report."""
        last = self.completion or self.failure
        return None if last is None else last.time - self.sent_at

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        head = f"{self.command}({args}) [request 0x{self.request_id:08X}]"
        failure = self.failure
        if failure is not None:
            return f"{head}: {failure.stage} FAILED, code {failure.code} ({failure.meaning})"
        if self.ok:
            return f"{head}: completed"
        if self.accepted:
            return f"{head}: accepted, not completed"
        return f"{head}: no verification report"


@dataclass(frozen=True, slots=True)
class MalformedTraffic:
    time: float
    node: str
    reason: str


@dataclass(frozen=True, slots=True)
class SatelliteCounters:
    """Everything the link has counted since the satellite object was made (or ``reset_counters``)."""

    frames_rx: int
    frames_tx: int
    packets: int  # complete CSP packets (CRC good)
    tm: int  # valid PUS TMs
    hk_reports: int
    events: int
    verifications: int
    pongs: int
    service_replies: int
    crc_errors: int
    dropped: int  # packets lost on the way: sequence, timeout, orphan, short, overflow and CRC errors
    dropped_sequence: int
    dropped_timeout: int
    dropped_orphan: int
    dropped_short: int
    dropped_overflow: int
    pus_errors: int  # on the PUS port but not a valid TM (bad CRC16, wrong length, …)
    decode_errors: int  # valid TM whose data does not match the ICD
    unmatched_verifications: int
    error_frames: int
    bus_off_events: int
    restarts: int
    bus_off: bool
    other_traffic: int  # packets between other nodes, or on ports the bench does not use
    non_csp_frames: int  # standard-ID or remote frames (not CFP)


def _clock(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M:%S.%f")[:-3]


class Satellite:
    """The bench's link to OTS-SAT. Use as a context manager, or call :meth:`start` and :meth:`close`."""

    def __init__(
        self,
        adapter: CanAdapter,
        icd: Icd,
        *,
        csp_version: int | None = None,
        egse_address: int | None = None,
        timeouts: Timeouts = Timeouts(),
        crc32: bool = True,
        history: int = HISTORY,
    ) -> None:
        self._adapter = adapter  # private: plans send telecommands through the ICD checks, never raw frames
        self.icd = icd
        self.version = csp_version if csp_version is not None else icd.csp_version
        self.egse = egse_address if egse_address is not None else icd.egse_address
        self.pus_port = icd.pus_port
        self.timeouts = timeouts
        self.crc32 = crc32
        self._history = history
        self._decoder = LinkDecoder(self.version, pus_ports={self.pus_port}, local_address=self.egse)
        self._encoder = CfpEncoder(self.version, self.egse)
        self._cond = threading.Condition()
        self._tx_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._link_error: str | None = None
        # Told about every CMP ident reply: the fixtures journal it as the DUT's own identity (report cover).
        self.on_ident: Callable[[str, services.CmpIdent], None] | None = None
        self._listeners: tuple[Callable[[can.Message], None], ...] = ()
        self._tracers: tuple[Callable[[str], None], ...] = ()
        self._seq_counts: dict[int, itertools.count[int]] = {}
        self._ports = itertools.cycle([p for p in EPHEMERAL_PORTS if p != self.pus_port])
        # State below is guarded by _cond.
        self._seq = 0
        self._tm: dict[str, deque[TmSample]] = {}
        self._tm_counts: dict[str, int] = {}
        self.events: deque[ReceivedEvent] = deque(maxlen=10_000)
        self._event_count = 0
        self._pending: dict[int, Verification] = {}
        self._service_replies: dict[tuple[int, int, int], deque[CspPacket]] = {}
        self._pongs: dict[str, list[float]] = {}
        self._hk_reports: dict[tuple[str, int], int] = {}
        self._last_packet: dict[int, float] = {}  # node address → monotonic time of its last packet
        self.malformed: deque[MalformedTraffic] = deque(maxlen=1000)
        self._reset_local_counters()

    # ------------------------------------------------------------------------------------------------
    # lifecycle
    # ------------------------------------------------------------------------------------------------
    @property
    def link_description(self) -> str:
        """Which CAN adapter and bus the link runs on (for traces and logs)."""
        return self._adapter.description

    def start(self) -> Satellite:
        if self._thread is None:
            self._thread = threading.Thread(target=self._rx_loop, name="satellite-rx", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._adapter.close()

    def __enter__(self) -> Satellite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def link_error(self) -> str | None:
        return self._link_error

    # ------------------------------------------------------------------------------------------------
    # listeners: the CAN log and the decoded trace of a test
    # ------------------------------------------------------------------------------------------------
    def add_listener(self, listener: Callable[[can.Message], None]) -> None:
        """Every frame received (from the receive thread) and sent (from the sender), as a python-can Message."""
        self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: Callable[[can.Message], None]) -> None:
        self._listeners = tuple(x for x in self._listeners if x != listener)

    def add_tracer(self, tracer: Callable[[str], None]) -> None:
        """One decoded line per CSP packet received or sent, and per link event (drops, bus errors)."""
        self._tracers = (*self._tracers, tracer)

    def remove_tracer(self, tracer: Callable[[str], None]) -> None:
        self._tracers = tuple(x for x in self._tracers if x != tracer)

    def _trace(self, t: float, direction: str, text: str) -> None:
        line = f"{_clock(t)} {direction} {text}"
        for tracer in self._tracers:
            try:
                tracer(line)
            except Exception:  # evidence must never break the link
                log.exception("trace listener failed")

    # ------------------------------------------------------------------------------------------------
    # receive path
    # ------------------------------------------------------------------------------------------------
    def _reset_local_counters(self) -> None:
        self._frames_tx = 0
        self._hk_count = 0
        self._verif_count = 0
        self._pong_count = 0
        self._service_count = 0
        self._decode_errors = 0
        self._unmatched = 0
        self._error_frames = 0
        self._bus_off_events = 0
        self._restarts = 0
        self._bus_off = False
        self._other_traffic = 0
        self._non_csp = 0
        self._events_total = 0

    def reset_counters(self) -> None:
        with self._cond:
            self._decoder.reassembler.reset_counters()
            self._decoder.tm_packets = self._decoder.pus_errors = self._decoder.other_packets = 0
            self._reset_local_counters()

    def _rx_loop(self) -> None:
        recv = self._adapter.recv
        push = self._decoder.push
        next_expire = time.monotonic() + EXPIRE_EVERY_S
        while not self._stop.is_set():
            try:
                msg = recv(0.05)
            except InstrumentError as exc:
                if self._stop.is_set():
                    return
                log.error("CAN link lost: %s", exc)
                with self._cond:
                    self._link_error = str(exc)
                    self._cond.notify_all()
                return
            now = time.monotonic()
            if now >= next_expire:
                next_expire = now + EXPIRE_EVERY_S
                with self._cond:
                    before = self._decoder.reassembler.counters.dropped_timeout
                    if self._decoder.reassembler.expire() and self._tracers:
                        lost = self._decoder.reassembler.counters.dropped_timeout - before
                        self._trace(time.time(), "!!", f"{lost} partial packet(s) timed out (fragments lost)")
            if msg is None:
                continue
            for listener in self._listeners:
                try:
                    listener(msg)
                except Exception:
                    log.exception("CAN listener failed")
            if msg.is_error_frame:
                self._on_error_frame(msg)
                continue
            if not msg.is_extended_id or msg.is_remote_frame:
                self._non_csp += 1
                continue
            with self._cond:
                before = self._decoder.reassembler.crc_errors if self._tracers else 0
                try:
                    out = push(msg.arbitration_id, msg.data, msg.timestamp)
                except Exception as exc:  # the decoder promises not to raise; if it does, keep the link alive
                    log.exception("link decoder failed on frame 0x%08X", msg.arbitration_id)
                    self.malformed.append(MalformedTraffic(msg.timestamp, "?", f"decoder failure: {exc}"))
                    continue
                if out is not None:
                    self._dispatch(out, msg.timestamp)
                elif self._tracers and self._decoder.reassembler.crc_errors != before:
                    self._trace(
                        msg.timestamp, "!!", f"CRC32 error in a packet ending with frame 0x{msg.arbitration_id:08X}"
                    )

    def _on_error_frame(self, msg: can.Message) -> None:
        cls = msg.arbitration_id
        with self._cond:
            self._error_frames += 1
            if cls & CAN_ERR_BUSOFF:
                self._bus_off = True
                self._bus_off_events += 1
            if cls & CAN_ERR_RESTARTED:
                self._bus_off = False
                self._restarts += 1
            self._cond.notify_all()
        self._trace(msg.timestamp, "!!", f"CAN error frame class 0x{cls:03X}" + (" (BUS-OFF)" if cls & 0x40 else ""))

    def _node_name(self, address: int) -> str:
        node = self.icd.node_at(address)
        return node.name if node is not None else f"node {address}"

    def _dispatch(self, m: LinkMessage, t: float) -> None:
        """File one packet. Called with ``_cond`` held, from the receive thread."""
        pkt = m.packet
        h = pkt.header
        self._last_packet[h.src] = time.monotonic()
        if h.dst != self.egse:
            self._other_traffic += 1
            return
        src = self._node_name(h.src)
        if h.sport in SERVICE_PORTS and h.dport != self.pus_port:
            self._service_count += 1
            self._service_replies.setdefault((h.src, h.sport, h.dport), deque(maxlen=8)).append(pkt)
            if self._tracers:
                self._trace(t, "RX", f"{src}:{h.sport} → EGSE:{h.dport} CSP {services.ServicePort(h.sport).name} "
                            f"reply {len(pkt.payload)} B")  # fmt: skip
            self._cond.notify_all()
            return
        if m.error is not None:
            self.malformed.append(MalformedTraffic(t, src, m.error))
            self._trace(t, "!!", f"{src}: malformed PUS: {m.error}")
            self._cond.notify_all()
            return
        tm = m.tm
        if tm is None:
            self._other_traffic += 1
            return
        node = self.icd.node_of_apid(tm.apid)
        name = node.name if node is not None else src
        report = m.report
        text = f"{src}:{h.sport} → EGSE:{h.dport} TM[{tm.service},{tm.subtype}] apid 0x{tm.apid:03X} seq {tm.seq_count}"
        try:
            if isinstance(report, VerificationReport):
                self._verif_count += 1
                self._on_verification(report, t)
                outcome = "ok" if report.success else f"FAIL code {report.failure_code}"
                text += f" request 0x{report.request_id:08X} {outcome}"
            elif isinstance(report, HkReport):
                values = self.icd.decode_hk(name, report.sid, report.data)
                self._hk_count += 1
                self._hk_reports[(name, report.sid)] = self._hk_reports.get((name, report.sid), 0) + 1
                for mnemonic, value in values.items():
                    self._add_sample(mnemonic, value, t)
                if self._tracers:
                    hk = self.icd.hk_structure(name, report.sid)
                    text += f" {hk.mnemonic if hk else report.sid}: " + " ".join(
                        f"{k.split('.', 1)[1]}={v:.6g}" if isinstance(v, float) else f"{k.split('.', 1)[1]}={v}"
                        for k, v in values.items()
                    )
            elif isinstance(report, Event):
                record = self.icd.decode_event(name, report.event_id, SEVERITIES[report.severity], report.data)
                self._add_event(record, t)
                text += f" event {record.mnemonic} {record.data}"
            elif isinstance(report, Pong):
                self._pong_count += 1
                self._pongs.setdefault(name, []).append(time.monotonic())
                text += " pong"
            elif (tm.service, tm.subtype) == (20, 2):
                pairs = decode_parameter_report(tm, self.icd.parameter_sizes(name))
                values = self.icd.decode_parameters(name, pairs)
                for mnemonic, value in values.items():
                    self._add_sample(mnemonic, value, t)
                text += f" parameters {values}"
        except (ValueError, KeyError) as exc:  # DecodeError, PusError: the TM does not match the ICD
            self._decode_errors += 1
            self.malformed.append(MalformedTraffic(t, name, str(exc)))
            text += f" UNDECODABLE: {exc}"
        if self._tracers:
            self._trace(t, "RX", text)
        self._cond.notify_all()

    def _on_verification(self, report: VerificationReport, t: float) -> None:
        v = self._pending.get(report.request_id)
        if v is None:
            self._unmatched += 1
            return
        stage = {Stage.ACCEPTANCE: "acceptance", Stage.START: "start", Stage.PROGRESS: "progress"}.get(
            report.stage, "completion"
        )
        entry = StageReport(stage, report.success, report.failure_code, report.failure_data, t)
        if stage == "acceptance":
            v.acceptance = entry
        elif stage == "start":
            v.start = entry
        elif stage == "progress":
            v.progress.append(entry)
        else:
            v.completion = entry

    def _add_sample(self, mnemonic: str, value: Value, t: float) -> None:
        self._seq += 1
        index = self._tm_counts.get(mnemonic, 0)
        self._tm_counts[mnemonic] = index + 1
        store = self._tm.get(mnemonic)
        if store is None:
            store = self._tm[mnemonic] = deque(maxlen=self._history)
        store.append(TmSample(mnemonic, value, t, time.monotonic(), self._seq, index))

    def _add_event(self, record: EventRecord, t: float) -> None:
        self.events.append(
            ReceivedEvent(record.mnemonic, record.node, record.event_id, record.severity, record.data, t,
                          self._event_count)
        )  # fmt: skip
        self._event_count += 1
        self._events_total += 1

    # ------------------------------------------------------------------------------------------------
    # waiting
    # ------------------------------------------------------------------------------------------------
    def _wait(self, check: Callable[[], T | None], timeout_s: float, what: str, last_seen: Callable[[], str]) -> T:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                result = check()
                if result is not None:
                    return result
                if self._link_error is not None:
                    raise LinkDown(f"CAN link down while awaiting {what}: {self._link_error}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SatelliteTimeout(what, timeout_s, last_seen())
                self._cond.wait(remaining)

    def _silence(self, address: int) -> str:
        last = self._last_packet.get(address)
        name = self._node_name(address)
        if last is None:
            return f"nothing ever received from {name}"
        return f"last packet from {name} {time.monotonic() - last:.2f} s ago"

    # ------------------------------------------------------------------------------------------------
    # telemetry
    # ------------------------------------------------------------------------------------------------
    def latest(self, mnemonic: str) -> TmSample | None:
        """The last sample of ``mnemonic`` received so far (None if none yet)."""
        self.icd.tm_point(mnemonic)  # unknown mnemonic → a clear error with near matches
        with self._cond:
            store = self._tm.get(mnemonic)
            return store[-1] if store else None

    def history(self, mnemonic: str) -> list[TmSample]:
        self.icd.tm_point(mnemonic)
        with self._cond:
            return list(self._tm.get(mnemonic, ()))

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
        point = self.icd.tm_point(mnemonic)
        pred = as_predicate(predicate) if predicate is not None else None
        timeout = self.timeouts.tm_s if timeout_s is None else timeout_s
        with self._cond:
            store = self._tm.get(mnemonic)
            latest = store[-1] if store else None
            cursor = self._tm_counts.get(mnemonic, 0)
            if latest is not None and pred is not None:
                pred.prime(latest.value)
            if not fresh and latest is not None:
                cursor -= 1

        def check() -> TmSample | None:
            nonlocal cursor
            samples = self._tm.get(mnemonic)
            if not samples:
                return None
            first_kept = samples[-1].index - len(samples) + 1
            if cursor < first_kept:  # history overflowed while we slept: judge what is left
                cursor = first_kept
            while cursor <= samples[-1].index:
                sample = samples[cursor - first_kept]
                cursor += 1
                if pred is None or pred(sample.value):
                    return sample
            return None

        def last_seen() -> str:
            samples = self._tm.get(mnemonic)
            if not samples:
                where = f"HK SID {point.sid}" if point.sid is not None else "a parameter report"
                return f"no {mnemonic} received at all (it comes in {where} of {point.node})"
            return str(samples[-1])

        what = f"{mnemonic} {pred}" if pred is not None else f"a new {mnemonic} sample"
        return self._wait(check, timeout, what, last_seen)

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
        self.icd.event(mnemonic)
        pred = as_predicate(predicate) if predicate is not None else None
        timeout = self.timeouts.tm_s if timeout_s is None else timeout_s
        with self._cond:
            cursor = self._event_count if since is None else since

        def check() -> ReceivedEvent | None:
            nonlocal cursor
            skip = max(0, len(self.events) - (self._event_count - cursor))
            for event in itertools.islice(self.events, skip, None):
                cursor = event.index + 1
                if event.mnemonic == mnemonic and (pred is None or pred(event.data)):
                    return event
            cursor = self._event_count
            return None

        def last_seen() -> str:
            if not self.events:
                return "no event received at all"
            return "; ".join(str(e) for e in list(self.events)[-3:])

        what = f"event {mnemonic}" + (f" with data matching {pred}" if pred is not None else "")
        return self._wait(check, timeout, what, last_seen)

    def event_mark(self) -> int:
        """A bookmark in the event stream for :meth:`await_event` (``since=``)."""
        with self._cond:
            return self._event_count

    def events_named(self, mnemonic: str) -> list[ReceivedEvent]:
        with self._cond:
            return [e for e in self.events if e.mnemonic == mnemonic]

    # ------------------------------------------------------------------------------------------------
    # telecommands
    # ------------------------------------------------------------------------------------------------
    def _next_seq(self, apid: int) -> int:
        counter = self._seq_counts.setdefault(apid, itertools.count())
        return next(counter) & 0x3FFF

    def _send_packet(self, packet: CspPacket, text: str) -> None:
        if self.crc32:
            packet = append_crc32(packet, self.version)
        with self._tx_lock:
            frames = self._encoder.encode(packet)
            for frame in frames:
                msg = self._adapter.send(frame.can_id, frame.data)
                msg.timestamp = time.time()
                self._frames_tx += 1
                for listener in self._listeners:
                    try:
                        listener(msg)
                    except Exception:
                        log.exception("CAN listener failed")
        if self._tracers:
            self._trace(time.time(), "TX", text)

    def _send_pus(self, node: Node, raw: bytes, text: str) -> None:
        h = CspHeader(Priority.NORM, self.egse, node.address, self.pus_port, self.pus_port)
        self._send_packet(CspPacket(h, raw), f"EGSE:{self.pus_port} → {node.name}:{self.pus_port} {text}")

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
        n = node if isinstance(node, Node) else self.icd.node(node)
        raw = build_tc(service, subtype, n.apid, app_data, seq_count=self._next_seq(n.apid))
        rid = request_id(raw)
        v = Verification(label or f"{n.name} TC[{service},{subtype}]", n.name, rid, dict(args or {}), time.time())
        with self._cond:
            self._pending[rid] = v  # before sending: the report may beat us back
        self._send_pus(n, raw, f"TC[{service},{subtype}] {v.command} request 0x{rid:08X} {app_data.hex()}")
        self._await_verification(v, wait, timeout_s)
        return v

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
        node, raw, v = self._function_tc(cmd, args, check)
        self._send_pus(node, raw, f"TC[8,1] {cmd}({', '.join(f'{k}={a!r}' for k, a in args.items())}) "
                       f"request 0x{v.request_id:08X}")  # fmt: skip
        self._await_verification(v, wait, timeout_s)
        return v

    def _function_tc(self, cmd: str, args: Mapping[str, Any], check: bool) -> tuple[Node, bytes, Verification]:
        """TC[8,1] of ``cmd`` checked against the ICD, with its Verification registered before it can leave."""
        command: Command = self.icd.command(cmd)
        data = command.encode_args(dict(args), check=check)
        node = command.node
        raw = tc_function(node.apid, command.definition.function_id, data, seq_count=self._next_seq(node.apid))
        rid = request_id(raw)
        v = Verification(cmd, node.name, rid, dict(args), time.time())
        with self._cond:
            self._pending[rid] = v  # before sending: the report may beat us back
        return node, raw, v

    def packet_for(self, cmd: str, /, *, check: bool = True, **args: Any) -> tuple[bytes, Verification]:
        """The CSP packet (header, TC[8,1], CRC32) of ``cmd`` for another path to the satellite — the RF
        uplink — and its Verification, whose reports still come back over CAN (`await_verification`)."""
        node, raw, v = self._function_tc(cmd, args, check)
        packet = CspPacket(CspHeader(Priority.NORM, self.egse, node.address, self.pus_port, self.pus_port), raw)
        if self.crc32:
            packet = append_crc32(packet, self.version)
        return packet.pack(self.version), v

    def packet_to(self, node: str, port: int, payload: bytes) -> bytes:
        """A CSP packet from the bench to ``node``'s ``port`` (e.g. uplink test frames to an unused port)."""
        n = self.icd.node(node)
        packet = CspPacket(CspHeader(Priority.NORM, self.egse, n.address, port, port), payload)
        return (append_crc32(packet, self.version) if self.crc32 else packet).pack(self.version)

    def await_verification(self, v: Verification, wait: Wait = "completion", timeout_s: float | None = None) -> None:
        """Wait for the reports of a telecommand sent by another path (see `packet_for`)."""
        self._await_verification(v, wait, timeout_s)

    def _await_verification(self, v: Verification, wait: Wait, timeout_s: float | None) -> None:
        if wait == "none":
            return

        def last_seen() -> str:
            return f"{v}; {self._silence(self.icd.node(v.node).address)}"

        # A later report also ends this wait: a lost acceptance report must not fail a command that completed.
        self._wait(
            lambda: True if v.acceptance is not None or v.start is not None or v.done else None,
            self.timeouts.acceptance_s,
            f"acceptance of {v.command} (TM[1,1]/[1,2] for request 0x{v.request_id:08X})",
            last_seen,
        )
        if wait == "acceptance" or v.done:
            return
        self._wait(
            lambda: True if v.done else None,
            self.timeouts.completion_s if timeout_s is None else timeout_s,
            f"completion of {v.command} (TM[1,7]/[1,8] for request 0x{v.request_id:08X})",
            last_seen,
        )

    # -- PUS services built on send_tc ---------------------------------------------------------------
    def request_hk(self, what: str, timeout_s: float | None = None) -> dict[str, Value]:
        """One-shot HK (TC[3,27]) of a node's structures (``"EPS"``) or one (``"EPS.EPS_HK"``); returns the
        values of the reports that answer it, {mnemonic: value}."""
        structures = self.icd.structures(what)
        if not structures:
            raise UnknownMnemonic(f"{what} has no HK structure in the ICD")
        timeout = self.timeouts.tm_s if timeout_s is None else timeout_s
        values: dict[str, Value] = {}
        for hk in structures:
            key = (hk.node.name, hk.structure.sid)
            with self._cond:
                before = self._hk_reports.get(key, 0)
            fields = [f"{hk.node.name}.{f.name}" for f in hk.structure.fields]
            v = self.send_tc(hk.node, 3, 27, hk.structure.sid.to_bytes(4, "big"), label=f"HK one-shot {hk.mnemonic}")
            if v.failure is not None:
                raise RequestRefused(f"one-shot report {hk.mnemonic}", v)
            self._await_hk_report(key, before, timeout, hk.mnemonic)
            with self._cond:
                for f in fields:
                    values[f] = self._tm[f][-1].value
        return values

    def _await_hk_report(self, key: tuple[str, int], before: int, timeout_s: float, mnemonic: str) -> None:
        self._wait(
            lambda: True if self._hk_reports.get(key, 0) > before else None,
            timeout_s,
            f"HK report {mnemonic} (TM[3,25] SID {key[1]})",
            lambda: self._silence(self.icd.node(key[0]).address),
        )

    def enable_hk(self, what: str) -> list[Verification]:
        """TC[3,5] periodic reporting on, for a node's structures or one."""
        return [self._hk_switch(hk.mnemonic, hk.node, hk.structure.sid, 5) for hk in self.icd.structures(what)]

    def disable_hk(self, what: str) -> list[Verification]:
        """TC[3,6] periodic reporting off."""
        return [self._hk_switch(hk.mnemonic, hk.node, hk.structure.sid, 6) for hk in self.icd.structures(what)]

    def _hk_switch(self, mnemonic: str, node: Node, sid: int, subtype: int) -> Verification:
        word = "enable" if subtype == 5 else "disable"
        return self.send_tc(node, 3, subtype, sid.to_bytes(4, "big"), label=f"HK {word} {mnemonic}")

    def pus_ping(self, node: str, timeout_s: float | None = None) -> float:
        """TC[17,1] are-you-alive → TM[17,2]; returns the round trip in seconds."""
        n = self.icd.node(node)
        with self._cond:
            before = len(self._pongs.get(n.name, ()))
        started = time.monotonic()
        raw = tc_ping(n.apid, seq_count=self._next_seq(n.apid), ack_flags=0)
        self._send_pus(n, raw, "TC[17,1] ping")
        timeout = self.timeouts.service_s if timeout_s is None else timeout_s
        pong = self._wait(
            lambda: self._pongs[n.name][before] if len(self._pongs.get(n.name, ())) > before else None,
            timeout,
            f"TM[17,2] pong from {n.name}",
            lambda: self._silence(n.address),
        )
        return pong - started

    def get_parameters(self, *mnemonics: str, timeout_s: float | None = None) -> dict[str, Value]:
        """TC[20,1] → TM[20,2]: the current values of parameters of one node."""
        defs = [self.icd.parameter(m) for m in mnemonics]
        nodes = {node for node, _ in defs}
        if len(nodes) != 1:
            raise ValueError(f"get_parameters takes parameters of one node, got {', '.join(sorted(nodes))}")
        n = self.icd.node(nodes.pop())
        with self._cond:
            counts = {m: self._tm_counts.get(m, 0) for m in mnemonics}
        raw = tc_report_parameters(n.apid, [p.id for _, p in defs], seq_count=self._next_seq(n.apid))
        rid = request_id(raw)
        v = Verification(f"{n.name} report parameters", n.name, rid, {"ids": list(mnemonics)}, time.time())
        with self._cond:
            self._pending[rid] = v
        self._send_pus(n, raw, f"TC[20,1] {', '.join(mnemonics)}")
        timeout = self.timeouts.tm_s if timeout_s is None else timeout_s
        self._wait(
            lambda: True if all(self._tm_counts.get(m, 0) > counts[m] for m in mnemonics) or v.failure else None,
            timeout,
            f"TM[20,2] with {', '.join(mnemonics)}",
            lambda: f"{v}; {self._silence(n.address)}",
        )
        if v.failure is not None:
            raise RequestRefused("parameter report", v)
        with self._cond:
            return {m: self._tm[m][-1].value for m in mnemonics}

    def set_parameter(self, mnemonic: str, value: Any, *, check: bool = True) -> Verification:
        """TC[20,3] one parameter, range-checked against the ICD first."""
        node, pid, raw = self.icd.encode_parameter(mnemonic, value, check=check)
        return self.send_tc(node, 20, 3, encode_parameter_values([(pid, raw)]), label=f"set {mnemonic}",
                            args={"value": value})  # fmt: skip

    # ------------------------------------------------------------------------------------------------
    # CSP services
    # ------------------------------------------------------------------------------------------------
    def _service(self, node: str, port: services.ServicePort, payload: bytes, timeout_s: float | None) -> CspPacket:
        n = self.icd.node(node)
        with self._cond:
            sport = next(self._ports)
            self._service_replies.pop((n.address, int(port), sport), None)  # a stale late reply is not ours
        h = CspHeader(Priority.NORM, self.egse, n.address, int(port), sport)
        self._send_packet(CspPacket(h, payload), f"EGSE:{sport} → {n.name}:{int(port)} CSP {port.name} request")
        key = (n.address, int(port), sport)
        timeout = self.timeouts.service_s if timeout_s is None else timeout_s
        return self._wait(
            lambda: self._service_replies[key].popleft() if self._service_replies.get(key) else None,
            timeout,
            f"CSP {port.name} reply from {n.name} (address {n.address})",
            lambda: self._silence(n.address),
        )

    def ping(self, node: str, size: int = 16, timeout_s: float | None = None) -> float:
        """CSP ping (port 1); returns the round trip in seconds. The echo must match byte for byte."""
        request = services.ping_request(size)
        started = time.monotonic()
        reply = self._service(node, services.ServicePort.PING, request, timeout_s)
        rtt = time.monotonic() - started
        if not services.ping_reply_ok(request, reply.payload):
            raise services.ServiceError(f"{node} echoed {reply.payload.hex()} to ping {request.hex()}")
        return rtt

    def uptime(self, node: str, timeout_s: float | None = None) -> int:
        """CSP uptime (port 6), seconds since the node booted."""
        return services.decode_uptime(self._service(node, services.ServicePort.UPTIME, b"", timeout_s).payload)

    def ident(self, node: str, timeout_s: float | None = None) -> services.CmpIdent:
        """CMP ident (port 0): hostname, model, revision, build date and time."""
        reply = self._service(node, services.ServicePort.CMP, services.cmp_ident_request(), timeout_s)
        ident = services.CmpIdent.decode(reply.payload)
        if self.on_ident is not None:
            self.on_ident(self.icd.node(node).name, ident)
        return ident

    def reboot(self, node: str) -> None:
        """CSP reboot (port 4). No reply is due: await the node's return (uptime, BOOT event) yourself."""
        n = self.icd.node(node)
        h = CspHeader(Priority.NORM, self.egse, n.address, int(services.ServicePort.REBOOT), next(self._ports))
        self._send_packet(CspPacket(h, services.reboot_request()), f"EGSE → {n.name}:4 CSP REBOOT")

    def await_nodes_alive(
        self, timeout_s: float = 10.0, nodes: Iterable[str] | None = None, *, attempt_s: float = 0.3
    ) -> dict[str, float]:
        """Ping every node (or ``nodes``) until each has answered once; returns their round trips.

        Each unanswered ping is itself the wait before the next try, so nothing sleeps.
        """
        pending = list(nodes if nodes is not None else self.icd.nodes)
        answered: dict[str, float] = {}
        deadline = time.monotonic() + timeout_s
        while pending:
            for node in list(pending):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    silent = ", ".join(f"{n} ({self._silence(self.icd.node(n).address)})" for n in pending)
                    raise SatelliteTimeout(f"CSP ping replies from {', '.join(pending)}", timeout_s,
                                           f"answered: {', '.join(answered) or 'none'}; silent: {silent}")  # fmt: skip
                try:
                    answered[node] = self.ping(node, timeout_s=min(attempt_s, remaining))
                    pending.remove(node)
                except SatelliteTimeout:
                    continue
        return answered

    # ------------------------------------------------------------------------------------------------
    # counters
    # ------------------------------------------------------------------------------------------------
    @property
    def counters(self) -> SatelliteCounters:
        with self._cond:
            c = self._decoder.counters
            r = c.reassembly
            return SatelliteCounters(
                frames_rx=r.frames, frames_tx=self._frames_tx, packets=r.packets, tm=c.tm_packets,
                hk_reports=self._hk_count, events=self._events_total, verifications=self._verif_count,
                pongs=self._pong_count, service_replies=self._service_count, crc_errors=r.crc_errors,
                dropped=r.dropped, dropped_sequence=r.dropped_sequence, dropped_timeout=r.dropped_timeout,
                dropped_orphan=r.dropped_orphan, dropped_short=r.dropped_short, dropped_overflow=r.dropped_overflow,
                pus_errors=c.pus_errors, decode_errors=self._decode_errors, unmatched_verifications=self._unmatched,
                error_frames=self._error_frames, bus_off_events=self._bus_off_events, restarts=self._restarts,
                bus_off=self._bus_off, other_traffic=self._other_traffic, non_csp_frames=self._non_csp,
            )  # fmt: skip

    def await_counters(
        self, predicate: Callable[[SatelliteCounters], bool], timeout_s: float, what: str
    ) -> SatelliteCounters:
        """Wait (on arrivals, not by polling) until the link counters satisfy ``predicate``."""

        def check() -> SatelliteCounters | None:
            c = self._counters_locked()
            return c if predicate(c) else None

        return self._wait(check, timeout_s, what, lambda: str(self._counters_locked()))

    def _counters_locked(self) -> SatelliteCounters:
        # threading.Condition() wraps an RLock, so taking it again under _wait is safe.
        return self.counters

    def counters_since(self, before: SatelliteCounters) -> dict[str, int]:
        """Which counters moved since ``before`` (for a test's evidence)."""
        now = self.counters
        out: dict[str, int] = {}
        for name in SatelliteCounters.__dataclass_fields__:
            a, b = getattr(now, name), getattr(before, name)
            if isinstance(a, int) and not isinstance(a, bool) and a != b:
                out[name] = a - b
        return out


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
