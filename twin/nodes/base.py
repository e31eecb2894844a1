"""A simulated CSP node with a PUS application: what OBC, EPS, ADCS, COMMS and PAYLOAD have in common.

Life cycle: a node is *down* (silent: it neither answers nor sends) while the satellite is unpowered or booting,
and *boots* at every power-good of the power model and at the end of a software reboot (CSP reboot port, a
reboot TC, the control endpoint). A boot resets RAM state: uptime 0, boot count + 1, parameters to defaults,
periodic housekeeping disabled.

CSP: every node answers the reserved ports (CMP ident/if-stats/clock, ping, ps, memfree, reboot, buf_free,
uptime) and takes PUS TCs on the ICD's ``pus_port``. PUS: S1 verification, S3 housekeeping, S5 events, S8
function commands, S9 time, S17 test, S20 parameters — layouts in ``docs/icd.md``.

A node knows its host only through `NodeHost`: the clock, the ICD, seeded noise, the CAN link (``transmit``),
the satellite's on-board time, the power model's switched loads and bus, and its sibling nodes. The satellite
(`twin.nodes.satellite.Satellite`) is that host in the twin; a test may give a node any other.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

import numpy as np

from twin import csp
from twin.defects import Defects
from twin.icd import Command, Icd, IcdNode, Parameter
from twin.pus import ACK_ACCEPTANCE, ACK_COMPLETION, ACK_START, Failure, TcHeader, build_tm, malform, parse_tc_header

__all__ = ["Deferred", "Node", "NodeHost", "Reject"]

FIRMWARE: Final = "v1.4.2"
FIRMWARE_DATE: Final = "Nov 12 2026"
FIRMWARE_TIME: Final = "09:41:07"
REBOOT_DELAY_S: Final = 0.05  # the reply/completion leaves before the processor resets
REBOOT_DURATION_S: Final = 0.5  # bootloader + application start after a software reset
MEMORY_BYTES: Final = 512 * 1024
CSP_BUFFERS: Final = 20

Value = int | float | bool


class Reject(Exception):
    """Acceptance (or start) of a TC failed with ``code``."""

    def __init__(self, code: Failure) -> None:
        super().__init__(code.name)
        self.code = code


@dataclass
class Deferred:
    """Execution that completes later: ``finish`` runs at ``due`` and returns a failure or None."""

    due: float
    finish: Callable[[], Failure | None]


Execution = Callable[[], Failure | Deferred | None]


@dataclass
class Counters:
    csp_rx: int = 0
    csp_tx: int = 0
    csp_crc_errors: int = 0
    tx_dropped: int = 0  # frames the bus refused (bus-off)
    tc_received: int = 0
    tc_accepted: int = 0
    tc_rejected: int = 0
    tm_sent: int = 0
    events: int = 0


@dataclass
class Faults:
    silent: bool = False
    crc_error: int = 0  # next N packets with a wrong CSP CRC32
    lost_fragment: int = 0  # drop a middle frame of the next N multi-frame packets
    malformed: int = 0
    malformed_kind: str = "bad_crc"
    babble_until: float = 0.0


@dataclass
class _Hk:
    period_s: float
    due: float


@dataclass
class _Pending:
    header: TcHeader
    reply_to: int
    deferred: Deferred


class NodeHost(Protocol):
    """What a node needs from the satellite it is part of (and nothing more)."""

    @property
    def icd(self) -> Icd: ...

    @property
    def csp_version(self) -> int: ...

    @property
    def defects(self) -> Defects:
        """The seeded defects in force (twin/defects.py): each hook reads ``defects.active(NAME)``."""
        ...

    def clock(self) -> float:
        """The simulation's clock (monotonic seconds): uptime, HK periods, deferred completions."""
        ...

    def rng(self, stream: str) -> np.random.Generator:
        """A seeded noise generator of its own for ``stream`` (nodes use ``node.<NAME>``)."""
        ...

    def transmit(self, node: Node, packet: csp.CspPacket) -> None:
        """Put ``node``'s packet on the CAN bus (its CFP frames, with the node's link faults applied)."""
        ...

    # -- on-board time (one for the whole satellite) --

    def unix_time(self) -> float: ...

    def set_time(self, unix: float) -> None: ...

    def stamp(self) -> bytes:
        """The on-board time now as a PUS CDS time stamp."""
        ...

    # -- power: the power model's switched loads and main bus --

    @property
    def loads(self) -> Mapping[str, bool]:
        """Which switched loads (``adcs_wheels``, ``payload``, ``uhf_tx``, ``heaters``) are on."""
        ...

    def set_load(self, name: str, on: bool) -> bool:
        """Switch a load; False if refused (the EPS is locked out)."""
        ...

    @property
    def bus_voltage(self) -> float: ...

    def bus_power_w(self, t: float) -> float:
        """Power the main bus delivers to the loads at ``t`` (0 while locked out)."""
        ...

    # -- the other nodes (the COMMS beacon reports their housekeeping) --

    @property
    def nodes(self) -> Mapping[str, Node]: ...


@dataclass
class Node:
    """One node. Subclasses add behaviour through `reset`, `tick`, `hk_values` and `execute`."""

    host: NodeHost
    icd_node: IcdNode
    alive: bool = False
    booted_at: float = 0.0
    boot_count: int = 0
    reset_cause: str = "power_on"
    counters: Counters = field(default_factory=Counters)
    faults: Faults = field(default_factory=Faults)
    hk_enabled: dict[int, _Hk] = field(default_factory=dict)
    params: dict[int, Value] = field(default_factory=dict)
    _seen_power_boot: int = -1
    _down_at: float | None = None
    _reboot_at: float | None = None
    _tm_seq: int = 0
    _counter: int = 0
    _time_report: _Hk | None = None
    _time_exponent: int = 0
    _pending: list[_Pending] = field(default_factory=list)
    reassembler: csp.CfpReassembler | None = None

    def __post_init__(self) -> None:
        """Subclasses: state that lives outside RAM resets (declared here so dataclass init calls theirs)."""

    # -- identity --------------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.icd_node.name

    @property
    def address(self) -> int:
        return self.icd_node.address

    @property
    def icd(self) -> Icd:
        return self.host.icd

    def now(self) -> float:
        return self.host.clock()

    def uptime(self, t: float | None = None) -> float:
        return max(0.0, (self.now() if t is None else t) - self.booted_at) if self.alive else 0.0

    def param(self, name: str) -> Value:
        spec = next(p for p in self.icd_node.parameters if p.name == name)
        return self.params.get(spec.id, spec.default)

    # -- power and reboots -----------------------------------------------------------------------------------

    def update_power(self, platform_up: bool, power_boots: int, cause: str, t: float) -> None:
        if not platform_up:
            if self.alive:
                self._go_down()
            self._reboot_at = self._down_at = None
            return
        if self._seen_power_boot != power_boots:
            self._seen_power_boot = power_boots
            self._reboot_at = self._down_at = None
            self.boot(t, cause)
            return
        if self._down_at is not None and t >= self._down_at:
            self._down_at = None
            self._go_down()
        if self._reboot_at is not None and t >= self._reboot_at:
            self._reboot_at = None
            self.boot(t, "command")

    def request_reboot(self, delay_s: float = REBOOT_DELAY_S) -> None:
        t = self.now()
        if self.alive and self._reboot_at is None:
            self._down_at = t + delay_s
            self._reboot_at = t + delay_s + REBOOT_DURATION_S

    def _go_down(self) -> None:
        self.alive = False
        self.hk_enabled.clear()
        self._pending.clear()
        self._time_report = None
        if self.reassembler is not None:
            self.reassembler.partial.clear()

    def boot(self, t: float, cause: str) -> None:
        self.alive = True
        self.booted_at = t
        self.boot_count += 1
        self.reset_cause = cause
        self._tm_seq = self._counter = 0  # counters live in RAM: a restart at 0 is how ground sees a reboot
        self.hk_enabled.clear()
        self._pending.clear()
        self._time_report = None
        self.params = {p.id: p.default for p in self.icd_node.parameters}
        self.reset(t)

    def reset(self, t: float) -> None:
        """Subclasses: RAM state after a boot."""

    # -- periodic work ---------------------------------------------------------------------------------------

    def tick(self, t: float) -> None:
        """Subclasses extend (call super): periodic HK, time reports, deferred completions."""
        for sid, hk in list(self.hk_enabled.items()):
            if t >= hk.due:
                hk.due = hk.due + hk.period_s if t - hk.due < hk.period_s else t + hk.period_s
                self.send_hk(sid)
        if self._time_report is not None and t >= self._time_report.due:
            self._time_report.due = t + self._time_report.period_s
            self.send_time_report()
        for pending in [p for p in self._pending if t >= p.deferred.due]:
            self._pending.remove(pending)
            self._complete(pending.header, pending.reply_to, pending.deferred.finish())

    # -- CSP receive -----------------------------------------------------------------------------------------

    def on_frame(self, can_id: int, data: bytes) -> None:
        if not self.alive or self.faults.silent or self.reassembler is None:
            return
        packet = self.reassembler.push(can_id, data)
        if packet is not None:
            self.on_packet(packet)

    def on_packet(self, packet: csp.CspPacket) -> None:
        self.counters.csp_rx += 1
        data = csp.strip_crc(packet, self.host.csp_version)
        if data is None:
            self.counters.csp_crc_errors += 1  # libcsp drops it silently
            return
        h = packet.header
        port = h.dport
        if port == self.icd.pus_port:
            self.on_tc(data, h.src)
            return

        def reply(payload: bytes) -> None:
            self.send_csp(h.src, h.sport, port, payload, crc=bool(h.flags & csp.FLAG_CRC32), prio=h.prio)

        if port == csp.PORT_CMP:
            self._cmp(data, reply)
        elif port == csp.PORT_PING:
            reply(data)
        elif port == csp.PORT_PS:
            reply(self.task_list().encode() + b"\0")
        elif port == csp.PORT_MEMFREE:
            reply(struct.pack(">I", self.free_memory()))
        elif port == csp.PORT_REBOOT:
            if len(data) >= 4 and struct.unpack(">I", data[:4])[0] in (csp.REBOOT_MAGIC, csp.SHUTDOWN_MAGIC):
                self.request_reboot()  # shutdown is treated as a reboot: the EPS keeps every node powered
        elif port == csp.PORT_BUF_FREE:
            reply(struct.pack(">I", CSP_BUFFERS - 1))
        elif port == csp.PORT_UPTIME:
            reply(struct.pack(">I", int(self.uptime())))
        else:
            self.serve(port, data, reply)

    def serve(self, port: int, data: bytes, reply: Callable[[bytes], None]) -> None:
        """A request on one of the node's application ports (the ICD's ``nodes.<node>.ports``); none by default:
        libcsp drops a packet to an unbound port."""

    def _cmp(self, data: bytes, reply: Callable[[bytes], None]) -> None:
        if len(data) < 2 or data[0] != csp.CMP_REQUEST:
            return
        code = data[1]
        if code == csp.CMP_IDENT:
            reply(csp.cmp_ident_reply(self.name, f"OTS-SAT {self.name}", FIRMWARE, FIRMWARE_DATE, FIRMWARE_TIME))
        elif code == csp.CMP_IF_STATS:
            c, r = self.counters, self.reassembler
            lost = (r.lost + r.timeouts) if r else 0
            stats = (c.csp_tx, c.csp_rx, c.tx_dropped, c.csp_crc_errors + lost, lost, 0, lost, 0, 0, 0)
            reply(csp.cmp_if_stats_reply("CAN", stats))
        elif code == csp.CMP_CLOCK and len(data) >= 10:
            tv_sec, tv_nsec = struct.unpack(">II", data[2:10])
            if tv_sec:
                self.host.set_time(tv_sec + tv_nsec / 1e9)
            now = self.host.unix_time()
            reply(csp.cmp_clock_reply(int(now), int(now % 1 * 1e9)))

    def task_list(self) -> str:
        return "\n".join(
            f"{n:<12} {s}" for n, s in (("csp_router", "RUNNING"), ("pus_app", "READY"), ("idle", "READY"))
        )

    def free_memory(self) -> int:
        return MEMORY_BYTES // 2

    # -- CSP send --------------------------------------------------------------------------------------------

    def send_csp(
        self, dst: int, dport: int, sport: int, payload: bytes, *, crc: bool, prio: int = csp.PRIO_NORM
    ) -> None:
        header = csp.CspHeader(prio, self.address, dst, dport, sport, 0)
        corrupt = self.faults.crc_error > 0
        if corrupt:
            self.faults.crc_error -= 1
        if crc or corrupt:
            header, payload = csp.append_crc(header, payload, corrupt=corrupt)
        self.host.transmit(self, csp.CspPacket(header, payload))
        self.counters.csp_tx += 1

    # -- PUS -------------------------------------------------------------------------------------------------

    def send_tm(self, service: int, subtype: int, data: bytes, dst: int | None = None) -> None:
        raw = build_tm(
            self.icd_node.apid, service, subtype, data, seq=self._tm_seq, counter=self._counter, stamp=self.host.stamp()
        )
        self._tm_seq += 1
        self._counter += 1
        if self.faults.malformed > 0:
            self.faults.malformed -= 1
            raw = malform(raw, self.faults.malformed_kind)
        port = self.icd.pus_port
        self.send_csp(self.icd.egse_address if dst is None else dst, port, port, raw, crc=True)
        self.counters.tm_sent += 1

    def emit(self, name: str, *values: Value) -> None:
        """An S5 event report to the EGSE (severity from the ICD)."""
        event = self.icd_node.event(name)
        data = struct.pack(">H", event.id) + b"".join(f.pack(v) for f, v in zip(event.data, values, strict=True))
        self.counters.events += 1
        self.send_tm(5, event.subtype, data)

    def hk_values(self, sid: int) -> dict[str, Value]:
        """Subclasses: engineering values of structure ``sid`` by field name (missing fields are sent as 0)."""
        return {}

    def send_hk(self, sid: int, dst: int | None = None) -> None:
        structure = self.icd_node.hk(sid)
        if structure is None:
            return
        values = self.hk_values(sid)
        data = struct.pack(">I", sid) + b"".join(f.pack(values.get(f.name, 0)) for f in structure.fields)
        self.send_tm(3, 25, data, dst)

    def send_time_report(self, dst: int | None = None) -> None:
        self.send_tm(9, 3, bytes((self._time_exponent,)) + self.host.stamp(), dst)

    def _verify(self, subtype: int, header: TcHeader, reply_to: int, failure: Failure | None = None) -> None:
        data = header.request_id + (bytes((failure,)) if failure is not None else b"")
        self.send_tm(1, subtype, data, reply_to)

    def on_tc(self, raw: bytes, reply_to: int) -> None:
        self.counters.tc_received += 1
        header, failure = parse_tc_header(raw)
        if header is None or header.apid != self.icd_node.apid:
            self.counters.tc_rejected += 1  # not a TC for this application: nothing to refer a report to
            return
        try:
            if failure is not None:
                raise Reject(failure)
            execution = self.accept(header, reply_to)
        except Reject as reject:
            self.counters.tc_rejected += 1
            self._verify(2, header, reply_to, reject.code)
            return
        self.counters.tc_accepted += 1
        if header.ack_flags & ACK_ACCEPTANCE:
            self._verify(1, header, reply_to)
        if header.ack_flags & ACK_START:
            self._verify(3, header, reply_to)
        outcome = execution()
        if isinstance(outcome, Deferred):
            self._pending.append(_Pending(header, reply_to, outcome))
        else:
            self._complete(header, reply_to, outcome)

    def _complete(self, header: TcHeader, reply_to: int, failure: Failure | None) -> None:
        if failure is not None:
            self._verify(8, header, reply_to, failure)
        elif header.ack_flags & ACK_COMPLETION:
            self._verify(7, header, reply_to)

    def accept(self, tc: TcHeader, reply_to: int) -> Execution:
        """Check a TC (raise `Reject`) and return what executing it does."""
        data = tc.app_data
        key = (tc.service, tc.subtype)
        if key == (17, 1):
            wrong = self.name == "OBC" and self.host.defects.active("OBC_PUS_WRONG_SUBTYPE")
            return lambda: self.send_tm(17, 3 if wrong else 2, b"", reply_to)
        if tc.service == 3 and tc.subtype in (5, 6, 27):
            if len(data) != 4:
                raise Reject(Failure.WRONG_LENGTH)
            (sid,) = struct.unpack(">I", data)
            structure = self.icd_node.hk(sid)
            if structure is None:
                raise Reject(Failure.UNKNOWN_ID)
            if tc.subtype == 27:
                return lambda: self.send_hk(sid, reply_to)
            if tc.subtype == 5:
                return lambda: self._enable_hk(sid, structure.period_s)
            return lambda: self._disable_hk(sid)
        if key == (8, 1):
            return self._accept_function(data)
        if key == (9, 1):
            if len(data) != 1:
                raise Reject(Failure.WRONG_LENGTH)
            if data[0] > 16:
                raise Reject(Failure.OUT_OF_RANGE)
            return lambda: self._set_time_rate(data[0], reply_to)
        if key == (9, 128):
            if len(data) != 7:
                raise Reject(Failure.WRONG_LENGTH)
            return lambda: self._set_obt(data)
        if key == (20, 1):
            return self._accept_param_report(data, reply_to)
        if key == (20, 3):
            return self._accept_param_set(data)
        raise Reject(Failure.UNKNOWN_SERVICE)

    def _enable_hk(self, sid: int, period_s: float) -> None:
        t = self.now()
        self.hk_enabled[sid] = _Hk(period_s, t)  # first report right away, then every period

    def _disable_hk(self, sid: int) -> None:
        self.hk_enabled.pop(sid, None)

    def _set_time_rate(self, exponent: int, reply_to: int) -> None:
        self._time_exponent = exponent
        self.send_time_report(reply_to)
        self._time_report = _Hk(float(2**exponent), self.now() + 2**exponent)

    def _set_obt(self, stamp: bytes) -> None:
        days, ms = struct.unpack(">HI", stamp[1:7])
        self.host.set_time((days - 4383) * 86400 + ms / 1000)  # 4383 days from 1958-01-01 to 1970-01-01

    def _accept_function(self, data: bytes) -> Execution:
        if len(data) < 4:
            raise Reject(Failure.WRONG_LENGTH)
        (function_id,) = struct.unpack(">I", data[:4])
        command = next((c for c in self.icd_node.commands if c.function_id == function_id), None)
        if command is None:
            raise Reject(Failure.UNKNOWN_ID)
        if len(data) - 4 != command.args_size:
            raise Reject(Failure.WRONG_LENGTH)
        args = command.unpack_args(data[4:])
        for spec in command.args:
            if not spec.in_range(float(args[spec.name])) and self.range_checked():
                raise Reject(Failure.OUT_OF_RANGE)
        self.check_ready(command, args)
        return lambda: self.execute(command, args)

    def range_checked(self) -> bool:
        """Subclasses: False if this node's software forgets to range-check arguments (a seeded defect)."""
        return True

    def check_ready(self, command: Command, args: dict[str, Value]) -> None:
        """Subclasses: raise ``Reject(Failure.NOT_READY)`` if the command cannot start now."""
        if self._pending:  # one function at a time, as a single-threaded flight application would
            raise Reject(Failure.NOT_READY)

    def execute(self, command: Command, args: dict[str, Value]) -> Failure | Deferred | None:
        """Subclasses: run a function command."""
        return Failure.EXECUTION_FAILED

    def _param_spec(self, pid: int) -> Parameter:
        spec = next((p for p in self.icd_node.parameters if p.id == pid), None)
        if spec is None:
            raise Reject(Failure.UNKNOWN_ID)
        return spec

    def _accept_param_report(self, data: bytes, reply_to: int) -> Execution:
        if len(data) < 2:
            raise Reject(Failure.WRONG_LENGTH)
        (count,) = struct.unpack(">H", data[:2])
        if len(data) != 2 + 2 * count:
            raise Reject(Failure.WRONG_LENGTH)
        ids = struct.unpack(f">{count}H", data[2:])
        specs = [self._param_spec(pid) for pid in ids]

        def report() -> None:
            body = b"".join(struct.pack(">H", s.id) + s.field.pack(self.params.get(s.id, s.default)) for s in specs)
            self.send_tm(20, 2, struct.pack(">H", count) + body, reply_to)

        return report

    def _accept_param_set(self, data: bytes) -> Execution:
        if len(data) < 2:
            raise Reject(Failure.WRONG_LENGTH)
        (count,) = struct.unpack(">H", data[:2])
        offset, updates = 2, {}
        for _ in range(count):
            if len(data) < offset + 2:
                raise Reject(Failure.WRONG_LENGTH)
            (pid,) = struct.unpack(">H", data[offset : offset + 2])
            spec = self._param_spec(pid)
            size = spec.field.size
            if len(data) < offset + 2 + size:
                raise Reject(Failure.WRONG_LENGTH)
            value = spec.field.unpack(data[offset + 2 : offset + 2 + size])
            if not spec.field.in_range(float(value)):
                raise Reject(Failure.OUT_OF_RANGE)
            updates[pid] = value
            offset += 2 + size
        if offset != len(data):
            raise Reject(Failure.WRONG_LENGTH)
        return lambda: self.params.update(updates)

    # -- control endpoint ------------------------------------------------------------------------------------

    def state(self) -> dict[str, object]:
        r = self.reassembler
        return {
            "alive": self.alive,
            "mode": self.mode_name(),
            "uptime_s": round(self.uptime(), 3),
            "boot_count": self.boot_count,
            "reset_cause": self.reset_cause,
            "hk_enabled": sorted(self.hk_enabled),
            "parameters": {p.name: self.params.get(p.id, p.default) for p in self.icd_node.parameters},
            "counters": {
                **vars(self.counters),
                "cfp_completed": r.completed if r else 0,
                "cfp_lost": r.lost if r else 0,
                "cfp_timeouts": r.timeouts if r else 0,
            },
            "faults": {k: v for k, v in vars(self.faults).items() if k != "babble_until"}
            | {"babbling": self.faults.babble_until > self.now()},
        }

    def mode_name(self) -> str:
        return "ON" if self.alive else "OFF"
