"""Vector signal generator: R&S SMW/SMBV with ARB, over raw SCPI.

Commands used::

    SOUR:FREQ:CW <Hz>; SOUR:POW:LEV:IMM:AMPL <dBm>; OUTP ON|OFF
    SOUR:BB:ARB:WAV:DATA '<name>',#<n><len><wv bytes>    binary upload (IEEE 488.2 definite-length block)
    SOUR:BB:ARB:WAV:SEL '<name>'; SOUR:BB:ARB:CLOC <Hz>; SOUR:BB:ARB:STAT ON|OFF
    SOUR:BB:ARB:SEQ AUTO|SING            continuous playout, or one playout per trigger
    SOUR:BB:ARB:TRIG:EXEC                start one playout (SINGle); SOUR:BB:ARB:TRIG:RMOD? -> RUN|STOP

The level limit is the caller's (the DUT's receiver damage level minus margin, from the bench config): the
driver refuses any level above ``max_level_dbm`` before anything is sent.

The waveform is int16 I,Q interleaved little-endian inside a simplified R&S ``.wv`` file:
``{TYPE: SMU-WV,<checksum>}{CLOCK: <Hz>}{SAMPLES: <n>}{WAVEFORM-<len+1>:#<data>}`` (checksum = 0xA50F74FF XOR
every 32-bit (I,Q) word, as pymeasure's ``rs_waveform.py``). Unlike WinIQSIM files there is no
``{EMPTYTAG}`` padding to offset 0x4000; check a real SMW accepts it before relying on it there.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar, Final

from instruments.errors import InstrumentError, PlayoutTimeout, SettingOutOfRange
from instruments.scpi import ScpiDriver

if TYPE_CHECKING:  # numpy is loaded by the waveform functions: making the generator safe needs none
    import numpy as np
    import numpy.typing as npt

__all__ = ["SignalGenerator", "build_wv", "to_int16_iq"]

_POLL_FIRST_S: Final = 0.002
_POLL_MAX_S: Final = 0.02


def _number(value: float) -> str:
    return f"{value:.12g}"


def to_int16_iq(iq: npt.NDArray[np.generic]) -> npt.NDArray[np.int16]:
    """Complex samples with |I|,|Q| <= 1 (scaled to ±32767) or int16 of shape (n, 2) → int16 (n, 2)."""
    import numpy as np

    array = np.asarray(iq)
    if np.iscomplexobj(array):
        flat = array.reshape(-1)
        if flat.size and max(np.max(np.abs(flat.real)), np.max(np.abs(flat.imag))) > 1.0:
            raise ValueError("complex waveform samples must lie within ±1 full scale")
        out = np.empty((flat.size, 2), dtype=np.int16)
        out[:, 0] = np.round(flat.real * 32767.0)
        out[:, 1] = np.round(flat.imag * 32767.0)
        return out
    if array.dtype != np.int16 or array.ndim != 2 or array.shape[1] != 2:
        raise ValueError("waveform must be complex or int16 of shape (n, 2)")
    return np.ascontiguousarray(array)


def build_wv(iq: npt.NDArray[np.int16], clock_hz: float) -> bytes:
    """The simplified ``.wv`` file (see module doc) for int16 IQ of shape (n, 2)."""
    import numpy as np

    data = np.ascontiguousarray(iq, dtype="<i2").reshape(-1, 2)
    words = data.reshape(-1).view("<u4")
    checksum = (int(np.bitwise_xor.reduce(words)) if words.size else 0) ^ 0xA50F74FF
    payload = data.tobytes()
    head = f"{{TYPE: SMU-WV,{checksum}}}{{CLOCK: {clock_hz:.10g}}}{{SAMPLES: {len(data)}}}"
    return head.encode("ascii") + f"{{WAVEFORM-{len(payload) + 1}:#".encode("ascii") + payload + b"}"


class SignalGenerator(ScpiDriver):
    """R&S SMW/SMBV vector generator with a driver-enforced level ceiling."""

    MODEL: ClassVar[str] = "R&S SMW/SMBV"
    IDN_MAKER: ClassVar[str] = "Rohde"
    IDN_MODEL: ClassVar[str] = "SM(BV|W)[0-9A-Z-]*"

    def __init__(self, resource: str, *, max_level_dbm: float, timeout_s: float = 2.0) -> None:
        super().__init__(resource, timeout_s)
        self._max_level_dbm = float(max_level_dbm)

    @property
    def max_level_dbm(self) -> float:
        return self._max_level_dbm

    def reset(self) -> None:
        """``*RST`` (RF off on R&S generators), then check RF is off."""
        self._scpi.write("*RST")
        self._scpi.query("*OPC?", timeout_s=max(self._scpi.timeout_s, 10.0))

    # -- RF ---------------------------------------------------------------------------------------------

    def set_frequency(self, hz: float) -> None:
        command = f"SOUR:FREQ:CW {_number(hz)}"
        if not hz > 0:
            raise SettingOutOfRange(resource=self.resource, command=command, reason="frequency must be > 0")
        self._scpi.write(command)

    def frequency(self) -> float:
        return self._scpi.query_float("SOUR:FREQ:CW?")

    def set_level(self, dbm: float) -> None:
        """Output level; refused before sending if above ``max_level_dbm``."""
        command = f"SOUR:POW:LEV:IMM:AMPL {_number(dbm)}"
        if not dbm <= self._max_level_dbm:  # also refuses NaN
            raise SettingOutOfRange(
                resource=self.resource,
                command=command,
                reason=f"{dbm:g} dBm is above the configured maximum {self._max_level_dbm:g} dBm",
            )
        self._scpi.write(command)

    def level(self) -> float:
        return self._scpi.query_float("SOUR:POW:LEV:IMM:AMPL?")

    def set_rf(self, on: bool) -> None:
        self._scpi.write(f"OUTP {'ON' if on else 'OFF'}")

    def rf_on(self) -> bool:
        return self._scpi.query_int("OUTP?") != 0

    def _off_and_verified(self) -> bool:
        self.set_rf(False)
        self.set_arb(False)
        return not self.rf_on() and not self.arb_on()

    def safe_state(self) -> None:
        """RF off and ARB off, verified by reading back; one retry on a fresh connection if the link failed."""
        try:
            if self._off_and_verified():
                return
        except InstrumentError:
            self._scpi.reopen()
        if not self._off_and_verified():
            raise InstrumentError(
                f"{self.resource} still reports RF or ARB on after 'OUTP OFF' and 'SOUR:BB:ARB:STAT OFF'"
                " — switch the generator off by hand",
                resource=self.resource,
                command="OUTP OFF",
            )

    # -- ARB --------------------------------------------------------------------------------------------

    def upload_waveform(self, name: str, iq: npt.NDArray[np.generic], clock_hz: float) -> int:
        """Upload ``iq`` (complex within ±1, or int16 (n, 2)) as ``name``; return the bytes sent in the block."""
        if "'" in name or "\n" in name:
            raise SettingOutOfRange(
                resource=self.resource, command="SOUR:BB:ARB:WAV:DATA", reason=f"bad waveform name {name!r}"
            )
        wv = build_wv(to_int16_iq(iq), clock_hz)
        self._scpi.write_block(f"SOUR:BB:ARB:WAV:DATA '{name}',", wv)
        return len(wv)

    def select_waveform(self, name: str) -> None:
        self._scpi.write(f"SOUR:BB:ARB:WAV:SEL '{name}'")

    def set_arb_clock(self, hz: float) -> None:
        command = f"SOUR:BB:ARB:CLOC {_number(hz)}"
        if not hz > 0:
            raise SettingOutOfRange(resource=self.resource, command=command, reason="clock must be > 0")
        self._scpi.write(command)

    def set_arb(self, on: bool) -> None:
        self._scpi.write(f"SOUR:BB:ARB:STAT {'ON' if on else 'OFF'}")

    def arb_on(self) -> bool:
        return self._scpi.query_int("SOUR:BB:ARB:STAT?") != 0

    def set_single_shot(self, on: bool) -> None:
        """One playout per `trigger_playout` (``SEQ SING``), or continuous while the ARB is on (``SEQ AUTO``)."""
        self._scpi.write(f"SOUR:BB:ARB:SEQ {'SING' if on else 'AUTO'}")

    def trigger_playout(self) -> None:
        """Start one playout (``SOUR:BB:ARB:TRIG:EXEC``); needs single-shot mode, the ARB on and a waveform."""
        self._scpi.write("SOUR:BB:ARB:TRIG:EXEC")

    def playing(self) -> bool:
        """A playout is under way (``SOUR:BB:ARB:TRIG:RMOD?`` is ``RUN``)."""
        return self._scpi.query("SOUR:BB:ARB:TRIG:RMOD?").strip().upper() == "RUN"

    def play_once(self, timeout_s: float) -> None:
        """Trigger one single-shot playout and return when it has ended; `PlayoutTimeout` if it is still
        running after ``timeout_s`` (the playout is then left to run: switch the ARB off to stop it)."""
        command = "SOUR:BB:ARB:TRIG:EXEC"
        deadline = time.monotonic() + timeout_s
        self.trigger_playout()
        pause = _POLL_FIRST_S
        while self.playing():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PlayoutTimeout(resource=self.resource, command=command, timeout_s=timeout_s)
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, _POLL_MAX_S)
