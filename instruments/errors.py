"""Errors raised by the instrument drivers.

Every error names the instrument (its VISA resource string), the command or driver call that failed, and
what the operator should check, in one line: the message ends up verbatim in the run journal and in
reports, where it is read by someone who was not watching the bench when it happened.

    InstrumentError              base; `resource`, `command` (None when no command was involved)
    ├── InstrumentTimeout        no reply within the I/O timeout
    ├── CaptureTimeout           an analyzer capture did not complete in time (no trigger?)
    ├── PlayoutTimeout           a generator's single-shot playout did not end in time
    ├── ConnectionLost           the link broke during or before an exchange
    ├── InstrumentUnreachable    the connection could not be opened at all
    ├── InstrumentRejected       the instrument's error queue reported an error after a command
    ├── SettingOutOfRange        refused by the driver before anything was sent
    ├── NotSupported             this model lacks the capability
    ├── WrongInstrument          *IDN? names another instrument than the driver's: nothing else is sent
    └── UnexpectedReply          the reply could not be parsed
"""

from __future__ import annotations

from typing import Any


class InstrumentError(Exception):
    """Base of all instrument errors: carries the `resource` and the `command` (or driver call)."""

    def __init__(self, message: str, *, resource: str, command: str | None = None) -> None:
        super().__init__(message)
        self.resource = resource
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses have their own constructor arguments; rebuild from message + attributes so the
        # errors survive pickling (multiprocessing, pytest-xdist) without each subclass repeating it.
        return (_rebuild, (type(self), str(self), dict(self.__dict__)))


def _rebuild(cls: type[InstrumentError], message: str, state: dict[str, Any]) -> InstrumentError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


def _quote(command: str | None) -> str:
    return f"'{command}'" if command else "(no command)"


class InstrumentTimeout(InstrumentError):
    """No reply within the I/O timeout."""

    def __init__(self, *, resource: str, command: str, timeout_s: float) -> None:
        super().__init__(
            f"no reply within {timeout_s:g} s to {_quote(command)} from {resource}"
            " — is the instrument hung or the link down?",
            resource=resource,
            command=command,
        )
        self.timeout_s = timeout_s


class ConnectionLost(InstrumentError):
    """The connection broke (peer closed it, reset, broken pipe) before or during an exchange."""

    def __init__(self, *, resource: str, command: str | None, reason: str) -> None:
        super().__init__(
            f"connection to {resource} lost at {_quote(command)} ({reason})"
            " — check the instrument and its network link; the next call reconnects",
            resource=resource,
            command=command,
        )
        self.reason = reason


class InstrumentUnreachable(InstrumentError):
    """The connection could not be opened (refused, no route, bad resource string)."""

    def __init__(self, *, resource: str, reason: str, command: str | None = None) -> None:
        super().__init__(
            f"cannot connect to {resource} ({reason})"
            " — check the instrument is powered and the resource string in the bench config",
            resource=resource,
            command=command,
        )
        self.reason = reason


class InstrumentRejected(InstrumentError):
    """The instrument's error queue held an error after a command (`SYST:ERR?` non-zero)."""

    def __init__(
        self,
        *,
        resource: str,
        command: str,
        code: int,
        text: str,
        more: tuple[tuple[int, str], ...] = (),
    ) -> None:
        extra = f" (+{len(more)} more queued)" if more else ""
        super().__init__(
            f'{resource} rejected {_quote(command)}: {code},"{text}"{extra}'
            " — check the command and value against the instrument's manual and state",
            resource=resource,
            command=command,
        )
        self.code = code
        self.text = text
        self.more = more


class SettingOutOfRange(InstrumentError):
    """Refused by the driver before sending: bad channel, or a value beyond the channel's rating."""

    def __init__(self, *, resource: str, command: str, reason: str) -> None:
        super().__init__(
            f"refused {_quote(command)} for {resource} before sending: {reason}"
            " — fix the value in the test or the DUT envelope",
            resource=resource,
            command=command,
        )
        self.reason = reason


class NotSupported(InstrumentError):
    """The model lacks the capability (e.g. no I/O watchdog, no digitizer)."""

    def __init__(self, *, resource: str, command: str, model: str, capability: str) -> None:
        super().__init__(
            f"{model} at {resource} has no {capability} ({command})"
            " — use a model that has it, or drop the requirement from the bench config",
            resource=resource,
            command=command,
        )
        self.model = model
        self.capability = capability


class UnexpectedReply(InstrumentError):
    """The reply could not be parsed as what the command returns."""

    def __init__(self, *, resource: str, command: str, reply: str, expected: str) -> None:
        super().__init__(
            f"unexpected reply {reply!r} to {_quote(command)} from {resource} (expected {expected})"
            " — is the driver in the bench config the right one for this instrument?",
            resource=resource,
            command=command,
        )
        self.reply = reply
        self.expected = expected


class CaptureTimeout(InstrumentError):
    """An analyzer capture did not complete in time (the trigger never came); the driver aborted it."""

    def __init__(self, *, resource: str, command: str, timeout_s: float, trigger: str) -> None:
        if trigger.startswith("IF power"):
            what, hint = "no trigger", "is the transmitter on and the RF path connected?"
        else:
            what, hint = "capture not complete", "is the record longer than the timeout allows?"
        super().__init__(
            f"{what} within {timeout_s:g} s ({trigger}) after {_quote(command)} on {resource}"
            f" — capture aborted; {hint}",
            resource=resource,
            command=command,
        )
        self.timeout_s = timeout_s
        self.trigger = trigger


class PlayoutTimeout(InstrumentError):
    """A generator's single-shot ARB playout was still running after the timeout."""

    def __init__(self, *, resource: str, command: str, timeout_s: float) -> None:
        super().__init__(
            f"playout started by {_quote(command)} on {resource} still running after {timeout_s:g} s"
            " — is the ARB in single-shot mode (SEQ SING) and the timeout longer than the waveform?",
            resource=resource,
            command=command,
        )
        self.timeout_s = timeout_s


class WrongInstrument(InstrumentError):
    """The instrument at the resource is not one the driver was written for (checked before any setting)."""

    def __init__(self, *, resource: str, driver: str, expected: str, identity: str) -> None:
        super().__init__(
            f"{resource} answers *IDN? with '{identity}', not a {expected} as driver {driver!r} needs; "
            "nothing else was sent — check the resource address and the driver in the bench config",
            resource=resource,
            command="*IDN?",
        )
        self.driver = driver
        self.expected = expected
        self.identity = identity
