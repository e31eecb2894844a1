"""Vector signal analyzer: R&S FSV/FSW in IQ Analyzer mode, over raw SCPI (port 5025 on the real unit).

Commands used (R&S IQ Analyzer, see the FSV/FSW user manuals and RsFsw docstrings)::

    INST:SEL IQ; INIT:CONT OFF; FREQ:CENT <Hz>; TRAC:IQ:SRAT <Hz>; TRAC:IQ:RLEN <n>
    DISP:TRAC:Y:RLEV <dBm>              reference level (the analyzer couples its input attenuator to it)
    FORM REAL,32; TRAC:IQ:DATA:FORM IQP  float32 little-endian, I,Q,I,Q…
    TRIG:SOUR IMM|IFP; TRIG:LEV:IFP <dBm>; TRIG:HOLD <s>   trigger (IF power level at the RF input; a
                                         negative holdoff keeps that much pretrigger before the trigger)
    INIT:IMM                             start a capture (returns at once; it waits for the trigger)
    STAT:OPER:COND?                      bit 4 (16) "MEASuring" while the capture runs; ABOR cancels it
    STAT:QUES:POW:COND?                  bit 0 = RF input overload during the capture
    TRAC:IQ:DATA:MEM?                    #<n><len><float32 LE IQ pairs>\\n

The reference level is set with ``DISP:TRAC:Y:RLEV`` rather than ``INP:ATT``: it is what an IQ capture is
scaled against and the instrument derives the attenuation from it.

`capture_iq` polls the operation condition register rather than waiting in ``*OPC?``: a triggered capture
may wait far longer than the I/O timeout, the link stays usable meanwhile, and a capture whose trigger never
comes is aborted (``ABOR``) and reported as `CaptureTimeout`. The IQ block is read with
`ScpiInstrument.query_block` (header parsed by hand, ``recv_into`` a preallocated buffer; see instruments.scpi).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

import numpy as np
import numpy.typing as npt

from instruments.errors import CaptureTimeout, InstrumentError, SettingOutOfRange, UnexpectedReply
from instruments.scpi import ScpiDriver

__all__ = ["IqCapture", "SignalAnalyzer"]

_OVERLOAD_BIT: Final = 1 << 0  # STAT:QUES:POW:COND? bit 0: RF input overload (R&S "OVLD")
_MEASURING_BIT: Final = 1 << 4  # STAT:OPER:COND? bit 4: "MEASuring"
_POLL_FIRST_S: Final = 0.005
_POLL_MAX_S: Final = 0.02


@dataclass(frozen=True, slots=True)
class IqCapture:
    """One IQ record: complex64 samples (volts-scaled as the analyzer delivers them) and its settings."""

    samples: npt.NDArray[np.complex64]
    sample_rate: float
    centre_hz: float
    ref_level_dbm: float
    overload: bool

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def _number(value: float) -> str:
    return f"{value:.12g}"


class SignalAnalyzer(ScpiDriver):
    """R&S FSV/FSW IQ analyzer driver."""

    MODEL: ClassVar[str] = "R&S FSV/FSW (IQ Analyzer)"
    IDN_MAKER: ClassVar[str] = "Rohde"
    IDN_MODEL: ClassVar[str] = "FS(V|W|VA)[0-9A-Z-]*"
    # Damage level of the RF input per model (manual "max. input level", CW, attenuation >= 10 dB).
    MAX_SAFE_INPUT_DBM: ClassVar[dict[str, float]] = {"FSV": 30.0, "FSW": 30.0, "FSVA": 30.0}
    DEFAULT_MAX_SAFE_INPUT_DBM: ClassVar[float] = 30.0

    def __init__(self, resource: str, timeout_s: float = 2.0, *, capture_timeout_s: float = 30.0) -> None:
        super().__init__(resource, timeout_s)
        self._capture_timeout_s = capture_timeout_s
        self._centre_hz: float | None = None
        self._sample_rate: float | None = None
        self._ref_level_dbm: float | None = None
        self._trigger: tuple[str, float, float] | None = None  # as last set by set_trigger (None: unknown)

    # -- settings ---------------------------------------------------------------------------------------

    @property
    def max_safe_input_dbm(self) -> float:
        """The RF input's damage level for this model (+30 dBm for the FSV/FSW family)."""
        model = self.identity().model.upper()
        for prefix, level in sorted(self.MAX_SAFE_INPUT_DBM.items(), key=lambda kv: -len(kv[0])):
            if model.startswith(prefix):
                return level
        return self.DEFAULT_MAX_SAFE_INPUT_DBM

    def reset(self) -> None:
        """``*RST``, then the IQ analyzer in single-sweep mode with binary float32 IQ-pair output."""
        self._scpi.write("*RST")
        self._scpi.query("*OPC?", timeout_s=max(self._scpi.timeout_s, 10.0))
        for command in ("INST:SEL IQ", "INIT:CONT OFF", "FORM REAL,32", "TRAC:IQ:DATA:FORM IQP"):
            self._scpi.write(command)
        self._centre_hz = self._sample_rate = self._ref_level_dbm = None
        self._trigger = ("IMM", -20.0, 0.0)  # the *RST state

    def set_centre_frequency(self, hz: float) -> None:
        command = f"FREQ:CENT {_number(hz)}"
        if not hz > 0:
            raise SettingOutOfRange(resource=self.resource, command=command, reason="frequency must be > 0")
        self._scpi.write(command)
        self._centre_hz = hz

    def centre_frequency(self) -> float:
        self._centre_hz = self._scpi.query_float("FREQ:CENT?")
        return self._centre_hz

    def set_sample_rate(self, hz: float) -> None:
        command = f"TRAC:IQ:SRAT {_number(hz)}"
        if not hz > 0:
            raise SettingOutOfRange(resource=self.resource, command=command, reason="sample rate must be > 0")
        self._scpi.write(command)
        self._sample_rate = hz

    def sample_rate(self) -> float:
        self._sample_rate = self._scpi.query_float("TRAC:IQ:SRAT?")
        return self._sample_rate

    def set_record_length(self, samples: int) -> None:
        command = f"TRAC:IQ:RLEN {samples}"
        if samples < 1:
            raise SettingOutOfRange(resource=self.resource, command=command, reason="record length must be >= 1")
        self._scpi.write(command)

    def record_length(self) -> int:
        return self._scpi.query_int("TRAC:IQ:RLEN?")

    def set_reference_level(self, dbm: float) -> None:
        """Reference level (``DISP:TRAC:Y:RLEV``); refused above the model's safe input level."""
        command = f"DISP:TRAC:Y:RLEV {_number(dbm)}"
        if dbm > self.max_safe_input_dbm:
            raise SettingOutOfRange(
                resource=self.resource,
                command=command,
                reason=f"{dbm:g} dBm is above the input's safe level {self.max_safe_input_dbm:g} dBm",
            )
        self._scpi.write(command)
        self._ref_level_dbm = dbm

    def reference_level(self) -> float:
        self._ref_level_dbm = self._scpi.query_float("DISP:TRAC:Y:RLEV?")
        return self._ref_level_dbm

    def overloaded(self) -> bool:
        """RF overload during the last capture (``STAT:QUES:POW:COND?`` bit 0)."""
        return bool(self._scpi.query_int("STAT:QUES:POW:COND?") & _OVERLOAD_BIT)

    def set_trigger(self, source: Literal["IMM", "IFP"], level_dbm: float = -20.0, offset_s: float = 0.0) -> None:
        """Trigger for the next captures: ``IMM`` (immediate) or ``IFP`` (IF power above ``level_dbm`` at the RF
        input). ``offset_s`` is the trigger offset (``TRIG:HOLD``); negative keeps that much pretrigger."""
        if source not in ("IMM", "IFP"):
            raise SettingOutOfRange(
                resource=self.resource, command=f"TRIG:SOUR {source}", reason="trigger source must be IMM or IFP"
            )
        self._scpi.write(f"TRIG:SOUR {source}")
        if source == "IFP":
            self._scpi.write(f"TRIG:LEV:IFP {_number(level_dbm)}")
        self._scpi.write(f"TRIG:HOLD {_number(offset_s)}")
        self._trigger = (source, level_dbm, offset_s)

    def measuring(self) -> bool:
        """A capture is in progress (``STAT:OPER:COND?`` bit 4)."""
        return bool(self._scpi.query_int("STAT:OPER:COND?") & _MEASURING_BIT)

    def abort(self) -> None:
        """Cancel a running capture (``ABOR``); the capture memory is then invalid."""
        self._scpi.write("ABOR")

    def _trigger_text(self) -> str:
        if self._trigger is None:
            return "trigger as set on the instrument"
        source, level, _ = self._trigger
        return f"IF power trigger at {level:g} dBm" if source == "IFP" else "immediate trigger"

    # -- capture ----------------------------------------------------------------------------------------

    def capture_iq(self, timeout_s: float | None = None) -> IqCapture:
        """Take one record and fetch it as complex64: `start_capture`, `wait_capture`, `fetch_capture`."""
        self.start_capture()
        self.wait_capture(timeout_s)
        return self.fetch_capture()

    def start_capture(self) -> None:
        """``INIT:IMM``: the analyzer arms (and waits for its trigger) while the bench goes on."""
        self._scpi.write("INIT:IMM")

    def wait_capture(self, timeout_s: float | None = None) -> None:
        """Poll ``STAT:OPER:COND?`` until the capture is complete (bit 4 clear). If it is not within
        ``timeout_s`` (default: ``capture_timeout_s``), abort it (``ABOR``) and raise `CaptureTimeout`."""
        timeout = timeout_s if timeout_s is not None else self._capture_timeout_s
        deadline = time.monotonic() + timeout
        pause = _POLL_FIRST_S
        while self.measuring():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                error = CaptureTimeout(
                    resource=self.resource, command="INIT:IMM", timeout_s=timeout, trigger=self._trigger_text()
                )
                try:
                    self.abort()
                except InstrumentError as exc:
                    raise error from exc
                raise error
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, _POLL_MAX_S)

    def fetch_capture(self) -> IqCapture:
        """The completed record with its settings and the overload flag."""
        overload = self.overloaded()
        samples = self.fetch_iq()
        centre = self._centre_hz if self._centre_hz is not None else self.centre_frequency()
        rate = self._sample_rate if self._sample_rate is not None else self.sample_rate()
        ref = self._ref_level_dbm if self._ref_level_dbm is not None else self.reference_level()
        return IqCapture(samples, rate, centre, ref, overload)

    def fetch_iq(self, command: str = "TRAC:IQ:DATA:MEM?") -> npt.NDArray[np.complex64]:
        """The analyzer's IQ memory (``FORM REAL,32`` + ``IQP`` assumed, as `reset` sets) as complex64."""
        data = self.query_block(command)
        if data.nbytes % 8:
            raise UnexpectedReply(
                resource=self.resource, command=command, reply=f"<{data.nbytes} bytes>", expected="float32 IQ pairs"
            )
        return data.view("<c8").astype(np.complex64, copy=False)

    def query_block(self, command: str, *, timeout_s: float | None = None) -> npt.NDArray[np.uint8]:
        """Send ``command`` and read its definite-length block reply as uint8 (terminator consumed)."""
        timeout = timeout_s if timeout_s is not None else max(self._scpi.timeout_s, self._capture_timeout_s)
        return self._scpi.query_block(command, timeout_s=timeout)

    def describe(self) -> dict[str, Any]:
        return {"resource": self.resource, "model": self.MODEL}
