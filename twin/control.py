"""The twin's control endpoint: JSON Lines over TCP, for tests and fault injection only.

One JSON object per line in, one per line out; replies are ``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``. The bench never needs this endpoint to run a plan.

  {"cmd": "state"}                                  → {"ok": true, "psu": {...}, "dut": {...}, "faults": {...}}
  {"cmd": "load", "name": "payload", "on": true}    → switch one of the DUT's switchable loads (DUT powered)
  {"cmd": "fault", "name": "psu_silent", "on": true} → latching fault on/off
  {"cmd": "fault", "name": "psu_drop"}              → one-shot fault
  {"cmd": "help"}                                   → commands, loads, faults and seeded defects
  {"cmd": "defect", "name": "EPS_BUS_V_TM_5PCT", "on": true} → seed a defect now (twin/defects.py; also
                                                       ``python -m twin --defect NAME``); ``state.defects`` lists them

Supply and DUT power (``twin/psu_service.py``); ``state.psu.channels[].off_since`` is when an output last
stopped delivering (the twin's clock: this host's CLOCK_MONOTONIC), for latency measurements:

  {"cmd": "fault", "name": "psu_error", "count": 1, "code": -221}   → the next N settings refused (SCPI error)
  {"cmd": "fault", "name": "brownout", "seconds": 0.3}              → umbilical contact open: DUT brown-out, reboot

Satellite (``twin/nodes/satellite.py``; node = OBC | EPS | ADCS | COMMS | PAYLOAD; also ``docs/icd.md``):

  {"cmd": "reboot", "node": "OBC"}                                  → software reboot of one node
  {"cmd": "fault", "name": "node_silent", "node": "ADCS", "on": true} → node neither receives nor sends
  {"cmd": "fault", "name": "crc_error", "node": "EPS", "count": 3}    → next N packets with a bad CSP CRC32
  {"cmd": "fault", "name": "lost_fragment", "node": "EPS", "count": 1} → drop a middle frame of N packets
  {"cmd": "fault", "name": "babble", "node": "PAYLOAD", "seconds": 2}  → flood of high-priority garbage frames
  {"cmd": "fault", "name": "bus_off", "seconds": 1}                   → CAN bus-off until recovery
  {"cmd": "fault", "name": "malformed_pus", "node": "OBC", "kind": "bad_crc"|"wrong_length", "count": 1}
  {"cmd": "fault", "name": "latchup", "channel": "PAYLOAD"}           → EPS output latch-up
  ``state`` then includes ``satellite.nodes.<NODE>``: alive, mode, uptime, boot count, HK SIDs, counters.

Side channels (``twin/sidechannels.py``; also ``docs/side-channels.md``):

  {"cmd": "fault", "name": "i2c_unplug"}                           → USB-ISS cable pulled (pty and TCP gone)
  {"cmd": "fault", "name": "i2c_replug"}                           → plugged back: same TCP port, new pty
  {"cmd": "fault", "name": "i2c_nack", "address": 72, "on": true}  → that 7-bit address stops acknowledging
  {"cmd": "fault", "name": "console_silent", "on": true}           → the OBC debug UART prints/answers nothing
  {"cmd": "fault", "name": "console_garbage", "on": true}          → line noise mixed into the UART output
  {"cmd": "fault", "name": "selftest_fail", "subsystem": "ADCS", "on": true} → next boot log: FAIL + WARNING
  ``state`` then includes ``i2c`` and ``console``.

RF path (``twin/rf_link.py``; also ``docs/rf.md``): ``rf_cable_disconnected``, ``rf_tx_off``, ``rf_off_frequency``,
``rf_interferer`` (each ``on``), and

  {"cmd": "fault", "name": "rf_attenuator_missing", "on": true}    → the analyzer sees bursts 40 dB too hot
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Final

from twin.defects import DEFECTS
from twin.world import World

__all__ = ["CONTROL_PORT", "ControlService"]

CONTROL_PORT: Final = 29999
_log = logging.getLogger(__name__)

Reply = dict[str, object]


class _Refused(Exception):
    pass


class ControlService:
    name = "control"
    kind = "jsonl"
    visa = False
    description = "twin control (JSON Lines: state, loads, fault injection) — tests only"

    def __init__(self, world: World) -> None:
        self.world = world
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._commands: dict[str, Callable[[dict[str, object]], Reply]] = {
            "state": self._state,
            "load": self._load,
            "fault": self._fault,
            "help": self._help,
            "defect": self._defect,
        }

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._client, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than the stream limit: answer, then give up on this client
                    writer.write(self._encode({"ok": False, "error": "request line too long"}))
                    await writer.drain()
                    break
                if not line:
                    break
                if not line.strip():
                    continue
                writer.write(self._encode(await self.handle_line_async(line)))
                await writer.drain()
        except (ConnectionError, OSError) as exc:
            _log.debug("control client lost: %s", exc)
        finally:
            self._writers.discard(writer)
            writer.close()

    @staticmethod
    def _encode(reply: Reply) -> bytes:
        return (json.dumps(reply) + "\n").encode()

    def _extra(self, request: dict[str, object]) -> Reply:
        command = self.world.commands[str(request.get("cmd"))]
        try:
            return {"ok": True, **command(request)}
        except ValueError as exc:
            raise _Refused(str(exc)) from exc

    async def handle_line_async(self, line: bytes | str) -> Reply:
        """`handle_line`, plus the faults that must be awaited (``Fault.apply_async``, e.g. ``i2c_replug``)."""
        try:
            request = json.loads(line)
        except ValueError:
            request = None
        if isinstance(request, dict) and request.get("cmd") == "fault":
            name = str(request.get("name"))
            fault = self.world.faults.get(name)
            if fault is not None and fault.apply_async is not None:
                try:
                    reply = await fault.apply_async(request)
                except ValueError as exc:
                    return {"ok": False, "error": str(exc)}
                _log.info("fault %s %s", name, reply)
                return {"ok": True, "fault": name, **reply}
        return self.handle_line(line)

    def handle_line(self, line: bytes | str) -> Reply:
        try:
            request = json.loads(line)
        except ValueError as exc:
            return {"ok": False, "error": f"invalid JSON: {exc}"}
        if not isinstance(request, dict):
            return {"ok": False, "error": "a request is a JSON object with a 'cmd'"}
        command = self._commands.get(str(request.get("cmd")))
        if command is None and str(request.get("cmd")) in self.world.commands:
            command = self._extra
        if command is None:
            known = ", ".join(sorted([*self._commands, *self.world.commands]))
            return {"ok": False, "error": f"unknown cmd {request.get('cmd')!r} (known: {known})"}
        try:
            return command(request)
        except _Refused as exc:
            return {"ok": False, "error": str(exc)}

    # -- commands ----------------------------------------------------------------------------------------

    @staticmethod
    def _field(request: dict[str, object], key: str, kind: type) -> object:
        value = request.get(key)
        if not isinstance(value, kind):
            raise _Refused(f"'{key}' must be a {kind.__name__}")
        return value

    def _state(self, request: dict[str, object]) -> Reply:
        self.world.tick()
        reply: Reply = {"ok": True}
        for name, provider in self.world.state.items():
            reply[name] = provider()
        reply["defects"] = list(self.world.defects.names)
        reply["faults"] = {
            name: fault.active() for name, fault in self.world.faults.items() if fault.active is not None
        }
        return reply

    def _load(self, request: dict[str, object]) -> Reply:
        name = str(self._field(request, "name", str))
        on = bool(self._field(request, "on", bool))

        def switch(t: float) -> None:
            self.world.dut.set_load(name, on)

        try:
            self.world.run_at_now(switch)
        except (KeyError, RuntimeError) as exc:
            raise _Refused(str(exc.args[0]) if exc.args else str(exc)) from exc
        return {"ok": True, "load": name, "on": on}

    def _fault(self, request: dict[str, object]) -> Reply:
        name = str(self._field(request, "name", str))
        fault = self.world.faults.get(name)
        if fault is None:
            known = ", ".join(sorted(self.world.faults))
            raise _Refused(f"unknown fault {name!r} (known: {known})")
        if fault.apply_async is not None:
            raise _Refused(f"fault {name!r} is asynchronous: send it over the control connection")
        if fault.apply_request is not None:
            try:
                reply = fault.apply_request(request)
            except ValueError as exc:
                raise _Refused(str(exc)) from exc
            _log.info("fault %s %s", name, reply)
            return {"ok": True, "fault": name, **reply}
        if fault.active is None:
            return {"ok": True, "fault": name, **fault.apply(True)}
        on = bool(self._field(request, "on", bool))
        _log.info("fault %s %s", name, "on" if on else "off")
        return {"ok": True, "fault": name, "on": on, **fault.apply(on)}

    def _help(self, request: dict[str, object]) -> Reply:
        return {
            "ok": True,
            "commands": sorted([*self._commands, *self.world.commands]),
            "loads": sorted(self.world.dut.loads),
            "faults": {name: fault.description for name, fault in self.world.faults.items()},
            "defects": {
                name: {
                    "subsystem": d.subsystem,
                    "description": d.description,
                    "active": self.world.defects.active(name),
                }
                for name, d in DEFECTS.items()
            },
        }

    def _defect(self, request: dict[str, object]) -> Reply:
        name = str(self._field(request, "name", str))
        on = bool(self._field(request, "on", bool))
        if name not in DEFECTS:
            raise _Refused(f"unknown defect {name!r} (known: {', '.join(sorted(DEFECTS))})")
        self.world.defects.set(name, on)
        self.world.apply_power_defects()
        _log.info("defect %s %s", name, "on" if on else "off")
        return {"ok": True, "defect": name, "on": on, "defects": list(self.world.defects.names)}
