"""The DUT's safe envelope, enforced before any byte reaches an instrument.

`GuardedSupply` is the only handle test plans get on the power supply: it checks every setting against the
DUT envelope and refuses (EnvelopeViolation, nothing sent) what lies outside it, protection included (a plan
may tighten OVP/OCP, never loosen them), and it hands out no path to the driver. Channels with no role in the
bench config cannot be driven at all; after an emergency stop nothing powers the DUT (`bench.emergency`).

`arm_protection` sets the instrument-side protection from the same envelope (OVP above the envelope maximum,
OCP with a delay that covers inrush, the current limit, and the I/O watchdog that switches outputs off if the
bench PC dies) — always before the DUT is powered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from bench import emergency
from bench.config import ConfigError, Envelope, Safety
from bench.errors import EnvelopeViolation
from instruments.errors import NotSupported
from instruments.power import Capabilities, PowerSupply, ProtectionState, Trace

log = logging.getLogger(__name__)


class GuardedSupply:
    """A PowerSupply facade limited to the DUT envelope and the channels the bench config names.

    It is the only handle plans get: it has no path to the driver. Protection (OVP, OCP, the current limit)
    is armed from the envelope by the session; a plan may tighten it for a test, never loosen it, and the
    session re-arms the envelope's own settings after the test (`restore_protection`)."""

    def __init__(self, psu: PowerSupply, roles: Mapping[str, int], envelope: Envelope, config_path: str) -> None:
        self._psu = psu
        self.roles = dict(roles)
        self.envelope = envelope
        self._config_path = config_path
        self._tightened: set[int] = set()

    @property
    def capabilities(self) -> Capabilities:
        """What the supply can do (I/O watchdog, current digitizer): a plan asks before relying on one."""
        return self._psu.capabilities

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

    def _refuse(self, what: str, field: str) -> EnvelopeViolation:
        return EnvelopeViolation(f"refused: {what} (dut.envelope.{field} in {self._config_path}); nothing was sent")

    # -- settings: checked against the envelope, refused before sending ------------------------------
    def set_voltage(self, ch: int, volts: float) -> None:
        self._check_channel(ch)
        emergency.check()
        bus = self.envelope.bus_voltage
        if not bus.min <= volts <= bus.max:  # also refuses NaN
            raise self._refuse(
                f"{volts:g} V on channel {ch} is outside the DUT envelope [{bus.min:g}, {bus.max:g}] V", "bus_voltage"
            )
        self._psu.set_voltage(ch, volts)

    def set_current_limit(self, ch: int, amps: float) -> None:
        self._check_channel(ch)
        emergency.check()
        if not 0 < amps <= self.envelope.max_current:
            raise self._refuse(
                f"current limit {amps:g} A on channel {ch} is outside (0, {self.envelope.max_current:g}] A",
                "max_current",
            )
        self._psu.set_current_limit(ch, amps)
        if amps < self.envelope.max_current:
            self._tightened.add(ch)

    def set_ovp(self, ch: int, level: float) -> None:
        """Tighten over-voltage protection (at most the envelope's level: bus_voltage.max + ovp_margin)."""
        self._check_channel(ch)
        ceiling = self.envelope.ovp_level
        if not 0 < level <= ceiling:
            raise self._refuse(
                f"OVP {level:g} V on channel {ch} would loosen protection: the envelope arms it at {ceiling:g} V "
                "and a plan may only tighten it",
                "ovp_margin",
            )
        self._psu.set_ovp(ch, level)
        if level < ceiling:
            self._tightened.add(ch)

    def set_ocp(self, ch: int, enabled: bool, delay_s: float) -> None:
        """Tighten over-current protection: it stays armed, with at most the envelope's delay."""
        self._check_channel(ch)
        if not enabled:
            raise self._refuse(f"OCP stays armed on channel {ch} while the DUT is connected", "ocp_delay_s")
        ceiling = self.envelope.ocp_delay_s
        if not 0 <= delay_s <= ceiling:
            raise self._refuse(
                f"OCP delay {delay_s:g} s on channel {ch} would loosen protection: the envelope allows at most "
                f"{ceiling:g} s",
                "ocp_delay_s",
            )
        self._psu.set_ocp(ch, True, delay_s)
        if delay_s < ceiling:
            self._tightened.add(ch)

    def set_output(self, ch: int, on: bool) -> None:
        self._check_channel(ch)
        if on:  # switching off is never refused
            emergency.check()
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
        emergency.check()  # some supplies restore the output's programmed state on clear (Keysight)
        self._psu.clear_protection(ch)

    def capture_current(self, ch: int, points: int, interval_s: float, start: Callable[[], None]) -> Trace:
        self._check_channel(ch)
        emergency.check()
        return self._psu.capture_current(ch, points, interval_s, start)

    def all_outputs_off(self) -> None:
        self._psu.all_outputs_off()

    # -- for the session ------------------------------------------------------------------------------
    @property
    def tightened(self) -> bool:
        """Whether a plan tightened protection since it was last armed from the envelope."""
        return bool(self._tightened)

    def restore_protection(self) -> None:
        """Outputs off, then the envelope's own OVP/OCP/current limit again (after a test that tightened them)."""
        self._psu.all_outputs_off()
        arm_channels(self._psu, {f"ch{ch}": ch for ch in sorted(self._tightened)}, self.envelope)
        self._tightened.clear()


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


def arm_channels(psu: PowerSupply, roles: Mapping[str, int], envelope: Envelope) -> None:
    """OVP, OCP and the current limit of each channel from the envelope (outputs must already be off)."""
    for ch in roles.values():
        psu.clear_protection(ch)
        psu.set_voltage(ch, envelope.bus_voltage.nominal)
        psu.set_current_limit(ch, envelope.max_current)
        psu.set_ovp(ch, envelope.ovp_level)
        psu.set_ocp(ch, True, envelope.ocp_delay_s)


def arm_protection(
    psu: PowerSupply, roles: Mapping[str, int], envelope: Envelope, safety: Safety, config_path: str
) -> bool:
    """Outputs off, then OVP/OCP/current limit from the envelope, then the I/O watchdog. Returns whether the
    watchdog is armed. Refuses (ConfigError) a supply without a watchdog unless the config allows it."""
    psu.all_outputs_off()
    arm_channels(psu, roles, envelope)
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


__all__ = ["EnvelopeViolation", "GuardedSupply", "NotSupported", "arm_channels", "arm_protection", "check_ratings"]
