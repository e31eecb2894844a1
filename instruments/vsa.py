"""Vector signal analyzer: R&S FSV/FSW in IQ Analyzer mode, over raw SCPI (port 5025 on the real unit).

Commands used (R&S IQ Analyzer, see the FSV/FSW user manuals and RsFsw docstrings)::

    INST:SEL IQ; INIT:CONT OFF; FREQ:CENT <Hz>; TRAC:IQ:SRAT <Hz>; TRAC:IQ:RLEN <n>
    DISP:TRAC:Y:RLEV <dBm>              reference level (the analyzer couples its input attenuator to it)
    FORM REAL,32; TRAC:IQ:DATA:FORM IQP  float32 little-endian, I,Q,I,Q…
    INIT:IMM;*OPC?                       capture, wait for completion
    STAT:QUES:POW:COND?                  bit 0 = RF input overload during the capture
    TRAC:IQ:DATA:MEM?                    #<n><len><float32 LE IQ pairs>\\n

The reference level is set with ``DISP:TRAC:Y:RLEV`` rather than ``INP:ATT``: it is what an IQ capture is
scaled against and the instrument derives the attenuation from it.

The IQ block is read fast. pyvisa's ``query_binary_values`` (and ``read_bytes``) go through pyvisa-py's
socket session, which searches its whole pending buffer for the termination character on every ``recv`` and
returns at each 0x0A byte it finds inside the binary data (~50 MB/s and O(n²)-ish for large blocks). Here the
header is parsed by hand and exactly the announced number of bytes is received straight into a preallocated
numpy buffer with ``socket.recv_into`` on the session's own socket (after taking whatever pyvisa-py had
already buffered). For a non-pyvisa-py resource the driver falls back to ``read_bytes`` with the
termination character disabled. Either way the exchange runs under the `ScpiInstrument` lock and failures
map to the bench's errors (`InstrumentTimeout`, `ConnectionLost`, `UnexpectedReply`), after which the
transport reconnects on next use.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import numpy as np
import numpy.typing as npt
import pyvisa
from pyvisa import constants
from pyvisa.resources import MessageBasedResource

from instruments.errors import InstrumentError, SettingOutOfRange, UnexpectedReply
from instruments.scpi import Identity, ScpiInstrument

__all__ = ["IqCapture", "SignalAnalyzer"]

_OVERLOAD_BIT: Final = 1 << 0  # STAT:QUES:POW:COND? bit 0: RF input overload (R&S "OVLD")
_RECV_CHUNK: Final = 4 << 20
_IO_ERRORS: Final = (pyvisa.errors.Error, OSError, EOFError)


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


class _BlockReader:
    """Reads one IEEE 488.2 definite-length block (+ terminator) from a pyvisa resource, fast where possible."""

    def __init__(self, resource: MessageBasedResource, timeout_s: float) -> None:
        self._res = resource
        self._deadline = time.monotonic() + timeout_s
        session = getattr(resource.visalib, "sessions", {}).get(resource.session)
        sock = getattr(session, "interface", None)
        pending = getattr(session, "_pending_buffer", None)
        self._sock = sock if isinstance(sock, socket.socket) and isinstance(pending, bytearray) else None
        self._pending: bytearray = pending if isinstance(pending, bytearray) else bytearray()

    def read_into(self, view: memoryview) -> None:
        """Fill ``view`` completely."""
        if self._sock is None:
            self._fallback_into(view)
            return
        pos = min(len(self._pending), len(view))
        if pos:
            view[:pos] = self._pending[:pos]
            del self._pending[:pos]
        sock = self._sock
        previous = sock.gettimeout()
        try:
            while pos < len(view):
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    raise pyvisa.errors.VisaIOError(constants.StatusCode.error_timeout)
                sock.settimeout(remaining)
                try:
                    got = sock.recv_into(view[pos:], min(_RECV_CHUNK, len(view) - pos))
                except TimeoutError:
                    raise pyvisa.errors.VisaIOError(constants.StatusCode.error_timeout) from None
                if got == 0:
                    raise ConnectionError("closed by the instrument")
                pos += got
        finally:
            sock.settimeout(previous)

    def _fallback_into(self, view: memoryview) -> None:
        res = self._res
        termination = res.read_termination
        res.read_termination = None  # disables pyvisa's termchar
        try:
            data = res.read_bytes(len(view), chunk_size=_RECV_CHUNK, break_on_termchar=False)
        finally:
            res.read_termination = termination
        view[: len(data)] = data
        if len(data) < len(view):
            raise pyvisa.errors.VisaIOError(constants.StatusCode.error_timeout)

    def read(self, count: int) -> bytes:
        buffer = bytearray(count)
        self.read_into(memoryview(buffer))
        return bytes(buffer)


class SignalAnalyzer:
    """R&S FSV/FSW IQ analyzer driver."""

    MODEL: ClassVar[str] = "R&S FSV/FSW (IQ Analyzer)"
    # Damage level of the RF input per model (manual "max. input level", CW, attenuation >= 10 dB).
    MAX_SAFE_INPUT_DBM: ClassVar[dict[str, float]] = {"FSV": 30.0, "FSW": 30.0, "FSVA": 30.0}
    DEFAULT_MAX_SAFE_INPUT_DBM: ClassVar[float] = 30.0

    def __init__(self, resource: str, timeout_s: float = 2.0, *, capture_timeout_s: float = 30.0) -> None:
        self._scpi = ScpiInstrument(resource, timeout_s)
        self._capture_timeout_s = capture_timeout_s
        self._centre_hz: float | None = None
        self._sample_rate: float | None = None
        self._ref_level_dbm: float | None = None

    @property
    def scpi(self) -> ScpiInstrument:
        return self._scpi

    @property
    def resource(self) -> str:
        return self._scpi.resource

    def close(self) -> None:
        self._scpi.close()

    def __enter__(self) -> SignalAnalyzer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- settings ---------------------------------------------------------------------------------------

    def identity(self) -> Identity:
        return self._scpi.identity()

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

    # -- capture ----------------------------------------------------------------------------------------

    def capture_iq(self) -> IqCapture:
        """Take one record (``INIT:IMM;*OPC?``) and fetch it as complex64."""
        self._scpi.query("INIT:IMM;*OPC?", timeout_s=self._capture_timeout_s)
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
        scpi = self._scpi
        timeout = timeout_s if timeout_s is not None else max(scpi.timeout_s, self._capture_timeout_s)
        # The transport's lock, connection state and error mapping are reused on purpose (see module doc):
        # ScpiInstrument has no binary read, and this keeps the exchange atomic against its other users.
        with scpi._lock:
            res = scpi._ready(command)
            try:
                res.write(command)
                reader = _BlockReader(res, timeout)
                head = reader.read(2)
                if head[:1] != b"#" or not head[1:2].isdigit() or head[1:2] == b"0":
                    scpi._stale = True
                    raise UnexpectedReply(
                        resource=self.resource, command=command, reply=repr(head), expected="a definite-length block"
                    )
                count_text = reader.read(int(head[1:2]))
                if not count_text.isdigit():
                    scpi._stale = True
                    raise UnexpectedReply(
                        resource=self.resource,
                        command=command,
                        reply=repr(head + count_text),
                        expected="a definite-length block",
                    )
                data = np.empty(int(count_text), dtype=np.uint8)
                reader.read_into(data.data)
                tail = reader.read(1)
                if tail == b"\r":
                    tail = reader.read(1)
                if tail != b"\n":
                    scpi._stale = True
                    raise UnexpectedReply(
                        resource=self.resource, command=command, reply=repr(tail), expected="'\\n' after the block"
                    )
            except InstrumentError:
                raise
            except _IO_ERRORS as exc:
                raise scpi._fail(exc, command, timeout) from exc
        return data

    def describe(self) -> dict[str, Any]:
        return {"resource": self.resource, "model": self.MODEL}
