"""The bench's RF instruments as network services: an IQ vector signal analyzer and an ARB vector generator.

Both speak raw SCPI over TCP (the ``TCPIP0::host::port::SOCKET`` resource type) with the command tree,
parser and error queue of ``twin.scpi``. They use their own connection loop (`BinaryScpiServer`) instead of
``twin.scpi.ScpiServer`` because that one cuts the byte stream at every ``\\n`` (an ARB upload is int16 data in
which 0x0A is as likely as any other byte) and caps a message at 1 MiB, and its replies are text
(a 4 M-sample IQ capture is a 32 MB binary block that must not be copied through ``str``).

`BinaryScpiServer` therefore:

* reads IEEE 488.2 definite-length blocks (``#<n><len><bytes>``, outside quoted strings) *before* looking for
  the message terminator: the block's bytes are lifted out of the message and replaced by a placeholder
  parameter ``#B<i>`` that handlers resolve with `block_param` (indefinite ``#0`` blocks are not supported:
  -102);
* lets a query handler answer with a binary block through `binary_reply`, which the server writes as
  ``#<n><len>`` + the buffer (zero-copy) + ``\\n``.

Defaults: analyzer on port 5026 (`VSA_PORT`), generator on 5027 (`VSG_PORT`).

Analyzer (R&S FSV/FSW IQ Analyzer subset)::

    *IDN? *RST *CLS *OPC? SYST:ERR? INST:SEL IQ  INIT:CONT ON|OFF  FREQ:CENT <Hz>  TRAC:IQ:SRAT <Hz>
    TRAC:IQ:RLEN <n>  DISP:TRAC:Y:RLEV <dBm>  FORM REAL,32  TRAC:IQ:DATA:FORM IQP
    TRIG[:SEQ]:SOUR IMM|IFP  TRIG[:SEQ]:LEV:IFP <dBm>  TRIG[:SEQ]:HOLD[:TIME] <s> (negative = pretrigger)
    INIT[:IMM]            starts a capture and returns at once (the capture waits for its trigger and
                          for the simulated record time in `IqSource.capture`); *OPC? / *WAI wait for it
    ABOR                  cancels a running capture (the capture memory is then invalid: -230)
    STAT:OPER:COND?       bit 4 (16) "MEASuring" while a capture runs
    STAT:QUES:POW:COND?   bit 0 = RF input overload during the last capture
    TRAC:IQ:DATA:MEM?     #<n><len><float32 LE I,Q,I,Q…>\\n  (the last capture)

Generator (R&S SMW/SMBV subset)::

    *IDN? *RST  SOUR:FREQ[:CW] <Hz>  SOUR:POW[:LEV][:IMM][:AMPL] <dBm>  OUTP[:STAT] ON|OFF
    SOUR:BB:ARB:WAV:DATA '<name>',#<n><len><wv bytes>   SOUR:BB:ARB:WAV:SEL '<name>'
    SOUR:BB:ARB:CLOC <Hz>  SOUR:BB:ARB:STAT ON|OFF  SOUR:BB:ARB:WAV:CAT?
    SOUR:BB:ARB:SEQ AUTO|SING   AUTO: the waveform repeats while the ARB is on; SINGle: one playout per
                                SOUR:BB:ARB:TRIG:EXEC
    SOUR:BB:ARB:TRIG:RMOD?      RUN while a playout is under way (SINGle: n/clock s after EXEC), else STOP

What it radiates is reported to the `EmissionSink` as an `Emission` on every change.

The ``.wv`` payload is the simplified R&S layout described in `parse_wv` (tags, no 0x4000 padding).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

from twin.scpi import (
    DATA_STALE,
    DATA_TYPE_ERROR,
    ILLEGAL_PARAMETER,
    SETTINGS_CONFLICT,
    SYNTAX_ERROR,
    TOO_MUCH_DATA,
    TRIGGER_IGNORED,
    Call,
    CommandSet,
    Interpreter,
    ScpiError,
    ScpiServer,
    Session,
    add_common_commands,
    parse_bool,
    parse_int,
    parse_number,
)

__all__ = [
    "VSA_PORT",
    "VSG_PORT",
    "AnalyzerService",
    "BinaryScpiServer",
    "CaptureRequest",
    "Emission",
    "EmissionSink",
    "GeneratorService",
    "IqSource",
    "RfSession",
    "Wv",
    "binary_reply",
    "block_param",
    "build_wv",
    "parse_wv",
]

_log = logging.getLogger(__name__)

VSA_PORT: Final = 5026
VSG_PORT: Final = 5027

MAX_BLOCK_BYTES: Final = 1 << 30
MAX_TEXT_BYTES: Final = 1 << 20
_BINARY_MARK: Final = "\x00BINARY-BLOCK\x00"


@dataclass(frozen=True)
class CaptureRequest:
    """One IQ capture as the analyzer was set up when ``INIT:IMM`` started it."""

    centre_hz: float
    sample_rate: float
    n_samples: int
    ref_level_dbm: float
    trigger: Literal["IMM", "IFP"]  # immediate, or IF power (R&S "IFPower")
    trigger_level_dbm: float  # TRIG:LEV:IFP, at the RF input
    trigger_offset_s: float  # TRIG:HOLD; negative = pretrigger (samples before the trigger instant)


class IqSource(Protocol):
    """What the analyzer's RF input sees. ``capture`` returns once the trigger came and the record time
    passed (it is cancelled by ``ABOR``): (``n_samples`` complex samples in volts-ish units, overload)."""

    async def capture(self, request: CaptureRequest) -> tuple[npt.NDArray[np.complex64], bool]: ...


@dataclass(frozen=True)
class Emission:
    """What the generator radiates, reported on every change."""

    freq_hz: float
    level_dbm: float
    rf_on: bool
    iq: npt.NDArray[np.int16] | None  # (n, 2) waveform being played; None when the ARB is off or nothing plays
    clock_hz: float
    started_at: float | None  # generator clock when this playout started; None when not playing
    repeat: bool  # True: continuous (SEQ AUTO); False: one single-shot playout


EmissionSink = Callable[[Emission], None]


def _error_reply(code: int, text: str) -> str:
    return f'{code},"{text}"'


@dataclass
class RfSession(Session):
    """A twin SCPI session that can carry binary blocks in (uploads) and out (a query's binary reply)."""

    blocks: list[bytes] = field(default_factory=list)
    binary: memoryview | None = None


def block_param(call: Call, text: str) -> bytes:
    """The bytes of a definite-length block parameter (the server replaced it with ``#B<i>``)."""
    session = call.session
    m = re.fullmatch(r"#B(\d+)", text.strip())
    if m is None or not isinstance(session, RfSession) or int(m.group(1)) >= len(session.blocks):
        raise ScpiError(DATA_TYPE_ERROR, "expected a definite-length block")
    return session.blocks[int(m.group(1))]


def binary_reply(call: Call, data: memoryview) -> str:
    """Answer the query with ``data`` as a definite-length block (only one per message)."""
    session = call.session
    if not isinstance(session, RfSession):
        raise ScpiError(SETTINGS_CONFLICT, "binary reply on a text-only session")
    session.binary = data
    return _BINARY_MARK


def _find_terminator(buffer: bytearray, blocks: list[tuple[int, int]]) -> int | str:
    """Index of the ``\\n`` ending the first message (blocks skipped, their spans appended to ``blocks``),
    -1 if more bytes are needed, or an error string if the message is malformed."""
    pos = 0
    quote = 0
    n = len(buffer)
    blocks.clear()
    while pos < n:
        if quote:
            end = buffer.find(bytes((quote,)), pos)
            if end < 0:
                nl = buffer.find(b"\n", pos)
                return nl if nl >= 0 else -1
            quote, pos = 0, end + 1
            continue
        ch = buffer[pos]
        if ch == 0x0A:
            return pos
        if ch in (0x22, 0x27):
            quote = ch
        elif ch == 0x23 and pos + 1 < n and 0x30 <= buffer[pos + 1] <= 0x39:  # '#<digit>'
            digits = buffer[pos + 1] - 0x30
            if digits == 0:
                return "indefinite-length blocks (#0) are not supported"
            if pos + 2 + digits > n:
                return -1
            count_text = bytes(buffer[pos + 2 : pos + 2 + digits])
            if not count_text.isdigit():
                return "bad block header"
            count = int(count_text)
            if count > MAX_BLOCK_BYTES:
                return "block too large"
            start = pos + 2 + digits
            if start + count > n:
                blocks.append((start, count))  # a block still arriving: the text-size cap does not apply
                return -1
            blocks.append((start, count))
            pos = start + count
            continue
        pos += 1
    return -1


class BinaryScpiServer(ScpiServer):
    """Raw-socket SCPI server whose messages may carry definite-length blocks both ways (see module doc)."""

    STREAM_LIMIT = 1 << 20

    def __init__(self, interpreter: Interpreter, *, name: str) -> None:
        super().__init__(interpreter, name=name)
        self.received: list[str] = []  # every program message, blocks as '#B<i>' (for tests and diagnostics)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        session = RfSession(peer=f"{self.name}<-{peer[0]}:{peer[1]}" if peer else self.name)
        self._writers.add(writer)
        buffer = bytearray()
        spans: list[tuple[int, int]] = []
        try:
            while True:
                data = await reader.read(1 << 20)
                if not data:
                    break
                if self.silent:
                    continue
                buffer += data
                while True:
                    end = _find_terminator(buffer, spans)
                    if isinstance(end, str):
                        # Resynchronise at the next terminator (the rest of a bad message is unparseable).
                        _log.debug("%s: %s; message discarded", session.peer, end)
                        session.error(SYNTAX_ERROR)
                        newline = buffer.find(b"\n")
                        if newline < 0:
                            buffer.clear()
                            break
                        del buffer[: newline + 1]
                        continue
                    if end < 0:
                        if not spans and len(buffer) > MAX_TEXT_BYTES:
                            buffer.clear()
                            session.error(TOO_MUCH_DATA)
                        break
                    await self._message(session, buffer, end, spans, writer)
                    del buffer[: end + 1]
        except (ConnectionError, OSError) as exc:
            _log.debug("%s: connection lost: %s", session.peer, exc)
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _message(
        self,
        session: RfSession,
        buffer: bytearray,
        end: int,
        spans: list[tuple[int, int]],
        writer: asyncio.StreamWriter,
    ) -> None:
        parts: list[str] = []
        session.blocks = []
        pos = 0
        for i, (start, count) in enumerate(spans):
            header_start = buffer.rfind(b"#", 0, start)
            parts.append(bytes(buffer[pos:header_start]).decode("latin-1"))
            parts.append(f"#B{i}")
            session.blocks.append(bytes(buffer[start : start + count]))
            pos = start + count
        parts.append(bytes(buffer[pos:end]).decode("latin-1"))
        line = "".join(parts).rstrip("\r")
        self.received.append(line)
        session.binary = None
        try:
            reply = await self.interpreter.execute(session, line)
        finally:
            session.blocks = []
        binary, session.binary = session.binary, None
        if reply is None or self.silent or writer.is_closing():
            return
        if binary is not None and _BINARY_MARK in reply:
            before, _, after = reply.partition(_BINARY_MARK)
            length = str(binary.nbytes)
            writer.write(f"{before}#{len(length)}{length}".encode("latin-1"))
            writer.write(binary)
            writer.write(after.encode("latin-1") + b"\n")
        else:
            writer.write(reply.encode("latin-1") + b"\n")
        await writer.drain()


def _string_param(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    raise ScpiError(DATA_TYPE_ERROR, f"expected a quoted string, not {text!r}")


class _RfService:
    """What both RF instruments are as twin services: a `BinaryScpiServer`, its endpoint record, start/stop."""

    name: str
    description: str
    kind = "scpi"
    visa = True
    DEFAULT_PORT: int
    server: BinaryScpiServer

    @property
    def port(self) -> int | None:
        address = self.server.address
        return address[1] if address else None

    def endpoints(self) -> dict[str, dict[str, Any]]:
        """Endpoint record for the twin's endpoints file."""
        if self.server.address is None:
            raise RuntimeError(f"{self.name}.endpoints() before start()")
        host, port = self.server.address
        return {
            self.name: {
                "kind": "scpi", "resource": f"TCPIP0::{host}::{port}::SOCKET", "host": host, "port": port,
                "visa": True, "description": self.description,
            }
        }  # fmt: skip

    async def start(self, host: str = "127.0.0.1", port: int | None = None) -> int:
        return await self.server.start(host, self.DEFAULT_PORT if port is None else port)

    async def stop(self) -> None:
        await self.server.stop()


# ------------------------------------------------------------------------------------------------ analyzer


class AnalyzerService(_RfService):
    """An R&S FSV-style IQ analyzer; each ``INIT:IMM`` runs ``source.capture`` as a background task."""

    name = "vsa"
    DEFAULT_PORT = VSA_PORT
    description = "Rohde & Schwarz FSV3030 signal analyzer, IQ Analyzer mode (twin)"
    IDN: Final = "Rohde&Schwarz,FSV3030,1330.5000K30/100001,1.80"
    MAX_RECORD_LENGTH: Final = 100_000_000
    OVERLOAD_BIT: Final = 1 << 0
    MEASURING_BIT: Final = 1 << 4  # STAT:OPER:COND? "MEASuring"

    def __init__(self, source: IqSource) -> None:
        self._source = source
        self.captures = 0
        self.aborts = 0
        self._task: asyncio.Task[None] | None = None
        self._defaults()
        commands = CommandSet()
        # Registered before the common commands so that these win the lookup: they wait for the capture.
        commands.add("*OPC?", self._opc_query)
        commands.add("*WAI", self._wait)
        add_common_commands(commands, error_reply=_error_reply)
        self._add_commands(commands)
        self.server = BinaryScpiServer(Interpreter(commands), name=self.name)

    def _defaults(self) -> None:
        self.centre_hz = 1e9
        self.sample_rate = 32e6
        self.record_length = 1001
        self.ref_level_dbm = 0.0
        self.continuous = True
        self.data_format = "ASC"
        self.iq_format = "IQP"
        self.trigger: Literal["IMM", "IFP"] = "IMM"
        self.trigger_level_dbm = -20.0
        self.trigger_offset_s = 0.0
        self.overload = False
        self._capture: npt.NDArray[np.complex64] | None = None
        self._stale = False  # the last capture was aborted (or failed): its memory is invalid

    @property
    def measuring(self) -> bool:
        """A capture is in progress (armed, waiting for its trigger, or recording)."""
        return self._task is not None and not self._task.done()

    def _cancel(self) -> bool:
        task, self._task = self._task, None
        if task is None or task.done():
            return False
        task.cancel()
        return True

    def _reset(self, call: Call) -> None:
        call.expect(0)
        self._cancel()
        self._defaults()

    def _add_commands(self, c: CommandSet) -> None:
        c.add("*IDN?", lambda call: self.IDN)
        c.add("*RST", self._reset)
        c.add("INSTrument[:SELect]", self._instrument)
        c.add("INITiate:CONTinuous", self._init_cont)
        c.add("INITiate:CONTinuous?", lambda call: str(int(self.continuous)))
        c.add("INITiate[:IMMediate]", self._initiate)
        c.add("ABORt", self._abort)
        c.add("TRIGger[:SEQuence]:SOURce", self._trigger_source)
        c.add("TRIGger[:SEQuence]:SOURce?", lambda call: self.trigger)
        c.add("TRIGger[:SEQuence]:LEVel:IFPower", self._trigger_level)
        c.add("TRIGger[:SEQuence]:LEVel:IFPower?", lambda call: repr(self.trigger_level_dbm))
        c.add("TRIGger[:SEQuence]:HOLDoff[:TIME]", self._trigger_offset)
        c.add("TRIGger[:SEQuence]:HOLDoff[:TIME]?", lambda call: repr(self.trigger_offset_s))
        c.add("STATus:OPERation[:CONDition]?", lambda call: str(self.MEASURING_BIT if self.measuring else 0))
        c.add("[SENSe]:FREQuency:CENTer", self._centre)
        c.add("[SENSe]:FREQuency:CENTer?", lambda call: repr(self.centre_hz))
        c.add("TRACe:IQ:SRATe", self._srate)
        c.add("TRACe:IQ:SRATe?", lambda call: repr(self.sample_rate))
        c.add("TRACe:IQ:RLENgth", self._rlen)
        c.add("TRACe:IQ:RLENgth?", lambda call: str(self.record_length))
        c.add("DISPlay[:WINDow#]:TRACe#:Y[:SCALe]:RLEVel", self._rlev)
        c.add("DISPlay[:WINDow#]:TRACe#:Y[:SCALe]:RLEVel?", lambda call: repr(self.ref_level_dbm))
        c.add("FORMat[:DATA]", self._format)
        c.add("FORMat[:DATA]?", lambda call: "REAL,32" if self.data_format == "REAL" else "ASC,0")
        c.add("TRACe:IQ:DATA:FORMat", self._iq_format)
        c.add("TRACe:IQ:DATA:FORMat?", lambda call: self.iq_format)
        c.add("STATus:QUEStionable:POWer[:CONDition]?", lambda call: str(self.OVERLOAD_BIT if self.overload else 0))
        c.add("TRACe:IQ:DATA:MEMory?", self._data)

    def _instrument(self, call: Call) -> None:
        if call.expect(1)[0].upper() not in ("IQ", "'IQ'"):
            raise ScpiError(ILLEGAL_PARAMETER, "only the IQ analyzer is modelled")

    def _init_cont(self, call: Call) -> None:
        self.continuous = parse_bool(call.expect(1)[0])

    def _centre(self, call: Call) -> None:
        self.centre_hz = parse_number(call.expect(1)[0], low=0.0, high=30e9)

    def _srate(self, call: Call) -> None:
        self.sample_rate = parse_number(call.expect(1)[0], low=100.0, high=600e6)

    def _rlen(self, call: Call) -> None:
        self.record_length = parse_int(call.expect(1)[0], low=1, high=self.MAX_RECORD_LENGTH)

    def _rlev(self, call: Call) -> None:
        self.ref_level_dbm = parse_number(call.expect(1)[0], low=-130.0, high=30.0)

    def _format(self, call: Call) -> None:
        params = [p.upper() for p in call.expect(1, 2)]
        if params[0] == "REAL" and params[1:] in ([], ["32"]):
            self.data_format = "REAL"
        elif params[0] in ("ASC", "ASCII"):
            self.data_format = "ASC"
        else:
            raise ScpiError(ILLEGAL_PARAMETER, "only REAL,32 and ASCii are modelled")

    def _iq_format(self, call: Call) -> None:
        word = call.expect(1)[0].upper()
        if word not in ("IQP", "IQPAIR"):
            raise ScpiError(ILLEGAL_PARAMETER, "only IQPair is modelled")
        self.iq_format = "IQP"

    def _trigger_source(self, call: Call) -> None:
        word = call.expect(1)[0].strip().upper()
        if word in ("IMM", "IMMEDIATE"):
            self.trigger = "IMM"
        elif word in ("IFP", "IFPOWER"):
            self.trigger = "IFP"
        else:
            raise ScpiError(ILLEGAL_PARAMETER, "only IMMediate and IFPower triggers are modelled")

    def _trigger_level(self, call: Call) -> None:
        self.trigger_level_dbm = parse_number(call.expect(1)[0], low=-130.0, high=30.0)

    def _trigger_offset(self, call: Call) -> None:
        self.trigger_offset_s = parse_number(call.expect(1)[0], low=-10.0, high=10.0)

    def _initiate(self, call: Call) -> None:
        call.expect(0)
        if self.measuring:
            raise ScpiError(SETTINGS_CONFLICT, "a capture is already running (INIT ignored)")
        request = CaptureRequest(
            centre_hz=self.centre_hz,
            sample_rate=self.sample_rate,
            n_samples=self.record_length,
            ref_level_dbm=self.ref_level_dbm,
            trigger=self.trigger,
            trigger_level_dbm=self.trigger_level_dbm,
            trigger_offset_s=self.trigger_offset_s,
        )
        self._capture, self._stale = None, False
        self._task = asyncio.get_running_loop().create_task(self._run(request, call.session))

    async def _run(self, request: CaptureRequest, session: Session) -> None:
        try:
            samples, overload = await self._source.capture(request)
            array = np.ascontiguousarray(samples, dtype="<c8").reshape(-1)
            if array.size != request.n_samples:
                raise ValueError(f"source returned {array.size} samples, not {request.n_samples}")
        except asyncio.CancelledError:
            self._stale = True
            raise
        except Exception:
            _log.exception("%s: IQ capture failed", session.peer)
            self._stale = True
            session.error(DATA_STALE)
            return
        self._capture, self.overload = array, bool(overload)
        self.captures += 1

    def _abort(self, call: Call) -> None:
        call.expect(0)
        if self._cancel():
            self._stale, self._capture = True, None
            self.aborts += 1

    async def _wait_capture(self) -> None:
        task = self._task
        if task is not None and not task.done():
            await asyncio.wait((task,))  # returns on completion or cancellation alike

    async def _opc_query(self, call: Call) -> str:
        call.expect(0)
        await self._wait_capture()
        return "1"

    async def _wait(self, call: Call) -> None:
        call.expect(0)
        await self._wait_capture()

    def _data(self, call: Call) -> str:
        call.expect(0)
        if self.measuring:
            raise ScpiError(SETTINGS_CONFLICT, "capture in progress: wait for it (*OPC?) or ABORt it")
        if self._stale:
            raise ScpiError(DATA_STALE, "the last capture was aborted")
        if self._capture is None:
            raise ScpiError(SETTINGS_CONFLICT, "no capture: send INIT:IMM first")
        if self.data_format != "REAL":
            raise ScpiError(SETTINGS_CONFLICT, "only FORM REAL,32 is modelled for IQ data")
        return binary_reply(call, self._capture.view(np.uint8).data)

    async def stop(self) -> None:
        task = self._task
        if self._cancel() and task is not None:
            await asyncio.wait((task,))
        await super().stop()


# ------------------------------------------------------------------------------------------------ generator


@dataclass(frozen=True)
class Wv:
    """A parsed waveform file: int16 IQ of shape (n, 2), its clock and the checksum it declared."""

    iq: npt.NDArray[np.int16]
    clock_hz: float | None
    checksum: int


def wv_checksum(iq: npt.NDArray[np.int16]) -> int:
    """R&S checksum: 0xA50F74FF XOR every 32-bit little-endian (I,Q) word."""
    words = np.ascontiguousarray(iq, dtype="<i2").reshape(-1).view("<u4")
    return int(np.bitwise_xor.reduce(words)) ^ 0xA50F74FF if words.size else 0xA50F74FF


def build_wv(iq: npt.NDArray[np.int16], clock_hz: float) -> bytes:
    """Simplified R&S ``.wv``: ``{TYPE: SMU-WV,<ck>}{CLOCK: <Hz>}{SAMPLES: <n>}{WAVEFORM-<len>:#<int16 LE I,Q…>}``.

    Unlike a file written by R&S WinIQSIM, no ``{EMPTYTAG…}`` padding puts the waveform at offset 0x4000.
    """
    data = np.ascontiguousarray(iq, dtype="<i2").reshape(-1, 2)
    payload = data.tobytes()
    head = f"{{TYPE: SMU-WV,{wv_checksum(data)}}}{{CLOCK: {clock_hz:.10g}}}{{SAMPLES: {len(data)}}}"
    return head.encode("ascii") + f"{{WAVEFORM-{len(payload) + 1}:#".encode("ascii") + payload + b"}"


_WV_TAG = re.compile(rb"\{(?P<name>[A-Z][A-Z0-9 _-]*?)(?:-(?P<len>\d+))?:\s*(?P<body>#?)")


def parse_wv(data: bytes) -> Wv:
    """Parse `build_wv` output (and tag-compatible R&S files); raises ValueError on anything malformed."""
    pos, clock, checksum, iq = 0, None, None, None
    while pos < len(data):
        m = _WV_TAG.match(data, pos)
        if m is None:
            raise ValueError(f"bad tag at offset {pos}")
        name = m.group("name").decode("ascii")
        if name == "WAVEFORM":
            if m.group("len") is None:
                raise ValueError("WAVEFORM tag without a length")
            length = int(m.group("len")) - 1  # the length counts the '#'
            start = m.end()
            if m.group("body") != b"#" or length < 0 or length % 4 or start + length >= len(data):
                raise ValueError("malformed WAVEFORM tag")
            iq = np.frombuffer(data, dtype="<i2", count=length // 2, offset=start).reshape(-1, 2).astype(np.int16)
            if data[start + length : start + length + 1] != b"}":
                raise ValueError("WAVEFORM tag not closed")
            pos = start + length + 1
            continue
        end = data.find(b"}", m.end())
        if end < 0:
            raise ValueError(f"tag {name} not closed")
        body = data[m.start("body") : end].decode("ascii").strip()
        if name == "TYPE":
            kind, _, ck = body.partition(",")
            if kind.strip() != "SMU-WV":
                raise ValueError(f"not an SMU-WV file ({kind!r})")
            checksum = int(ck) if ck.strip() else None
        elif name == "CLOCK":
            clock = float(body)
        pos = end + 1
    if iq is None:
        raise ValueError("no WAVEFORM tag")
    actual = wv_checksum(iq)
    if checksum is not None and checksum != actual:
        raise ValueError(f"checksum {checksum} != {actual}")
    return Wv(iq, clock, actual)


class GeneratorService(_RfService):
    """An R&S SMBV-style vector generator; `on_emission` hears every change of what it radiates.

    ``clock`` is the generator's time base (``started_at`` of an `Emission`, the end of a single playout).
    """

    name = "vsg"
    DEFAULT_PORT = VSG_PORT
    description = "Rohde & Schwarz SMBV100B vector signal generator with ARB (twin)"
    IDN: Final = "Rohde&Schwarz,SMBV100B,1423.1003K02/100002,4.70.026"
    MAX_LEVEL_DBM: Final = 18.0

    def __init__(self, on_emission: EmissionSink | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._sink = on_emission
        self._clock = clock
        self.waveforms: dict[str, Wv] = {}
        self.uploads = 0
        self.playouts = 0  # playouts started (AUTO starts and single-shot EXECs)
        self._defaults()
        commands = CommandSet()
        add_common_commands(commands, error_reply=_error_reply)
        self._add_commands(commands)
        self.server = BinaryScpiServer(Interpreter(commands), name=self.name)

    def _defaults(self) -> None:
        self.freq_hz = 1e9
        self.level_dbm = -30.0
        self.rf_on = False
        self.arb_on = False
        self.arb_clock_hz = 1e6
        self.selected: str | None = None
        self.sequence: Literal["AUTO", "SING"] = "AUTO"
        self.started_at: float | None = None  # the current (or last single-shot) playout's start

    def _reset(self, call: Call) -> None:
        call.expect(0)
        self._defaults()
        self._notify()

    def _add_commands(self, c: CommandSet) -> None:
        c.add("*IDN?", lambda call: self.IDN)
        c.add("*RST", self._reset)
        c.add("[SOURce#]:FREQuency[:CW]", self._freq)
        c.add("[SOURce#]:FREQuency[:CW]?", lambda call: repr(self.freq_hz))
        c.add("[SOURce#]:POWer[:LEVel][:IMMediate][:AMPLitude]", self._level)
        c.add("[SOURce#]:POWer[:LEVel][:IMMediate][:AMPLitude]?", lambda call: repr(self.level_dbm))
        c.add("OUTPut#[:STATe]", self._output)
        c.add("OUTPut#[:STATe]?", lambda call: str(int(self.rf_on)))
        c.add("[SOURce#]:BB:ARBitrary:WAVeform:DATA", self._upload)
        c.add("[SOURce#]:BB:ARBitrary:WAVeform:SELect", self._select)
        c.add("[SOURce#]:BB:ARBitrary:WAVeform:SELect?", lambda call: f"'{self.selected or ''}'")
        c.add("[SOURce#]:BB:ARBitrary:WAVeform:CATalog?", lambda call: ",".join(f"'{n}'" for n in self.waveforms))
        c.add("[SOURce#]:BB:ARBitrary:CLOCk", self._clock_rate)
        c.add("[SOURce#]:BB:ARBitrary:CLOCk?", lambda call: repr(self.arb_clock_hz))
        c.add("[SOURce#]:BB:ARBitrary[:STATe]", self._arb_state)
        c.add("[SOURce#]:BB:ARBitrary[:STATe]?", lambda call: str(int(self.arb_on)))
        c.add("[SOURce#]:BB:ARBitrary:SEQuence", self._sequence)
        c.add("[SOURce#]:BB:ARBitrary:SEQuence?", lambda call: self.sequence)
        c.add("[SOURce#]:BB:ARBitrary:TRIGger:EXECute", self._execute)
        c.add("[SOURce#]:BB:ARBitrary:TRIGger:RMODe?", lambda call: "RUN" if self.playing else "STOP")

    def _waveform(self) -> Wv | None:
        """The waveform the ARB would play (ARB on and a waveform selected), else None."""
        if not self.arb_on or self.selected is None:
            return None
        return self.waveforms.get(self.selected)

    @property
    def playing(self) -> bool:
        """A playout is under way: AUTO while the ARB plays, SINGle until n/clock after its EXEC."""
        wv = self._waveform()
        if wv is None or self.started_at is None:
            return False
        if self.sequence == "AUTO":
            return True
        return self._clock() < self.started_at + len(wv.iq) / self.arb_clock_hz

    def emission(self) -> Emission:
        """What the generator radiates now."""
        playing = self.playing
        wv = self._waveform() if playing else None
        return Emission(
            freq_hz=self.freq_hz,
            level_dbm=self.level_dbm,
            rf_on=self.rf_on,
            iq=wv.iq if wv is not None else None,
            clock_hz=self.arb_clock_hz,
            started_at=self.started_at if playing else None,
            repeat=self.sequence == "AUTO",
        )

    def _notify(self) -> None:
        if self._sink is not None:
            self._sink(self.emission())

    def _restart(self) -> None:
        """The ARB's playout restarts from the waveform's first sample (AUTO), or stops (SINGle: await EXEC)."""
        if self.sequence == "AUTO" and self._waveform() is not None:
            self.started_at = self._clock()
            self.playouts += 1
        else:
            self.started_at = None

    def _freq(self, call: Call) -> None:
        self.freq_hz = parse_number(call.expect(1)[0], low=8e3, high=6e9)
        self._notify()

    def _level(self, call: Call) -> None:
        self.level_dbm = parse_number(call.expect(1)[0], low=-145.0, high=self.MAX_LEVEL_DBM)
        self._notify()

    def _output(self, call: Call) -> None:
        self.rf_on = parse_bool(call.expect(1)[0])
        self._notify()

    def _upload(self, call: Call) -> None:
        name_text, block_text = call.expect(2)
        name = _string_param(name_text)
        try:
            wv = parse_wv(block_param(call, block_text))
        except ValueError as exc:
            raise ScpiError(ILLEGAL_PARAMETER, f"waveform file: {exc}") from None
        self.waveforms[name] = wv
        self.uploads += 1
        if name == self.selected:
            self._restart()
            self._notify()

    def _select(self, call: Call) -> None:
        name = _string_param(call.expect(1)[0])
        if name not in self.waveforms:
            raise ScpiError(ILLEGAL_PARAMETER, f"no waveform {name!r}")
        self.selected = name
        wv = self.waveforms[name]
        if wv.clock_hz is not None:
            self.arb_clock_hz = wv.clock_hz
        self._restart()
        self._notify()

    def _clock_rate(self, call: Call) -> None:
        self.arb_clock_hz = parse_number(call.expect(1)[0], low=400.0, high=600e6)
        self._notify()

    def _arb_state(self, call: Call) -> None:
        on = parse_bool(call.expect(1)[0])
        if on and self.selected is None:
            raise ScpiError(SETTINGS_CONFLICT, "no waveform selected")
        if on != self.arb_on:
            self.arb_on = on
            self._restart()
        self._notify()

    def _sequence(self, call: Call) -> None:
        word = call.expect(1)[0].strip().upper()
        if word == "AUTO":
            mode: Literal["AUTO", "SING"] = "AUTO"
        elif word in ("SING", "SINGLE"):
            mode = "SING"
        else:
            raise ScpiError(ILLEGAL_PARAMETER, "only AUTO and SINGle are modelled")
        if mode != self.sequence:
            self.sequence = mode
            self._restart()
        self._notify()

    def _execute(self, call: Call) -> None:
        call.expect(0)
        if self._waveform() is None:
            raise ScpiError(SETTINGS_CONFLICT, "trigger needs the ARB on with a waveform selected")
        if self.sequence != "SING":
            raise ScpiError(TRIGGER_IGNORED, "the ARB runs continuously (SEQ AUTO)")
        self.started_at = self._clock()  # a trigger during a playout restarts it
        self.playouts += 1
        self._notify()
