"""The link: the bench's CAN adapter in both directions, and the receive thread that files what arrives.

:class:`SatelliteLink` owns the adapter. Its receive thread hands every frame to the CAN listeners (the CAN
log), turns frames into packets with :class:`bench.link.LinkDecoder` (CFP reassembly, CRC32, PUS decoding,
every drop counted) and dispatches each packet, holding the histories' one condition:

* verification reports (TM[1,x]) to the telecommand tracker given at construction (``on_verification``);
* housekeeping (TM[3,25]) and parameter reports (TM[20,2]), decoded with the ICD, to the telemetry store;
  events (TM[5,x]), pongs (TM[17,2]) and CSP service replies to their stores (:mod:`bench.satellite.history`);
* malformed traffic as a counted reason (:attr:`SatelliteLink.malformed`), never an exception in the thread;
* error frames: bus-off and restart; a broken adapter ends every wait (:meth:`History.link_down`).

The send side turns a CSP packet from the bench — always built by :meth:`SatelliteLink.packet`, the one place
the EGSE's header (priority, source address) is made — into CFP frames (CRC32 appended when configured). Both
directions feed the listeners and the decoded trace (tracers), and everything is counted
(:class:`SatelliteCounters`).

The receive path is the bench's hot path (a saturated bus is ~7,600 frames/s): it does no work for tracers
nobody registered, and files a whole HK report in one call (``benchmarks/bench_satellite_ingest.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import can

from bench.icd import Icd
from bench.link import services
from bench.link.cfp import CfpEncoder
from bench.link.csp import CspHeader, CspPacket, Priority, append_crc32
from bench.link.pipeline import LinkDecoder, LinkMessage
from bench.link.pus import Event, HkReport, Pong, VerificationReport, decode_parameter_report
from bench.satellite.history import History, clock
from instruments.can_adapter import CanAdapter
from instruments.errors import InstrumentError

__all__ = ["MalformedTraffic", "SatelliteCounters", "SatelliteLink", "VerificationSink"]

log = logging.getLogger(__name__)

SERVICE_PORTS = frozenset(int(p) for p in services.ServicePort)
EXPIRE_EVERY_S = 0.2  # how often the receive thread discards stale partial packets when the bus is quiet
SEVERITIES = {1: "info", 2: "low", 3: "medium", 4: "high"}
CAN_ERR_BUSOFF = 0x040
CAN_ERR_RESTARTED = 0x100
MALFORMED = 1000  # malformed-traffic records kept

VerificationSink = Callable[[VerificationReport, float], bool]
"""Files one TM[1,x] (called with the condition held); False if it answers no telecommand the bench sent."""


@dataclass(frozen=True, slots=True)
class MalformedTraffic:
    """A packet the link could not use, and why."""

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

    def since(self, before: SatelliteCounters) -> dict[str, int]:
        """Which counters moved since ``before``, by how much."""
        out: dict[str, int] = {}
        for name in SatelliteCounters.__dataclass_fields__:
            a, b = getattr(self, name), getattr(before, name)
            if isinstance(a, int) and not isinstance(a, bool) and a != b:
                out[name] = a - b
        return out


class SatelliteLink:
    """One CAN adapter: the receive thread and its dispatch, the sender, the listeners and the counters."""

    def __init__(
        self,
        adapter: CanAdapter,
        icd: Icd,
        history: History,
        on_verification: VerificationSink,
        *,
        version: int,
        egse: int,
        crc32: bool = True,
    ) -> None:
        self._adapter = adapter  # private: telecommands go through the ICD checks, never raw frames
        self.icd = icd
        self.version = version
        self.egse = egse
        self.pus_port = icd.pus_port
        self.crc32 = crc32
        self._history = history
        self._cond = history.cond  # the one condition: filing holds it, arrivals notify it
        self._on_verification = on_verification
        self._decoder = LinkDecoder(version, pus_ports={self.pus_port}, local_address=egse)
        self._encoder = CfpEncoder(version, egse)
        self._tx_lock = threading.Lock()
        # libcsp's reserved services and the ICD's application services (PAYLOAD's IMAGE): replies filed by port
        self._service_ports = SERVICE_PORTS | {p for n in icd.nodes.values() for p in n.ports.values()}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: tuple[Callable[[can.Message], None], ...] = ()
        self._tracers: tuple[Callable[[str], None], ...] = ()
        self._last_packet: dict[int, float] = {}  # node address → monotonic time of its last packet
        self._sent_mark: tuple[float, SatelliteCounters, int] | None = None  # the last request: when, counters, events
        self.malformed: deque[MalformedTraffic] = deque(maxlen=MALFORMED)
        self._reset_local_counters()
        history.witness = self.witness

    # ------------------------------------------------------------------------------------------------
    # lifecycle
    # ------------------------------------------------------------------------------------------------
    @property
    def description(self) -> str:
        """Which CAN adapter and bus the link runs on (for traces and logs)."""
        return self._adapter.description

    @property
    def error(self) -> str | None:
        """Why the link broke (the adapter's error), or None while it works."""
        return self._history.link_error

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._rx_loop, name="satellite-rx", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._adapter.close()

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
        line = f"{clock(t)} {direction} {text}"
        for tracer in self._tracers:
            try:
                tracer(line)
            except Exception:  # evidence must never break the link
                log.exception("trace listener failed")

    def _tell_listeners(self, msg: can.Message) -> None:
        for listener in self._listeners:
            try:
                listener(msg)
            except Exception:
                log.exception("CAN listener failed")

    # ------------------------------------------------------------------------------------------------
    # who was heard when
    # ------------------------------------------------------------------------------------------------
    def node_name(self, address: int) -> str:
        node = self.icd.node_at(address)
        return node.name if node is not None else f"node {address}"

    def silence(self, address: int) -> str:
        """When the link last heard from the node at ``address`` — the "last seen" of a wait on it."""
        last = self._last_packet.get(address)
        name = self.node_name(address)
        if last is None:
            return f"nothing ever received from {name}"
        return f"last packet from {name} {time.monotonic() - last:.2f} s ago"

    # ------------------------------------------------------------------------------------------------
    # send path
    # ------------------------------------------------------------------------------------------------
    def packet(self, dst: int, dport: int, sport: int, payload: bytes) -> CspPacket:
        """A CSP packet from the bench (the EGSE address, normal priority) to ``dst``:``dport`` — the one place
        the bench's header is built."""
        return CspPacket(CspHeader(Priority.NORM, self.egse, dst, dport, sport), payload)

    def wire_bytes(self, packet: CspPacket) -> bytes:
        """``packet`` as the link would put it on any wire: CRC32 appended when configured, packed."""
        return (append_crc32(packet, self.version) if self.crc32 else packet).pack(self.version)

    def send_packet(self, packet: CspPacket, text: str) -> None:
        """Send ``packet`` as CFP frames (CRC32 appended when configured); ``text`` is its trace line."""
        if self.crc32:
            packet = append_crc32(packet, self.version)
        self._sent_mark = (time.monotonic(), self.counters, self._history.event_mark())
        with self._tx_lock:
            frames = self._encoder.encode(packet)
            for frame in frames:
                msg = self._adapter.send(frame.can_id, frame.data)
                msg.timestamp = time.time()
                self._frames_tx += 1
                self._tell_listeners(msg)
        if self._tracers:
            self._trace(time.time(), "TX", text)

    # ------------------------------------------------------------------------------------------------
    # counters
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

    def witness(self, lookback_s: float) -> Callable[[], list[str]]:
        """Marks now; the returned call says what went wrong on the link since — a bus-off, lost fragments, a
        node's reboot — so that a wait that times out names the likely cause, not only the silence. A request
        sent within ``lookback_s`` before the mark moves it back to that request: its reply's trouble counts."""
        sent = self._sent_mark
        if sent is not None and time.monotonic() - sent[0] <= lookback_s:
            _, before, mark = sent
        else:
            before, mark = self.counters, self._history.event_mark()

        def seen() -> list[str]:
            now = self.counters
            moved = {k: n for k, n in now.since(before).items() if n > 0}  # a reset meanwhile counts nothing
            notes = []
            if moved.get("bus_off_events") or now.bus_off:
                notes.append(f"CAN bus-off ({moved.get('error_frames', 0)} error frame(s)"
                             + (", still off)" if now.bus_off else ", recovered)"))  # fmt: skip
            lost = {k.removeprefix("dropped_"): n for k, n in moved.items() if k.startswith("dropped_")}
            if lost:
                why = ", ".join(f"{n} {kind}" for kind, n in lost.items())
                notes.append(f"{moved.get('dropped', sum(lost.values()))} packet(s) lost on the bus ({why})")
            pending = self._decoder.reassembler.pending
            if pending:  # not yet counted: a partial packet is dropped only once it has been idle for its timeout
                notes.append(f"{pending} packet(s) incomplete, fragments lost")
            if moved.get("crc_errors"):
                notes.append(f"{moved['crc_errors']} CRC32 error(s)")
            for event in self._history.events_since(mark):
                if event.mnemonic.rsplit(".", 1)[-1] == "BOOT":
                    notes.append(f"{event.node} reboot (event {event})")
            return notes

        return seen

    def reset_counters(self) -> None:
        with self._cond:
            self._decoder.reassembler.reset_counters()
            self._decoder.tm_packets = self._decoder.pus_errors = self._decoder.other_packets = 0
            self._reset_local_counters()

    @property
    def counters(self) -> SatelliteCounters:
        with self._cond:  # an RLock: safe to read from a wait's check
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

    # ------------------------------------------------------------------------------------------------
    # receive path
    # ------------------------------------------------------------------------------------------------
    def _rx_loop(self) -> None:
        recv = self._adapter.recv
        push = self._decoder.push
        reassembler = self._decoder.reassembler
        cond = self._cond
        next_expire = time.monotonic() + EXPIRE_EVERY_S
        while not self._stop.is_set():
            try:
                msg = recv(0.05)
            except InstrumentError as exc:
                if self._stop.is_set():
                    return
                log.error("CAN link lost: %s", exc)
                self._history.link_down(str(exc))
                return
            now = time.monotonic()
            if now >= next_expire:
                next_expire = now + EXPIRE_EVERY_S
                with cond:
                    before = reassembler.counters.dropped_timeout
                    if reassembler.expire() and self._tracers:
                        lost = reassembler.counters.dropped_timeout - before
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
                with cond:  # counted and announced: an await on the counters wakes for it
                    self._non_csp += 1
                    cond.notify_all()
                continue
            with cond:
                before = reassembler.crc_errors if self._tracers else 0
                try:
                    out = push(msg.arbitration_id, msg.data, msg.timestamp)
                except Exception as exc:  # the decoder promises not to raise; if it does, keep the link alive
                    log.exception("link decoder failed on frame 0x%08X", msg.arbitration_id)
                    self.malformed.append(MalformedTraffic(msg.timestamp, "?", f"decoder failure: {exc}"))
                    continue
                if out is not None:
                    try:
                        self._dispatch(out, msg.timestamp)
                    except Exception as exc:  # one packet the bench cannot file must not end the receive thread
                        log.exception("filing a packet from address %d failed", out.packet.header.src)
                        self.malformed.append(MalformedTraffic(msg.timestamp, "?", f"filing failure: {exc}"))
                elif self._tracers and reassembler.crc_errors != before:
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

    def _service_name(self, address: int, port: int) -> str:
        """libcsp's name of a reserved port, or the ICD's name of a node's application port."""
        if port in SERVICE_PORTS:
            return services.ServicePort(port).name
        node = self.icd.node_at(address)
        names = [name for name, p in node.ports.items() if p == port] if node is not None else []
        return names[0] if names else f"port {port}"

    def _dispatch(self, m: LinkMessage, t: float) -> None:
        """File one packet. Called with the condition held, from the receive thread."""
        pkt = m.packet
        h = pkt.header
        self._last_packet[h.src] = time.monotonic()
        if h.dst != self.egse:
            self._other_traffic += 1
            return
        history = self._history
        src = self.node_name(h.src)
        if h.sport in self._service_ports and h.dport != self.pus_port:
            self._service_count += 1
            history.file_service_reply(h.src, h.sport, h.dport, pkt)
            if self._tracers:
                self._trace(t, "RX", f"{src}:{h.sport} → EGSE:{h.dport} CSP {self._service_name(h.src, h.sport)} "
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
        icd = self.icd
        node = icd.node_of_apid(tm.apid)
        name = node.name if node is not None else src
        report = m.report
        text = f"{src}:{h.sport} → EGSE:{h.dport} TM[{tm.service},{tm.subtype}] apid 0x{tm.apid:03X} seq {tm.seq_count}"
        try:
            if isinstance(report, HkReport):
                values = icd.decode_hk(name, report.sid, report.data)
                self._hk_count += 1
                history.file_hk(name, report.sid, values, t)
                if self._tracers:
                    hk = icd.hk_structure(name, report.sid)
                    text += f" {hk.mnemonic if hk else report.sid}: " + " ".join(
                        f"{k.split('.', 1)[1]}={v:.6g}" if isinstance(v, float) else f"{k.split('.', 1)[1]}={v}"
                        for k, v in values.items()
                    )
            elif isinstance(report, VerificationReport):
                self._verif_count += 1
                if not self._on_verification(report, t):
                    self._unmatched += 1
                outcome = "ok" if report.success else f"FAIL code {report.failure_code}"
                text += f" request 0x{report.request_id:08X} {outcome}"
            elif isinstance(report, Event):
                record = icd.decode_event(name, report.event_id, SEVERITIES[report.severity], report.data)
                history.file_event(record, t)
                self._events_total += 1
                text += f" event {record.mnemonic} {record.data}"
            elif isinstance(report, Pong):
                self._pong_count += 1
                history.file_pong(name)
                text += " pong"
            elif (tm.service, tm.subtype) == (20, 2):
                pairs = decode_parameter_report(tm, icd.parameter_sizes(name))
                values = icd.decode_parameters(name, pairs)
                history.file_samples(values, t)
                text += f" parameters {values}"
        except (ValueError, KeyError) as exc:  # DecodeError, PusError: the TM does not match the ICD
            self._decode_errors += 1
            self.malformed.append(MalformedTraffic(t, name, str(exc)))
            text += f" UNDECODABLE: {exc}"
        if self._tracers:
            self._trace(t, "RX", text)
        self._cond.notify_all()
