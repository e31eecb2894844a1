"""ADCS: magnetometer and gyro readings (noisy, slowly varying), three reaction wheels that spin up when powered,
and the B-dot detumble loop closed through the twin's dynamics: in any mode but IDLE the separation tumble decays
with a time constant of 2.5 s / DETUMBLE_GAIN (accelerated: a real detumble takes orbits; the bench's dynamics
stimulation replays it in seconds). The controller acts on the field *as the magnetometer reads it*, so a
magnetometer wired wrong (axes swapped, one inverted) leaves the rates undamped or pumps them up."""

from __future__ import annotations

import math
from typing import Final

from twin.icd import Command
from twin.nodes.base import Deferred, Node, Value
from twin.pus import Failure

__all__ = ["AdcsNode"]

MODES: Final = {0: "IDLE", 1: "DETUMBLE", 2: "SUN_POINTING", 3: "NADIR"}
ORBIT_S: Final = 5640.0  # ~94 min low Earth orbit: the field vector turns once per orbit
TUMBLE_DEG_S: Final = (2.1, -1.4, 0.7)  # body rates after separation
DAMPING_PER_S: Final = 0.4  # B-dot damping rate per unit of DETUMBLE_GAIN (time constant 2.5 s at the default 1.0)
MAX_RATE_DEG_S: Final = 20.0  # a loop pumping the tumble up saturates here (torquer authority)


class AdcsNode(Node):
    def __post_init__(self) -> None:
        self._rng = self.host.rng(f"node.{self.name}")
        self.mode = 0
        self.target = [0.0, 0.0, 0.0]
        self.speed = [0.0, 0.0, 0.0]
        self._last = 0.0
        self._control_since: float | None = None

    def reset(self, t: float) -> None:
        self.mode = 0
        self.target = [0.0, 0.0, 0.0]
        self._last = t
        self._control_since = None

    def wheels_powered(self) -> bool:
        return bool(self.host.loads.get("adcs_wheels", False))

    def tick(self, t: float) -> None:
        super().tick(t)
        dt, self._last = t - self._last, t
        step = float(self.param("WHEEL_ACCEL")) * dt * (self.host.defects.value("ADCS_WHEEL_SLOW") or 1.0)
        powered = self.wheels_powered()
        for axis in range(3):
            # Unpowered wheels coast down (friction, same rate as the motor's acceleration for simplicity).
            goal = self.target[axis] if powered else 0.0
            delta = goal - self.speed[axis]
            self.speed[axis] += max(-step, min(step, delta))

    def hk_values(self, sid: int) -> dict[str, Value]:
        noise = self._rng.normal
        phase = 2 * math.pi * (self.host.unix_time() % ORBIT_S) / ORBIT_S
        # Dipole-like along the orbit: |B| from ~25 µT (equator) to ~52 µT (poles), its direction turning with
        # the orbit — never outside the 20–65 µT a LEO magnetometer must read, whatever the wall-clock phase.
        magnitude = 25_000 + 27_000 * math.sin(phase) ** 2
        direction = (math.cos(phase), 0.5 * math.sin(phase), math.sin(phase + 1.0))
        scale = magnitude / math.sqrt(sum(c * c for c in direction))
        field = [c * scale for c in direction]
        # The B-dot loop per axis: +1 damps the tumble, 0 leaves it (the torque lands on another axis), -1 pumps it.
        polarity = [1.0, 1.0, 1.0]
        if self.host.defects.active("ADCS_MAG_XY_SWAPPED"):
            field[0], field[1] = field[1], field[0]
            polarity[0] = polarity[1] = 0.0
        if self.host.defects.active("ADCS_MAG_Z_INVERTED"):
            field[2] = -field[2]
            polarity[2] = -1.0
        values: dict[str, Value] = {"MODE": self.mode}
        elapsed = 0.0 if self._control_since is None else self.now() - self._control_since
        rate = float(self.param("DETUMBLE_GAIN")) * DAMPING_PER_S * elapsed
        for index, axis in enumerate("XYZ"):
            body_rate = TUMBLE_DEG_S[index] * math.exp(max(-50.0, min(50.0, -rate * polarity[index])))
            body_rate = max(-MAX_RATE_DEG_S, min(MAX_RATE_DEG_S, body_rate))
            values[f"MAG_{axis}"] = field[index] + float(noise(0.0, 50.0))
            values[f"GYRO_{axis}"] = body_rate + float(noise(0.0, 0.02))
            values[f"WHEEL_{axis}"] = self.speed[index] + (float(noise(0.0, 2.0)) if self.speed[index] else 0.0)
        v = self.host.bus_voltage
        values["IADCS"] = (1.2 / max(v, 2.5) + float(noise(0.0, 0.002))) if self.wheels_powered() else 0.0
        return values

    def execute(self, command: Command, args: dict[str, Value]) -> Failure | Deferred | None:
        if command.name == "SET_MODE":
            new = int(args["mode"])
            if MODES.get(new) == "NADIR" and self.host.defects.active("ADCS_MODE_NADIR_REFUSED"):
                return Failure.EXECUTION_FAILED
            if new != self.mode:
                old, self.mode = self.mode, new
                self._control_since = self.now() if new else None
                self.emit("MODE_CHANGED", old, new)
            return None
        if command.name == "SET_WHEEL_SPEED":
            axis = int(args["axis"])
            if not self.wheels_powered():
                if not self.host.defects.active("ADCS_NO_WHEEL_FAULT_EVENT"):
                    self.emit("WHEEL_FAULT", axis)
                return Failure.EXECUTION_FAILED
            sign = -1.0 if self.host.defects.active("ADCS_WHEEL_REVERSED") else 1.0
            self.target[axis] = sign * float(args["rpm"])
            return None
        return Failure.EXECUTION_FAILED

    def range_checked(self) -> bool:
        return not self.host.defects.active("ADCS_NO_RANGE_CHECK")

    def mode_name(self) -> str:
        return MODES.get(self.mode, "?") if self.alive else "OFF"
