"""OBC: satellite mode, on-board time, reboots; its BOOT event is the satellite's "I am alive"."""

from __future__ import annotations

from typing import Final

from twin.icd import Command
from twin.nodes.base import MEMORY_BYTES, Deferred, Node, Value
from twin.pus import Failure

__all__ = ["ObcNode"]

MODES: Final = {0: "SAFE", 1: "NOMINAL", 2: "PAYLOAD"}
RESET_CAUSES: Final = {"power_on": 0, "brownout": 1, "watchdog": 2, "command": 3}


class ObcNode(Node):
    def __post_init__(self) -> None:
        self.mode = 1
        self._last_booted_at = 0.0
        self._rng = self.host.rng(f"node.{self.name}")

    def reset(self, t: float) -> None:
        # After a brownout or watchdog the flight software starts in SAFE; after a clean start, NOMINAL.
        self.mode = 0 if self.reset_cause in ("brownout", "watchdog") else 1
        if self.reset_cause == "power_on" and self.host.defects.active("OBC_BOOTS_SAFE"):
            self.mode = 0
        if self.reset_cause == "command":
            if self.host.defects.active("OBC_BOOT_NOT_COUNTED"):
                self.boot_count -= 1
            if self.host.defects.active("OBC_UPTIME_NOT_RESET"):
                self.booted_at = self._last_booted_at
        self._last_booted_at = self.booted_at
        self.emit("BOOT", self.boot_count, RESET_CAUSES.get(self.reset_cause, 0))

    def mode_name(self) -> str:
        return MODES.get(self.mode, "?") if self.alive else "OFF"

    def cpu_load_pct(self) -> float:
        base = {0: 8.0, 1: 14.0, 2: 31.0}.get(self.mode, 10.0)
        return max(0.0, base + float(self._rng.normal(0.0, 1.5)))

    def free_memory(self) -> int:
        used = 180_000 + (60_000 if self.mode == 2 else 0) + int(self._rng.integers(0, 4096))
        return MEMORY_BYTES - used

    def hk_values(self, sid: int) -> dict[str, Value]:
        return {
            "UPTIME": int(self.uptime()),
            "MODE": self.mode,
            "BOOT_COUNT": self.boot_count,
            "RESET_CAUSE": RESET_CAUSES.get(self.reset_cause, 0),
            "CPU_LOAD": self.cpu_load_pct(),
            "FREE_MEM": self.free_memory(),
            "OBT": int(self.host.unix_time()),
        }

    def set_mode(self, new: int) -> bool:
        """Change the satellite mode (OBC.SET_MODE over CAN, ``mode set`` on the debug console); False if refused."""
        if new not in MODES or (new == 2 and not self.host.loads.get("payload", False)):
            return False  # PAYLOAD mode needs the imager powered
        if (self.mode, new) == (0, 1) and self.host.defects.active("OBC_MODE_RETURN_REFUSED"):
            return False
        if new != self.mode:
            old, self.mode = self.mode, new
            self.emit("MODE_CHANGED", old, new)
        return True

    def execute(self, command: Command, args: dict[str, Value]) -> Failure | Deferred | None:
        if command.name == "SET_MODE":
            return None if self.set_mode(int(args["mode"])) else Failure.EXECUTION_FAILED
        if command.name == "REBOOT":
            self.request_reboot()  # completion success leaves first, then the processor resets
            return None
        return Failure.EXECUTION_FAILED
