"""A generic SCPI instrument served over TCP: parser, command tree, IEEE 488.2 error queue, line server.

How a line is handled (IEEE 488.2 / SCPI-1999, the subset real bench instruments rely on):

* The byte stream is cut into *program messages* at ``\\n`` (a trailing ``\\r`` is ignored) and each message
  into *program message units* at ``;`` (outside quoted strings).
* A unit is ``<header>[<whitespace><param>{,<param>}]``. Headers are case-insensitive, each node may be sent
  in its short (``MEAS``) or long (``MEASure``) form, bracketed nodes of a pattern (``[:DC]``) may be left
  out, a node marked ``#`` in a pattern takes an optional numeric suffix (``SOUR2``), a leading ``:`` means
  "from the root", ``*XXX`` are common commands.
* After ``A:B:C`` the next unit of the same message is first resolved relative to ``A:B`` (so
  ``MEAS:VOLT?;CURR?`` reads both), as the standard requires; if that names nothing, the twin retries from the
  root instead of failing (a real instrument would report -113 there). A new message starts at the root.
* Replies of all queries of one message are joined with ``;`` and terminated with ``\\n``. A query that fails
  replies nothing (the client times out, as with a real instrument) and queues its error.
* Each connection has its own error queue (20 entries; on overflow the newest entry becomes -350) and its own
  status bytes, so two clients never read each other's errors.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "DATA_OUT_OF_RANGE",
    "DATA_STALE",
    "DATA_TYPE_ERROR",
    "DEVICE_ERROR",
    "ILLEGAL_PARAMETER",
    "INVALID_SUFFIX",
    "MISSING_PARAMETER",
    "PARAMETER_NOT_ALLOWED",
    "QUEUE_OVERFLOW",
    "SETTINGS_CONFLICT",
    "SYNTAX_ERROR",
    "TOO_MUCH_DATA",
    "TRIGGER_IGNORED",
    "UNDEFINED_HEADER",
    "Call",
    "CommandSet",
    "ErrorQueue",
    "Interpreter",
    "ScpiError",
    "ScpiServer",
    "Session",
    "add_common_commands",
    "is_channel_list",
    "parse_bool",
    "parse_channel_list",
    "parse_int",
    "parse_number",
    "split_params",
    "split_units",
]

_log = logging.getLogger(__name__)

SYNTAX_ERROR: Final = -102
DATA_TYPE_ERROR: Final = -104
PARAMETER_NOT_ALLOWED: Final = -108
MISSING_PARAMETER: Final = -109
UNDEFINED_HEADER: Final = -113
INVALID_SUFFIX: Final = -131
TRIGGER_IGNORED: Final = -211
SETTINGS_CONFLICT: Final = -221
DATA_OUT_OF_RANGE: Final = -222
TOO_MUCH_DATA: Final = -223
ILLEGAL_PARAMETER: Final = -224
DATA_STALE: Final = -230
DEVICE_ERROR: Final = -300
QUEUE_OVERFLOW: Final = -350

ERROR_TEXT: Final[dict[int, str]] = {
    0: "No error",
    SYNTAX_ERROR: "Syntax error",
    DATA_TYPE_ERROR: "Data type error",
    PARAMETER_NOT_ALLOWED: "Parameter not allowed",
    MISSING_PARAMETER: "Missing parameter",
    UNDEFINED_HEADER: "Undefined header",
    INVALID_SUFFIX: "Invalid suffix",
    TRIGGER_IGNORED: "Trigger ignored",
    SETTINGS_CONFLICT: "Settings conflict",
    DATA_OUT_OF_RANGE: "Data out of range",
    TOO_MUCH_DATA: "Too much data",
    ILLEGAL_PARAMETER: "Illegal parameter value",
    DATA_STALE: "Data corrupt or stale",
    DEVICE_ERROR: "Device-specific error",
    QUEUE_OVERFLOW: "Queue overflow",
}

# Standard Event Status Register bits set by each error class (IEEE 488.2 §11.5.1).
_ESR_OPC: Final = 1 << 0
_ESR_QUERY_ERROR: Final = 1 << 2
_ESR_DEVICE_ERROR: Final = 1 << 3
_ESR_EXECUTION_ERROR: Final = 1 << 4
_ESR_COMMAND_ERROR: Final = 1 << 5

MAX_LINE_BYTES: Final = 1 << 20
MAX_CHANNEL_LIST: Final = 1024  # channels in one channel list; far more than any instrument here has


class ScpiError(Exception):
    """Raised by handlers (and the parser); the interpreter queues ``code`` and carries on."""

    def __init__(self, code: int, detail: str = "") -> None:
        self.code = code
        self.text = ERROR_TEXT.get(code, "Unknown error")
        self.detail = detail
        super().__init__(f"{code},{self.text}" + (f" ({detail})" if detail else ""))


# --------------------------------------------------------------------------------------------- error queue


class ErrorQueue:
    """IEEE 488.2 error/event queue: FIFO of 20; when full, the newest entry is replaced by -350."""

    CAPACITY: Final = 20

    def __init__(self) -> None:
        self._queue: deque[tuple[int, str]] = deque()

    def push(self, code: int, text: str | None = None) -> None:
        entry = (code, text if text is not None else ERROR_TEXT.get(code, "Unknown error"))
        if len(self._queue) < self.CAPACITY:
            self._queue.append(entry)
        elif self._queue[-1][0] != QUEUE_OVERFLOW:
            self._queue[-1] = (QUEUE_OVERFLOW, ERROR_TEXT[QUEUE_OVERFLOW])

    def pop(self) -> tuple[int, str]:
        return self._queue.popleft() if self._queue else (0, ERROR_TEXT[0])

    def clear(self) -> None:
        self._queue.clear()

    def __len__(self) -> int:
        return len(self._queue)


@dataclass
class Session:
    """Per-connection state: error queue, status registers and the current header path."""

    peer: str = "local"
    errors: ErrorQueue = field(default_factory=ErrorQueue)
    esr: int = 0
    ese: int = 0
    sre: int = 0
    path: list[str] = field(default_factory=list)

    def error(self, code: int) -> None:
        self.errors.push(code)
        if -199 <= code <= -100:
            self.esr |= _ESR_COMMAND_ERROR
        elif -299 <= code <= -200:
            self.esr |= _ESR_EXECUTION_ERROR
        elif -399 <= code <= -300:
            self.esr |= _ESR_DEVICE_ERROR
        elif -499 <= code <= -400:
            self.esr |= _ESR_QUERY_ERROR

    def status_byte(self) -> int:
        stb = 0
        if len(self.errors):
            stb |= 1 << 2  # error/event queue not empty
        if self.esr & self.ese:
            stb |= 1 << 5  # ESB summary
        return stb


# ----------------------------------------------------------------------------------------------- lexing


def _split_outside(text: str, sep: str, *, track_parens: bool) -> list[str]:
    """Split on ``sep`` outside quotes (and, optionally, parentheses such as ``(@1,3)``)."""
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    depth = 0
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif track_parens and ch == "(":
            depth += 1
        elif track_parens and ch == ")":
            depth -= 1
        elif ch == sep and depth <= 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def split_units(message: str) -> list[str]:
    """Program message → its units (``;`` outside quoted strings)."""
    return _split_outside(message, ";", track_parens=False)


def split_params(text: str) -> list[str]:
    """Parameter text → parameters (``,`` outside quotes and parentheses), each stripped.

    An empty parameter between commas is a syntax error; no text at all is no parameters.
    """
    if not text.strip():
        return []
    if text.count("(") != text.count(")"):
        raise ScpiError(SYNTAX_ERROR, "unbalanced parentheses")
    params = [p.strip() for p in _split_outside(text, ",", track_parens=True)]
    if any(not p for p in params):
        raise ScpiError(SYNTAX_ERROR, "empty parameter")
    return params


_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_COMMON = re.compile(r"\*[A-Za-z]+")


@dataclass(frozen=True)
class _Unit:
    common: bool
    absolute: bool
    tokens: tuple[str, ...]  # upper case, no colons, no '?'
    query: bool
    params: list[str]
    header: str


def _parse_unit(text: str) -> _Unit:
    head, _, rest = text.strip().partition(" ")
    if "\t" in head:  # tab is whitespace too; the header ends at the first blank of either kind
        head, _, more = head.partition("\t")
        rest = f"{more} {rest}"
    query = head.endswith("?")
    name = head[:-1] if query else head
    params = split_params(rest)
    if _COMMON.fullmatch(name):
        return _Unit(True, True, (name.upper(),), query, params, head)
    absolute = name.startswith(":")
    tokens = name[1:].split(":") if absolute else name.split(":")
    if not all(_TOKEN.fullmatch(t) for t in tokens):
        raise ScpiError(SYNTAX_ERROR, f"bad header {head!r}")
    return _Unit(False, absolute, tuple(t.upper() for t in tokens), query, params, head)


# ----------------------------------------------------------------------------------------- command tree


@dataclass(frozen=True)
class _Node:
    short: str
    long: str
    optional: bool
    suffix: bool

    def match(self, token: str) -> tuple[bool, int | None]:
        base = token.rstrip("0123456789")
        digits = token[len(base) :]
        if digits and not self.suffix:
            return False, None
        if base not in (self.short, self.long):
            return False, None
        return True, int(digits) if digits else None


_PATTERN_NODE = re.compile(r"\[:?(?P<opt>\*?[A-Za-z]+)(?P<osfx>#?)\]|:?(?P<req>\*?[A-Za-z]+)(?P<rsfx>#?)")


def _compile(pattern: str) -> tuple[tuple[_Node, ...], bool]:
    query = pattern.endswith("?")
    body = pattern[:-1] if query else pattern
    nodes: list[_Node] = []
    pos = 0
    while pos < len(body):
        m = _PATTERN_NODE.match(body, pos)
        if m is None:
            raise ValueError(f"bad SCPI pattern {pattern!r} at {pos}")
        word = m["opt"] or m["req"]
        short = "".join(ch for ch in word if not ch.islower())
        nodes.append(_Node(short, word.upper(), m["opt"] is not None, bool(m["osfx"] or m["rsfx"])))
        pos = m.end()
    return tuple(nodes), query


Reply = str | None
Handler = Callable[["Call"], Reply | Awaitable[Reply]]


@dataclass(frozen=True)
class Call:
    """One program message unit as a handler sees it."""

    header: str
    params: list[str]
    suffixes: dict[str, int]
    session: Session

    def suffix(self, node: str, default: int | None = None) -> int | None:
        """Numeric suffix given on ``node`` (long form, e.g. ``"SOURCE"``), else ``default``."""
        return self.suffixes.get(node.upper(), default)

    def expect(self, low: int, high: int | None = None) -> list[str]:
        """The parameters, checked for count (-109 too few, -108 too many)."""
        high = low if high is None else high
        if len(self.params) < low:
            raise ScpiError(MISSING_PARAMETER)
        if len(self.params) > high:
            raise ScpiError(PARAMETER_NOT_ALLOWED)
        return self.params


@dataclass(frozen=True)
class _Command:
    pattern: str
    nodes: tuple[_Node, ...]
    query: bool
    handler: Handler

    def match(self, tokens: tuple[str, ...]) -> dict[str, int] | None:
        suffixes: dict[str, int] = {}

        def walk(i: int, j: int) -> bool:
            if i == len(self.nodes):
                return j == len(tokens)
            node = self.nodes[i]
            if j < len(tokens):
                ok, sfx = node.match(tokens[j])
                if ok and walk(i + 1, j + 1):
                    if sfx is not None:
                        suffixes[node.long] = sfx
                    return True
            return node.optional and walk(i + 1, j)

        return suffixes if walk(0, 0) else None


class CommandSet:
    """The command tree of one instrument, declared as patterns (``MEASure[:SCALar]:VOLTage[:DC]?``)."""

    def __init__(self) -> None:
        self._commands: list[_Command] = []

    def add(self, pattern: str, handler: Handler) -> None:
        nodes, query = _compile(pattern)
        self._commands.append(_Command(pattern, nodes, query, handler))

    def lookup(self, tokens: tuple[str, ...], query: bool) -> tuple[Handler, dict[str, int]] | None:
        for command in self._commands:
            if command.query != query:
                continue
            suffixes = command.match(tokens)
            if suffixes is not None:
                return command.handler, suffixes
        return None

    def patterns(self) -> list[str]:
        return [c.pattern for c in self._commands]


# ---------------------------------------------------------------------------------------------- interpreter


class Interpreter:
    """Executes program messages against a command set; no I/O, so it is unit-testable.

    ``translate`` maps an exception a handler let through (e.g. the model refusing a setting) to the
    ScpiError to queue; an exception it does not know is a bug: logged with its traceback, queued as -300.
    """

    def __init__(
        self,
        commands: CommandSet,
        translate: Callable[[Exception], ScpiError | None] = lambda exc: None,
    ) -> None:
        self.commands = commands
        self._translate = translate

    async def execute(self, session: Session, message: str) -> str | None:
        """Run one program message; return the reply (without terminator) or None if nothing to say."""
        replies: list[str] = []
        session.path = []
        for text in split_units(message):
            if not text.strip():
                continue
            try:
                reply = await self._execute_unit(session, text)
            except ScpiError as exc:
                _log.debug("%s: %r → %s", session.peer, text, exc)
                session.error(exc.code)
                continue
            except Exception as exc:
                mapped = self._translate(exc)
                if mapped is None:
                    _log.exception("%s: %r failed", session.peer, text)
                    session.error(DEVICE_ERROR)
                else:
                    _log.debug("%s: %r → %s", session.peer, text, mapped)
                    session.error(mapped.code)
                continue
            if reply is not None:
                replies.append(reply)
        return ";".join(replies) if replies else None

    async def _execute_unit(self, session: Session, text: str) -> str | None:
        unit = _parse_unit(text)
        candidates = [unit.tokens]
        if not unit.common and not unit.absolute and session.path:
            candidates.insert(0, (*session.path, *unit.tokens))
        for tokens in candidates:
            found = self.commands.lookup(tokens, unit.query)
            if found is None:
                continue
            handler, suffixes = found
            if not unit.common:
                session.path = list(tokens[:-1])
            result = handler(Call(unit.header, unit.params, suffixes, session))
            if inspect.isawaitable(result):
                result = await result
            return result if unit.query else None
        raise ScpiError(UNDEFINED_HEADER, unit.header)


# ------------------------------------------------------------------------------------------- parameters

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_PREFIX: Final[dict[str, float]] = {"": 1.0, "M": 1e-3, "U": 1e-6, "K": 1e3}
_KEYWORDS: Final[dict[str, str]] = {
    "MIN": "MIN",
    "MINIMUM": "MIN",
    "MAX": "MAX",
    "MAXIMUM": "MAX",
    "DEF": "DEF",
    "DEFAULT": "DEF",
}


def parse_number(
    text: str,
    *,
    low: float,
    high: float,
    default: float | None = None,
    unit: str | None = None,
) -> float:
    """A numeric parameter within [low, high]: NR1/NR2/NR3, optional unit (``500mA``), MIN/MAX/DEF.

    -104 if it is not a number, -131 if the unit is wrong, -222 if it is outside the range.
    """
    word = text.strip().upper()
    if word in _KEYWORDS:
        kind = _KEYWORDS[word]
        if kind == "MIN":
            return low
        if kind == "MAX":
            return high
        return default if default is not None else low
    m = _NUMBER.match(word)
    if m is None:
        raise ScpiError(DATA_TYPE_ERROR, text)
    value = float(m.group())
    rest = word[m.end() :].strip()
    if rest:
        if unit is None or not rest.endswith(unit.upper()) or rest[: -len(unit)] not in _PREFIX:
            raise ScpiError(INVALID_SUFFIX, text)
        value *= _PREFIX[rest[: -len(unit)]]
    if not low <= value <= high:
        raise ScpiError(DATA_OUT_OF_RANGE, f"{value:g} outside {low:g}..{high:g}")
    return value


def parse_int(text: str, *, low: int, high: int) -> int:
    """An integer parameter (a decimal value is rounded, as SCPI allows) within [low, high]."""
    return round(parse_number(text, low=low, high=high))


def parse_bool(text: str) -> bool:
    """SCPI boolean: ON|OFF|1|0 (-224 otherwise)."""
    word = text.strip().upper()
    if word in ("ON", "1"):
        return True
    if word in ("OFF", "0"):
        return False
    raise ScpiError(ILLEGAL_PARAMETER, text)


def is_channel_list(text: str) -> bool:
    return text.strip().startswith("(")


def parse_channel_list(text: str) -> list[int]:
    """``(@1)``, ``(@1,3)``, ``(@1:3)`` (and ``(@3:1)``, descending) → channel numbers in order.

    A malformed list is a syntax error (-102); which numbers exist is the instrument's business, but a list of
    more than `MAX_CHANNEL_LIST` channels is refused as too much data (-223) before it is built: ``(@1:99999999)``
    must not cost the twin seconds and gigabytes.
    """
    m = re.fullmatch(r"\(\s*@(.*)\)", text.strip())
    if m is None:
        raise ScpiError(SYNTAX_ERROR, f"bad channel list {text!r}")
    channels: list[int] = []
    for item in m.group(1).split(","):
        first, sep, last = item.partition(":")
        try:
            a = int(first.strip())
            b = int(last.strip()) if sep else a
        except ValueError:
            raise ScpiError(SYNTAX_ERROR, f"bad channel list {text!r}") from None
        if len(channels) + abs(b - a) + 1 > MAX_CHANNEL_LIST:
            raise ScpiError(TOO_MUCH_DATA, f"channel list {text[:40]!r} names over {MAX_CHANNEL_LIST} channels")
        step = 1 if b >= a else -1
        channels.extend(range(a, b + step, step))
    return channels


# ------------------------------------------------------------------------------------ IEEE 488.2 common


def add_common_commands(
    commands: CommandSet,
    *,
    error_reply: Callable[[int, str], str],
    int_reply: Callable[[int], str] = str,
) -> None:
    """The session-level common commands and the error queue (instrument-specific ones are the dialect's).

    ``error_reply`` and ``int_reply`` format replies the way the emulated maker does (``+0`` vs ``0``).
    """

    def cls(call: Call) -> None:
        call.expect(0)
        call.session.errors.clear()
        call.session.esr = 0

    def esr_query(call: Call) -> str:
        call.expect(0)
        value, call.session.esr = call.session.esr, 0
        return int_reply(value)

    def ese(call: Call) -> None:
        call.session.ese = parse_int(call.expect(1)[0], low=0, high=255)

    def sre(call: Call) -> None:
        call.session.sre = parse_int(call.expect(1)[0], low=0, high=255)

    def opc(call: Call) -> None:
        call.expect(0)
        call.session.esr |= _ESR_OPC

    def opc_query(call: Call) -> str:
        call.expect(0)
        return "1"  # commands run one after another, so everything before is complete

    def error_query(call: Call) -> str:
        call.expect(0)
        return error_reply(*call.session.errors.pop())

    commands.add("*CLS", cls)
    commands.add("*ESR?", esr_query)
    commands.add("*ESE", ese)
    commands.add("*ESE?", lambda call: int_reply(call.session.ese))
    commands.add("*SRE", sre)
    commands.add("*SRE?", lambda call: int_reply(call.session.sre))
    commands.add("*STB?", lambda call: int_reply(call.session.status_byte()))
    commands.add("*OPC", opc)
    commands.add("*OPC?", opc_query)
    commands.add("*WAI", lambda call: None)
    commands.add("SYSTem:ERRor[:NEXT]?", error_query)
    commands.add("SYSTem:ERRor:COUNt?", lambda call: int_reply(len(call.session.errors)))
    commands.add("SYSTem:VERSion?", lambda call: "1999.0")
    commands.add("SYSTem:REMote", lambda call: None)
    commands.add("SYSTem:LOCal", lambda call: None)
    commands.add("SYSTem:RWLock", lambda call: None)


# ---------------------------------------------------------------------------------------------- server


class ScpiServer:
    """Raw-socket SCPI server (the ``TCPIP0::host::port::SOCKET`` resource type): many clients at once.

    ``on_io`` is called for every chunk of bytes received on any connection (the I/O watchdog's food).
    ``silent`` simulates a hung instrument: bytes are read and dropped, nothing is executed or answered.
    """

    STREAM_LIMIT = 1 << 16  # asyncio's default read buffer limit

    def __init__(self, interpreter: Interpreter, *, name: str, on_io: Callable[[], None] = lambda: None) -> None:
        self.interpreter = interpreter
        self.name = name
        self.silent = False
        self._on_io = on_io
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._address: tuple[str, int] | None = None

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, bound port) once started."""
        return self._address

    @property
    def connections(self) -> int:
        return len(self._writers)

    async def start(self, host: str, port: int) -> int:
        """Listen; return the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(self._client, host, port, limit=self.STREAM_LIMIT)
        bound = int(self._server.sockets[0].getsockname()[1])
        self._address = (host, bound)
        return bound

    def drop_all(self) -> int:
        """Close every client connection (the server keeps listening); return how many were closed."""
        writers = list(self._writers)
        for writer in writers:
            writer.close()
        return len(writers)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop_all()
        if self._server is not None:
            await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        session = Session(peer=f"{self.name}<-{peer[0]}:{peer[1]}" if peer else self.name)
        self._writers.add(writer)
        _log.debug("%s: connected", session.peer)
        buffer = bytearray()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if self.silent:
                    continue
                self._on_io()
                buffer += data
                while (end := buffer.find(b"\n")) >= 0:
                    line = bytes(buffer[:end]).decode("latin-1").rstrip("\r")
                    del buffer[: end + 1]
                    reply = await self.interpreter.execute(session, line)
                    if reply is not None and not self.silent and not writer.is_closing():
                        writer.write(reply.encode("latin-1") + b"\n")
                        await writer.drain()
                if len(buffer) > MAX_LINE_BYTES:
                    buffer.clear()
                    session.error(TOO_MUCH_DATA)
        except (ConnectionError, OSError) as exc:
            _log.debug("%s: connection lost: %s", session.peer, exc)
        finally:
            self._writers.discard(writer)
            writer.close()
            _log.debug("%s: disconnected", session.peer)
