"""PAYLOAD: the imager (power = the EPS PAYLOAD output) and captures that take their exposure time."""

from __future__ import annotations

from typing import Final

from twin.icd import Command
from twin.nodes.base import Deferred, Node, Value
from twin.pus import Failure

__all__ = ["PayloadNode"]

READOUT_S: Final = 0.05  # sensor readout and storage after the exposure
STATUS_NONE, STATUS_OK, STATUS_FAILED = 0, 1, 2
REASON_IMAGER_OFF, REASON_POWER_LOST = 1, 2


class PayloadNode(Node):
    def __post_init__(self) -> None:
        self._rng = self.host.rng(f"node.{self.name}")
        self.captures = 0
        self.last_status = STATUS_NONE
        self.storage_kib = 0  # on flash: survives reboots

    def reset(self, t: float) -> None:
        self.captures = 0
        self.last_status = STATUS_NONE

    def imager_on(self) -> bool:
        return bool(self.host.loads.get("payload", False))

    def hk_values(self, sid: int) -> dict[str, Value]:
        return {
            "IMAGER_POWER": self.imager_on(),
            "CAPTURES": self.captures,
            "LAST_CAPTURE_STATUS": self.last_status,
            "STORAGE_USED": self.storage_kib,
            "IMAGER_TEMP": (24.0 if self.imager_on() else 18.0) + float(self._rng.normal(0.0, 0.1)),
        }

    def _fail(self, reason: int) -> Failure:
        self.last_status = STATUS_FAILED
        self.emit("CAPTURE_FAILED", reason)
        return Failure.EXECUTION_FAILED

    def execute(self, command: Command, args: dict[str, Value]) -> Failure | Deferred | None:
        if command.name == "POWER":
            return None if self.host.set_load("payload", bool(args["on"])) else Failure.EXECUTION_FAILED
        if command.name == "CAPTURE":
            exposure_ms = int(args["exposure_ms"])
            if not self.imager_on() and not self.host.defects.active("PAYLOAD_CAPTURE_WHEN_OFF"):
                wrong = self.host.defects.active("PAYLOAD_WRONG_FAIL_REASON")
                return self._fail(REASON_POWER_LOST if wrong else REASON_IMAGER_OFF)

            def finish() -> Failure | None:
                if not self.imager_on() and not self.host.defects.active("PAYLOAD_CAPTURE_WHEN_OFF"):
                    return self._fail(REASON_POWER_LOST)
                if not self.host.defects.active("PAYLOAD_CAPTURE_NOT_COUNTED"):
                    self.captures += 1
                self.storage_kib += int(self.param("IMAGE_SIZE_KB"))
                self.last_status = STATUS_OK
                self.emit("CAPTURE_DONE", self.captures, exposure_ms)
                return None

            readout_s = self.host.defects.value("PAYLOAD_SLOW_READOUT") or READOUT_S
            return Deferred(self.now() + exposure_ms / 1000.0 + readout_s, finish)
        return Failure.EXECUTION_FAILED

    def mode_name(self) -> str:
        if not self.alive:
            return "OFF"
        return "IMAGER_ON" if self.imager_on() else "IMAGER_OFF"
