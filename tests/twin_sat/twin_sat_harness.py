"""Test-side helpers for the simulated satellite: the twin process, the PSU through pyvisa, and an EGSE that
talks CSP + PUS by hand over a real python-can bus (socketcand or slcan).

The EGSE uses ``twin.csp`` for framing and ``spacepackets`` for PUS; the twin's nodes run in another process and
meet this code only on the wire.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import can
import pyvisa
from spacepackets.ecss import PusTc, PusTm

from twin import csp
from twin.icd import Icd, load_icd

REPO = Path(__file__).resolve().parents[2]
ICD: Icd = load_icd()
EGSE = ICD.egse_address
PUS_PORT = ICD.pus_port
T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.01) -> T:
    """Await a truthy ``predicate()`` (returned) or fail after ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {value!r})")
        time.sleep(interval)  # poll period of this await helper, not a synchronisation delay


class TwinProcess:
    def __init__(self, workdir: Path, *args: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        endpoints_file = workdir / "endpoints.json"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
        with (workdir / "stdout.txt").open("wb") as out, (workdir / "stderr.txt").open("wb") as err:
            command = [sys.executable, "-m", "twin", "--ports", "auto", "--endpoints-file", str(endpoints_file)]
            command += ["--parent-pid", str(os.getpid()), *args]
            self.proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        try:
            wait_for(lambda: endpoints_file.exists() or self.proc.poll() is not None, 15.0, "the endpoints file")
            if self.proc.poll() is not None:
                raise AssertionError(f"twin exited: {(workdir / 'stderr.txt').read_text()}")
        except BaseException:
            self.kill()
            raise
        self.endpoints: dict[str, dict[str, Any]] = json.loads(endpoints_file.read_text())["endpoints"]
        self._rm = pyvisa.ResourceManager("@py")
        self.psu = self._rm.open_resource(
            self.endpoints["psu"]["resource"], read_termination="\n", write_termination="\n", timeout=3000
        )

    def control(self, request: dict[str, Any]) -> dict[str, Any]:
        with socket.create_connection(("127.0.0.1", int(self.endpoints["control"]["port"])), timeout=3.0) as sock:
            sock.sendall(json.dumps(request).encode() + b"\n")
            with sock.makefile("rb") as reader:
                reply: dict[str, Any] = json.loads(reader.readline())
        return reply

    def node_state(self, node: str) -> dict[str, Any]:
        state: dict[str, Any] = self.control({"cmd": "state"})["satellite"]["nodes"][node]
        return state

    def power_on(self) -> None:
        self.psu.write("VOLT 3.8,(@1)")
        self.psu.write("CURR 3,(@1)")
        self.psu.write("OUTP 1,(@1)")
        wait_for(lambda: all(n["alive"] for n in self.control({"cmd": "state"})["satellite"]["nodes"].values()),
                 5.0, "every node to boot")  # fmt: skip

    def current(self) -> float:
        return float(self.psu.query("MEAS:CURR? (@1)"))

    def kill(self) -> None:
        if getattr(self, "psu", None) is not None:
            self.psu.close()
            self._rm.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@dataclass
class Tm:
    node: str
    packet: csp.CspPacket
    tm: PusTm | None  # None: not a valid PUS TM
    raw: bytes

    @property
    def key(self) -> tuple[int, int] | None:
        return (self.tm.service, self.tm.message_subtype) if self.tm else None


NODE_BY_ADDRESS = {n.address: name for name, n in ICD.nodes.items()}


class Egse:
    """The bench's side of the bus, written out by hand: CSP requests, PUS TCs, everything received kept."""

    def __init__(self, bus: can.BusABC, version: int = 1) -> None:
        self.bus = bus
        self.version = version
        self.rx = csp.CfpReassembler(version, EGSE, time.monotonic)
        self.received: list[csp.CspPacket] = []
        self.frames: list[can.Message] = []
        self._counter = 0
        self._sport = 16
        self._seq = 0

    def close(self) -> None:
        self.bus.shutdown()

    def pump(self, timeout: float) -> None:
        message = self.bus.recv(timeout)
        while message is not None:
            self.frames.append(message)
            if message.is_extended_id and not message.is_error_frame:
                packet = self.rx.push(message.arbitration_id, bytes(message.data))
                if packet is not None:
                    self.received.append(packet)
            message = self.bus.recv(0)

    def await_packet(self, predicate: Callable[[csp.CspPacket], bool], timeout: float = 2.0) -> csp.CspPacket:
        deadline = time.monotonic() + timeout
        while True:
            for packet in self.received:
                if predicate(packet):
                    self.received.remove(packet)
                    return packet
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching CSP packet within {timeout:g} s")
            self.pump(min(remaining, 0.05))

    def nothing_for(self, predicate: Callable[[csp.CspPacket], bool], window: float) -> bool:
        """True if no matching packet arrives within ``window`` seconds (a negative check needs a window)."""
        try:
            self.await_packet(predicate, window)
        except AssertionError:
            return True
        return False

    def send(self, dst: int, dport: int, data: bytes, *, crc: bool = False, sport: int | None = None) -> int:
        if sport is None:
            self._sport = 16 + (self._sport - 15) % 40  # ephemeral ports 16..55, as libcsp's outgoing range
            sport = self._sport
        header = csp.CspHeader(2, EGSE, dst, dport, sport, 0)
        if crc:
            header, data = csp.append_crc(header, data)
        self._counter += 1
        for can_id, chunk in csp.fragment(csp.CspPacket(header, data), self.version, self._counter, EGSE):
            self.bus.send(can.Message(arbitration_id=can_id, data=chunk, is_extended_id=True))
        return sport

    def request(self, node: str, port: int, data: bytes = b"", *, crc: bool = False, timeout: float = 2.0) -> bytes:
        address = ICD.nodes[node].address
        sport = self.send(address, port, data, crc=crc)
        packet = self.await_packet(lambda p: p.header.src == address and p.header.dport == sport, timeout)
        body = csp.strip_crc(packet, self.version)
        assert body is not None, "reply with a bad CRC32"
        return body

    # -- PUS --

    def tc(self, node: str, service: int, subtype: int, app_data: bytes = b"", *, raw: bytes | None = None) -> bytes:
        self._seq += 1
        packet = (
            raw
            or PusTc(
                service=service,
                message_subtype=subtype,
                apid=ICD.nodes[node].apid,
                app_data=app_data,
                seq_count=self._seq,
            ).pack()
        )
        self.send(ICD.nodes[node].address, PUS_PORT, bytes(packet), crc=True)
        return bytes(packet[:4])

    def function(self, node: str, name: str, *args: int | float | bool) -> bytes:
        command = next(c for c in ICD.nodes[node].commands if c.name == name)
        data = struct.pack(">I", command.function_id) + b"".join(
            a.pack(v) for a, v in zip(command.args, args, strict=True)
        )
        return self.tc(node, 8, 1, data)

    def await_tm(self, node: str, predicate: Callable[[Tm], bool], timeout: float = 2.0) -> Tm:
        address = ICD.nodes[node].address

        def matches(packet: csp.CspPacket) -> bool:
            return packet.header.src == address and packet.header.sport == PUS_PORT and predicate(self.decode(packet))

        return self.decode(self.await_packet(matches, timeout))

    def decode(self, packet: csp.CspPacket) -> Tm:
        body = csp.strip_crc(packet, self.version) or b""
        try:
            tm = PusTm.unpack(body, timestamp_len=7)
        except Exception:
            tm = None
        return Tm(NODE_BY_ADDRESS.get(packet.header.src, "?"), packet, tm, body)

    def verification(self, node: str, request_id: bytes, subtype: int, timeout: float = 2.0) -> Tm:
        return self.await_tm(
            node,
            lambda t: t.key == (1, subtype) and bytes(t.tm.source_data[:4]) == request_id,
            timeout,  # type: ignore[union-attr]
        )

    def hk(self, node: str, sid: int = 1) -> dict[str, float]:
        """One-shot HK of ``sid`` as engineering values by field name."""
        self.tc(node, 3, 27, struct.pack(">I", sid))
        tm = self.await_tm(node, lambda t: t.key == (3, 25))
        assert tm.tm is not None
        data = bytes(tm.tm.source_data)
        assert struct.unpack(">I", data[:4])[0] == sid
        structure = ICD.nodes[node].hk(sid)
        assert structure is not None
        values, offset = {}, 4
        for field in structure.fields:
            values[field.name] = field.unpack(data[offset:]) * field.scale + field.offset
            offset += field.size
        assert offset == len(data), "HK length does not match the ICD"
        return values


def socketcand_bus(twin: TwinProcess) -> can.BusABC:
    ep = twin.endpoints["can_socketcand"]
    return can.Bus(interface="socketcand", channel=ep["channel"], host=ep["host"], port=int(ep["port"]))
