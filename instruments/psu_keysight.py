"""Keysight E36312A triple-output supply (CH1 6 V/5 A, CH2 and CH3 25 V/1 A) over raw SCPI (port 5025).

Every command carries its channel list `(@n)`, so no instrument-side channel selection state is involved.
The I/O watchdog (`OUTP:PROT:WDOG`) and the N6700-style digitizer (`SENS:SWE`, `INIT:ACQ`, `FETC:ARR`) follow
the Keysight N6700/N6900 command set, as served by the bench twin; check them against the firmware of a
real unit before relying on them there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import ClassVar, Final

from instruments.errors import InstrumentError, SettingOutOfRange, UnexpectedReply
from instruments.power import Capabilities, ChannelRating, ProtectionState, Trace
from instruments.psu_base import ScpiPowerSupply, scpi_number

__all__ = ["KeysightE36312A"]

_WATCHDOG_TRIPPED: Final = 1 << 10  # STAT:QUES:COND? (@n) bit 10


class KeysightE36312A(ScpiPowerSupply):
    """Keysight E36312A."""

    MODEL: ClassVar[str] = "Keysight E36312A"
    IDN_MAKER: ClassVar[str] = "Keysight|Agilent"
    IDN_MODEL: ClassVar[str] = "E36312A"
    RATINGS: ClassVar[Mapping[int, ChannelRating]] = MappingProxyType(
        {1: ChannelRating(6.0, 5.0), 2: ChannelRating(25.0, 1.0), 3: ChannelRating(25.0, 1.0)}
    )
    CAPABILITIES: ClassVar[Capabilities] = Capabilities(io_watchdog=True, digitizer=True)
    WATCHDOG_DELAY_S: ClassVar[tuple[float, float]] = (1.0, 3600.0)

    def _output_command(self, channel: int, on: bool) -> str:
        return f"OUTP {int(on)},(@{channel})"

    def set_voltage(self, channel: int, volts: float) -> None:
        command = f"VOLT {scpi_number(volts)},(@{channel})"
        self._check_voltage(channel, volts, command)
        self._scpi.write(command)

    def voltage_setpoint(self, channel: int) -> float:
        command = f"VOLT? (@{channel})"
        self._rating(channel, command)
        return self._scpi.query_float(command)

    def set_current_limit(self, channel: int, amps: float) -> None:
        command = f"CURR {scpi_number(amps)},(@{channel})"
        self._check_current(channel, amps, command, "current limit")
        self._scpi.write(command)

    def current_limit(self, channel: int) -> float:
        command = f"CURR? (@{channel})"
        self._rating(channel, command)
        return self._scpi.query_float(command)

    def output(self, channel: int) -> bool:
        command = f"OUTP? (@{channel})"
        self._rating(channel, command)
        return self._query_bool(command)

    def measure_voltage(self, channel: int) -> float:
        command = f"MEAS:VOLT? (@{channel})"
        self._rating(channel, command)
        return self._scpi.query_float(command)

    def measure_current(self, channel: int) -> float:
        command = f"MEAS:CURR? (@{channel})"
        self._rating(channel, command)
        return self._scpi.query_float(command)

    def set_ovp(self, channel: int, level: float) -> None:
        command = f"VOLT:PROT {scpi_number(level)},(@{channel})"
        self._check_voltage(channel, level, command, "OVP level")
        self._scpi.write(command)

    def set_ocp(self, channel: int, enabled: bool, delay_s: float = 0.0) -> None:
        state = f"CURR:PROT:STAT {int(enabled)},(@{channel})"
        self._rating(channel, state)
        if enabled:
            delay = f"CURR:PROT:DEL {scpi_number(delay_s)},(@{channel})"
            self._check_duration(delay_s, "OCP delay", delay)
            # Delay first: the protection must never be armed with a stale delay.
            self._scpi.write(delay)
        self._scpi.write(state)

    def protection(self, channel: int) -> ProtectionState:
        ovp = f"VOLT:PROT:TRIP? (@{channel})"
        self._rating(channel, ovp)
        return ProtectionState(
            ovp_tripped=self._query_bool(ovp),
            ocp_tripped=self._query_bool(f"CURR:PROT:TRIP? (@{channel})"),
            watchdog_tripped=bool(self._scpi.query_int(f"STAT:QUES:COND? (@{channel})") & _WATCHDOG_TRIPPED),
        )

    def clear_protection(self, channel: int) -> None:
        command = f"OUTP:PROT:CLE (@{channel})"
        self._rating(channel, command)
        self._scpi.write(command)

    def arm_watchdog(self, delay_s: float) -> None:
        delay = f"OUTP:PROT:WDOG:DEL {scpi_number(delay_s)}"
        self._check_duration(delay_s, "watchdog delay", delay, *self.WATCHDOG_DELAY_S)
        self._scpi.write(delay)
        self._scpi.write("OUTP:PROT:WDOG ON")

    def disarm_watchdog(self) -> None:
        self._scpi.write("OUTP:PROT:WDOG OFF")

    def capture_current(self, channel: int, points: int, interval_s: float, start: Callable[[], None]) -> Trace:
        chan = f"(@{channel})"
        fetch = f"FETC:ARR:CURR? {chan}"
        self._rating(channel, fetch)
        if isinstance(points, bool) or not isinstance(points, int) or points < 1:
            raise SettingOutOfRange(
                resource=self.resource,
                command=f"SENS:SWE:POIN {points},{chan}",
                reason=f"points must be a positive integer, not {points!r}",
            )
        interval = f"SENS:SWE:TINT {scpi_number(interval_s)},{chan}"
        self._check_duration(interval_s, "sample interval", interval, low_inclusive=False)
        write = self._scpi.write
        write(f"SENS:SWE:POIN {points},{chan}")
        write(interval)
        write(f"TRIG:ACQ:SOUR BUS,{chan}")
        write(f"INIT:ACQ {chan}")
        write("*TRG")
        try:
            start()
        except BaseException:
            # Leave the digitizer idle rather than holding a record nobody will fetch; keep start()'s error.
            with contextlib.suppress(InstrumentError):
                write(f"ABOR:ACQ {chan}")
            raise
        # The instrument answers only once the acquisition window has elapsed.
        window_s = points * interval_s
        samples = self._scpi.query_floats(fetch, timeout_s=window_s + self._scpi.timeout_s)
        if len(samples) != points:
            raise UnexpectedReply(
                resource=self.resource,
                command=fetch,
                reply=f"<{len(samples)} values>",
                expected=f"{points} values",
            )
        return Trace(interval_s=interval_s, current=samples)
