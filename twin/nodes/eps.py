"""EPS: battery and main bus telemetry from the power model, the switched outputs, latch-ups, undervoltage."""

from __future__ import annotations

from typing import ClassVar, Final

from twin.icd import Command
from twin.nodes.antenna import BURN_LOAD
from twin.nodes.base import Deferred, Node, Value
from twin.power_model import SWITCHABLE_LOADS_W
from twin.pus import Failure

__all__ = ["EpsNode"]

CHANNELS: Final = ("OBC", "ADCS", "COMMS", "PAYLOAD", "HEATER")  # SET_OUTPUT channel enum order
# The power model's idle 1.9 W is split between the always-on outputs (OBC + EPS itself, UHF receiver).
ALWAYS_ON_W: Final = {"OBC": 1.0, "COMMS": 0.9}
UV_REARM_V: Final = 0.1  # hysteresis above the threshold before UNDERVOLTAGE can be raised again


class EpsNode(Node):
    SWITCHABLE: ClassVar[dict[str, str]] = {"ADCS": "adcs_wheels", "PAYLOAD": "payload", "HEATER": "heaters"}

    def __post_init__(self) -> None:
        # Latch-up counters live in the EPS's FRAM: they survive reboots, only a TC clears them.
        self.latchups: dict[str, int] = dict.fromkeys(CHANNELS, 0)
        self._uv_armed = True
        self._rng = self.host.rng(f"node.{self.name}")
        self._heat = 0.0  # battery heater warming, degC above ambient

    def reset(self, t: float) -> None:
        self._uv_armed = True

    def output_on(self, channel: str) -> bool:
        if channel in ALWAYS_ON_W:
            return True
        return bool(self.host.loads.get(self.SWITCHABLE[channel], False))

    def output_power_w(self, channel: str) -> float:
        loads = self.host.loads
        if channel in ALWAYS_ON_W:
            tx = SWITCHABLE_LOADS_W["uhf_tx"] if channel == "COMMS" and loads.get("uhf_tx") else 0.0
            return ALWAYS_ON_W[channel] + tx
        return SWITCHABLE_LOADS_W[self.SWITCHABLE[channel]] if self.output_on(channel) else 0.0

    def bus(self) -> tuple[float, float]:
        v = self.host.bus_voltage
        return v, self.host.bus_power_w(self.now()) / max(v, 2.5)

    def tick(self, t: float) -> None:
        super().tick(t)
        heating = self.output_on("HEATER")
        # First-order warming towards +8 degC with the heater on (time constant ~200 s), cooling back without it.
        self._heat += ((8.0 if heating else 0.0) - self._heat) * 0.005 / 200.0
        v, _ = self.bus()
        threshold = float(self.param("UV_WARN_THRESHOLD"))
        if self._uv_armed and v < threshold:
            self._uv_armed = False
            self.emit("UNDERVOLTAGE", round(v * 1000))
        elif v > threshold + UV_REARM_V:
            self._uv_armed = True

    def hk_values(self, sid: int) -> dict[str, Value]:
        v, i = self.bus()
        noise = self._rng.normal
        vbus = v + float(noise(0.0, 0.002))
        ibus = max(0.0, i + float(noise(0.0, 0.003)))
        v_tm = vbus * (self.host.defects.value("EPS_BUS_V_TM_5PCT") or 1.0)
        i_tm = ibus * (self.host.defects.value("EPS_IBUS_TM_SCALE") or 1.0)
        values: dict[str, Value] = {"VBAT": v_tm, "IBAT": -ibus, "VBUS": v_tm, "IBUS": i_tm}
        for channel in CHANNELS:
            values[f"OUT_{channel}"] = self.output_on(channel)
            current = self.output_power_w(channel) / max(v, 2.5)
            values[f"I_{channel}"] = max(0.0, current + float(noise(0.0, 0.002))) if current else 0.0
            values[f"LATCHUPS_{channel}"] = self.latchups[channel]
        values["BOOT_COUNT"] = self.boot_count
        tbat_offset = self.host.defects.value("EPS_TBAT_TM_OFFSET") or 0.0
        values["TBAT"] = self.battery_temp_c() + tbat_offset + float(noise(0.0, 0.05))
        return values

    def battery_temp_c(self) -> float:
        """True battery/EPS-board temperature (CAN ``EPS.TBAT`` adds the ADC's noise; the I2C TMP100 reads this)."""
        return 21.0 + self._heat

    def switch_output(self, channel: str, on: bool) -> Failure | None:
        """Switch one output (SET_OUTPUT over CAN, SET_OUTPUT / SET_SINGLE_OUTPUT over I2C): None or the refusal."""
        if channel in ALWAYS_ON_W:
            if self.host.defects.active("EPS_PROTECTED_OUTPUT_OFF"):
                return None  # completes, and the output stays on: the protection is not reported
            return None if on else Failure.EXECUTION_FAILED  # protected: the EPS keeps OBC and radio on
        if channel == "ADCS" and self.host.defects.active("EPS_OUTPUT_REVERSED"):
            on = not on
        if channel == "HEATER" and not on and self.host.defects.active("EPS_OUTPUT_STUCK_ON"):
            return None  # the switch is welded: off completes, the heater stays on
        before = self.output_on(channel)
        if not self.host.set_load(self.SWITCHABLE[channel], on):
            return Failure.EXECUTION_FAILED
        if before != on:
            self.emit("OUTPUT_CHANGED", CHANNELS.index(channel), on)
        return None

    def switch_burn_output(self, on: bool) -> bool:
        """The antenna burn-wire output, on the COMMS deployment sequence's request: False if refused (the EPS
        is not running or is locked out). Not a SET_OUTPUT channel: the ground cannot burn a wire by hand."""
        if on and not self.alive:
            return False
        return self.host.set_load(BURN_LOAD, on)

    def latchup(self, channel: str) -> bool:
        if channel not in self.SWITCHABLE or not self.alive:
            return False
        self.host.set_load(self.SWITCHABLE[channel], False)
        self.latchups[channel] += 1
        self.emit("LATCHUP", CHANNELS.index(channel))
        return True

    def execute(self, command: Command, args: dict[str, Value]) -> Failure | Deferred | None:
        if command.name == "SET_OUTPUT":
            return self.switch_output(CHANNELS[int(args["channel"])], bool(args["on"]))
        if command.name == "RESET_LATCHUP_COUNTERS":
            self.latchups = dict.fromkeys(CHANNELS, 0)
            return None
        return Failure.EXECUTION_FAILED

    def mode_name(self) -> str:
        return "NOMINAL" if self.alive else "OFF"
