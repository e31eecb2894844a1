"""The satellite's services as the bench asks for them: PUS requests built on telecommands, CSP requests on the link.

* :class:`PusServices` — housekeeping (one-shot TC[3,27], periodic on/off TC[3,5]/[3,6]), are-you-alive
  (TC[17,1] → TM[17,2]) and parameters (S20), each a telecommand (:mod:`bench.satellite.commanding`) whose
  answer is awaited in the histories (:mod:`bench.satellite.history`);
* :class:`CspServices` — libcsp's reserved ports (ping, uptime, CMP ident, reboot) as requests from an
  ephemeral port of the bench, whose replies the link files by (node, port, our port); and
  ``await_nodes_alive``, the bench's "is everyone up?".

A request whose answer the bench needs but the satellite refused raises :class:`RequestRefused` with the
:class:`~bench.satellite.commanding.Verification` that says why; a node that stays silent raises
:class:`~bench.satellite.history.SatelliteTimeout` naming it and when it was last heard.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from bench.icd import Node, UnknownMnemonic, Value
from bench.link import image, services
from bench.link.csp import CspPacket
from bench.link.pus import encode_parameter_values, tc_ping, tc_report_parameters
from bench.satellite.commanding import Commanding, Verification
from bench.satellite.history import History, SatelliteTimeout
from bench.satellite.link import SatelliteLink

__all__ = ["EPHEMERAL_PORTS", "CspServices", "PusServices", "RequestRefused"]

EPHEMERAL_PORTS = range(32, 64)  # libcsp's outgoing-connection ports lie above CSP_MAX_BIND_PORT (31)


class RequestRefused(RuntimeError):
    """A request whose answer the bench needs (HK, parameters) was refused; ``verification`` says why."""

    def __init__(self, what: str, verification: Verification) -> None:
        super().__init__(f"{what} refused: {verification}")
        self.verification = verification


class PusServices:
    """Housekeeping, are-you-alive and parameters: PUS requests and the reports that answer them."""

    def __init__(self, commanding: Commanding, link: SatelliteLink, history: History) -> None:
        self.icd = commanding.icd
        self._commanding = commanding
        self._link = link
        self._history = history

    def request_hk(self, what: str, timeout_s: float | None = None) -> dict[str, Value]:
        """One-shot HK (TC[3,27]) of a node's structures (``"EPS"``) or one (``"EPS.EPS_HK"``); returns the
        values of the reports that answer it, {mnemonic: value}."""
        structures = self.icd.structures(what)
        if not structures:
            raise UnknownMnemonic(f"{what} has no HK structure in the ICD")
        history = self._history
        timeout = history.timeouts.tm_s if timeout_s is None else timeout_s
        values: dict[str, Value] = {}
        for hk in structures:
            node, sid = hk.node.name, hk.structure.sid
            before = history.hk_report_count(node, sid)
            fields = [f"{node}.{f.name}" for f in hk.structure.fields]
            v = self._commanding.send_tc(hk.node, 3, 27, sid.to_bytes(4, "big"), label=f"HK one-shot {hk.mnemonic}")
            if v.failure is not None:
                raise RequestRefused(f"one-shot report {hk.mnemonic}", v)
            history.await_hk_report(node, sid, before, timeout, f"HK report {hk.mnemonic} (TM[3,25] SID {sid})",
                                    partial(self._link.silence, hk.node.address))  # fmt: skip
            with history.cond:
                for f in fields:
                    values[f] = history.last_value(f)
        return values

    def enable_hk(self, what: str) -> list[Verification]:
        """TC[3,5] periodic reporting on, for a node's structures or one."""
        return [self._hk_switch(hk.mnemonic, hk.node, hk.structure.sid, 5) for hk in self.icd.structures(what)]

    def disable_hk(self, what: str) -> list[Verification]:
        """TC[3,6] periodic reporting off."""
        return [self._hk_switch(hk.mnemonic, hk.node, hk.structure.sid, 6) for hk in self.icd.structures(what)]

    def _hk_switch(self, mnemonic: str, node: Node, sid: int, subtype: int) -> Verification:
        word = "enable" if subtype == 5 else "disable"
        return self._commanding.send_tc(node, 3, subtype, sid.to_bytes(4, "big"), label=f"HK {word} {mnemonic}")

    def pus_ping(self, node: str, timeout_s: float | None = None) -> float:
        """TC[17,1] are-you-alive → TM[17,2]; returns the round trip in seconds."""
        n = self.icd.node(node)
        history = self._history
        before = history.pong_count(n.name)
        started = time.monotonic()
        raw = tc_ping(n.apid, seq_count=self._commanding.next_seq(n.apid), ack_flags=0)
        self._commanding.send_pus(n, raw, "TC[17,1] ping")
        timeout = history.timeouts.service_s if timeout_s is None else timeout_s
        pong = history.await_pong(n.name, before, timeout, f"TM[17,2] pong from {n.name}",
                                  lambda: self._link.silence(n.address))  # fmt: skip
        return pong - started

    def get_parameters(self, *mnemonics: str, timeout_s: float | None = None) -> dict[str, Value]:
        """TC[20,1] → TM[20,2]: the current values of parameters of one node."""
        defs = [self.icd.parameter(m) for m in mnemonics]
        nodes = {node for node, _ in defs}
        if len(nodes) != 1:
            raise ValueError(f"get_parameters takes parameters of one node, got {', '.join(sorted(nodes))}")
        n = self.icd.node(nodes.pop())
        history = self._history
        with history.cond:
            counts = {m: history.sample_count(m) for m in mnemonics}
        raw = tc_report_parameters(n.apid, [p.id for _, p in defs], seq_count=self._commanding.next_seq(n.apid))
        v = self._commanding.issue(n, raw, f"{n.name} report parameters", {"ids": list(mnemonics)},
                                   f"TC[20,1] {', '.join(mnemonics)}")  # fmt: skip
        timeout = history.timeouts.tm_s if timeout_s is None else timeout_s
        history.wait(
            lambda: True if all(history.sample_count(m) > counts[m] for m in mnemonics) or v.failure else None,
            timeout,
            f"TM[20,2] with {', '.join(mnemonics)}",
            lambda: f"{v}; {self._link.silence(n.address)}",
        )
        if v.failure is not None:
            raise RequestRefused("parameter report", v)
        with history.cond:
            return {m: history.last_value(m) for m in mnemonics}

    def set_parameter(self, mnemonic: str, value: Any, *, check: bool = True) -> Verification:
        """TC[20,3] one parameter, range-checked against the ICD first."""
        node, pid, raw = self.icd.encode_parameter(mnemonic, value, check=check)
        return self._commanding.send_tc(node, 20, 3, encode_parameter_values([(pid, raw)]), label=f"set {mnemonic}",
                                        args={"value": value})  # fmt: skip


class CspServices:
    """libcsp's reserved ports on every node: requests from an ephemeral port of the bench, and their replies."""

    def __init__(self, link: SatelliteLink, history: History) -> None:
        self.icd = link.icd
        self._link = link
        self._history = history
        self._ports = itertools.cycle([p for p in EPHEMERAL_PORTS if p != link.pus_port])
        # Told about every CMP ident reply: the fixtures journal it as the DUT's own identity (report cover).
        self.on_ident: Callable[[str, services.CmpIdent], None] | None = None

    def _request(
        self, node: str, port: services.ServicePort | int, payload: bytes, timeout_s: float | None, name: str = ""
    ) -> CspPacket:
        n = self.icd.node(node)
        name = name or (port.name if isinstance(port, services.ServicePort) else f"port {port}")
        history = self._history
        with history.cond:
            sport = next(self._ports)
            history.forget_service_reply(n.address, int(port), sport)  # a stale late reply is not ours
        self._link.send_packet(self._link.packet(n.address, int(port), sport, payload),
                               f"EGSE:{sport} → {n.name}:{int(port)} CSP {name} request")  # fmt: skip
        timeout = history.timeouts.service_s if timeout_s is None else timeout_s
        return history.await_service_reply(
            n.address, int(port), sport, timeout,
            f"CSP {name} reply from {n.name} (address {n.address})",
            lambda: self._link.silence(n.address),
        )  # fmt: skip

    def read_image(self, capture: int, size: int, node: str = "PAYLOAD", timeout_s: float | None = None) -> bytes:
        """Image ``capture`` (as numbered by CAPTURE_DONE) of ``size`` bytes, chunk by chunk from the node's IMAGE
        port (bench.link.image). Raises ImageError when the node refuses or answers out of turn."""
        port = self.icd.node(node).port("IMAGE")
        out = bytearray()
        while len(out) < size:
            length = min(image.CHUNK_MAX, size - len(out))
            request = image.encode_request(capture, len(out), length)
            chunk = image.decode_reply(self._request(node, port, request, timeout_s, "IMAGE").payload)
            if (chunk.capture, chunk.offset) != (capture, len(out)) or not chunk.data:
                raise image.ImageError(
                    f"asked image {capture} at offset {len(out)}, got {len(chunk.data)} bytes of image "
                    f"{chunk.capture} at offset {chunk.offset}"
                )
            out += chunk.data
        return bytes(out)

    def ping(self, node: str, size: int = 16, timeout_s: float | None = None) -> float:
        """CSP ping (port 1); returns the round trip in seconds. The echo must match byte for byte."""
        request = services.ping_request(size)
        started = time.monotonic()
        reply = self._request(node, services.ServicePort.PING, request, timeout_s)
        rtt = time.monotonic() - started
        if not services.ping_reply_ok(request, reply.payload):
            raise services.ServiceError(f"{node} echoed {reply.payload.hex()} to ping {request.hex()}")
        return rtt

    def uptime(self, node: str, timeout_s: float | None = None) -> int:
        """CSP uptime (port 6), seconds since the node booted."""
        return services.decode_uptime(self._request(node, services.ServicePort.UPTIME, b"", timeout_s).payload)

    def ident(self, node: str, timeout_s: float | None = None) -> services.CmpIdent:
        """CMP ident (port 0): hostname, model, revision, build date and time."""
        reply = self._request(node, services.ServicePort.CMP, services.cmp_ident_request(), timeout_s)
        ident = services.CmpIdent.decode(reply.payload)
        if self.on_ident is not None:
            self.on_ident(self.icd.node(node).name, ident)
        return ident

    def reboot(self, node: str) -> None:
        """CSP reboot (port 4). No reply is due: await the node's return (uptime, BOOT event) yourself."""
        n = self.icd.node(node)
        packet = self._link.packet(n.address, int(services.ServicePort.REBOOT), next(self._ports),
                                   services.reboot_request())  # fmt: skip
        self._link.send_packet(packet, f"EGSE → {n.name}:4 CSP REBOOT")

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
                    silent = ", ".join(f"{n} ({self._link.silence(self.icd.node(n).address)})" for n in pending)
                    raise SatelliteTimeout(f"CSP ping replies from {', '.join(pending)}", timeout_s,
                                           f"answered: {', '.join(answered) or 'none'}; silent: {silent}")  # fmt: skip
                try:
                    answered[node] = self.ping(node, timeout_s=min(attempt_s, remaining))
                    pending.remove(node)
                except SatelliteTimeout:
                    continue
        return answered
