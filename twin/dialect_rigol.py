"""Rigol DP832 dialect (raw SCPI socket, port 5555).

Channels: CH1 and CH2 0–32 V / 0–3.2 A, CH3 0–5.3 V / 0–3.2 A. A channel is named by an argument
(``CH1``), by a header suffix (``:SOUR2:VOLT``) or, when neither is given, is the one chosen by
``:INST:NSEL`` / ``:INST CHn`` (CH1 after ``*RST``). No I/O watchdog and no digitizer: their headers are
undefined here (-113), as on the real instrument.

Commands (short forms; long forms and optional nodes accepted):
  *IDN? *RST *TST? *CLS *ESR? *ESE[?] *SRE[?] *STB? *OPC[?] *WAI  SYST:ERR? SYST:VERS? SYST:REM SYST:LOC
  :INST:NSEL n | :INST:NSEL? | :INST CHn | :INST?
  :APPL CHn,<v>[,<a>]   :APPL? [CHn] → ``CH1,3.800,3.0000``
  :SOURn:VOLT <v> | :SOURn:VOLT?   :SOURn:CURR <a> | :SOURn:CURR?   (n optional)
  :OUTP [CHn,]ON|OFF   :OUTP? [CHn] → ON|OFF   :OUTP:MODE? [CHn] → CV|CC|UR
  :MEAS[:VOLT][:DC]? [CHn]   :MEAS:CURR[:DC]? [CHn]   :MEAS:POWE[:DC]? [CHn]   :MEAS:ALL[:DC]? [CHn] → V,I,P
  :OUTP:OVP:VAL [CHn,]<v> | ? [CHn]   :OUTP:OVP [CHn,]ON|OFF | ? → ON|OFF   :OUTP:OVP:QUES? [CHn] → YES|NO
  :OUTP:OVP:CLE [CHn]    — and the same four for :OUTP:OCP (value in A)
  :SOURn:VOLT:PROT[:LEV] / :STAT / :TRIP? / :CLE and the same for :CURR:PROT (the QCoDeS spelling)

OVP trips when the output voltage exceeds the OVP value; OCP when the output current reaches the OCP value
for more than 10 ms. A trip switches the output off (``:OUTP?`` → OFF); ``…:CLE`` clears the flag only.
*RST: outputs off, 0 V, 3.2 A, OVP off at 33 V / 5.5 V, OCP off at 3.3 A, CH1 selected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal

from twin.psu import Behaviour, Channel, OcpMode, PowerSupply, Rating
from twin.scpi import (
    DATA_OUT_OF_RANGE,
    ILLEGAL_PARAMETER,
    MISSING_PARAMETER,
    PARAMETER_NOT_ALLOWED,
    Call,
    CommandSet,
    ScpiError,
    add_common_commands,
    parse_bool,
    parse_int,
    parse_number,
)

__all__ = ["BEHAVIOUR", "DESCRIPTION", "IDN", "PORT", "RATINGS", "RigolDP832"]

IDN: Final = "RIGOL TECHNOLOGIES,DP832,DP8C241000123,00.01.16"
PORT: Final = 5555
DESCRIPTION: Final = "Rigol DP832 3-channel power supply (CH1 feeds the DUT main bus)"
RATINGS: Final = (
    Rating(v_max=32.0, i_max=3.2, ovp_max=33.0, ocp_max=3.3, i_reset=3.2),
    Rating(v_max=32.0, i_max=3.2, ovp_max=33.0, ocp_max=3.3, i_reset=3.2),
    Rating(v_max=5.3, i_max=3.2, ovp_max=5.5, ocp_max=3.3, i_reset=3.2),
)
BEHAVIOUR: Final = Behaviour(
    ocp_mode=OcpMode.LEVEL,
    ocp_delay_reset=0.010,
    ocp_delay_max=0.010,
    trip_turns_output_off=True,
    ovp_always_on=False,
    has_watchdog=False,
    has_digitizer=False,
)

Kind = Literal["ovp", "ocp"]


def _error_reply(code: int, text: str) -> str:
    return f'{code},"{text}"'


class RigolDP832:
    """The command set of the DP832 bound to one ``PowerSupply``."""

    def __init__(self, psu: PowerSupply) -> None:
        self.psu = psu
        self.selected = 1
        self.commands = CommandSet()
        self._declare()

    # -- argument helpers --------------------------------------------------------------------------------

    def _channel_word(self, text: str) -> int:
        word = text.strip().upper()
        # ASCII digits only: int() cannot read "CH²" although "²".isdigit().
        if not (word.startswith("CH") and word[2:].isascii() and word[2:].isdigit()):
            raise ScpiError(ILLEGAL_PARAMETER, text)
        # Over four digits is out of range anyway, and int() refuses more than 4300 of them.
        number = int(word[2:]) if len(word) <= 6 else 0
        if not 1 <= number <= len(self.psu.channels):
            raise ScpiError(DATA_OUT_OF_RANGE, text)
        return number

    def _split(self, call: Call, values: int) -> tuple[list[str], int]:
        """``[CHn,]value…`` (or a ``SOURn`` suffix) → (values, channel); default the selected channel."""
        params = list(call.params)
        channel = call.suffix("SOURCE", self.selected)
        assert channel is not None
        if len(params) == values + 1:
            channel = self._channel_word(params.pop(0))
        elif len(params) < values:
            raise ScpiError(MISSING_PARAMETER)
        elif len(params) > values:
            raise ScpiError(PARAMETER_NOT_ALLOWED)
        if not 1 <= channel <= len(self.psu.channels):
            raise ScpiError(DATA_OUT_OF_RANGE, f"channel {channel}")
        return params, channel

    def _set_number(
        self, limit: Callable[[Channel], float], apply: Callable[[int, float], None], unit: str
    ) -> Callable[[Call], None]:
        def handler(call: Call) -> None:
            (text,), channel = self._split(call, 1)
            value = parse_number(text, low=0.0, high=limit(self.psu.channel(channel)), unit=unit)
            apply(channel, value)

        return handler

    def _set_bool(self, apply: Callable[[int, bool], None]) -> Callable[[Call], None]:
        def handler(call: Call) -> None:
            (text,), channel = self._split(call, 1)
            apply(channel, parse_bool(text))

        return handler

    def _query(self, get: Callable[[int], str]) -> Callable[[Call], str]:
        def handler(call: Call) -> str:
            _, channel = self._split(call, 0)
            return get(channel)

        return handler

    # -- handlers ----------------------------------------------------------------------------------------

    def _reset(self, call: Call) -> None:
        call.expect(0)
        self.selected = 1
        self.psu.reset()

    def _nsel(self, call: Call) -> None:
        self.selected = parse_int(call.expect(1)[0], low=1, high=len(self.psu.channels))

    def _inst(self, call: Call) -> None:
        self.selected = self._channel_word(call.expect(1)[0])

    def _apply(self, call: Call) -> None:
        params = call.expect(2, 3)
        channel = self._channel_word(params[0])
        rating = self.psu.channel(channel).rating
        volts = parse_number(params[1], low=0.0, high=rating.v_max, unit="V")
        amps = parse_number(params[2], low=0.0, high=rating.i_max, unit="A") if len(params) == 3 else None
        self.psu.set_voltage(channel, volts)
        if amps is not None:
            self.psu.set_current(channel, amps)

    def _apply_query(self, call: Call) -> str:
        params = call.expect(0, 1)
        channel = self._channel_word(params[0]) if params else self.selected
        ch = self.psu.channel(channel)
        return f"CH{channel},{ch.v_set:.3f},{ch.i_set:.4f}"

    def _mode(self, number: int) -> str:
        ch = self.psu.channel(number)
        reading = self.psu.reading(number)
        if not ch.delivering:
            return "UR"
        return "CC" if reading.cc else "CV"

    def _tripped(self, number: int, kind: Kind) -> str:
        self.psu.advance()
        ch = self.psu.channel(number)
        return "YES" if (ch.ovp_tripped if kind == "ovp" else ch.ocp_tripped) else "NO"

    def _clear(self, kind: Kind) -> Callable[[Call], None]:
        def handler(call: Call) -> None:
            _, channel = self._split(call, 0)
            self.psu.clear_protection(channel, kind)

        return handler

    def _declare(self) -> None:
        psu = self.psu
        add = self.commands.add
        add_common_commands(self.commands, error_reply=_error_reply)
        add("*IDN?", lambda call: IDN)
        add("*RST", self._reset)
        add("*TST?", lambda call: "0")
        add("INSTrument:NSELect", self._nsel)
        add("INSTrument:NSELect?", lambda call: str(self.selected))
        add("INSTrument[:SELect]", self._inst)
        add("INSTrument[:SELect]?", lambda call: f"CH{self.selected}")
        add("APPLy", self._apply)
        add("APPLy?", self._apply_query)

        level = "[:LEVel][:IMMediate][:AMPLitude]"
        add(f"[SOURce#]:VOLTage{level}", self._set_number(lambda ch: ch.rating.v_max, psu.set_voltage, "V"))
        add(f"[SOURce#]:VOLTage{level}?", self._query(lambda c: f"{psu.channel(c).v_set:.3f}"))
        add(f"[SOURce#]:CURRent{level}", self._set_number(lambda ch: ch.rating.i_max, psu.set_current, "A"))
        add(f"[SOURce#]:CURRent{level}?", self._query(lambda c: f"{psu.channel(c).i_set:.4f}"))

        add("OUTPut[:STATe]", self._set_bool(psu.set_output))
        add("OUTPut[:STATe]?", self._query(lambda c: "ON" if psu.channel(c).output else "OFF"))
        add("OUTPut:MODE?", self._query(self._mode))

        add("MEASure[:VOLTage][:DC]?", self._query(lambda c: f"{psu.measure(c)[0]:.4f}"))
        add("MEASure:CURRent[:DC]?", self._query(lambda c: f"{psu.measure(c)[1]:.4f}"))
        add("MEASure:POWEr[:DC]?", self._query(lambda c: f"{self._power(c):.4f}"))
        add("MEASure:ALL[:DC]?", self._query(self._all))

        self._declare_protection("ovp", "OUTPut:OVP", "[SOURce#]:VOLTage:PROTection")
        self._declare_protection("ocp", "OUTPut:OCP", "[SOURce#]:CURRent:PROTection")

    def _declare_protection(self, kind: Kind, outp: str, source: str) -> None:
        psu = self.psu
        add = self.commands.add
        if kind == "ovp":
            set_level = self._set_number(lambda ch: ch.rating.ovp_max, psu.set_ovp_level, "V")
            get_level = self._query(lambda c: f"{psu.channel(c).ovp_level:.3f}")
            set_state = self._set_bool(psu.set_ovp_enabled)
            get_state = self._query(lambda c: "ON" if psu.channel(c).ovp_enabled else "OFF")
        else:
            set_level = self._set_number(lambda ch: ch.rating.ocp_max, psu.set_ocp_level, "A")
            get_level = self._query(lambda c: f"{psu.channel(c).ocp_level:.4f}")
            set_state = self._set_bool(psu.set_ocp_enabled)
            get_state = self._query(lambda c: "ON" if psu.channel(c).ocp_enabled else "OFF")
        question = self._query(lambda c: self._tripped(c, kind))
        for prefix, level, state, tripped in (
            (outp, ":VALue", "[:STATe]", ":QUEStion?"),
            (source, "[:LEVel]", ":STATe", ":TRIPped?"),
        ):
            add(prefix + level, set_level)
            add(prefix + level + "?", get_level)
            add(prefix + state, set_state)
            add(prefix + state + "?", get_state)
            add(prefix + tripped, question)
            add(prefix + ":CLEar", self._clear(kind))

    def _power(self, number: int) -> float:
        volts, amps = self.psu.measure(number)
        return volts * amps

    def _all(self, number: int) -> str:
        volts, amps = self.psu.measure(number)
        return f"{volts:.4f},{amps:.4f},{volts * amps:.4f}"
