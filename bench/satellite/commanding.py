"""Telecommands: building and sending them, and tracking each one through its verification reports.

``send("ADCS.SET_MODE", mode="NADIR")`` checks the arguments against the ICD before anything leaves the
bench (:class:`bench.icd.CommandRefused`), sends TC[8,1] and returns a :class:`Verification` — what the
satellite said in its acceptance, start and completion reports. A TC the satellite rejects is a *value*
(``ok`` is False, ``failure_code`` says why), so a plan can assert on the rejection itself; only silence is an
error (:class:`~bench.satellite.history.SatelliteTimeout`).

Every telecommand gets the next sequence count of its APID, and its :class:`Verification` is registered with
the :class:`Verifications` tracker *before* it is sent (the first report may beat the sender back). The
receive thread files each TM[1,x] there by request ID; the awaits wait on the histories' one condition.
``packet_for`` and ``packet_to`` build the same packets for another path to the satellite (the RF uplink),
whose reports still come back over CAN.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.icd import Command, Node
from bench.link.pus import Stage, VerificationReport, build_tc, request_id, tc_function
from bench.satellite.history import History
from bench.satellite.link import SatelliteLink

__all__ = ["FAILURE_CODES", "Commanding", "StageReport", "Verification", "Verifications", "Wait"]

FAILURE_CODES: dict[int, str] = {
    1: "unknown service/subtype",
    2: "unknown function",
    3: "argument out of range",
    4: "wrong length",
    5: "CRC error",
    6: "not ready",
    7: "execution failed",
}
STAGES = {Stage.ACCEPTANCE: "acceptance", Stage.START: "start", Stage.PROGRESS: "progress"}

Wait = Literal["completion", "acceptance", "none"]


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


class Verifications:
    """The telecommands sent, by request ID, and the filing of their TM[1,x] reports into them."""

    def __init__(self, cond: threading.Condition) -> None:
        self._cond = cond  # the histories' one condition: the receive thread files under it
        self._pending: dict[int, Verification] = {}

    def register(self, v: Verification) -> None:
        with self._cond:
            self._pending[v.request_id] = v

    def file(self, report: VerificationReport, t: float) -> bool:
        """File one report (receive thread, condition held); False if the bench sent no such telecommand."""
        v = self._pending.get(report.request_id)
        if v is None:
            return False
        stage = STAGES.get(report.stage, "completion")
        entry = StageReport(stage, report.success, report.failure_code, report.failure_data, t)
        if stage == "acceptance":
            v.acceptance = entry
        elif stage == "start":
            v.start = entry
        elif stage == "progress":
            v.progress.append(entry)
        else:
            v.completion = entry
        return True


class Commanding:
    """Sends telecommands over the link and awaits their verification reports."""

    def __init__(self, link: SatelliteLink, history: History, verifications: Verifications) -> None:
        self.icd = link.icd
        self._link = link
        self._history = history
        self._verifications = verifications
        self._seq_counts: dict[int, itertools.count[int]] = {}

    def next_seq(self, apid: int) -> int:
        """The next packet sequence count of ``apid`` (14 bits, wrapping)."""
        counter = self._seq_counts.setdefault(apid, itertools.count())
        return next(counter) & 0x3FFF

    def send_pus(self, node: Node, raw: bytes, text: str) -> None:
        """A PUS packet to ``node``'s PUS port; ``text`` for the trace."""
        port = self._link.pus_port
        self._link.send_packet(self._link.packet(node.address, port, port, raw),
                               f"EGSE:{port} → {node.name}:{port} {text}")  # fmt: skip

    def issue(self, node: Node, raw: bytes, label: str, args: Mapping[str, Any], text: str) -> Verification:
        """Send the TC ``raw`` with its :class:`Verification` registered first; returns it without waiting."""
        v = self._track(node, raw, label, args)
        self.send_pus(node, raw, text)
        return v

    def _track(self, node: Node, raw: bytes, label: str, args: Mapping[str, Any]) -> Verification:
        v = Verification(label, node.name, request_id(raw), dict(args), time.time())
        self._verifications.register(v)  # before sending: the report may beat us back
        return v

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
        raw = build_tc(service, subtype, n.apid, app_data, seq_count=self.next_seq(n.apid))
        label = label or f"{n.name} TC[{service},{subtype}]"
        text = f"TC[{service},{subtype}] {label} request 0x{request_id(raw):08X} {app_data.hex()}"
        v = self.issue(n, raw, label, args or {}, text)
        self.await_verification(v, wait, timeout_s)
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
        """TC[8,1] of function ``cmd`` with ``args``, then its reports (documented on :meth:`Satellite.send`)."""
        node, raw, v = self._function_tc(cmd, args, check)
        self.send_pus(node, raw, f"TC[8,1] {cmd}({', '.join(f'{k}={a!r}' for k, a in args.items())}) "
                      f"request 0x{v.request_id:08X}")  # fmt: skip
        self.await_verification(v, wait, timeout_s)
        return v

    def _function_tc(self, cmd: str, args: Mapping[str, Any], check: bool) -> tuple[Node, bytes, Verification]:
        """TC[8,1] of ``cmd`` checked against the ICD, with its Verification registered before it can leave."""
        command: Command = self.icd.command(cmd)
        data = command.encode_args(dict(args), check=check)
        node = command.node
        raw = tc_function(node.apid, command.definition.function_id, data, seq_count=self.next_seq(node.apid))
        return node, raw, self._track(node, raw, cmd, args)

    def packet_for(self, cmd: str, /, *, check: bool = True, **args: Any) -> tuple[bytes, Verification]:
        """The CSP packet (header, TC[8,1], CRC32) of ``cmd`` for another path to the satellite — the RF
        uplink — and its Verification, whose reports still come back over CAN (`await_verification`)."""
        node, raw, v = self._function_tc(cmd, args, check)
        port = self._link.pus_port
        return self._link.wire_bytes(self._link.packet(node.address, port, port, raw)), v

    def packet_to(self, node: str, port: int, payload: bytes) -> bytes:
        """A CSP packet from the bench to ``node``'s ``port`` (e.g. uplink test frames to an unused port)."""
        return self._link.wire_bytes(self._link.packet(self.icd.node(node).address, port, port, payload))

    def await_verification(self, v: Verification, wait: Wait = "completion", timeout_s: float | None = None) -> None:
        """Wait for the reports of ``v``: its acceptance, then (``wait="completion"``) its completion."""
        if wait == "none":
            return
        timeouts = self._history.timeouts
        link = self._link

        def last_seen() -> str:
            return f"{v}; {link.silence(self.icd.node(v.node).address)}"

        # A later report also ends this wait: a lost acceptance report must not fail a command that completed.
        self._history.wait(
            lambda: True if v.acceptance is not None or v.start is not None or v.done else None,
            timeouts.acceptance_s,
            f"acceptance of {v.command} (TM[1,1]/[1,2] for request 0x{v.request_id:08X})",
            last_seen,
        )
        if wait == "acceptance" or v.done:
            return
        self._history.wait(
            lambda: True if v.done else None,
            timeouts.completion_s if timeout_s is None else timeout_s,
            f"completion of {v.command} (TM[1,7]/[1,8] for request 0x{v.request_id:08X})",
            last_seen,
        )
