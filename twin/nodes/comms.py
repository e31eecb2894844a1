"""COMMS: UHF transceiver settings, the periodic beacon (a TX burst the PSU sees as a current step), counters."""

from __future__ import annotations

from typing import Final

from twin.icd import Command
from twin.nodes.base import Deferred, Node, Value
from twin.pus import Failure

__all__ = ["CommsNode"]

DEFAULT_PERIOD_S: Final = 30
DEFAULT_TX_DBM: Final = 30


class CommsNode(Node):
    def __post_init__(self) -> None:
        self._rng = self.sat.world.rng(f"node.{self.name}")
        self.beacon_enabled = False
        self.period_s = DEFAULT_PERIOD_S
        self.tx_dbm = DEFAULT_TX_DBM
        self.beacons = 0
        self._next_beacon = 0.0
        self._tx_until: float | None = None
        self._pa_heat = 0.0

    def reset(self, t: float) -> None:
        # The beacon stays off after a reset until the ground (the bench) enables it: keeps PSU current
        # measurements free of TX bursts unless a test asks for them.
        self.beacon_enabled = False
        self.period_s = DEFAULT_PERIOD_S
        self.tx_dbm = DEFAULT_TX_DBM
        self.beacons = 0
        self._tx_until = None

    def tick(self, t: float) -> None:
        super().tick(t)
        if self._tx_until is not None and t >= self._tx_until:
            self._tx_until = None
            self.sat.set_load("uhf_tx", False)
        if self.beacon_enabled and t >= self._next_beacon and self._tx_until is None:
            self._next_beacon = t + self.period_s
            self.beacons += 1
            self._tx_until = t + float(self.param("TX_BURST_MS")) / 1000.0
            self.sat.set_load("uhf_tx", True)
            self.emit("BEACON_SENT", self.beacons)
        transmitting = self._tx_until is not None
        self._pa_heat += ((12.0 if transmitting else 0.0) - self._pa_heat) * 0.005 / 20.0

    def hk_values(self, sid: int) -> dict[str, Value]:
        noise = self._rng.normal
        return {
            "BEACON_ENABLED": self.beacon_enabled,
            "BEACON_PERIOD": self.period_s,
            "TX_POWER": self.tx_dbm,
            "BEACONS_SENT": self.beacons,
            # On the bench the uplink is the CAN bus: TCs taken by the radio's application stand for frames.
            "RX_FRAMES": self.counters.tc_received,
            "RX_REJECTED": self.counters.tc_rejected,
            "RSSI": -121.0 + float(noise(0.0, 1.0)),
            "PA_TEMP": 24.0 + self._pa_heat + float(noise(0.0, 0.1)),
        }

    def execute(self, command: Command, args: dict[str, Value]) -> Failure | Deferred | None:
        if command.name == "SET_BEACON":
            enabled = bool(args["enabled"])
            if enabled and not self.beacon_enabled:
                self._next_beacon = self.now()  # first beacon at once, then every period
            self.beacon_enabled = enabled
            return None
        if command.name == "SET_TX_POWER":
            self.tx_dbm = int(args["dbm"])
            return None
        if command.name == "SET_BEACON_PERIOD":
            self.period_s = int(args["period_s"])
            self._next_beacon = min(self._next_beacon, self.now() + self.period_s)
            return None
        return Failure.EXECUTION_FAILED

    def mode_name(self) -> str:
        if not self.alive:
            return "OFF"
        return "BEACON" if self.beacon_enabled else "RX"
