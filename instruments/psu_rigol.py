"""Rigol DP832 triple-output supply (CH1/CH2 30 V/3 A, CH3 5 V/3 A) over raw SCPI (LAN port 5555).

Channels are addressed in each command (`:SOURn:...`, `CHn` arguments), never through `:INST:NSEL`, so the
instrument holds no selection state a concurrent heartbeat could disturb. The DP832 has no I/O watchdog
and no digitizer (`NotSupported`).

OCP differs from Keysight: the DP832 trips at its own OCP *value*, not at the current limit, and has no
delay. To give the bench one meaning ("trip when the channel reaches its current limit") the driver keeps
the OCP value equal to the current limit, and `delay_s` is ignored (logged).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar

from instruments.power import Capabilities, ChannelRating, ProtectionState
from instruments.psu_base import ScpiPowerSupply, scpi_number

__all__ = ["RigolDP832"]

_log = logging.getLogger(__name__)


class RigolDP832(ScpiPowerSupply):
    """Rigol DP832 / DP832A."""

    MODEL: ClassVar[str] = "Rigol DP832"
    IDN_MAKER: ClassVar[str] = "RIGOL"
    IDN_MODEL: ClassVar[str] = "DP832A?"
    RATINGS: ClassVar[Mapping[int, ChannelRating]] = MappingProxyType(
        {1: ChannelRating(30.0, 3.0), 2: ChannelRating(30.0, 3.0), 3: ChannelRating(5.0, 3.0)}
    )
    CAPABILITIES: ClassVar[Capabilities] = Capabilities(io_watchdog=False, digitizer=False)

    def _output_command(self, channel: int, on: bool) -> str:
        return f":OUTP CH{channel},{'ON' if on else 'OFF'}"

    def set_voltage(self, channel: int, volts: float) -> None:
        command = f":SOUR{channel}:VOLT {scpi_number(volts)}"
        self._check_voltage(channel, volts, command)
        self._scpi.write(command)

    def voltage_setpoint(self, channel: int) -> float:
        command = f":SOUR{channel}:VOLT?"
        self._rating(channel, command)
        return self._scpi.query_float(command)

    def set_current_limit(self, channel: int, amps: float) -> None:
        command = f":SOUR{channel}:CURR {scpi_number(amps)}"
        self._check_current(channel, amps, command, "current limit")
        self._scpi.write(command)
        # Keep OCP tripping at the current limit, as on the Keysight (see module docstring).
        self._scpi.write(f":OUTP:OCP:VAL CH{channel},{scpi_number(amps)}")

    def current_limit(self, channel: int) -> float:
        command = f":SOUR{channel}:CURR?"
        self._rating(channel, command)
        return self._scpi.query_float(command)

    def output(self, channel: int) -> bool:
        command = f":OUTP? CH{channel}"
        self._rating(channel, command)
        return self._query_bool(command)

    def measure_voltage(self, channel: int) -> float:
        command = f":MEAS:VOLT? CH{channel}"
        self._rating(channel, command)
        return self._scpi.query_float(command)

    def measure_current(self, channel: int) -> float:
        command = f":MEAS:CURR? CH{channel}"
        self._rating(channel, command)
        return self._scpi.query_float(command)

    def set_ovp(self, channel: int, level: float) -> None:
        command = f":OUTP:OVP:VAL CH{channel},{scpi_number(level)}"
        self._check_voltage(channel, level, command, "OVP level")
        self._scpi.write(command)
        self._scpi.write(f":OUTP:OVP CH{channel},ON")

    def set_ocp(self, channel: int, enabled: bool, delay_s: float = 0.0) -> None:
        state = f":OUTP:OCP CH{channel},{'ON' if enabled else 'OFF'}"
        self._rating(channel, state)
        if enabled:
            if delay_s:
                _log.info("%s: the DP832 has no OCP delay; ignoring delay_s=%g", self.resource, delay_s)
            limit = self.current_limit(channel)
            self._scpi.write(f":OUTP:OCP:VAL CH{channel},{scpi_number(limit)}")
        self._scpi.write(state)

    def protection(self, channel: int) -> ProtectionState:
        ovp = f":OUTP:OVP:QUES? CH{channel}"
        self._rating(channel, ovp)
        return ProtectionState(
            ovp_tripped=self._query_bool(ovp),
            ocp_tripped=self._query_bool(f":OUTP:OCP:QUES? CH{channel}"),
            watchdog_tripped=False,
        )

    def clear_protection(self, channel: int) -> None:
        command = f":OUTP:OVP:CLE CH{channel}"
        self._rating(channel, command)
        self._scpi.write(command)
        self._scpi.write(f":OUTP:OCP:CLE CH{channel}")
