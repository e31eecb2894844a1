"""The operator prompt as the live page and the terminal see it: whoever answers first is the operator.

:class:`PromptSlot` holds the one prompt a run can have open (a test asks one question at a time). The test's
thread waits in :meth:`PromptSlot.ask`; the page answers through :meth:`PromptSlot.answer` (the server's
thread); when the run has a terminal, a line typed there answers too — read without blocking, so that the
page's answer is not held up by a terminal read, and a terminal line is never eaten after the page answered.

There is no timeout of its own: the prompt's policy is the one bench/prompts.py describes (a person at the
bench is waited for; the test's own timeout is paused meanwhile). An emergency stop ends the wait at once.
"""

from __future__ import annotations

import select
import threading
from dataclasses import dataclass
from typing import Any, TextIO

from bench import emergency
from bench.prompts import Answered, Prompt

__all__ = ["PromptSlot"]

POLL_S = 0.2  # how often a wait looks at the terminal and the emergency stop (the page's answer wakes it)


@dataclass(frozen=True)
class _Open:
    id: int
    prompt: Prompt


class PromptSlot:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open: _Open | None = None
        self._answer: Answered | None = None
        self._count = 0

    def shown(self) -> dict[str, Any] | None:
        """The open prompt as the page shows it, or None."""
        current = self._open
        if current is None:
            return None
        p = current.prompt
        return {"id": current.id, "kind": p.kind, "text": p.text, "options": list(p.options), "units": p.units}

    def current(self) -> Prompt | None:
        current = self._open
        return current.prompt if current is not None else None

    def ask(self, prompt: Prompt, terminal: TextIO | None = None) -> Answered:
        """Open ``prompt`` and wait for the first answer: the page's, or a line on ``terminal``."""
        with self._cond:
            self._count += 1
            self._open, self._answer = _Open(self._count, prompt), None
        try:
            while True:
                emergency.check()
                line = None
                if terminal is not None:
                    line = _line(terminal)
                    if line is _EOF:  # nobody will type there: the page still can
                        terminal, line = None, None
                with self._cond:
                    if line is not None and self._answer is None:
                        self._answer = Answered(line, "")  # "" = the terminal's operator (the run's own name)
                    if self._answer is None and terminal is None:
                        self._cond.wait(POLL_S)
                    if self._answer is not None:
                        return self._answer
        finally:
            with self._cond:
                self._open = None

    def answer(self, prompt_id: int, raw: object, by: str) -> bool:
        """The page's answer to prompt ``prompt_id``; False when that prompt is no longer open (answered)."""
        with self._cond:
            if self._open is None or self._open.id != prompt_id or self._answer is not None:
                return False
            self._answer = Answered(raw, by)
            self._cond.notify_all()
            return True


_EOF = "\x04"  # what _line returns when the terminal is gone


def _line(terminal: TextIO) -> str | None:
    """A line typed at the terminal within POLL_S, None when none was, _EOF when none ever will be."""
    try:
        ready, _, _ = select.select([terminal], [], [], POLL_S)
    except (OSError, ValueError):  # no selectable terminal after all: the page answers alone
        return _EOF
    if not ready:
        return None
    line = terminal.readline()
    return line.strip() if line else _EOF
