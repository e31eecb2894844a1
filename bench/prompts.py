"""The operator in the loop: steps only a person at the bench can do, asked, answered and journaled.

A test plan asks through the ``operator`` fixture (fixtures/operator.py)::

    operator.confirm("Confirm the RF cable J3 is connected to the attenuator")
    choice = operator.choose("Which antenna is fitted?", ["stub", "deployable"])
    volts = operator.enter_value("Battery voltage on the DMM", units="V")
    measure("EPS.BATTERY_VOLTAGE_DMM", volts, units="V")   # judged like any other value

Each prompt is answered by, in this order:

1. a **scripted answer** — the campaign's ``answers:`` or an answers file (``--answers FILE`` or
   ``$BENCH_ANSWERS``), keyed by the prompt's exact text — never waiting, even at a terminal;
2. the **operator at the terminal**, when the run is interactive (stdin is a terminal, ``CI`` is not set and
   the campaign's prompt policy is ``ask``);
3. **nobody**: the prompt never waits, and the test ends *skipped*, "needs an operator: <text>" — a step nobody
   did is never reported as passed.

Every prompt is journaled (``operator_prompt``: kind, text, options, units, answer, who answered, how long the
bench waited, outcome ``answered`` / ``declined`` / ``unanswered``) and shown in its test's report section.
A confirmation the operator declines fails the test: the procedure could not be followed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, NoReturn

from bench.config import parse_yaml, shown_value
from bench.errors import ConfigError
from bench.journal import Journal, utc_now

__all__ = [
    "AnswerSource",
    "Answered",
    "NeedsOperator",
    "OperatorDeclined",
    "OperatorPrompts",
    "Prompt",
    "PromptKind",
    "ScriptedAnswer",
    "coerce_answer",
    "load_answers",
]

PromptKind = Literal["confirm", "choose", "value"]
AnswerValue = bool | float | str
_YES = frozenset({"y", "yes", "true", "ok", "done", "confirmed"})
_NO = frozenset({"n", "no", "false", "declined"})


@dataclass(frozen=True)
class Prompt:
    kind: PromptKind
    text: str
    options: tuple[str, ...] = ()
    units: str = ""


@dataclass(frozen=True)
class ScriptedAnswer:
    """An answer written down before the run, and where it was written (for the journal's "answered by")."""

    value: AnswerValue
    source: str
    """The file that holds it (a campaign file or an answers file)."""


AnswerSource = Mapping[str, ScriptedAnswer]


class NeedsOperator(Exception):
    """Nobody can answer this prompt in this run; the test must not go on (the fixture skips it)."""

    def __init__(self, prompt: Prompt, why: str) -> None:
        super().__init__(f"needs an operator: {prompt.text}")
        self.prompt = prompt
        self.why = why


class OperatorDeclined(AssertionError):
    """The operator answered "no" to a confirmation: the procedure could not be followed, the test fails."""


def _coerce(prompt: Prompt, raw: object, where: str) -> AnswerValue:
    """``raw`` as the answer to ``prompt``: a yes/no, one of the options, or a finite number. ConfigError names
    ``where`` (the file and the answer's key, or "the terminal") when it is no such answer."""
    if prompt.kind == "confirm":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _YES | _NO:
            return text in _YES
        raise ConfigError(f"{where}: {shown_value(raw)} is no answer to a confirmation; give yes or no")
    if prompt.kind == "choose":
        if isinstance(raw, str) and raw in prompt.options:
            return raw
        raise ConfigError(f"{where}: {shown_value(raw)} is not one of the options: {', '.join(prompt.options)}")
    if isinstance(raw, bool):
        raise ConfigError(f"{where}: {shown_value(raw)} is not a number; give the value in {prompt.units or 'units'}")
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: {shown_value(raw)} is not a number; give the value in {prompt.units or 'units'}"
        ) from None
    if not math.isfinite(value):
        raise ConfigError(f"{where}: {shown_value(raw)} is not a finite number")
    return value


def load_answers(path: Path | str) -> dict[str, ScriptedAnswer]:
    """An answers file: a YAML mapping of prompt text → answer. One-line ConfigError naming file and key."""
    path = Path(path)
    raw = parse_yaml(path, "answers file")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: an answers file is a YAML mapping of prompt text to answer")
    answers: dict[str, ScriptedAnswer] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, bool | int | float | str):
            raise ConfigError(
                f"{path}: {shown_value(key)}: give the prompt's text as key and a yes/no, option or number"
            )
        answers[key] = ScriptedAnswer(
            float(value) if isinstance(value, int) and not isinstance(value, bool) else value, str(path)
        )
    return answers


class Answered(NamedTuple):
    """A raw answer and who gave it, when that is not the run's operator at the terminal (e.g. "browser
    127.0.0.1", the live page; "" = the run's operator)."""

    raw: object
    by: str


Ask = Callable[[Prompt], object]
"""Puts a prompt to the operator and returns the raw answer, or an :class:`Answered` (blocks until answered)."""


def coerce_answer(prompt: Prompt, raw: object, where: str = "answer") -> AnswerValue:
    """``raw`` as an answer to ``prompt`` (ConfigError naming ``where`` when it is none): for the live page,
    which refuses a wrong answer before it reaches the test."""
    return _coerce(prompt, raw, where)


class OperatorPrompts:
    """The object behind the ``operator`` fixture, one per test.

    ``answers``: scripted answers by prompt text; ``ask``: the terminal (None when nobody can be asked, and
    ``why`` says why); ``who``: the operator's name, for the journal."""

    def __init__(
        self,
        test_id: str,
        journal: Journal | None,
        answers: AnswerSource,
        ask: Ask | None,
        *,
        who: str,
        why: str = "",
    ) -> None:
        self.test_id = test_id
        self.journal = journal
        self.answers = answers
        self.ask = ask
        self.who = who
        self.why = why
        self.waited = 0.0
        """Seconds this test spent waiting for the operator (excluded from its timeout where it has one)."""

    def confirm(self, text: str) -> None:
        """The operator confirms a step is done; "no" fails the test (the procedure could not be followed)."""
        if self._answer(Prompt("confirm", text)) is not True:
            raise OperatorDeclined(f"the operator declined: {text}")

    def choose(self, text: str, options: list[str] | tuple[str, ...]) -> str:
        """One of ``options``, as the operator chose it."""
        if not options:
            raise ValueError(f"operator.choose({text!r}): give at least one option")
        return str(self._answer(Prompt("choose", text, tuple(str(o) for o in options))))

    def enter_value(self, text: str, *, units: str) -> float:
        """A number the operator read (a DMM, a gauge), in ``units``; judge it with ``measure``."""
        value = self._answer(Prompt("value", text, units=units))
        assert isinstance(value, float)
        return value

    def _answer(self, prompt: Prompt) -> AnswerValue:
        asked = utc_now()
        scripted = self.answers.get(prompt.text)
        if scripted is not None:
            value = _coerce(prompt, scripted.value, f"{scripted.source}: answers.{prompt.text!r}")
            self._journal(prompt, asked, value, f"script {scripted.source}", 0.0)
            return value
        if self.ask is None:
            self._journal(prompt, asked, None, "", 0.0, outcome="unanswered", note=self.why)
            self.unanswered(prompt)
        start = time.monotonic()
        by = ""
        while True:  # a typo at the terminal is asked again, not a failed test
            raw = self.ask(prompt)
            if isinstance(raw, Answered):
                raw, by = raw
            try:
                value = _coerce(prompt, raw, "answer")
                break
            except ConfigError:
                continue
        waited = time.monotonic() - start
        self.waited += waited
        self._journal(prompt, asked, value, by or f"operator {self.who}", waited)
        return value

    def unanswered(self, prompt: Prompt) -> NoReturn:
        """Nobody can answer: the test must not go on (the pytest fixture overrides this to skip)."""
        raise NeedsOperator(prompt, self.why)

    def _journal(
        self,
        prompt: Prompt,
        asked: str,
        value: AnswerValue | None,
        by: str,
        waited: float,
        *,
        outcome: str = "",
        note: str = "",
    ) -> None:
        if not outcome:
            outcome = "declined" if prompt.kind == "confirm" and value is False else "answered"
        if self.journal is None:
            return
        self.journal.record(
            "operator_prompt",
            test_id=self.test_id,
            prompt=prompt.kind,
            text=prompt.text,
            options=list(prompt.options),
            units=prompt.units,
            answer=value,
            answered_by=by,
            outcome=outcome,
            waited=round(waited, 3),
            asked=asked,
            note=note,
        )
