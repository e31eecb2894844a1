"""The OTS-SAT main bus as the load on PSU channel 1 (through the umbilical battery simulator).

The model is analytic in time and evaluated lazily: the supply asks ``demand(t, v)`` (the current the bus
would draw at time ``t`` if held at ``v``) whenever it needs a value, and reports what it actually delivered
through ``settle(t, v_terminal)``, where the discrete state changes (undervoltage lockout, boot). Numbers and
their reasons: ``docs/satellite-model.md``.

* Bus capacitance behind the harness: a voltage step charges it as an RC (1.4 Ω, τ = 3 ms), so output-on
  draws ``V/1.4 Ω · exp(-t/3 ms)`` (≈2.7 A at 3.8 V) and the bus voltage lags the supply by that exponential.
* EPS undervoltage lockout with hysteresis: loads off below 3.10 V (falling), on again at ≥ 3.30 V
  (rising), which is a reboot (boot counter +1). Locked out, the EPS draws 4 mA quiescent. A sag with the
  supply on must last 100 ms (the comparator's filter) before the EPS locks out.
* Constant-power loads: OBC boot 1.1 W for 0.25 s after power-good, then idle 1.9 W (OBC + EPS + UHF RX),
  plus the switchable loads that are on (all off after every boot).
* Resistive loads: the antenna burn wire (``antenna_burn``, twin/nodes/antenna.py) hangs on an EPS output
  straight from the bus, so it draws ``V/R`` (``V²/R`` watts), not constant power: less at a low bus voltage.
* A fault (``interrupt``, the control endpoint's ``brownout``): the umbilical contact opens for a while (a
  loose connector, a harness fault). The satellite draws nothing from the supply and its bus collapses; past
  the undervoltage filter the EPS locks out, and when the contact closes again the satellite reboots with reset
  cause ``brownout``. The bus capacitance is taken as recharged through the contact at once (no second inrush).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

__all__ = [
    "BOOT_DURATION_S",
    "BOOT_POWER_W",
    "HARNESS_OHM",
    "IDLE_POWER_W",
    "INRUSH_TAU_S",
    "QUIESCENT_A",
    "RESISTIVE_LOADS_OHM",
    "SWITCHABLE_LOADS_W",
    "UVLO_FALLING_V",
    "UVLO_FILTER_S",
    "UVLO_RISING_V",
    "SatellitePowerModel",
]

HARNESS_OHM: Final = 1.4
INRUSH_TAU_S: Final = 3e-3
UVLO_FALLING_V: Final = 3.10
UVLO_RISING_V: Final = 3.30
UVLO_FILTER_S: Final = 0.10  # undervoltage comparator filter: a sag must last this long to lock out
QUIESCENT_A: Final = 0.004
BOOT_POWER_W: Final = 1.1
BOOT_DURATION_S: Final = 0.25
IDLE_POWER_W: Final = 1.9
SWITCHABLE_LOADS_W: Final[dict[str, float]] = {
    "adcs_wheels": 1.2,
    "payload": 3.5,
    "uhf_tx": 4.0,
    "heaters": 2.0,
}
# Loads switched by the EPS straight onto the bus (no converter): ``V²/R``. The antenna burn wire and its switch.
RESISTIVE_LOADS_OHM: Final[dict[str, float]] = {"antenna_burn": 6.0}
# Constant-power converters cannot draw unbounded current as the bus sags; below this the EPS would have
# locked out anyway, the floor only keeps P/V finite inside one evaluation step.
_CONVERTER_MIN_V: Final = 2.5
# Quiescent current flows only once the EPS controller has enough voltage to run.
_QUIESCENT_MIN_V: Final = 0.5


@dataclass
class _Capacitor:
    """Bus capacitance: exponential approach of ``v0`` (at ``t0``) to ``target``."""

    target: float = 0.0
    v0: float = 0.0
    t0: float = 0.0

    def voltage(self, t: float) -> float:
        return self.target + (self.v0 - self.target) * math.exp(-max(0.0, t - self.t0) / INRUSH_TAU_S)


class SatellitePowerModel:
    """OTS-SAT as seen from the umbilical: inrush, UVLO/brownout, boot, constant-power loads."""

    def __init__(self) -> None:
        self._cap = _Capacitor()
        self.uvlo_falling_v = UVLO_FALLING_V  # a seeded defect may move it (twin/defects.py)
        self.idle_power_w = IDLE_POWER_W
        self.powered = False
        self.boot_count = 0
        self.reset_cause: str | None = None
        self.bus_voltage = 0.0
        self._power_good_at: float | None = None
        self._next_cause = "power_on"
        self._below_since: float | None = None
        self._open_until: float | None = None  # the umbilical contact is open until then (fault)
        self.loads: dict[str, bool] = dict.fromkeys([*SWITCHABLE_LOADS_W, *RESISTIVE_LOADS_OHM], False)

    # -- the Load protocol the power supply drives -------------------------------------------------------

    def source_step(self, t: float, v_source: float) -> None:
        """The supply now holds ``v_source`` (0 when its output is off or latched off)."""
        self._cap = _Capacitor(target=v_source, v0=self._cap.voltage(t), t0=t)

    def demand(self, t: float, v_source: float) -> float:
        """Current (A) drawn at time ``t`` if the supply holds ``v_source`` at its terminals."""
        if v_source <= 0.0 or self._open(t):
            return 0.0
        v_cap = self._cap.voltage(t)
        # The supply cannot sink: a falling step discharges the capacitance into the loads instead.
        charging = max(0.0, (v_source - v_cap) / HARNESS_OHM)
        power = self.power(t)
        if power is not None:
            return charging + power / max(v_cap, _CONVERTER_MIN_V)
        return charging + (QUIESCENT_A if v_cap > _QUIESCENT_MIN_V else 0.0)

    def settle(self, t: float, v_terminal: float) -> None:
        """Apply lockout/boot given the voltage the supply actually delivered at ``t``."""
        # In current limit the terminal voltage sags below the capacitor's own curve; the bus sees the lower.
        # With the umbilical contact open the loads drain the bus at once.
        self.bus_voltage = 0.0 if self._open(t) else max(0.0, min(self._cap.voltage(t), v_terminal))
        if self.powered and self.bus_voltage < self.uvlo_falling_v and self._cap.target > 0.0:
            # A sag with the supply on must last the comparator's filter time before the EPS locks out:
            # brief dips (current limit during a transient) are ridden through, so an OCP can trip first.
            if self._below_since is None:
                self._below_since = t
            if t - self._below_since < UVLO_FILTER_S:
                return
        else:
            self._below_since = None
        if self.powered and self.bus_voltage < self.uvlo_falling_v:
            self._below_since = None
            self.powered = False
            self._power_good_at = None
            # Supply gone (off or tripped) is a power-on reset next time; a sag with the supply on, a brownout.
            self._next_cause = "power_on" if self._cap.target <= 0.0 else "brownout"
            self.loads = dict.fromkeys(self.loads, False)
        elif not self.powered and self.bus_voltage >= UVLO_RISING_V:
            self.powered = True
            self._power_good_at = t
            self.boot_count += 1
            self.reset_cause = self._next_cause
            self.loads = dict.fromkeys(self.loads, False)

    def _open(self, t: float) -> bool:
        if self._open_until is None:
            return False
        if t < self._open_until:
            return True
        self._open_until = None
        return False

    def interrupt(self, t: float, seconds: float) -> None:
        """Fault: the umbilical contact opens at ``t`` for ``seconds`` (longer than the undervoltage filter, the
        EPS locks out; the satellite reboots when the contact closes, reset cause ``brownout``)."""
        if not (math.isfinite(seconds) and seconds > 0.0):
            raise ValueError(f"an interruption lasts a positive number of seconds, not {seconds!r}")
        self._open_until = t + seconds

    # -- the satellite's side ------------------------------------------------------------------------------

    def power(self, t: float) -> float | None:
        """Power drawn by the loads at ``t`` (W), None while locked out."""
        if not self.powered or self._power_good_at is None:
            return None
        if t - self._power_good_at < BOOT_DURATION_S:
            return BOOT_POWER_W
        constant = sum(SWITCHABLE_LOADS_W[name] for name, on in self.loads.items() if on and name in SWITCHABLE_LOADS_W)
        v = self._cap.voltage(t)
        resistive = sum(v * v / ohm for name, ohm in RESISTIVE_LOADS_OHM.items() if self.loads[name])
        return self.idle_power_w + constant + resistive

    def booted(self, t: float) -> bool:
        return self._power_good_at is not None and t - self._power_good_at >= BOOT_DURATION_S

    def set_load(self, name: str, on: bool) -> None:
        """Switch one of the EPS outputs (telecommand, or the control endpoint)."""
        if name not in self.loads:
            known = ", ".join(sorted(self.loads))
            raise KeyError(f"unknown load {name!r} (known: {known})")
        if on and not self.powered:
            raise RuntimeError("the DUT is not powered (EPS in undervoltage lockout)")
        self.loads[name] = on

    def snapshot(self, t: float) -> dict[str, object]:
        power = self.power(t)
        return {
            "powered": self.powered,
            "booted": self.booted(t),
            "boot_count": self.boot_count,
            "reset_cause": self.reset_cause,
            "loads": dict(self.loads),
            "bus_voltage": round(self.bus_voltage, 6),
            "power_w": power if power is not None else 0.0,
            "umbilical_open": self._open_until is not None and t < self._open_until,
        }
