"""The DUT's safe envelope, enforced before any byte reaches an instrument.

`GuardedSupply` is the only handle test plans get on the power supply: it checks every setting against the
DUT envelope and refuses (EnvelopeViolation, nothing sent) what lies outside it. Channels with no role in the
bench config cannot be driven at all. `arm_protection` sets the instrument-side protection from the same
envelope (OVP above the envelope maximum, OCP with a delay that covers inrush, the current limit, and the I/O
watchdog that switches outputs off if the bench PC dies) — always before the DUT is powered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from bench.config import ConfigError, Envelope, Safety
from instruments.errors import NotSupported
from instruments.power import PowerSupply, ProtectionState, Trace

log = logging.getLogger(__name__)


class EnvelopeViolation(ValueError):
    """A setting outside the DUT envelope was refused before anything was sent."""


class GuardedSupply:
    """A PowerSupply facade limited to the DUT envelope and the channels the bench config names."""

    def __init__(self, psu: PowerSupply, roles: Mapping[str, int], envelope: Envelope, config_path: str) -> None:
        self._psu = psu
        self.roles = dict(roles)
        self.envelope = envelope
        self._config_path = config_path

    @property
    def raw(self) -> PowerSupply:
        """The unguarded driver, for safe state and protection set-up only."""
        return self._psu

    def channel(self, role: str) -> int:
        try:
            return self.roles[role]
        except KeyError:
            raise EnvelopeViolation(
                f"no supply channel has the role '{role}'; roles in {self._config_path}: {sorted(self.roles)}"
            ) from None

    def _check_channel(self, ch: int) -> None:
        if ch not in self.roles.values():
            raise EnvelopeViolation(
                f"channel {ch} has no role in {self._config_path} (instruments.psu.channels); "
                "refusing to drive an unassigned output"
            )

    # -- settings: checked against the envelope, refused before sending ------------------------------
    def set_voltage(self, ch: int, volts: float) -> None:
        self._check_channel(ch)
        bus = self.envelope.bus_voltage
        if not bus.min <= volts <= bus.max:
            raise EnvelopeViolation(
                f"refused: {volts:g} V on channel {ch} is outside the DUT envelope "
                f"[{bus.min:g}, {bus.max:g}] V (dut.envelope.bus_voltage in {self._config_path}); nothing was sent"
            )
        self._psu.set_voltage(ch, volts)

    def set_current_limit(self, ch: int, amps: float) -> None:
        self._check_channel(ch)
        if not 0 < amps <= self.envelope.max_current:
            raise EnvelopeViolation(
                f"refused: current limit {amps:g} A on channel {ch} is outside (0, {self.envelope.max_current:g}] A "
                f"(dut.envelope.max_current in {self._config_path}); nothing was sent"
            )
        self._psu.set_current_limit(ch, amps)

    def set_ovp(self, ch: int, level: float) -> None:
        self._check_channel(ch)
        if not 0 < level <= self.envelope.ovp_level:
            raise EnvelopeViolation(
                f"refused: OVP {level:g} V on channel {ch} above the envelope's {self.envelope.ovp_level:g} V; "
                "nothing was sent"
            )
        self._psu.set_ovp(ch, level)

    def set_ocp(self, ch: int, enabled: bool, delay_s: float) -> None:
        self._check_channel(ch)
        if not enabled:
            raise EnvelopeViolation(f"refused: OCP stays armed on channel {ch} while the DUT is connected")
        self._psu.set_ocp(ch, enabled, delay_s)

    def set_output(self, ch: int, on: bool) -> None:
        self._check_channel(ch)
        self._psu.set_output(ch, on)

    # -- reads and harmless actions pass through ------------------------------------------------------
    def output(self, ch: int) -> bool:
        return self._psu.output(ch)

    def voltage_setpoint(self, ch: int) -> float:
        return self._psu.voltage_setpoint(ch)

    def current_limit(self, ch: int) -> float:
        return self._psu.current_limit(ch)

    def measure_voltage(self, ch: int) -> float:
        return self._psu.measure_voltage(ch)

    def measure_current(self, ch: int) -> float:
        return self._psu.measure_current(ch)

    def protection(self, ch: int) -> ProtectionState:
        return self._psu.protection(ch)

    def clear_protection(self, ch: int) -> None:
        self._check_channel(ch)
        self._psu.clear_protection(ch)

    def capture_current(self, ch: int, points: int, interval_s: float, start: Callable[[], None]) -> Trace:
        self._check_channel(ch)
        return self._psu.capture_current(ch, points, interval_s, start)

    def all_outputs_off(self) -> None:
        self._psu.all_outputs_off()


def check_ratings(psu: PowerSupply, roles: Mapping[str, int], envelope: Envelope, config_path: str) -> None:
    """The envelope must fit the channel that feeds the DUT, or protection could not be set from it."""
    for role, ch in roles.items():
        rating = psu.channels.get(ch)
        if rating is None:
            raise ConfigError(
                f"{config_path}: instruments.psu.channels.{role}: channel {ch} does not exist on "
                f"{psu.identity().model} (channels {sorted(psu.channels)})"
            )
        if envelope.ovp_level > rating.max_voltage or envelope.max_current > rating.max_current:
            raise ConfigError(
                f"{config_path}: dut.envelope: OVP {envelope.ovp_level:g} V / {envelope.max_current:g} A does not "
                f"fit channel {ch} of the {psu.identity().model} ({rating.max_voltage:g} V / "
                f"{rating.max_current:g} A); use another channel or supply"
            )


def arm_protection(
    psu: PowerSupply, roles: Mapping[str, int], envelope: Envelope, safety: Safety, config_path: str
) -> bool:
    """Outputs off, then OVP/OCP/current limit from the envelope, then the I/O watchdog. Returns whether the
    watchdog is armed. Refuses (ConfigError) a supply without a watchdog unless the config allows it."""
    psu.all_outputs_off()
    for ch in roles.values():
        psu.clear_protection(ch)
        psu.set_voltage(ch, envelope.bus_voltage.nominal)
        psu.set_current_limit(ch, envelope.max_current)
        psu.set_ovp(ch, envelope.ovp_level)
        psu.set_ocp(ch, True, envelope.ocp_delay_s)
    if psu.capabilities.io_watchdog:
        psu.arm_watchdog(safety.watchdog_s)
        return True
    if safety.require_watchdog:
        raise ConfigError(
            f"{config_path}: safety.require_watchdog: the {psu.identity().model} has no I/O watchdog, so a "
            "crashed bench PC would leave the DUT powered; use a supply with one, or set "
            "require_watchdog: false if you accept that risk"
        )
    log.warning("power supply %s has no I/O watchdog: a killed bench leaves outputs as they are", psu.identity())
    return False


__all__ = ["EnvelopeViolation", "GuardedSupply", "NotSupported", "arm_protection", "check_ratings"]
