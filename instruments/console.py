"""A UART debug console with expect-style matching, over any pyserial URL (device, pty path, ``socket://``).

Lifecycle
    ``Console(url)`` opens the port and starts a reader thread. The thread decodes what arrives (UTF-8; bytes that
    are not UTF-8 become U+FFFD and are counted in `garbage_count`, decoding carries on), appends it to the expect
    buffer, splits it into lines for `lines` (bounded) and for the line log (``log_path``, one line per received or
    sent line with a UTC timestamp, flushed as written so it survives a crash), and wakes whoever waits in `expect`.
    ``close()`` stops the thread and closes the port and the log.

Matching
    `expect(pattern, timeout_s)` searches the text received and not yet consumed; on a match it consumes up to the
    end of the match and returns the `re.Match`. It waits on a condition variable that the reader notifies on every
    chunk — no polling, no sleeps. On timeout it raises `ConsoleTimeout` carrying the pattern and the last lines
    seen (including a partial one such as a prompt). If the port goes away, `ConsoleLost`.

    `command(cmd, prompt, timeout_s)` discards unconsumed text (it belongs to before the command), sends the line,
    waits for the prompt and returns what came in between, without the echo of the command.

Switching between the twin's pty, its TCP port and a real USB-UART is the URL in the bench config, nothing else.
"""

from __future__ import annotations

import codecs
import contextlib
import re
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import serial

from instruments.errors import InstrumentError

try:
    import termios

    # termios.error is no OSError: pyserial lets it escape when a pty's master vanished under a flush.
    _PORT_ERRORS: tuple[type[Exception], ...] = (serial.SerialException, OSError, termios.error)
except ImportError:  # not POSIX
    _PORT_ERRORS = (serial.SerialException, OSError)
# TypeError/AttributeError: pyserial's own close racing a read leaves the port half torn down.
_READER_ERRORS: tuple[type[Exception], ...] = (*_PORT_ERRORS, TypeError, AttributeError)

__all__ = ["Console", "ConsoleError", "ConsoleLost", "ConsoleTimeout"]

_MAX_PENDING = 256 * 1024  # unconsumed text kept for matching; a babbling port must not grow memory for ever
_READ_CHUNK = 4096


class ConsoleError(InstrumentError):
    """Base of the console errors; `resource` is the port URL."""


class ConsoleTimeout(ConsoleError):
    """The pattern did not appear in time."""

    def __init__(self, *, resource: str, pattern: str, timeout_s: float, last_lines: list[str]) -> None:
        shown = "\n".join(f"    | {line}" for line in last_lines) if last_lines else "    (nothing received)"
        super().__init__(
            f"console {resource}: no match for /{pattern}/ within {timeout_s:g} s; last seen:\n{shown}",
            resource=resource,
            command=f"expect /{pattern}/",
        )
        self.pattern = pattern
        self.timeout_s = timeout_s
        self.last_lines = last_lines


class ConsoleLost(ConsoleError):
    """The port went away (device unplugged, pty closed, socket dropped)."""

    def __init__(self, *, resource: str, reason: str, command: str | None = None) -> None:
        super().__init__(f"console {resource} lost ({reason})", resource=resource, command=command)
        self.reason = reason


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Console:
    """A UART console: reader thread, line log, expect/send/command. See the module doc."""

    def __init__(
        self,
        url: str,
        baudrate: int = 115200,
        log_path: str | Path | None = None,
        *,
        max_lines: int = 2000,
        eol: str = "\r\n",
        encoding: str = "utf-8",
    ) -> None:
        self.resource = url
        self.eol = eol
        self._encoding = encoding
        self._cond = threading.Condition()
        self._pending = ""  # received, not yet consumed by expect
        self._partial = ""  # the current line, not yet ended
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._garbage = 0
        self._bytes = 0
        self._lost: str | None = None
        self._closing = False
        self._write_lock = threading.Lock()
        self._log: IO[str] | None = None
        try:
            # A short read timeout lets the reader thread notice close() without a wake-up channel.
            self._port: Any = serial.serial_for_url(url, baudrate=baudrate, timeout=0.1, write_timeout=2.0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ConsoleLost(resource=url, reason=f"cannot open: {exc}", command="open") from exc
        if log_path is not None:
            self.log_path: Path | None = Path(log_path)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("a", encoding="utf-8")
        else:
            self.log_path = None
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._thread = threading.Thread(target=self._reader, name=f"console {url}", daemon=True)
        self._thread.start()

    # the reader thread

    def _reader(self) -> None:
        while not self._closing:
            try:
                data = self._port.read(max(1, min(_READ_CHUNK, self._port.in_waiting)))
            except _READER_ERRORS as exc:
                if not self._closing:
                    self._mark_lost(str(exc) or type(exc).__name__)
                return
            if data:
                self._ingest(bytes(data))

    def _mark_lost(self, reason: str) -> None:
        with self._cond:
            self._lost = reason
            self._cond.notify_all()
        self._log_line("!!", f"port lost: {reason}")

    def _ingest(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        garbage = text.count("\ufffd")
        finished: list[str] = []
        with self._cond:
            self._bytes += len(data)
            self._garbage += garbage
            self._pending += text
            if len(self._pending) > _MAX_PENDING:
                self._pending = self._pending[-_MAX_PENDING:]
            self._partial += text
            *complete, self._partial = self._partial.split("\n")
            for line in complete:
                line = line.rstrip("\r")
                self._lines.append(line)
                finished.append(line)
            self._cond.notify_all()
        for line in finished:
            self._log_line("RX", line)

    def _log_line(self, direction: str, line: str) -> None:
        if self._log is not None:
            with self._write_lock, contextlib.suppress(ValueError):  # ValueError: log closed meanwhile
                self._log.write(f"{_stamp()} {direction} {line}\n")
                self._log.flush()

    # what was seen

    @property
    def garbage_count(self) -> int:
        """Undecodable byte sequences received so far (each became one U+FFFD)."""
        with self._cond:
            return self._garbage

    @property
    def bytes_received(self) -> int:
        with self._cond:
            return self._bytes

    @property
    def lines(self) -> list[str]:
        """Complete lines received so far (the last `max_lines`)."""
        with self._cond:
            return list(self._lines)

    def last_seen(self, n: int = 10) -> list[str]:
        """The last `n` lines received, the unfinished one (e.g. a prompt) included."""
        with self._cond:
            seen = [*self._lines, self._partial] if self._partial else list(self._lines)
            return seen[-n:]

    @property
    def lost(self) -> str | None:
        """Why the port was lost, or None."""
        with self._cond:
            return self._lost

    # matching

    def expect(self, pattern: str | re.Pattern[str], timeout_s: float = 5.0) -> re.Match[str]:
        """Wait for `pattern` in the unconsumed text; consume through the match and return it."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = None
        with self._cond:
            while True:
                match = regex.search(self._pending)
                if match is not None:
                    self._pending = self._pending[match.end() :]
                    return match
                if self._lost is not None:
                    raise ConsoleLost(resource=self.resource, reason=self._lost, command=f"expect /{regex.pattern}/")
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + timeout_s
                if now >= deadline:
                    seen = [*self._lines, self._partial] if self._partial else list(self._lines)
                    raise ConsoleTimeout(
                        resource=self.resource, pattern=regex.pattern, timeout_s=timeout_s, last_lines=seen[-10:]
                    )
                self._cond.wait(deadline - now)

    def discard_pending(self) -> str:
        """Drop (and return) everything received but not yet consumed."""
        with self._cond:
            pending, self._pending = self._pending, ""
            return pending

    # sending

    def write(self, data: bytes) -> None:
        lost = self.lost
        if lost is not None:
            raise ConsoleLost(resource=self.resource, reason=lost, command="write")
        try:
            with self._write_lock:
                self._port.write(data)
        except _PORT_ERRORS as exc:
            self._mark_lost(str(exc))
            raise ConsoleLost(resource=self.resource, reason=str(exc), command="write") from exc

    def send_line(self, text: str) -> None:
        self.write((text + self.eol).encode(self._encoding))
        self._log_line("TX", text)

    def command(self, cmd: str, prompt_pattern: str = r"obc> ", timeout_s: float = 5.0) -> str:
        """Send `cmd`, wait for the prompt, return the output in between (echo of `cmd` removed, lines joined)."""
        self.discard_pending()
        self.send_line(cmd)
        match = self.expect(re.compile(rf"(.*?)(?:{prompt_pattern})", re.DOTALL), timeout_s)
        lines = match.group(1).replace("\r", "").split("\n")
        if lines and lines[0].strip() == cmd.strip():
            lines = lines[1:]  # the console's echo of what we typed
        return "\n".join(lines).strip("\n")

    # lifecycle

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(serial.SerialException, OSError, AttributeError):  # socket:// has no cancel_read
            self._port.cancel_read()
        self._thread.join(2.0)
        with contextlib.suppress(serial.SerialException, OSError):
            self._port.close()
        with self._write_lock:
            if self._log is not None:
                self._log.close()
                self._log = None
        with self._cond:
            if self._lost is None:
                self._lost = "closed by the bench"
            self._cond.notify_all()

    def __enter__(self) -> Console:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
