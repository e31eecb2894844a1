"""The simulated satellite on the CAN bus: five nodes, their CFP link, their coupling to the power model, faults.

The satellite is its nodes' `NodeHost`: it gives them the world's clock and seeded noise, the ICD, one on-board
time, the CAN link and the power model's loads and bus. It is built by the app (``twin/app.py``) from the world
and the CAN bus it sits on, and handed to the services that couple to its nodes.

Each node is an in-process port of the twin's `CanHub`. A node's packet goes out as its CFP frames back to back
(`NodePort.send_nowait` in one synchronous loop, libcsp's rule: frames of one packet are never interleaved with
that node's other traffic). Nodes are silent unless the power model says the satellite is powered and booted.

Faults (control endpoint, ``{"cmd": "fault", "name": ..., ...}``; also listed by ``{"cmd": "help"}``):

* ``node_silent`` ``node``, ``on``: the node neither receives nor sends (a hung processor).
* ``crc_error`` ``node``, ``count``: its next N packets carry a wrong CSP CRC32 (receivers drop them).
* ``lost_fragment`` ``node``, ``count``: a middle CAN frame of its next N packets of 3 or more frames is not
  sent (receivers drop the packet on the sequence gap).
* ``babble`` ``node``, ``seconds`` (≤ 10): the node floods the bus with high-priority (11-bit id 0x001..0x00F)
  garbage frames, about 6000 frames/s.
* ``bus_off`` ``seconds`` (≤ 30): an error frame with the BUSOFF class; the bus carries nothing until it recovers.
* ``malformed_pus`` ``node``, ``kind`` (``bad_crc`` | ``wrong_length``), ``count``: its next N TMs have a wrong
  PUS CRC-16 or a lying packet data length field (the CSP layer around them is intact).
* ``latchup`` ``channel`` (ADCS | PAYLOAD | HEATER): the EPS output trips: off, counter + 1, LATCHUP event.
* ``antenna_jam`` ``element`` (1..4), ``on``: that antenna element's line does not part however long it burns
  (twin/nodes/antenna.py); a deployment attempt ends at its burn timeout.

``{"cmd": "reboot", "node": "OBC"}`` reboots one node as its CSP reboot port would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Final, TypeVar

import numpy as np

from twin import csp
from twin.canbus import CanErrorClass, CanFrame, CanHub, NodePort
from twin.icd import Icd
from twin.nodes.adcs import AdcsNode
from twin.nodes.antenna import ELEMENTS
from twin.nodes.base import Node
from twin.nodes.comms import CommsNode
from twin.nodes.eps import EpsNode
from twin.nodes.obc import ObcNode
from twin.nodes.payload import PayloadNode
from twin.pus import cds_now
from twin.world import Fault, World

__all__ = ["NODE_CLASSES", "Satellite"]

_log = logging.getLogger(__name__)

NODE_CLASSES: Final[dict[str, type[Node]]] = {
    "OBC": ObcNode,
    "EPS": EpsNode,
    "ADCS": AdcsNode,
    "COMMS": CommsNode,
    "PAYLOAD": PayloadNode,
}
BABBLE_FRAMES_PER_TICK: Final = 30  # every 5 ms: ~6000 frames/s, most of a 1 Mbit/s bus
BABBLE_MAX_S: Final = 10.0
BUS_OFF_MAX_S: Final = 30.0

N = TypeVar("N", bound=Node)


Request = Callable[[dict[str, object]], dict[str, object]]


class FaultRefused(ValueError):
    pass


class Satellite:
    """The nodes of ``icd`` on the CAN bus ``can`` (a bus of its own if none is given: a satellite alone)."""

    def __init__(
        self,
        world: World,
        icd: Icd,
        *,
        can: CanHub | None = None,
        csp_version: int | None = None,
        cfp_version: int | None = None,
    ):
        self.world = world
        self.icd = icd
        self.can = can if can is not None else CanHub()
        # Giving one of the two selects the other: CFP v1 carries v1 headers, CFP v2 v2 headers.
        self.csp_version = csp_version or cfp_version or icd.csp_version
        self.cfp_version = cfp_version or csp_version or icd.cfp_version
        if self.cfp_version != self.csp_version:
            raise ValueError(f"CFP v{self.cfp_version} cannot carry CSP v{self.csp_version} headers")
        self.clock = world.clock
        self.defects = world.defects
        self._time_offset = 0.0
        self.nodes: dict[str, Node] = {}
        for name, entry in icd.nodes.items():
            node = NODE_CLASSES[name](host=self, icd_node=entry)
            node.reassembler = csp.CfpReassembler(self.csp_version, entry.address, self.clock)
            self.nodes[name] = node
        self._ports: dict[str, NodePort] = {}
        self._counters: dict[str, int] = dict.fromkeys(self.nodes, 0)
        self._rng = world.rng("satellite.babble")
        world.tickers.append(self.tick)
        world.state["satellite"] = self.state
        world.commands["reboot"] = self._reboot_command
        self._register_faults()

    # -- wiring ----------------------------------------------------------------------------------------------

    def attach(self) -> None:
        """Join the CAN bus (call from the event loop the hub runs in)."""
        for name, node in self.nodes.items():
            self._ports[name] = self.can.attach(self._receiver(node), name=f"node-{name}")

    def node(self, name: str, kind: type[N]) -> N:
        """The node ``name``, checked to be a ``kind`` (the side channels and the RF path couple to one node)."""
        node = self.nodes[name]
        if not isinstance(node, kind):
            raise TypeError(f"node {name} is a {type(node).__name__}, not a {kind.__name__}")
        return node

    @staticmethod
    def _receiver(node: Node) -> Callable[[CanFrame], None]:
        def receive(frame: CanFrame) -> None:
            if frame.is_extended_id and not frame.is_error_frame and not frame.is_remote_frame:
                node.on_frame(frame.arbitration_id, frame.data)

        return receive

    # -- NodeHost: noise, time, transmit, power -------------------------------------------------------------

    def rng(self, stream: str) -> np.random.Generator:
        return self.world.rng(stream)

    def unix_time(self) -> float:
        return time.time() + self._time_offset

    def set_time(self, unix: float) -> None:
        self._time_offset = unix - time.time()

    def stamp(self) -> bytes:
        return cds_now(self.unix_time())

    # -- transmit --------------------------------------------------------------------------------------------

    def transmit(self, node: Node, packet: csp.CspPacket) -> None:
        port = self._ports.get(node.name)
        if port is None or node.faults.silent:
            return
        counter = self._counters[node.name]
        self._counters[node.name] = counter + 1
        frames = csp.fragment(packet, self.cfp_version, counter, node.address)
        if node.faults.lost_fragment > 0 and len(frames) >= 3:
            node.faults.lost_fragment -= 1
            del frames[len(frames) // 2]
        for can_id, data in frames:
            if port.send_nowait(CanFrame(can_id, data)) is None:
                node.counters.tx_dropped += 1

    # -- power -----------------------------------------------------------------------------------------------

    @property
    def loads(self) -> Mapping[str, bool]:
        return self.world.dut.loads

    @property
    def bus_voltage(self) -> float:
        return self.world.dut.bus_voltage

    def bus_power_w(self, t: float) -> float:
        return self.world.dut.power(t) or 0.0

    def set_load(self, name: str, on: bool) -> bool:
        """Switch a load of the power model; False if the EPS is locked out."""
        try:
            self.world.run_at_now(lambda t: self.world.dut.set_load(name, on))
        except RuntimeError:
            return False
        return True

    def tick(self) -> None:
        t = self.clock()
        dut = self.world.dut
        platform_up = dut.powered and dut.booted(t)
        cause = dut.reset_cause or "power_on"
        for node in self.nodes.values():
            node.update_power(platform_up, dut.boot_count, cause, t)
            if node.alive:
                node.tick(t)
            if node.faults.babble_until > t:
                self._babble(node)

    def _babble(self, node: Node) -> None:
        port = self._ports.get(node.name)
        if port is None:
            return
        for _ in range(BABBLE_FRAMES_PER_TICK):
            can_id = int(self._rng.integers(1, 16))
            port.send_nowait(CanFrame(can_id, self._rng.bytes(8), is_extended_id=False))

    # -- control endpoint ------------------------------------------------------------------------------------

    def state(self) -> dict[str, object]:
        return {
            "csp_version": self.csp_version,
            "cfp_version": self.cfp_version,
            "nodes": {name: node.state() for name, node in self.nodes.items()},
            "can": asdict(self.can.stats()),
        }

    def _node(self, request: dict[str, object]) -> Node:
        name = str(request.get("node", "")).upper()
        if name not in self.nodes:
            raise FaultRefused(f"'node' must be one of {', '.join(self.nodes)}")
        return self.nodes[name]

    @staticmethod
    def _number(request: dict[str, object], key: str, low: float, high: float) -> float:
        value = request.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise FaultRefused(f"'{key}' must be a number in {low:g}..{high:g}")
        return float(value)

    def _reboot_command(self, request: dict[str, object]) -> dict[str, object]:
        node = self._node(request)
        if not node.alive:
            raise FaultRefused(f"{node.name} is not running")
        node.request_reboot(0.0)
        return {"node": node.name, "boot_count": node.boot_count}

    def _register_faults(self) -> None:
        def add(name: str, description: str, apply: Request) -> None:
            self.world.faults[name] = Fault(name, description, lambda on: {}, apply_request=apply)

        def silent(request: dict[str, object]) -> dict[str, object]:
            node = self._node(request)
            on = request.get("on")
            if not isinstance(on, bool):
                raise FaultRefused("'on' must be a bool")
            node.faults.silent = on
            return {"node": node.name, "on": on}

        def counted(attribute: str) -> Request:
            def apply(request: dict[str, object]) -> dict[str, object]:
                node = self._node(request)
                count = int(self._number(request, "count", 0, 1000))
                if attribute == "malformed":
                    kind = request.get("kind", "bad_crc")
                    if kind not in ("bad_crc", "wrong_length"):
                        raise FaultRefused("'kind' must be bad_crc or wrong_length")
                    node.faults.malformed_kind = str(kind)
                setattr(node.faults, attribute, count)
                return {"node": node.name, "count": count}

            return apply

        def babble(request: dict[str, object]) -> dict[str, object]:
            node = self._node(request)
            seconds = self._number(request, "seconds", 0, BABBLE_MAX_S)
            node.faults.babble_until = self.clock() + seconds
            return {"node": node.name, "seconds": seconds}

        def bus_off(request: dict[str, object]) -> dict[str, object]:
            seconds = self._number(request, "seconds", 0.01, BUS_OFF_MAX_S)
            self.can.inject_error(CanErrorClass.BUSOFF, bus_off_s=seconds)
            return {"seconds": seconds}

        def latchup(request: dict[str, object]) -> dict[str, object]:
            eps = self.nodes["EPS"]
            assert isinstance(eps, EpsNode)
            channel = str(request.get("channel", "")).upper()
            if not eps.latchup(channel):
                raise FaultRefused(f"'channel' must be one of {', '.join(eps.SWITCHABLE)} with the EPS running")
            return {"channel": channel}

        def antenna_jam(request: dict[str, object]) -> dict[str, object]:
            element, on = request.get("element"), request.get("on", True)
            if isinstance(element, bool) or not isinstance(element, int) or not 1 <= element <= ELEMENTS:
                raise FaultRefused(f"'element' must be an antenna element 1..{ELEMENTS}")
            if not isinstance(on, bool):
                raise FaultRefused("'on' must be a bool")
            jammed = self.node("COMMS", CommsNode).antenna.jammed
            jammed.add(element) if on else jammed.discard(element)
            return {"element": element, "on": on, "jammed": sorted(jammed)}

        add("node_silent", "node (OBC|EPS|ADCS|COMMS|PAYLOAD), on: the node neither receives nor sends", silent)
        add("crc_error", "node, count: its next N CSP packets carry a wrong CRC32", counted("crc_error"))
        add("lost_fragment", "node, count: drop a middle CAN frame of its next N multi-frame packets",
            counted("lost_fragment"))  # fmt: skip
        add("malformed_pus", "node, kind (bad_crc|wrong_length), count: its next N TMs are malformed",
            counted("malformed"))  # fmt: skip
        add("babble", f"node, seconds (≤{BABBLE_MAX_S:g}): flood the bus with high-priority garbage frames", babble)
        add("bus_off", f"seconds (≤{BUS_OFF_MAX_S:g}): CAN bus-off (error frame), nothing carried until recovery",
            bus_off)  # fmt: skip
        add("latchup", "channel (ADCS|PAYLOAD|HEATER): EPS output latch-up: off, counter + 1, LATCHUP event", latchup)
        add("antenna_jam", f"element (1..{ELEMENTS}), on: that antenna element's line does not part when burnt",
            antenna_jam)  # fmt: skip
