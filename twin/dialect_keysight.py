"""Keysight E36312A dialect (raw SCPI socket, port 5025), plus the N6700-style CH1 digitizer and I/O watchdog.

Channels: CH1 0–6.18 V / 0–5.15 A, CH2 and CH3 0–25.75 V / 0–1.03 A (nominal 6 V/5 A and 25 V/1 A plus the
3 % the instrument accepts). Every channel command takes an optional channel list — ``(@1)``, ``(@1,3)``,
``(@1:3)`` — and without one acts on the channel chosen by ``INST:NSEL`` (1 after ``*RST``). Queries over
a list answer comma-separated values in list order. A setting out of range for any listed channel is
refused as a whole (-222) and changes nothing.

Commands (short forms; long forms and optional nodes accepted):
  *IDN? *RST *TST? *TRG *CLS *ESR? *ESE[?] *SRE[?] *STB? *OPC[?] *WAI
  SYST:ERR? SYST:ERR:COUN? SYST:VERS? SYST:REM SYST:LOC   INST:NSEL n | INST:NSEL? | INST CHn | INST?
  VOLT[?] CURR[?] OUTP[?] MEAS:VOLT? MEAS:CURR? VOLT:PROT[?] VOLT:PROT:TRIP? CURR:PROT:STAT[?]
  CURR:PROT:DEL[?] CURR:PROT:TRIP? OUTP:PROT:CLE OUTP:PROT:WDOG[?] OUTP:PROT:WDOG:DEL[?]
  STAT:QUES:COND? — bit 0 OV (over-voltage latched), bit 1 OC (over-current latched), bit 10 WDOG (the I/O
  watchdog latched the output off; this twin's choice of bit, the E36312A has no watchdog of its own).
  STAT:QUES? reads the same bits (no event latching in the twin).
  SENS:SWE:POIN[?] (1..16384, *RST 1024) SENS:SWE:TINT[?] (≥ 10 µs, *RST 20.48 µs) TRIG:ACQ:SOUR BUS|IMM[?]
  INIT:ACQ TRIG:ACQ ABOR:ACQ FETC:ARR:CURR? FETC:ARR:VOLT? MEAS:ARR:CURR? MEAS:ARR:VOLT? (CH1 only, -222
  for other channels)

*RST: outputs off, 0 V, current limit 5 A (CH1) / 1 A, OCP off with delay 0.05 s, OVP at its maximum
(6.8 V / 28.3 V, 1.1 × rating), watchdog off with delay 60 s, protection latches cleared, digitizer idle.
Watchdog: any byte received on any SCPI connection feeds it (protocols.md §8); when it expires every output
is latched off — ``OUTP?`` keeps reading the programmed state — until ``OUTP:PROT:CLE``.

Digitizer: ``INIT:ACQ`` arms, ``*TRG`` (or ``TRIG:ACQ``) starts a record of POIN samples every TINT seconds.
``FETC:ARR:…?`` answers once the record is complete (points × interval after the trigger), without blocking
other clients. Fetching with nothing to wait for fails and replies nothing:
  -230 "Data corrupt or stale" — no acquisition was ever initiated (or it was aborted): there is no data;
  -221 "Settings conflict" — armed but not triggered: the real instrument would hold the query until a
       trigger that the same client can no longer send, so the twin refuses instead of hanging.
``*TRG`` with nothing armed: -211 "Trigger ignored".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final, Literal

from twin.psu import Behaviour, Digitizer, OcpMode, PowerSupply, Rating
from twin.scpi import (
    DATA_OUT_OF_RANGE,
    ILLEGAL_PARAMETER,
    MISSING_PARAMETER,
    PARAMETER_NOT_ALLOWED,
    Call,
    CommandSet,
    ScpiError,
    add_common_commands,
    is_channel_list,
    parse_bool,
    parse_channel_list,
    parse_int,
    parse_number,
)

__all__ = ["BEHAVIOUR", "DESCRIPTION", "IDN", "PORT", "RATINGS", "KeysightE36312A"]

IDN: Final = "Keysight Technologies,E36312A,MY61000123,2.1.0-twin"
PORT: Final = 5025
DESCRIPTION: Final = "Keysight E36312A 3-channel power supply (CH1 feeds the DUT main bus)"
RATINGS: Final = (
    Rating(v_max=6.18, i_max=5.15, ovp_max=6.8, ocp_max=5.15, i_reset=5.0),
    Rating(v_max=25.75, i_max=1.03, ovp_max=28.3, ocp_max=1.03, i_reset=1.0),
    Rating(v_max=25.75, i_max=1.03, ovp_max=28.3, ocp_max=1.03, i_reset=1.0),
)
BEHAVIOUR: Final = Behaviour(
    ocp_mode=OcpMode.CC,
    ocp_delay_reset=0.05,
    ocp_delay_max=10.0,
    trip_turns_output_off=False,
    ovp_always_on=True,
    has_watchdog=True,
    has_digitizer=True,
)

QUES_OV: Final = 1 << 0
QUES_OC: Final = 1 << 1
QUES_WDOG: Final = 1 << 10


def _real(value: float) -> str:
    return f"{value:+.8E}"


def _error_reply(code: int, text: str) -> str:
    return f'{code:+d},"{text}"'


class KeysightE36312A:
    """The command set of the E36312A bound to one ``PowerSupply``."""

    def __init__(self, psu: PowerSupply, *, clock: Callable[[], float]) -> None:
        self.psu = psu
        self._clock = clock
        self.selected = 1
        self.commands = CommandSet()
        self._declare()

    # -- argument helpers --------------------------------------------------------------------------------

    def _split(self, call: Call, values: int) -> tuple[list[str], list[int]]:
        """Separate the trailing channel list (default: the selected channel) from ``values`` parameters."""
        params = list(call.params)
        channels = [self.selected]
        if params and is_channel_list(params[-1]):
            channels = parse_channel_list(params.pop())
        if any(not 1 <= c <= len(self.psu.channels) for c in channels):
            raise ScpiError(DATA_OUT_OF_RANGE, f"channel list {channels}")
        if len(params) < values:
            raise ScpiError(MISSING_PARAMETER)
        if len(params) > values:
            raise ScpiError(PARAMETER_NOT_ALLOWED)
        return params, channels

    def _set_number(
        self,
        limits: Callable[[int], tuple[float, float]],
        apply: Callable[[int, float], None],
        unit: str,
    ) -> Callable[[Call], None]:
        def handler(call: Call) -> None:
            (text,), channels = self._split(call, 1)
            # Every channel is checked before any is changed: a refused list changes nothing.
            values = [parse_number(text, low=limits(c)[0], high=limits(c)[1], unit=unit) for c in channels]
            for channel, value in zip(channels, values, strict=True):
                apply(channel, value)

        return handler

    def _set_bool(self, apply: Callable[[int, bool], None]) -> Callable[[Call], None]:
        def handler(call: Call) -> None:
            (text,), channels = self._split(call, 1)
            on = parse_bool(text)
            for channel in channels:
                apply(channel, on)

        return handler

    def _query(self, get: Callable[[int], str]) -> Callable[[Call], str]:
        def handler(call: Call) -> str:
            _, channels = self._split(call, 0)
            return ",".join(get(c) for c in channels)

        return handler

    def _digitizer_channel(self, call: Call, values: int) -> list[str]:
        params, channels = self._split(call, values)
        if channels != [1]:
            raise ScpiError(DATA_OUT_OF_RANGE, "the digitizer is on channel 1 only")
        return params

    # -- channel state -----------------------------------------------------------------------------------

    def _ques(self, number: int) -> str:
        ch = self.psu.channel(number)
        self.psu.advance()
        bits = (QUES_OV if ch.ovp_tripped else 0) | (QUES_OC if ch.ocp_tripped else 0)
        bits |= QUES_WDOG if ch.wdog_tripped else 0
        return f"+{bits}"

    def _select(self, call: Call) -> None:
        word = call.expect(1)[0].strip().upper()
        # ASCII digits only: int() cannot read "CH²" although "²".isdigit().
        if word.startswith("CH") and word[2:].isascii() and word[2:].isdigit():
            # Over four digits is out of range anyway, and int() refuses more than 4300 of them.
            number = int(word[2:]) if len(word) <= 6 else 0
        else:
            number = parse_int(word, low=1, high=len(self.psu.channels))
        if not 1 <= number <= len(self.psu.channels):
            raise ScpiError(DATA_OUT_OF_RANGE, word)
        self.selected = number

    def _reset(self, call: Call) -> None:
        call.expect(0)
        self.selected = 1
        self.psu.reset()

    # -- digitizer ---------------------------------------------------------------------------------------

    def _trigger_source(self, call: Call) -> None:
        (text,) = self._digitizer_channel(call, 1)
        word = text.strip().upper()
        source: Literal["BUS", "IMM"]
        if word == "BUS":
            source = "BUS"
        elif word in ("IMM", "IMMEDIATE"):
            source = "IMM"
        else:
            raise ScpiError(ILLEGAL_PARAMETER, text)
        self.psu.configure_digitizer(source=source)

    def _initiate(self, call: Call) -> None:
        self._digitizer_channel(call, 0)
        self.psu.arm_acquisition()

    def _trigger(self, call: Call) -> None:
        if call.params:
            self._digitizer_channel(call, 0)
        self.psu.trigger_acquisition()

    def _abort(self, call: Call) -> None:
        self._digitizer_channel(call, 0)
        self.psu.abort_acquisition()

    async def _fetch(self, call: Call, quantity: Literal["volts", "amps"]) -> str:
        self._digitizer_channel(call, 0)
        complete_at = self.psu.acquisition_complete_at()
        # Await the end of the record; sleeping here holds this client only, never the event loop.
        while (remaining := complete_at - self._clock()) > 0:
            await asyncio.sleep(remaining + 1e-4)
        data = self.psu.fetch(quantity)
        return ",".join(f"{x:+.6E}" for x in data)

    async def _measure_array(self, call: Call, quantity: Literal["volts", "amps"]) -> str:
        self._digitizer_channel(call, 0)
        self.psu.arm_acquisition()
        if self.psu.digitizer.state == "armed":
            self.psu.trigger_acquisition()
        return await self._fetch(call, quantity)

    # -- the table ---------------------------------------------------------------------------------------

    def _declare(self) -> None:
        psu = self.psu
        add = self.commands.add
        add_common_commands(self.commands, error_reply=_error_reply, int_reply=lambda n: f"+{n}")
        add("*IDN?", lambda call: IDN)
        add("*RST", self._reset)
        add("*TST?", lambda call: "0")
        add("*TRG", self._trigger)
        add("INSTrument:NSELect", self._select)
        add("INSTrument:NSELect?", lambda call: f"+{self.selected}")
        add("INSTrument[:SELect]", self._select)
        add("INSTrument[:SELect]?", lambda call: f"CH{self.selected}")

        def v_limits(c: int) -> tuple[float, float]:
            return 0.0, psu.channel(c).rating.v_max

        def i_limits(c: int) -> tuple[float, float]:
            return 0.0, psu.channel(c).rating.i_max

        def ovp_limits(c: int) -> tuple[float, float]:
            return 0.0, psu.channel(c).rating.ovp_max

        level = "[:LEVel][:IMMediate][:AMPLitude]"
        add(f"[SOURce]:VOLTage{level}", self._set_number(v_limits, psu.set_voltage, "V"))
        add(f"[SOURce]:VOLTage{level}?", self._query(lambda c: _real(psu.channel(c).v_set)))
        add(f"[SOURce]:CURRent{level}", self._set_number(i_limits, psu.set_current, "A"))
        add(f"[SOURce]:CURRent{level}?", self._query(lambda c: _real(psu.channel(c).i_set)))
        add("OUTPut[:STATe]", self._set_bool(psu.set_output))
        add("OUTPut[:STATe]?", self._query(lambda c: "1" if psu.channel(c).output else "0"))
        add("MEASure[:SCALar]:VOLTage[:DC]?", self._query(lambda c: _real(psu.measure(c)[0])))
        add("MEASure[:SCALar]:CURRent[:DC]?", self._query(lambda c: _real(psu.measure(c)[1])))

        add("[SOURce]:VOLTage:PROTection[:LEVel]", self._set_number(ovp_limits, psu.set_ovp_level, "V"))
        add("[SOURce]:VOLTage:PROTection[:LEVel]?", self._query(lambda c: _real(psu.channel(c).ovp_level)))
        add("[SOURce]:VOLTage:PROTection:TRIPped?", self._query(lambda c: self._tripped(c, "ovp")))
        add("[SOURce]:CURRent:PROTection:STATe", self._set_bool(psu.set_ocp_enabled))
        add(
            "[SOURce]:CURRent:PROTection:STATe?",
            self._query(lambda c: "1" if psu.channel(c).ocp_enabled else "0"),
        )
        add(
            "[SOURce]:CURRent:PROTection:DELay[:TIME]",
            self._set_number(lambda c: (0.0, BEHAVIOUR.ocp_delay_max), psu.set_ocp_delay, "S"),
        )
        add("[SOURce]:CURRent:PROTection:DELay[:TIME]?", self._query(lambda c: _real(psu.channel(c).ocp_delay)))
        add("[SOURce]:CURRent:PROTection:TRIPped?", self._query(lambda c: self._tripped(c, "ocp")))
        add("OUTPut:PROTection:CLEar", self._clear)
        add("OUTPut:PROTection:WDOG[:STATe]", lambda call: psu.set_watchdog(parse_bool(call.expect(1)[0])))
        add("OUTPut:PROTection:WDOG[:STATe]?", lambda call: "1" if psu.wdog_enabled else "0")
        add(
            "OUTPut:PROTection:WDOG:DELay",
            lambda call: psu.set_watchdog_delay(
                parse_number(call.expect(1)[0], low=1.0, high=3600.0, default=60.0, unit="S")
            ),
        )
        add("OUTPut:PROTection:WDOG:DELay?", lambda call: _real(psu.wdog_delay))
        add("STATus:QUEStionable[:EVENt]?", self._query(self._ques))
        add("STATus:QUEStionable:CONDition?", self._query(self._ques))

        add(
            "[SENSe]:SWEep:POINts",
            lambda call: psu.configure_digitizer(
                points=parse_int(self._digitizer_channel(call, 1)[0], low=1, high=PowerSupply.DIGITIZER_MAX_POINTS)
            ),
        )
        add("[SENSe]:SWEep:POINts?", lambda call: f"+{self._digitizer_state(call).points}")
        add(
            "[SENSe]:SWEep:TINTerval",
            lambda call: psu.configure_digitizer(
                interval=parse_number(
                    self._digitizer_channel(call, 1)[0],
                    low=PowerSupply.DIGITIZER_MIN_INTERVAL,
                    high=PowerSupply.DIGITIZER_MAX_INTERVAL,
                    unit="S",
                )
            ),
        )
        add("[SENSe]:SWEep:TINTerval?", lambda call: _real(self._digitizer_state(call).interval))
        add("TRIGger:ACQuire:SOURce", self._trigger_source)
        add("TRIGger:ACQuire:SOURce?", lambda call: self._digitizer_state(call).source)
        add("TRIGger:ACQuire[:IMMediate]", self._trigger)
        add("INITiate[:IMMediate]:ACQuire", self._initiate)
        add("ABORt:ACQuire", self._abort)
        add("FETCh:ARRay:CURRent[:DC]?", lambda call: self._fetch(call, "amps"))
        add("FETCh:ARRay:VOLTage[:DC]?", lambda call: self._fetch(call, "volts"))
        add("MEASure:ARRay:CURRent[:DC]?", lambda call: self._measure_array(call, "amps"))
        add("MEASure:ARRay:VOLTage[:DC]?", lambda call: self._measure_array(call, "volts"))

    def _digitizer_state(self, call: Call) -> Digitizer:
        self._digitizer_channel(call, 0)
        return self.psu.digitizer

    def _tripped(self, number: int, which: Literal["ovp", "ocp"]) -> str:
        self.psu.advance()
        ch = self.psu.channel(number)
        return "1" if (ch.ovp_tripped if which == "ovp" else ch.ocp_tripped) else "0"

    def _clear(self, call: Call) -> None:
        _, channels = self._split(call, 0)
        for channel in channels:
            self.psu.clear_protection(channel)
