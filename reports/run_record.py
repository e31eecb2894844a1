"""The run record: one run's journal read once into immutable, typed records.

The journal (``<run-dir>/journal.jsonl``, docs/contracts.md §4) is the bench's account of one run, written
one JSON object per line, each flushed to disk the moment the thing it describes happened. A report is
therefore built from whatever the journal holds when the report is asked for, including the journal of a
run whose bench process was killed. :func:`read_journal` reads it once into a :class:`RunRecord`, and that one
record feeds everything made at the end of a run: the report view (:mod:`reports.html`, printed by
:mod:`reports.pdf`), the results database (:func:`reports.db.import_run`) and the end-of-run summaries.

``run_start``        → :class:`RunInfo` (campaign, model level, DUT, who/where/which software, bench, procedure)
``instrument``       → :class:`InstrumentRecord` (identity and calibration as read at session start)
``limits``           → :class:`LimitsInfo` (the limits file in force and its limits, not interpreted)
``test_start``       → opens a :class:`TestRecord`; ``measurement`` and ``attachment`` lines fill it;
``test_end``         → closes it with an outcome, a duration and a message
``safe_state``       → :class:`SafeStateEvent`
``emergency_stop``   → :class:`EmergencyStopEvent` (an operator stopped the bench: ``bench safe``)
``dut_identity``     → :class:`DutIdentity` (what each node said about itself; its last reading wins)
``deviation``        → :class:`Deviation` (an approved deviation from the procedure)
``campaign``         → :class:`CampaignInfo` (the campaign file the run followed, its SHA-256 and text)
``operator_prompt``  → :class:`OperatorAction` in its test (a prompt, its answer, who answered, the wait)
``run_end``          → :class:`RunEnd`
``db_import``        → :class:`DbImport` (whether the run reached the results database; the last one wins)

A parallel run (``bench run --parallel N``) keeps one journal per worker next to the run's own: the run's
``journal.jsonl`` holds what the controller wrote (run_start with ``workers: N``, limits, run_end, db_import) and
each worker appends its twin, instruments and tests to ``journal-<worker>.jsonl`` (``journal-gw0.jsonl``, …).
``run_start.workers`` is the index: when it is set, :func:`read_journal` reads every ``journal-*.jsonl`` beside
the run's journal into the same record (tests in the order they started), so the report, the results DB and
``bench report`` see one run; each worker file is tolerated and checked exactly like the run's own.

Reading is tolerant of the ways a run can end badly, and strict about everything else:

* a last line that is not valid JSON (killed mid-write) is ignored, with a note in ``RunRecord.warnings``;
* a test without ``test_end`` becomes outcome ``interrupted`` with message "run ended during this test";
* a journal without ``run_end`` is "incomplete (bench process ended without closing the run)";
* unknown kinds are ignored, so newer writers can add kinds without breaking older reports;
* any other line that is not a JSON object, or a field of the wrong type or outside its set of values,
  raises :class:`JournalError` naming the file and the line: a qualification report must not silently
  show something other than what the bench recorded. The descriptive records (``dut_identity``,
  ``deviation``, the run_start's ``bench``/``procedure``/``dut.part_number``) are read as text whatever
  their JSON type, as the report always showed them.

Fields missing from a record take an empty value (``None``, ``""``, ``()``), so a report can still be made
from an older or partial writer; the report shows them as blanks.

Decoding: one decoder, msgspec's (benchmarks/bench_codec.py). A ``measurement`` line as the bench writes it
(``{"kind":"measurement",...``, every field of the type the bench writes) is decoded straight into a
:class:`Measurement` (a msgspec Struct), its types checked by the decoder; every other line is decoded to a
dict and read field by field (:class:`_Fields`), which converts what it may (an integer bound to a float, a
single requirement to a list) and names the field that is wrong. A line msgspec refuses is given to the
standard library's ``json.loads``, which reads the ``NaN``/``Infinity`` tokens of journals written before the
journal became strict JSON, and says why a broken line is broken. ``read_journal(path, fast=False)`` reads
every line the field-by-field way: the reference the typed path is tested against.

The overall verdict of a run (:attr:`RunRecord.verdict`) is decided here, not in a template, so that the
HTML, the PDF, JUnit and the VCRM all agree:

* ``ABORTED`` when an operator's emergency stop ended the run (``emergency_stop``), whatever ran before;
* ``INCOMPLETE`` when the run did not close, has no ``run_start``, was interrupted, has a test that did not run
  to its end (outcome ``interrupted``), or executed no test;
* ``FAIL`` when any test failed or errored, or any measurement failed;
* ``PASS`` otherwise (marginal measurements pass; the summary counts them).

This module imports nothing from the bench: it reads the journal's JSON itself.
"""

from __future__ import annotations

import gc
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Final, Literal, TypeAlias, cast

import msgspec

__all__ = [
    "INCOMPLETE_STATUS",
    "OPEN_TEST_MESSAGE",
    "OUTCOMES",
    "VERDICTS",
    "Attachment",
    "Calibration",
    "CalibrationStatus",
    "CampaignInfo",
    "DbImport",
    "Deviation",
    "DutIdentity",
    "DutInfo",
    "EmergencyStopEvent",
    "Identity",
    "InstrumentRecord",
    "JournalError",
    "LimitsInfo",
    "MeasuredValue",
    "Measurement",
    "OperatorAction",
    "Outcome",
    "RunEnd",
    "RunInfo",
    "RunRecord",
    "RunVerdict",
    "SafeStateEvent",
    "TestRecord",
    "Verdict",
    "gc_paused",
    "loose_text",
    "parse_time",
    "read_journal",
]

Outcome: TypeAlias = Literal["passed", "failed", "error", "skipped", "interrupted"]
Verdict: TypeAlias = Literal["pass", "marginal", "fail"]
CalibrationStatus: TypeAlias = Literal["valid", "expired", "missing", "n/a"]
RunVerdict: TypeAlias = Literal["PASS", "FAIL", "INCOMPLETE", "ABORTED"]
MeasuredValue: TypeAlias = float | int | bool | str | None

OUTCOMES: Final[tuple[Outcome, ...]] = ("passed", "failed", "error", "skipped", "interrupted")
VERDICTS: Final[tuple[Verdict, ...]] = ("pass", "marginal", "fail")
CALIBRATION_STATUSES: Final[tuple[CalibrationStatus, ...]] = ("valid", "expired", "missing", "n/a")

OPEN_TEST_MESSAGE: Final = "run ended during this test (bench process killed?)"
INCOMPLETE_STATUS: Final = "incomplete (bench process ended without closing the run)"
COMPLETE_STATUS: Final = "complete"

# pytest exit codes that mean "the tests ran to the end" (0: all passed, 1: some failed).
_NORMAL_EXIT: Final = (0, 1)
_EXIT_MEANING: Final = {
    2: "run interrupted",
    3: "internal error in the bench",
    4: "bench usage error",
    5: "no tests were collected",
}


class JournalError(ValueError):
    """The journal cannot be read: not JSON lines, or a record that breaks the contract."""

    def __init__(self, path: Path, line: int | None, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")


# --------------------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Identity:
    """What the instrument answered to ``*IDN?``."""

    maker: str = ""
    model: str = ""
    serial: str = ""
    firmware: str = ""


@dataclass(frozen=True)
class Calibration:
    """The calibration record of one instrument, as checked at session start."""

    certificate: str = ""
    due: str = ""
    uncertainty: Mapping[str, object] = field(default_factory=dict)
    """Quantity → uncertainty as recorded (the bench writes numbers; free text is kept under key "")."""
    status: CalibrationStatus = "missing"


@dataclass(frozen=True)
class InstrumentRecord:
    role: str
    driver: str
    resource: str
    identity: Identity
    calibration: Calibration


@dataclass(frozen=True)
class DutInfo:
    name: str = ""
    model_level: str = ""
    serial: str = ""
    envelope: Mapping[str, object] = field(default_factory=dict)
    part_number: str = ""


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    time: str
    campaign: str
    model_level: str
    operator: str
    host: str
    git_revision: str
    software_version: str
    bench_config: str
    config_hash: str
    dut: DutInfo
    argv: tuple[str, ...]
    bench: str = ""
    """The bench the run held (``bench.name`` of the bench config)."""
    limits_file: str = ""
    procedure: str = ""
    """``run_start.procedure`` ({id, issue} → "ID issue N", or text), when the bench records it."""
    workers: int = 0
    """Parallel workers of the run (``run_start.workers``): each kept its own ``journal-<worker>.jsonl``."""


class Measurement(msgspec.Struct, frozen=True, gc=False):
    """One measured value with its limits and verdict, exactly as the bench judged it.

    A msgspec Struct: the journal's measurement lines are decoded straight into it, their types checked by
    the decoder (a line it refuses is read field by field instead). Immutable; not tracked by the cyclic GC
    (it holds no cycle), which a run of 100 000 measurements would otherwise walk again and again."""

    test_id: str
    name: str
    value: MeasuredValue
    units: str
    low: float | None
    high: float | None
    verdict: Verdict
    margin: float | None
    margin_pct: float | None
    requirements: tuple[str, ...]
    time: str
    description: str = ""
    uncertainty: float | None = None
    """Measurement uncertainty in ``units``, when the bench knows it."""
    extra: dict[str, Any] = {}
    """Anything else the bench attached to the measurement (kept, not interpreted)."""


@dataclass(frozen=True)
class Attachment:
    """A file stored next to the journal; ``path`` is relative to the run directory."""

    test_id: str | None
    name: str
    path: str
    mime: str


@dataclass(frozen=True)
class OperatorAction:
    """One operator prompt of a test (``operator_prompt``): what was asked, the answer and who gave it."""

    prompt: str
    """confirm, choose or value."""
    text: str
    options: tuple[str, ...]
    units: str
    answer: str
    """The answer as text ("yes"/"no", the option, the number); "" when nobody answered."""
    answered_by: str
    """"operator NAME", "script FILE", or "" (nobody)."""
    outcome: str
    """answered, declined or unanswered."""
    waited: float | None
    """Seconds the bench waited for the answer."""
    time: str
    note: str = ""


@dataclass(frozen=True)
class CampaignInfo:
    """The campaign a run followed (``campaign``): its id, kind, file, the file's SHA-256 and text."""

    id: str
    issue: str
    kind: str
    purpose: str
    path: str
    sha256: str
    definition: str


@dataclass(frozen=True)
class TestRecord:
    """One test: what it verifies, what it measured, and how it ended."""

    __test__: ClassVar[bool] = False  # not a pytest test class

    test_id: str
    name: str
    start: str
    requirements: tuple[str, ...]
    subsystem: str
    doc: str
    measurements: tuple[Measurement, ...]
    attachments: tuple[Attachment, ...]
    outcome: Outcome
    duration: float | None
    message: str
    end: str | None
    """Time of ``test_end``; ``None`` when the journal ended while the test was running."""
    operator_actions: tuple[OperatorAction, ...] = ()
    """The operator prompts of the test, in the order they were put."""

    @property
    def closed(self) -> bool:
        return self.end is not None

    def measurement_counts(self) -> dict[Verdict, int]:
        counts: dict[Verdict, int] = dict.fromkeys(VERDICTS, 0)
        for m in self.measurements:
            counts[m.verdict] += 1
        return counts


@dataclass(frozen=True)
class SafeStateEvent:
    time: str
    reason: str
    results: Mapping[str, str]
    """role → "ok" or the error text."""

    @property
    def ok(self) -> bool:
        return all(r == "ok" for r in self.results.values())


@dataclass(frozen=True)
class EmergencyStopEvent:
    """An operator stopped the bench (``bench safe``): who, from where, when, why, and the test it cut short."""

    time: str
    who: str
    host: str
    reason: str
    test_id: str | None

    def describe(self) -> str:
        during = f" during {self.test_id}" if self.test_id else ""
        why = f" ({self.reason})" if self.reason else ""
        return f"emergency stop by {self.who}@{self.host} at {self.time}{during}{why}"


@dataclass(frozen=True)
class RunEnd:
    time: str
    exit_status: int | str | None
    counts: Mapping[str, int]


@dataclass(frozen=True)
class LimitsInfo:
    """The ``limits`` record: the limits file in force, at which model level, and its limits as recorded."""

    path: str
    model_level: str
    limits: Mapping[str, object]


@dataclass(frozen=True)
class DutIdentity:
    """What one node of the satellite said about itself (CMP ident), for the report cover."""

    node: str
    firmware: str
    hardware: str
    serial: str
    time: str


@dataclass(frozen=True)
class Deviation:
    """An approved deviation from the procedure."""

    ref: str
    """Its ``id`` in the journal."""
    text: str
    approved_by: str
    test_id: str
    time: str


@dataclass(frozen=True)
class DbImport:
    """Whether the run reached the results database (the ``db_import`` record), and how to retry."""

    ok: bool
    error: str = ""
    retry: str = ""


@dataclass(frozen=True)
class RunRecord:
    """Everything one journal says about one run."""

    path: Path
    run: RunInfo | None
    instruments: tuple[InstrumentRecord, ...]
    tests: tuple[TestRecord, ...]
    safe_state: tuple[SafeStateEvent, ...]
    attachments: tuple[Attachment, ...]
    """Attachments that belong to the run rather than to one test (``test_id`` null or absent)."""
    end: RunEnd | None
    warnings: tuple[str, ...]
    """What the reader had to tolerate (truncated last line, open tests, missing run_end, ...)."""
    emergency_stops: tuple[EmergencyStopEvent, ...] = ()
    limits: LimitsInfo | None = None
    dut_identity: tuple[DutIdentity, ...] = ()
    """One per node, in the order the nodes first answered; a node's last reading wins."""
    deviations: tuple[Deviation, ...] = ()
    db_import: DbImport | None = None
    """The last ``db_import`` record, or None when the run was not (yet) imported by the bench."""
    campaign: CampaignInfo | None = None
    """The campaign file the run followed, when it was started from one (``bench run NAME``)."""

    @property
    def complete(self) -> bool:
        return self.end is not None

    @property
    def run_id(self) -> str:
        """The run's id; for a journal without run_start, the name of its folder (as the database stores it)."""
        return self.run.run_id if self.run is not None and self.run.run_id else self.path.parent.name

    @property
    def limits_path(self) -> str:
        """The limits file the run used: the ``limits`` record's path, else ``run_start.limits_file``."""
        if self.limits is not None and self.limits.path:
            return self.limits.path
        return self.run.limits_file if self.run is not None else ""

    def with_db_import(self, outcome: DbImport) -> RunRecord:
        """This record with the outcome of the results-DB import (as the ``db_import`` line records it)."""
        return replace(self, db_import=outcome)

    def measurement_total(self) -> int:
        return sum(len(t.measurements) for t in self.tests)

    @property
    def status(self) -> str:
        return COMPLETE_STATUS if self.complete else INCOMPLETE_STATUS

    def measurements(self) -> Iterator[Measurement]:
        for t in self.tests:
            yield from t.measurements

    def outcome_counts(self) -> dict[Outcome, int]:
        counts: dict[Outcome, int] = dict.fromkeys(OUTCOMES, 0)
        for t in self.tests:
            counts[t.outcome] += 1
        return counts

    def measurement_counts(self) -> dict[Verdict, int]:
        counts: dict[Verdict, int] = dict.fromkeys(VERDICTS, 0)
        for t in self.tests:
            for m in t.measurements:
                counts[m.verdict] += 1
        return counts

    def requirements(self) -> list[str]:
        """Every requirement ID touched by a test or a measurement, sorted."""
        ids: set[str] = set()
        for t in self.tests:
            ids.update(t.requirements)
            for m in t.measurements:
                ids.update(m.requirements)
        return sorted(ids)

    @property
    def verdict(self) -> RunVerdict:
        return self._judgement[0]

    @property
    def verdict_reason(self) -> str:
        return self._judgement[1]

    @cached_property
    def _judgement(self) -> tuple[RunVerdict, str]:
        # cached: the record is immutable, and judging walks every measurement (100 000 in a long run)
        return self._judge()

    def _judge(self) -> tuple[RunVerdict, str]:
        outcomes = self.outcome_counts()
        failed_tests = outcomes["failed"] + outcomes["error"]
        measurement_counts = self.measurement_counts()
        failed_meas = measurement_counts["fail"]
        anomalies = failed_tests + failed_meas + outcomes["interrupted"]
        noted = f"; {anomalies} anomalies recorded" if anomalies else ""
        if self.emergency_stops:
            return "ABORTED", self.emergency_stops[0].describe() + noted
        if self.run is None:
            return "INCOMPLETE", f"the journal has no run_start record{noted}"
        if self.end is None:
            return "INCOMPLETE", f"bench process ended without closing the run{noted}"
        status = self.end.exit_status
        if isinstance(status, int) and status not in _NORMAL_EXIT:
            meaning = _EXIT_MEANING.get(status, "abnormal end")
            return "INCOMPLETE", f"{meaning} (exit status {status}){noted}"
        if isinstance(status, str) and status not in ("0", "1", ""):
            return "INCOMPLETE", f"run ended with exit status {status!r}{noted}"
        if outcomes["interrupted"]:
            return "INCOMPLETE", f"{outcomes['interrupted']} test(s) did not run to their end{noted}"
        if failed_tests or failed_meas:
            parts = []
            if failed_tests:
                parts.append(f"{failed_tests} test(s) failed or errored")
            if failed_meas:
                parts.append(f"{failed_meas} measurement(s) outside limits")
            return "FAIL", ", ".join(parts)
        if status == 1:
            return "FAIL", "the bench reported failed tests (exit status 1) that the journal does not show"
        if outcomes["passed"] == 0:
            return "INCOMPLETE", "no test was executed (all skipped or none collected)"
        marginal = measurement_counts["marginal"]
        reason = f"{outcomes['passed']} test(s) passed"
        if outcomes["skipped"]:
            reason += f", {outcomes['skipped']} skipped"
        if marginal:
            reason += f", {marginal} measurement(s) marginal"
        return "PASS", reason


def parse_time(text: str | None) -> datetime | None:
    """An ISO-8601 time from the journal as an aware UTC datetime, or None if absent or unreadable."""
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC)


# --------------------------------------------------------------------------------------------------------
# Reading


def read_journal(path: Path | str, *, fast: bool = True) -> RunRecord:
    """Read ``path`` (a ``journal.jsonl``) into a :class:`RunRecord`. Raises :class:`JournalError`.

    ``fast=False`` reads every line field by field: the reference the typed measurement path is tested (and
    benchmarked) against. Both give the same record, the same warnings and the same errors.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise JournalError(path, None, f"cannot read the journal: {exc.strerror or exc}") from exc
    with gc_paused():
        return _read(path, data, fast)


_MEASUREMENT_PREFIX: Final = (b'{"kind":"measurement",', b'{"kind": "measurement", ')
"""How a measurement line starts (kind first; compact as the bench writes it, or spaced as ``json.dumps`` does):
such a line is decoded straight to a record."""
_decode_measurement: Final = msgspec.json.Decoder(Measurement).decode
_decode_any: Final = msgspec.json.Decoder().decode
_INVALID: Final = (msgspec.DecodeError, UnicodeDecodeError, json.JSONDecodeError)


def _decode_leniently(line: bytes) -> object:
    """A line msgspec refused: the standard library reads NaN/Infinity tokens (journals written before the
    journal became strict JSON), or raises the error that says why the line is broken."""
    return json.loads(line.decode("utf-8"))


WORKER_JOURNALS: Final = "journal-*.jsonl"
"""The journals of a parallel run's workers, beside the run's ``journal.jsonl`` (``journal-gw0.jsonl``, …)."""


def worker_journals(path: Path) -> list[Path]:
    """The worker journals beside the run journal ``path``, in worker order (gw2 before gw10)."""

    def order(p: Path) -> tuple[int, str]:
        digits = "".join(ch for ch in p.stem if ch.isdigit())
        return (int(digits) if digits else -1, p.name)

    return sorted(path.parent.glob(WORKER_JOURNALS), key=order)


def _read(path: Path, data: bytes, fast: bool) -> RunRecord:
    reader = _Reader(path)
    _feed(reader, path, data, fast)
    if reader.run is not None and reader.run.workers:
        found = worker_journals(path)
        if not found:
            reader.warn(f"run_start says {reader.run.workers} parallel workers, but no {WORKER_JOURNALS} is here")
        for worker_path in found:
            try:
                worker_data = worker_path.read_bytes()
            except OSError as exc:
                raise JournalError(worker_path, None, f"cannot read the journal: {exc.strerror or exc}") from exc
            _feed(reader, worker_path, worker_data, fast)
        reader.tests.sort(key=lambda t: t.start)  # as they ran, not worker by worker (ISO UTC sorts as text)
    return reader.finish()


def _feed(reader: _Reader, path: Path, data: bytes, fast: bool) -> None:
    """Every line of one journal file into ``reader``; errors and notes name ``path`` and its line."""
    lines = data.split(b"\n")
    last = _last_content_line(lines)
    typed = _decode_measurement if fast else None
    generic = _decode_any
    by_id = reader.by_id
    for index, raw in enumerate(lines):
        line = raw.strip()  # ASCII whitespace only: a line of other whitespace is content (and not JSON)
        if not line:
            continue
        if typed is not None and line.startswith(_MEASUREMENT_PREFIX):
            try:
                m = typed(line)
            except (msgspec.DecodeError, msgspec.ValidationError):
                pass  # not one JSON object, or a field of another type: read field by field below
            else:
                test = by_id.get(m.test_id)
                if test is not None and m.name:
                    if m.time:
                        reader.last_time = m.time
                    test.measurements.append(m)
                    continue
        try:
            obj = generic(line)
        except msgspec.DecodeError:
            try:
                obj = _decode_leniently(line)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                if index + 1 == last:
                    reader.warn(_truncated_note(index + 1, line, path if path != reader.path else None))
                    continue
                raise JournalError(path, index + 1, f"not valid JSON ({exc})") from exc
        if not isinstance(obj, dict):
            raise JournalError(path, index + 1, f"expected a JSON object, got {type(obj).__name__}")
        reader.feed(_Fields(cast(dict[str, object], obj), path, index + 1))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector while many long-lived, acyclic objects are built (a journal's
    records, a DB import's rows): collections would walk ever more of them and free nothing."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _truncated_note(lineno: int, stripped: bytes, where: Path | None = None) -> str:
    file = f"{where.name} " if where else ""
    return (
        f"{file}line {lineno}: incomplete last line ignored (the bench was probably stopped while "
        f"writing it): {_snippet(stripped)}"
    )


def _last_content_line(lines: Sequence[bytes]) -> int:
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].strip():
            return index + 1
    return 0


def _snippet(raw: bytes, limit: int = 80) -> str:
    text = raw.decode("utf-8", errors="replace")
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def loose_text(value: object) -> str:
    """A descriptive field as text whatever its JSON type (``None`` → "", a list → "a, b", an object → JSON)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return ", ".join(loose_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


class _Fields:
    """Typed access to one journal record; a wrong type raises JournalError naming file, line, field."""

    def __init__(self, obj: dict[str, object], path: Path, lineno: int) -> None:
        self.obj = obj
        self.path = path
        self.lineno = lineno

    def error(self, reason: str) -> JournalError:
        return JournalError(self.path, self.lineno, reason)

    def _bad(self, key: str, expected: str) -> JournalError:
        return self.error(f"field {key!r} should be {expected}, got {self.obj[key]!r}")

    def text(self, key: str) -> str:
        value = self.obj.get(key)
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise self._bad(key, "a string")

    def loose(self, key: str) -> str:
        """A descriptive field, read as text whatever its type (:func:`loose_text`): never an error."""
        return loose_text(self.obj.get(key))

    def required_text(self, key: str) -> str:
        value = self.text(key)
        if not value:
            raise self.error(f"{self.text('kind')} record without {key!r}")
        return value

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if self.obj.get(key) is not None else None

    def number(self, key: str) -> float | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise self._bad(key, "a number or null")

    def value(self, key: str) -> MeasuredValue:
        value = self.obj.get(key)
        if value is None or isinstance(value, int | float | str | bool):
            return value
        raise self._bad(key, "a number, boolean, string or null")

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.obj.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(cast(list[str], value))
        raise self._bad(key, "a list of strings")

    def mapping(self, key: str) -> dict[str, object]:
        value = self.obj.get(key)
        if value is None:
            return {}
        if isinstance(value, dict):
            return cast(dict[str, object], value)
        raise self._bad(key, "an object")

    def mapping_or_text(self, key: str) -> dict[str, object]:
        if isinstance(self.obj.get(key), str):
            return {"": self.obj[key]} if self.obj[key] else {}
        return self.mapping(key)

    def sub(self, key: str) -> _Fields:
        return _Fields(self.mapping(key), self.path, self.lineno)

    def choice(self, key: str, choices: Sequence[str], default: str | None = None) -> str:
        value = self.obj.get(key)
        if value is None and default is not None:
            return default
        if isinstance(value, str) and value in choices:
            return value
        raise self.error(f"field {key!r} should be one of {', '.join(choices)}, got {value!r}")


@dataclass
class _OpenTest:
    test_id: str
    name: str
    start: str
    requirements: tuple[str, ...]
    subsystem: str
    doc: str
    measurements: list[Measurement] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    operator_actions: list[OperatorAction] = field(default_factory=list)
    outcome: Outcome | None = None
    duration: float | None = None
    message: str = ""
    end: str | None = None


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.run: RunInfo | None = None
        self.instruments: list[InstrumentRecord] = []
        self.tests: list[_OpenTest] = []
        self.by_id: dict[str, _OpenTest] = {}
        self.safe_state: list[SafeStateEvent] = []
        self.emergency_stops: list[EmergencyStopEvent] = []
        self.attachments: list[Attachment] = []
        self.end: RunEnd | None = None
        self.warnings: list[str] = []
        self.last_time: str = ""
        self.limits: LimitsInfo | None = None
        self.identity: dict[str, DutIdentity] = {}
        self.deviations: list[Deviation] = []
        self.db_import: DbImport | None = None
        self.campaign: CampaignInfo | None = None

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def feed(self, f: _Fields) -> None:
        if "kind" not in f.obj:
            raise f.error("record without 'kind'")
        kind = f.text("kind")
        handler = self._handlers.get(kind)
        if handler is None:
            return  # unknown kinds are ignored: newer writers may add some
        t = f.text("time")
        if t:
            self.last_time = t
        handler(self, f)

    def _run_start(self, f: _Fields) -> None:
        if self.run is not None:
            self.warn(f"line {f.lineno}: second run_start ignored")
            return
        d = f.sub("dut")
        proc = f.obj.get("procedure")
        if isinstance(proc, dict):
            procedure = " issue ".join(loose_text(proc.get(k)) for k in ("id", "issue") if proc.get(k))
        else:
            procedure = loose_text(proc) if proc else ""
        self.run = RunInfo(
            run_id=f.text("run_id"),
            time=f.text("time"),
            campaign=f.text("campaign"),
            model_level=f.text("model_level"),
            operator=f.text("operator"),
            host=f.text("host"),
            git_revision=f.text("git_revision"),
            software_version=f.text("software_version"),
            bench_config=f.text("bench_config"),
            config_hash=f.text("config_hash"),
            dut=DutInfo(
                name=d.text("name"),
                model_level=d.text("model_level"),
                serial=d.text("serial"),
                envelope=d.mapping("envelope"),
                part_number=d.loose("part_number"),
            ),
            argv=f.texts("argv"),
            bench=f.loose("bench"),
            limits_file=f.loose("limits_file"),
            procedure=procedure,
            workers=_count(f.obj.get("workers")),
        )

    def _instrument(self, f: _Fields) -> None:
        i = f.sub("identity")
        c = f.sub("calibration")
        self.instruments.append(
            InstrumentRecord(
                role=f.text("role"),
                driver=f.text("driver"),
                resource=f.text("resource"),
                identity=Identity(
                    maker=i.text("maker"),
                    model=i.text("model"),
                    serial=i.text("serial"),
                    firmware=i.text("firmware"),
                ),
                calibration=Calibration(
                    certificate=c.text("certificate"),
                    due=c.text("due"),
                    uncertainty=c.mapping_or_text("uncertainty"),
                    status=cast(CalibrationStatus, c.choice("status", CALIBRATION_STATUSES, "missing")),
                ),
            )
        )

    def _test_start(self, f: _Fields) -> None:
        test_id = f.required_text("test_id")
        test = _OpenTest(
            test_id=test_id,
            name=f.text("name") or test_id,
            start=f.text("time"),
            requirements=f.texts("requirements"),
            subsystem=f.text("subsystem"),
            doc=f.text("doc"),
        )
        self.tests.append(test)  # a re-run of the same test id opens a new record
        self.by_id[test_id] = test

    def _test_for(self, f: _Fields, test_id: str) -> _OpenTest:
        test = self.by_id.get(test_id)
        if test is None:
            self.warn(f"line {f.lineno}: {f.text('kind')} for test {test_id!r} that has no test_start")
            test = _OpenTest(test_id, test_id, f.text("time"), (), "", "")
            self.tests.append(test)
            self.by_id[test_id] = test
        return test

    def _measurement(self, f: _Fields) -> None:
        test_id = f.required_text("test_id")
        m = Measurement(
            test_id=test_id,
            name=f.required_text("name"),
            value=f.value("value"),
            units=f.text("units"),
            low=f.number("low"),
            high=f.number("high"),
            verdict=cast(Verdict, f.choice("verdict", VERDICTS)),
            margin=f.number("margin"),
            margin_pct=f.number("margin_pct"),
            requirements=f.texts("requirements"),
            time=f.text("time"),
            description=f.text("description"),
            uncertainty=f.number("uncertainty"),
            extra=f.mapping("extra"),
        )
        self._test_for(f, test_id).measurements.append(m)

    def _attachment(self, f: _Fields) -> None:
        test_id = f.optional_text("test_id")
        a = Attachment(test_id=test_id, name=f.text("name"), path=f.required_text("path"), mime=f.text("mime"))
        if test_id is None:
            self.attachments.append(a)
        else:
            self._test_for(f, test_id).attachments.append(a)

    def _test_end(self, f: _Fields) -> None:
        test = self._test_for(f, f.required_text("test_id"))
        if test.end is not None:
            self.warn(f"line {f.lineno}: second test_end for {test.test_id!r}; the last one is used")
        test.outcome = cast(Outcome, f.choice("outcome", OUTCOMES))
        test.duration = f.number("duration")
        test.message = f.text("message")
        test.end = f.text("time")

    def _safe_state(self, f: _Fields) -> None:
        results = {str(role): r if isinstance(r, str) else json.dumps(r) for role, r in f.mapping("results").items()}
        self.safe_state.append(SafeStateEvent(time=f.text("time"), reason=f.text("reason"), results=results))

    def _emergency_stop(self, f: _Fields) -> None:
        self.emergency_stops.append(
            EmergencyStopEvent(
                time=f.text("stop_time") or f.text("time"),
                who=f.text("who"),
                host=f.text("host"),
                reason=f.text("reason"),
                test_id=f.optional_text("test_id"),
            )
        )

    def _limits(self, f: _Fields) -> None:
        if self.limits is None or not self.limits.path:
            limits = f.obj.get("limits")
            self.limits = LimitsInfo(
                path=f.loose("path"),
                model_level=f.loose("model_level"),
                limits=cast(dict[str, object], limits) if isinstance(limits, dict) else {},
            )

    def _dut_identity(self, f: _Fields) -> None:
        node = f.loose("node")
        self.identity[node] = DutIdentity(  # the last reading of each node wins
            node=node, firmware=f.loose("firmware"), hardware=f.loose("hardware"), serial=f.loose("serial"),
            time=f.loose("time"),
        )  # fmt: skip

    def _deviation(self, f: _Fields) -> None:
        self.deviations.append(
            Deviation(
                ref=f.loose("id"), text=f.loose("text"), approved_by=f.loose("approved_by"),
                test_id=f.loose("test_id"), time=f.loose("time"),
            )
        )  # fmt: skip

    def _operator_prompt(self, f: _Fields) -> None:
        answer = f.obj.get("answer")
        text = "" if answer is None else ("yes" if answer is True else "no" if answer is False else loose_text(answer))
        self._test_for(f, f.required_text("test_id")).operator_actions.append(
            OperatorAction(
                prompt=f.loose("prompt"), text=f.loose("text"), options=f.texts("options"), units=f.loose("units"),
                answer=text, answered_by=f.loose("answered_by"), outcome=f.loose("outcome"),
                waited=f.number("waited"), time=f.text("time"), note=f.loose("note"),
            )
        )  # fmt: skip

    def _campaign(self, f: _Fields) -> None:
        self.campaign = CampaignInfo(
            id=f.loose("id"), issue=f.loose("issue"), kind=f.loose("campaign_kind"), purpose=f.loose("purpose"),
            path=f.loose("path"), sha256=f.loose("sha256"), definition=f.loose("definition"),
        )  # fmt: skip

    def _db_import(self, f: _Fields) -> None:
        self.db_import = DbImport(ok=f.obj.get("ok") is True, error=f.loose("error"), retry=f.loose("retry"))

    def _run_end(self, f: _Fields) -> None:
        raw_status = f.obj.get("exit_status")
        status: int | str | None
        if raw_status is None or (isinstance(raw_status, int) and not isinstance(raw_status, bool)):
            status = raw_status
        else:
            status = f.text("exit_status")
        counts: dict[str, int] = {}
        for key, n in f.mapping("counts").items():
            if not isinstance(n, int) or isinstance(n, bool):
                raise f.error(f"run_end count {key!r} should be an integer, got {n!r}")
            counts[key] = n
        self.end = RunEnd(time=f.text("time"), exit_status=status, counts=counts)

    _handlers: ClassVar[dict[str, Callable[[_Reader, _Fields], None]]] = {
        "run_start": _run_start,
        "instrument": _instrument,
        "test_start": _test_start,
        "measurement": _measurement,
        "attachment": _attachment,
        "test_end": _test_end,
        "safe_state": _safe_state,
        "emergency_stop": _emergency_stop,
        "run_end": _run_end,
        "limits": _limits,
        "dut_identity": _dut_identity,
        "deviation": _deviation,
        "db_import": _db_import,
        "operator_prompt": _operator_prompt,
        "campaign": _campaign,
    }

    def finish(self) -> RunRecord:
        if self.run is None:
            self.warn("the journal has no run_start record" if self.tests or self.end else "the journal is empty")
        if self.end is None:
            self.warn(f"no run_end record: {INCOMPLETE_STATUS}")
        last = parse_time(self.last_time)
        tests: list[TestRecord] = []
        for t in self.tests:
            outcome, duration, message = t.outcome, t.duration, t.message
            if outcome is None:
                outcome, message = "interrupted", OPEN_TEST_MESSAGE
                start = parse_time(t.start)
                if duration is None and start is not None and last is not None:
                    duration = max(0.0, (last - start).total_seconds())
                self.warn(f"test {t.test_id!r} has no test_end: marked interrupted ({OPEN_TEST_MESSAGE})")
            if duration is not None and not math.isfinite(duration):
                duration = None
            tests.append(
                TestRecord(
                    test_id=t.test_id,
                    name=t.name,
                    start=t.start,
                    requirements=t.requirements,
                    subsystem=t.subsystem,
                    doc=t.doc,
                    measurements=tuple(t.measurements),
                    attachments=tuple(t.attachments),
                    outcome=outcome,
                    duration=duration,
                    message=message,
                    end=t.end,
                    operator_actions=tuple(t.operator_actions),
                )
            )
        record = RunRecord(
            path=self.path,
            run=self.run,
            instruments=tuple(self.instruments),
            tests=tuple(tests),
            safe_state=tuple(self.safe_state),
            attachments=tuple(self.attachments),
            end=self.end,
            warnings=tuple(self.warnings),
            emergency_stops=tuple(self.emergency_stops),
            limits=self.limits,
            dut_identity=tuple(self.identity.values()),
            deviations=tuple(self.deviations),
            db_import=self.db_import,
            campaign=self.campaign,
        )
        if self.end is not None and self.end.counts:
            mine = record.outcome_counts()
            differ = [
                f"{k} {n} (journal has {mine.get(cast(Outcome, k), 0)})"
                for k, n in self.end.counts.items()
                if n != mine.get(cast(Outcome, k), 0)
            ]
            if differ:
                note = "run_end counts differ from the tests in the journal: " + ", ".join(differ)
                record = replace(record, warnings=(*record.warnings, note))
        return record
