"""What every SCPI power-supply driver shares: refusal before sending, booleans, safe state.

A dialect subclasses `ScpiPowerSupply`, declares its model name, channel ratings and capabilities, and
writes its commands; this class checks every channel and setting against the ratings before anything goes
on the wire, and implements the safe state (`all_outputs_off`) once for all dialects.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import ClassVar

from instruments.errors import (
    InstrumentError,
    InstrumentRejected,
    NotSupported,
    SettingOutOfRange,
    UnexpectedReply,
)
from instruments.power import Capabilities, ChannelRating, ProtectionState, Trace
from instruments.scpi import ScpiDriver

__all__ = ["ScpiPowerSupply", "scpi_number"]

_log = logging.getLogger(__name__)

_TRUE: frozenset[str] = frozenset({"1", "ON", "YES", "+1"})
_FALSE: frozenset[str] = frozenset({"0", "OFF", "NO", "+0"})


def scpi_number(value: float) -> str:
    """A number as SCPI text: up to 10 significant digits, no float noise (3.8 → '3.8', 1e-4 → '0.0001')."""
    return format(value, ".10g")


class ScpiPowerSupply(ScpiDriver, ABC):
    """Base of the SCPI power-supply drivers (satisfies `instruments.power.PowerSupply`)."""

    MODEL: ClassVar[str]
    RATINGS: ClassVar[Mapping[int, ChannelRating]]
    CAPABILITIES: ClassVar[Capabilities]

    # -- common ------------------------------------------------------------------------------------------

    @property
    def channels(self) -> Mapping[int, ChannelRating]:
        return self.RATINGS

    @property
    def capabilities(self) -> Capabilities:
        return self.CAPABILITIES

    def reset(self) -> None:
        self._scpi.write("*CLS")
        self._scpi.write("*RST")
        self.heartbeat()  # *OPC? returns once the reset has completed

    def heartbeat(self) -> None:
        reply = self._scpi.query("*OPC?")
        if reply.strip().lstrip("+") != "1":
            raise UnexpectedReply(resource=self.resource, command="*OPC?", reply=reply, expected="1")

    # -- refusal before sending --------------------------------------------------------------------------

    def _rating(self, channel: int, command: str) -> ChannelRating:
        rating = self.RATINGS.get(channel)
        if rating is None:
            known = ", ".join(str(ch) for ch in self.RATINGS)
            raise SettingOutOfRange(
                resource=self.resource,
                command=command,
                reason=f"the {self.MODEL} has no channel {channel!r} (channels: {known})",
            )
        return rating

    def _check_level(self, channel: int, value: float, ceiling: float, what: str, command: str) -> None:
        """Refuse `value` unless 0 <= value <= ceiling (finite)."""
        if not (math.isfinite(value) and 0.0 <= value <= ceiling):
            raise SettingOutOfRange(
                resource=self.resource,
                command=command,
                reason=f"{what} {value:g} is outside 0..{ceiling:g} (CH{channel} rating of the {self.MODEL})",
            )

    def _check_voltage(self, channel: int, volts: float, command: str, what: str = "voltage") -> None:
        rating = self._rating(channel, command)
        self._check_level(channel, volts, rating.max_voltage, f"{what} (V)", command)

    def _check_current(self, channel: int, amps: float, command: str, what: str = "current") -> None:
        rating = self._rating(channel, command)
        self._check_level(channel, amps, rating.max_current, f"{what} (A)", command)

    def _check_duration(
        self,
        value: float,
        what: str,
        command: str,
        low: float = 0.0,
        high: float = math.inf,
        *,
        low_inclusive: bool = True,
    ) -> None:
        """Refuse a duration unless finite and within low..high."""
        above = value >= low if low_inclusive else value > low
        if not (math.isfinite(value) and above and value <= high):
            bound = "at least" if low_inclusive else "more than"
            span = f"{low:g}..{high:g} s" if math.isfinite(high) else f"{bound} {low:g} s"
            raise SettingOutOfRange(
                resource=self.resource,
                command=command,
                reason=f"{what} {value:g} s is not within {span} on the {self.MODEL}",
            )

    def _not_supported(self, call: str, capability: str) -> NotSupported:
        return NotSupported(resource=self.resource, command=call, model=self.MODEL, capability=capability)

    # -- parsing -----------------------------------------------------------------------------------------

    def _query_bool(self, command: str) -> bool:
        reply = self._scpi.query(command)
        word = reply.strip().upper()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise UnexpectedReply(resource=self.resource, command=command, reply=reply, expected="1/0, ON/OFF or YES/NO")

    # -- capabilities a model may lack -------------------------------------------------------------------

    def arm_watchdog(self, delay_s: float) -> None:
        raise self._not_supported("arm_watchdog", "I/O watchdog")

    def disarm_watchdog(self) -> None:
        # Nothing to disarm on a model without a watchdog; teardown calls this unconditionally.
        _log.debug("%s: no I/O watchdog to disarm", self.resource)

    def capture_current(self, channel: int, points: int, interval_s: float, start: Callable[[], None]) -> Trace:
        raise self._not_supported("capture_current", "current digitizer")

    # -- dialect -----------------------------------------------------------------------------------------

    @abstractmethod
    def _output_command(self, channel: int, on: bool) -> str:
        """The command that switches one output."""

    @abstractmethod
    def output(self, channel: int) -> bool: ...

    @abstractmethod
    def set_voltage(self, channel: int, volts: float) -> None: ...

    @abstractmethod
    def voltage_setpoint(self, channel: int) -> float: ...

    @abstractmethod
    def set_current_limit(self, channel: int, amps: float) -> None: ...

    @abstractmethod
    def current_limit(self, channel: int) -> float: ...

    @abstractmethod
    def measure_voltage(self, channel: int) -> float: ...

    @abstractmethod
    def measure_current(self, channel: int) -> float: ...

    @abstractmethod
    def set_ovp(self, channel: int, level: float) -> None: ...

    @abstractmethod
    def set_ocp(self, channel: int, enabled: bool, delay_s: float = 0.0) -> None: ...

    @abstractmethod
    def protection(self, channel: int) -> ProtectionState: ...

    @abstractmethod
    def clear_protection(self, channel: int) -> None: ...

    def set_output(self, channel: int, on: bool) -> None:
        command = self._output_command(channel, on)
        self._rating(channel, command)
        self._scpi.write(command)

    # -- safe state --------------------------------------------------------------------------------------

    def all_outputs_off(self) -> None:
        """Every output off, verified by reading each back; a second attempt runs on a fresh connection.

        Raises the last InstrumentError if the outputs could not be confirmed off.
        """
        failure: InstrumentError | None = None
        for attempt in (1, 2):
            if attempt == 2:
                _log.warning("%s: safe state retry on a fresh connection after: %s", self.resource, failure)
                try:
                    self._scpi.reopen()
                except InstrumentError as exc:
                    raise exc from failure
            try:
                self._switch_all_off()
            except InstrumentError as exc:
                failure = exc
            else:
                return
        assert failure is not None
        raise failure

    def _switch_all_off(self) -> None:
        rejected: InstrumentRejected | None = None
        for channel in self.RATINGS:
            try:
                self._scpi.write(self._output_command(channel, False))
            except InstrumentRejected as exc:
                # Keep switching the other channels off; the read-back below decides.
                rejected = rejected or exc
        still_on = [channel for channel in self.RATINGS if self.output(channel)]
        if still_on:
            names = ", ".join(f"CH{channel}" for channel in still_on)
            raise InstrumentError(
                f"{names} of the {self.MODEL} at {self.resource} still on after switching every output off"
                + (f" ({rejected})" if rejected else "")
                + " — switch the outputs off at the front panel",
                resource=self.resource,
                command=self._output_command(still_on[0], False),
            )
        if rejected is not None:
            _log.warning("%s: outputs confirmed off although: %s", self.resource, rejected)
