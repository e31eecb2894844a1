"""The HTML test report of one run: a single self-contained file, readable on screen and printable to A4.

``write_html_report(run_dir)`` reads ``<run_dir>/journal.jsonl`` and writes ``<run_dir>/report.html``.
The document is built in two steps so the template stays free of logic:

1. :func:`build_view` turns the :class:`~reports.journal.RunRecord` into plain, already formatted view
   objects (numbers to 4 significant digits, margins signed, times in UTC, traces drawn as SVG);
2. the Jinja2 template ``templates/report.html.j2`` (autoescaping on) lays them out.

Everything the journal says is untrusted text and is escaped by the template. Attachments are linked by
their path relative to the run directory; a path that is absolute, climbs out with ``..`` or carries a URL
scheme is shown as text and never linked or read. Traces (mime :data:`TRACE_MIME`) are read from the run
directory and drawn inline by :func:`reports.svgplot.line_plot`; an unreadable trace is noted, not fatal.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Final
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from reports.formatting import (
    fmt_duration,
    fmt_margin,
    fmt_number,
    fmt_pct,
    fmt_time,
    fmt_value,
)
from reports.journal import (
    OUTCOMES,
    VERDICTS,
    Attachment,
    InstrumentRecord,
    RunRecord,
    TestRecord,
    parse_time,
    read_journal,
)
from reports.svgplot import line_plot

__all__ = ["JOURNAL_NAME", "REPORT_NAME", "TRACE_MIME", "build_view", "render_html", "write_html_report"]

JOURNAL_NAME: Final = "journal.jsonl"
REPORT_NAME: Final = "report.html"
TRACE_MIME: Final = "application/vnd.ots.trace+json"
TEMPLATE_NAME: Final = "report.html.j2"

_QUANTITY: Final = {"A": "current", "mA": "current", "V": "voltage", "mV": "voltage", "W": "power"}


# --------------------------------------------------------------------------------------------------------
# View objects: what the template sees. All strings, already formatted.


@dataclass(frozen=True)
class Field:
    label: str
    value: str


@dataclass(frozen=True)
class MeasurementRow:
    name: str
    value: str
    units: str
    low: str
    high: str
    margin: str
    margin_pct: str
    verdict: str
    description: str
    requirements: str


@dataclass(frozen=True)
class AttachmentView:
    name: str
    path: str
    href: str | None
    """None when the path is not a safe relative path: shown as text, not linked."""
    mime: str
    plot: Markup | None
    caption: str
    note: str


@dataclass(frozen=True)
class TestView:
    anchor: str
    number: int
    test_id: str
    name: str
    doc: str
    subsystem: str
    requirements: str
    outcome: str
    duration: str
    message: str
    started: str
    rows: tuple[MeasurementRow, ...]
    counts: str
    attachments: tuple[AttachmentView, ...]


@dataclass(frozen=True)
class InstrumentView:
    role: str
    driver: str
    resource: str
    maker: str
    model: str
    serial: str
    firmware: str
    certificate: str
    due: str
    uncertainty: str
    status: str
    flagged: bool
    note: str


@dataclass(frozen=True)
class Anomaly:
    kind: str
    anchor: str | None
    where: str
    subject: str
    message: str


@dataclass(frozen=True)
class SafeStateView:
    time: str
    reason: str
    ok: bool
    results: tuple[tuple[str, str, bool], ...]


@dataclass(frozen=True)
class RequirementView:
    req_id: str
    tests: int
    measurements: int
    result: str


@dataclass(frozen=True)
class ReportView:
    title: str
    heading: str
    doc_id: str
    verdict: str
    verdict_reason: str
    status: str
    cover: tuple[Field, ...]
    notes: tuple[str, ...]
    outcome_counts: tuple[tuple[str, int], ...]
    verdict_counts: tuple[tuple[str, int], ...]
    total_tests: int
    total_measurements: int
    requirements: tuple[RequirementView, ...]
    configuration: tuple[Field, ...]
    envelope: tuple[Field, ...]
    run_attachments: tuple[AttachmentView, ...]
    instruments: tuple[InstrumentView, ...]
    instruments_flagged: int
    tests: tuple[TestView, ...]
    anomalies: tuple[Anomaly, ...]
    safe_state: tuple[SafeStateView, ...]
    sign_off: tuple[str, ...]
    generated: str


SIGN_OFF_ROLES: Final = ("Test conductor", "Quality assurance", "Customer representative")


# --------------------------------------------------------------------------------------------------------
# Public API


def write_html_report(run_dir: Path) -> Path:
    """Write ``<run_dir>/report.html`` from ``<run_dir>/journal.jsonl``; return the report's path.

    Raises :class:`reports.journal.JournalError` if the journal is missing or unreadable.
    The file is written to a temporary name and renamed, so a reader never sees half a report.
    """
    run_dir = Path(run_dir)
    record = read_journal(run_dir / JOURNAL_NAME)
    html = render_html(record, run_dir)
    target = run_dir / REPORT_NAME
    tmp = target.with_name(f".{REPORT_NAME}.{os.getpid()}.tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def render_html(record: RunRecord, run_dir: Path | None = None, *, now: datetime | None = None) -> str:
    """The report as an HTML string. ``run_dir`` is where attachments are read from (default: the
    journal's directory); ``now`` is the generation time printed on the cover (default: the clock)."""
    view = build_view(record, run_dir if run_dir is not None else record.path.parent, now=now)
    return _template().render(r=view)


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,  # the file ends in .j2, so select_autoescape() would not switch it on
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template(TEMPLATE_NAME)


# --------------------------------------------------------------------------------------------------------
# Building the view


def build_view(record: RunRecord, run_dir: Path, *, now: datetime | None = None) -> ReportView:
    notes: list[str] = list(record.warnings)
    run = record.run
    dut = run.dut if run is not None else None
    model_level = (run.model_level if run else "") or (dut.model_level if dut else "")
    dut_text = " ".join(x for x in ((dut.name if dut else ""), f"s/n {dut.serial}" if dut and dut.serial else "") if x)
    campaign = run.campaign if run else ""

    cover = (
        Field("Campaign", campaign),
        Field("Model level", model_level),
        Field("DUT", dut.name if dut else ""),
        Field("DUT serial", dut.serial if dut else ""),
        Field("Run ID", run.run_id if run else ""),
        Field("Start", fmt_time(run.time) if run else ""),
        Field("End", fmt_time(record.end.time) if record.end else ""),  # "Run status" says why it is blank
        Field("Duration", _run_duration(record)),
        Field("Operator", run.operator if run else ""),
        Field("Host", run.host if run else ""),
        Field("Git revision", run.git_revision if run else ""),
        Field("Software version", run.software_version if run else ""),
        Field("Bench configuration", run.bench_config if run else ""),
        Field("Configuration hash", run.config_hash if run else ""),
        Field(
            "Exit status", "" if record.end is None or record.end.exit_status is None else str(record.end.exit_status)
        ),
    )
    configuration = (
        Field("DUT", dut_text),
        Field("Model level", model_level),
        Field("Bench configuration", run.bench_config if run else ""),
        Field("Configuration hash", run.config_hash if run else ""),
        Field("Command line", " ".join(run.argv) if run else ""),
    )
    envelope = tuple(Field(k, v) for k, v in _flatten(dut.envelope if dut else {}))

    run_start = parse_time(run.time) if run else None
    instruments = tuple(_instrument_view(i, run_start) for i in record.instruments)
    tests = tuple(_test_view(n, t, run_dir, notes) for n, t in enumerate(record.tests, start=1))
    run_attachments = tuple(_attachment_view(a, run_dir, notes) for a in record.attachments)

    outcomes = record.outcome_counts()
    verdicts = record.measurement_counts()
    title = "OTS-SAT qualification test report"
    doc_id = " · ".join(x for x in (title, run.run_id if run else "") if x)
    return ReportView(
        title=title,
        heading=" — ".join(x for x in (campaign, dut_text) if x) or "Unnamed run",
        doc_id=doc_id,
        verdict=record.verdict,
        verdict_reason=record.verdict_reason,
        status=record.status,
        cover=cover,
        notes=tuple(notes),
        outcome_counts=tuple((o, outcomes[o]) for o in OUTCOMES),
        verdict_counts=tuple((v, verdicts[v]) for v in VERDICTS),
        total_tests=len(record.tests),
        total_measurements=sum(verdicts.values()),
        requirements=_requirements(record),
        configuration=configuration,
        envelope=envelope,
        run_attachments=run_attachments,
        instruments=instruments,
        instruments_flagged=sum(1 for i in instruments if i.flagged),
        tests=tests,
        anomalies=_anomalies(record, tests, instruments),
        safe_state=tuple(
            SafeStateView(
                time=fmt_time(e.time),
                reason=e.reason,
                ok=e.ok,
                results=tuple((role, res, res == "ok") for role, res in e.results.items()),
            )
            for e in record.safe_state
        ),
        sign_off=SIGN_OFF_ROLES,
        generated=(now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    )


def _run_duration(record: RunRecord) -> str:
    if record.run is None or record.end is None:
        return ""
    start, end = parse_time(record.run.time), parse_time(record.end.time)
    if start is None or end is None:
        return ""
    return fmt_duration((end - start).total_seconds())


def _flatten(obj: Mapping[str, object], prefix: str = "") -> Iterable[tuple[str, str]]:
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, name + ".")
        else:
            yield name, _plain(value)


def _plain(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}".replace("-", "−")  # configuration data: as written, not padded to a precision
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _test_view(number: int, t: TestRecord, run_dir: Path, notes: list[str]) -> TestView:
    rows = tuple(
        MeasurementRow(
            name=m.name,
            value=fmt_value(m.value) + (f" ± {fmt_number(m.uncertainty, 2)}" if m.uncertainty is not None else ""),
            units=m.units,
            low=fmt_number(m.low),
            high=fmt_number(m.high),
            margin=fmt_margin(m.margin),
            margin_pct=fmt_pct(m.margin_pct),
            verdict=m.verdict,
            description=m.description,
            requirements=", ".join(m.requirements),
        )
        for m in t.measurements
    )
    counts = t.measurement_counts()
    return TestView(
        anchor=f"test-{number}",
        number=number,
        test_id=t.test_id,
        name=t.name,
        doc=_clean_doc(t.doc),
        subsystem=t.subsystem,
        requirements=", ".join(t.requirements),
        outcome=t.outcome,
        duration=fmt_duration(t.duration),
        message=t.message,
        started=fmt_time(t.start),
        rows=rows,
        counts=", ".join(f"{n} {v}" for v, n in counts.items() if n),
        attachments=tuple(_attachment_view(a, run_dir, notes) for a in t.attachments),
    )


def _clean_doc(doc: str) -> str:
    return inspect.cleandoc(doc) if doc else ""


def _safe_relative(path: str) -> PurePosixPath | None:
    """``path`` if it is a plain relative path inside the run directory, else None."""
    if not path or "\\" in path or "\x00" in path:
        return None
    p = PurePosixPath(path)
    if p.is_absolute() or ".." in p.parts or ":" in p.parts[0]:
        return None
    return p


def _attachment_view(a: Attachment, run_dir: Path, notes: list[str]) -> AttachmentView:
    rel = _safe_relative(a.path)
    name = a.name or a.path
    if rel is None:
        notes.append(f"attachment {name!r}: path {a.path!r} is not inside the run directory; not linked")
        return AttachmentView(name, a.path, None, a.mime, None, "", "path outside the run directory: not linked")
    href = quote(rel.as_posix())
    if a.mime != TRACE_MIME:
        return AttachmentView(name, a.path, href, a.mime, None, "", "")
    try:
        plot, caption = _trace_plot(run_dir, rel)
    except (OSError, ValueError) as exc:
        note = f"trace could not be drawn: {exc}"
        notes.append(f"attachment {name!r}: {note}")
        return AttachmentView(name, a.path, href, a.mime, None, "", note)
    return AttachmentView(name, a.path, href, a.mime, plot, caption, "")


def _trace_plot(run_dir: Path, rel: PurePosixPath) -> tuple[Markup, str]:
    base = run_dir.resolve()
    file = (base / rel).resolve()
    if not file.is_relative_to(base):
        raise ValueError("the file lies outside the run directory")
    try:
        obj = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{rel} not found in the run directory") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{rel} is not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{rel}: expected a JSON object")
    interval = obj.get("interval_s")
    raw_values = obj.get("values")
    units = obj.get("units", "")
    title = obj.get("title", "")
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
        raise ValueError(f"{rel}: 'interval_s' should be a positive number, got {interval!r}")
    if not isinstance(raw_values, list):
        raise ValueError(f"{rel}: 'values' should be a list of numbers")
    values: list[float] = []
    for v in raw_values:
        if v is None:
            values.append(math.nan)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            values.append(float(v))
        else:
            raise ValueError(f"{rel}: 'values' holds {v!r}, not a number")
    units = units if isinstance(units, str) else str(units)
    title = title if isinstance(title, str) else str(title)
    svg = line_plot(values, float(interval), title=title, y_label=_QUANTITY.get(units, "value"), units=units)
    finite = [v for v in values if math.isfinite(v)]
    caption = f"{len(values)} samples every {fmt_duration(float(interval))}"
    if finite:
        peak = max(finite, key=abs)
        at = values.index(peak) * float(interval)
        mean = math.fsum(finite) / len(finite)
        caption += (
            f"; peak {fmt_number(peak)} {units} at {fmt_duration(at) or '0 s'}"
            f"; mean {fmt_number(mean)} {units}; last {fmt_number(finite[-1])} {units}"
        )
    return Markup(svg), caption  # safe: line_plot escapes every text it places


def _instrument_view(i: InstrumentRecord, run_start: datetime | None) -> InstrumentView:
    cal = i.calibration
    status = cal.status
    note = ""
    due = _parse_date(cal.due)
    if status == "valid" and due is not None and run_start is not None and due < run_start.date():
        status, note = "expired", f"due {due.isoformat()} is before the run started"
    elif status == "expired":
        note = "calibration expired"
    elif status == "missing":
        note = "no calibration record"
    return InstrumentView(
        role=i.role,
        driver=i.driver,
        resource=i.resource,
        maker=i.identity.maker,
        model=i.identity.model,
        serial=i.identity.serial,
        firmware=i.identity.firmware,
        certificate=cal.certificate,
        due=cal.due,
        uncertainty=", ".join(f"{k}: {_plain(v)}" if k else _plain(v) for k, v in cal.uncertainty.items()),
        status=status,
        flagged=status != "valid",
        note=note,
    )


def _parse_date(text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _requirements(record: RunRecord) -> tuple[RequirementView, ...]:
    rank = {"pass": 0, "marginal": 1, "fail": 2}
    tests: dict[str, int] = {}
    meas: dict[str, int] = {}
    worst: dict[str, str] = {}

    def note(req: str, result: str | None) -> None:
        worst.setdefault(req, "not verified")
        if result is not None and rank.get(result, -1) >= rank.get(worst[req], -1):
            worst[req] = result

    for t in record.tests:
        result = {"passed": "pass", "failed": "fail", "error": "fail"}.get(t.outcome)
        for req in t.requirements:
            tests[req] = tests.get(req, 0) + 1
            note(req, result)
        for m in t.measurements:
            for req in m.requirements:
                meas[req] = meas.get(req, 0) + 1
                note(req, m.verdict)
    return tuple(RequirementView(req, tests.get(req, 0), meas.get(req, 0), worst[req]) for req in sorted(worst))


def _anomalies(
    record: RunRecord, tests: tuple[TestView, ...], instruments: tuple[InstrumentView, ...]
) -> tuple[Anomaly, ...]:
    out: list[Anomaly] = []
    for t, view in zip(record.tests, tests, strict=True):
        if t.outcome in ("failed", "error"):
            out.append(Anomaly(f"test {t.outcome}", view.anchor, t.test_id, t.name, t.message))
        for m, row in zip(t.measurements, view.rows, strict=True):
            if m.verdict != "fail":
                continue
            units = f" {m.units}" if m.units else ""
            limits = f"[{row.low or '−∞'}, {row.high or '+∞'}]{units}"
            text = f"{row.value}{units} outside limits {limits}"
            if row.margin:
                text += f", margin {row.margin}{units}"
            if m.description:
                text += f" — {m.description}"
            out.append(Anomaly("measurement fail", view.anchor, t.test_id, m.name, text))
    for e in record.safe_state:
        for role, res in e.results.items():
            if res != "ok":
                out.append(Anomaly("safe state not reached", None, fmt_time(e.time), role, res))
    for i in instruments:
        if i.flagged:
            out.append(Anomaly(f"calibration {i.status}", None, "instruments", i.role, i.note))
    return tuple(out)
