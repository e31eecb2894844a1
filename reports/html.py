"""The test report of one run: one view, rendered for the screen (``report.html``) and for print (the PDF).

``write_html_report(run_dir)`` reads ``<run_dir>/journal.jsonl`` and writes ``<run_dir>/report.html``.
The document is built in two steps so the template stays free of logic:

1. :func:`build_view` turns the :class:`~reports.run_record.RunRecord` into plain, already formatted view
   objects (numbers to 4 significant digits, margins signed, times in UTC, traces drawn as SVG, the trends
   of the run against earlier ones), once;
2. :func:`render_html` lays that view out with the Jinja2 template ``templates/report.html.j2``
   (autoescaping on; the trends section is its partial ``_trends.html.j2``): for the screen, or with
   ``for_print=True`` for the PDF (:mod:`reports.pdf`), where each test's header is a paragraph and a test
   with more than :data:`PDF_TABLE_ROWS` measurements lists only those not passing, its full table going to
   Appendix A. :func:`reports.report_files.write_html_and_pdf` writes both from one view.

Everything the journal says is untrusted text and is escaped by the template. Attachments are linked by
their path relative to the run directory; a path that is absolute, climbs out with ``..`` or carries a URL
scheme is shown as text and never linked or read. Traces (mime :data:`TRACE_MIME`) are read from the run
directory and drawn inline by :func:`reports.svgplot.line_plot`, XY plots (mime :data:`PLOT_MIME`: spectra,
FER curves) by :func:`reports.svgplot.xy_plot`; an unreadable trace or plot is noted, not fatal.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property, lru_cache
from pathlib import Path, PurePosixPath
from typing import Final
from urllib.parse import quote

import jinja2
from markupsafe import Markup, escape

from reports.defects import DefectRun
from reports.defects import coverage as defect_coverage
from reports.defects import latest_run as latest_defect_run_in
from reports.formatting import (
    fmt_duration,
    fmt_margin,
    fmt_number,
    fmt_pct,
    fmt_time,
    fmt_value,
)
from reports.run_record import (
    OUTCOMES,
    VERDICTS,
    Attachment,
    CampaignInfo,
    InstrumentRecord,
    Measurement,
    OperatorAction,
    RunInfo,
    RunRecord,
    TestRecord,
    parse_time,
    read_journal,
)
from reports.svgplot import PLOT_MIME, PlotSpec, line_plot
from reports.trend_view import TrendsView, trends_view, unavailable
from reports.vcrm import (
    LEVELS,
    METHODS,
    RequirementsError,
    RequirementSet,
    Vcrm,
    build_vcrm,
    load_requirements,
    scan_plans,
)

__all__ = [
    "JOURNAL_NAME",
    "PDF_TABLE_ROWS",
    "PLOT_MIME",
    "REPORT_NAME",
    "REQUIREMENTS_NAME",
    "TRACE_MIME",
    "ReportView",
    "build_view",
    "default_requirements_path",
    "render_html",
    "render_trends",
    "write_html",
    "write_html_report",
]

JOURNAL_NAME: Final = "journal.jsonl"
REPORT_NAME: Final = "report.html"
TRACE_MIME: Final = "application/vnd.ots.trace+json"
TEMPLATE_NAME: Final = "report.html.j2"
REQUIREMENTS_NAME: Final = "requirements.yaml"
PDF_TABLE_ROWS: Final = 40
"""In the PDF layout, a test with more measurements than this lists only those not passing in its section; the
full table is in Appendix A as one compact line per measurement (see reports/pdf.py for why)."""

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
class OperatorStepView:
    """One operator prompt in a test's step sequence."""

    time: str
    kind: str
    text: str
    answer: str
    answered_by: str
    outcome: str
    waited: str


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
    condensed: bool = False
    """More than :data:`PDF_TABLE_ROWS` measurements: printed, the section lists only ``print_rows`` (those
    not passing), and all of them are in Appendix A."""
    total_rows: int = 0
    print_rows: tuple[MeasurementRow, ...] = ()
    """The rows the printed section lists (all of ``rows`` unless ``condensed``)."""
    operator_steps: tuple[OperatorStepView, ...] = ()


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
    evidence: tuple[AttachmentView, ...] = ()
    """The attachments of the test concerned (logs, traces): the evidence to look at."""


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
class IdentityView:
    node: str
    firmware: str
    hardware: str
    serial: str
    time: str


@dataclass(frozen=True)
class DeviationView:
    ref: str
    text: str
    approved_by: str
    where: str
    time: str


@dataclass(frozen=True)
class VcrmCell:
    status: str
    """verified, failed, not run, n/a"""
    text: str
    title: str


@dataclass(frozen=True)
class VcrmRowView:
    req_id: str
    text: str
    subsystem: str
    method: str
    method_name: str
    levels: str
    tests: tuple[tuple[str, str | None], ...]
    """(test ID, anchor in this report or None)."""
    evidence: str
    parent: str
    cells: tuple[VcrmCell, ...]
    flagged: bool
    defects: str = "—"
    """Seeded defects violating it caught / catalogued, from the latest defect run ("—": none catalogued)."""
    defects_missed: bool = False


@dataclass(frozen=True)
class VcrmView:
    source: str
    """Where the requirements came from (path, document ID and issue), or why there are none."""
    available: bool
    levels: tuple[str, ...]
    rows: tuple[VcrmRowView, ...]
    errors: tuple[str, ...]
    gaps: tuple[str, ...]
    counts: tuple[tuple[str, int], ...]
    plan_set: str
    defect_source: str = "no defect run"
    """Which defect run the "seeded defects caught / catalogued" column comes from, or why it is empty."""
    defects_missed: tuple[str, ...] = ()
    """The latest defect run's missed defects, one line each."""


@dataclass(frozen=True)
class AppendixTable:
    anchor: str
    number: int
    test_id: str
    lines: tuple[tuple[str, Markup], ...]
    """(worst verdict on the line, the line: one or two fixed-width measurement entries, already escaped)."""
    per_line: int = 1


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
    emergency_stops: tuple[str, ...]
    """Each operator's emergency stop of the run, in words (who, where, when, during which test, why)."""
    sign_off: tuple[str, ...]
    generated: str
    identity: tuple[IdentityView, ...] = ()
    """What the satellite said about itself (``dut_identity`` records); empty: "not read"."""
    deviations: tuple[DeviationView, ...] = ()
    vcrm: VcrmView | None = None
    appendix_threshold: int = PDF_TABLE_ROWS
    trends: TrendsView | None = None
    """The "Trends" section (reports.trends.view), laid out by the partial ``_trends.html.j2``."""

    @cached_property
    def appendix(self) -> tuple[AppendixTable, ...]:
        """Appendix A of the printed report: the full tables of the condensed tests (made on first use: only
        the print layout shows it)."""
        return tuple(_appendix(t) for t in self.tests if t.condensed)


SIGN_OFF_ROLES: Final = ("Test conductor", "Quality assurance", "Customer representative")


# --------------------------------------------------------------------------------------------------------
# Public API


def write_html_report(
    run_dir: Path,
    requirements: Path | str | None = None,
    *,
    db_url: str | None = None,
    trend_baseline: str | None = None,
    record: RunRecord | None = None,
) -> Path:
    """Write ``<run_dir>/report.html`` from the run's record; return the report's path.

    ``record``: the run record when the caller has read it already; by default ``<run_dir>/journal.jsonl``
    is read. ``requirements`` is the requirements file the VCRM section is built from; by default the
    ``requirements.yaml`` next to the limits file the run used (the ``limits`` record's ``path``, else
    ``run_start.limits_file``). A missing or invalid requirements file is reported in the VCRM section and
    in the notes; it does not stop the report.

    ``db_url`` is the results database (SQLAlchemy URL, as ``$BENCH_DB``) the "Trends" section compares this
    run with; without it the section says that no database was given. ``trend_baseline``: the run id the
    regressions are flagged against (default: the previous run in the database).

    Raises :class:`reports.run_record.JournalError` if the journal is missing or unreadable.
    The file is written to a temporary name and renamed, so a reader never sees half a report.
    """
    run_dir = Path(run_dir)
    if record is None:
        record = read_journal(run_dir / JOURNAL_NAME)
    view = build_view(record, run_dir, requirements=requirements, db_url=db_url, trend_baseline=trend_baseline)
    return write_html(view, run_dir)


def write_html(view: ReportView, run_dir: Path) -> Path:
    """``view`` rendered for the screen into ``<run_dir>/report.html`` (atomically); returns its path."""
    return _write_atomic(Path(run_dir) / REPORT_NAME, render_html(view))


def _write_atomic(target: Path, text: str) -> Path:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def render_html(view: ReportView, *, for_print: bool = False) -> str:
    """The report as an HTML string: for the screen, or laid out for print (``for_print``: the PDF)."""
    return _template().render(r=view, for_print=for_print)


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
    env.filters["css_string"] = css_string
    return env.get_template(TEMPLATE_NAME)


def css_string(text: object) -> Markup:
    """``text`` as a quoted CSS string, every character that is not a letter, digit or space hex-escaped, so
    nothing in it can end the string, the rule or the ``<style>`` element (used for the page footer)."""
    out = []
    for ch in str(text):
        out.append(
            ch if ch.isascii() and (ch.isalnum() or ch == " ") else f"\\{ord(ch):06x} "
        )  # the space ends the escape and is consumed
    return Markup('"' + "".join(out) + '"')


# --------------------------------------------------------------------------------------------------------
# Building the view


def build_view(
    record: RunRecord,
    run_dir: Path | None = None,
    *,
    now: datetime | None = None,
    requirements: Path | str | None = None,
    db_url: str | None = None,
    trend_baseline: str | None = None,
) -> ReportView:
    """The report of ``record`` as view objects, for :func:`render_html` (screen and print).

    ``run_dir`` is where attachments are read from (default: the journal's directory); ``now`` is the
    generation time printed on the cover (default: the clock); ``requirements``, ``db_url``,
    ``trend_baseline``: see :func:`write_html_report`."""
    run_dir = Path(run_dir) if run_dir is not None else record.path.parent
    notes: list[str] = list(record.warnings)
    run = record.run
    req_path = Path(requirements) if requirements is not None else default_requirements_path(record)
    req_set, req_problem = _load_requirements(req_path)
    if req_problem:
        notes.append(req_problem)
    procedure = (run.procedure if run else "") or (str(req_set.procedure) if req_set is not None else "")
    part_number = run.dut.part_number if run else ""
    identity = tuple(
        IdentityView(i.node, i.firmware, i.hardware, i.serial, fmt_time(i.time)) for i in record.dut_identity
    )
    dut = run.dut if run is not None else None
    model_level = (run.model_level if run else "") or (dut.model_level if dut else "")
    dut_text = " ".join(x for x in ((dut.name if dut else ""), f"s/n {dut.serial}" if dut and dut.serial else "") if x)
    campaign = run.campaign if run else ""
    definition = record.campaign
    if definition is not None:  # started from a campaign file: its name and kind
        campaign = f"{definition.id} issue {definition.issue} ({definition.kind})"

    cover = (
        Field("Test procedure", procedure),
        Field("Requirements", str(req_set.document) if req_set is not None else ""),
        Field("Campaign", campaign),
        *_campaign_fields(definition),
        Field("Model level", model_level),
        Field("DUT", dut.name if dut else ""),
        Field("DUT part number", part_number),
        Field("DUT serial", dut.serial if dut else ""),
        Field("DUT firmware (read from the satellite)", _firmware_summary(identity)),
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
        Field("DUT part number", part_number),
        Field("Model level", model_level),
        Field("Bench", _bench_text(run)),
        Field("Operator", run.operator if run else ""),
        Field("Start", fmt_time(run.time) if run else ""),
        Field("End", fmt_time(record.end.time) if record.end else ""),
        Field("Software version", run.software_version if run else ""),
        Field("Git revision", run.git_revision if run else ""),
        Field("Limits file", record.limits_path),
        Field("Requirements file", str(req_path) if req_path is not None else ""),
        Field("Bench configuration", run.bench_config if run else ""),
        Field("Configuration hash", run.config_hash if run else ""),
        Field("Command line", " ".join(run.argv) if run else ""),
    )
    envelope = tuple(Field(k, v) for k, v in _flatten(dut.envelope if dut else {}))

    run_start = parse_time(run.time) if run else None
    instruments = tuple(_instrument_view(i, run_start) for i in record.instruments)
    tests = tuple(_test_view(n, t, run_dir, notes) for n, t in enumerate(record.tests, start=1))
    vcrm = _vcrm_view(record, req_set, req_path, req_problem, tests, _latest_defect_run(db_url, run_dir, notes))
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
        emergency_stops=tuple(stop.describe() for stop in record.emergency_stops),
        sign_off=SIGN_OFF_ROLES,
        generated=(now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        identity=identity,
        deviations=tuple(
            DeviationView(d.ref, d.text, d.approved_by, d.test_id, fmt_time(d.time)) for d in record.deviations
        ),
        vcrm=vcrm,
        trends=_trends(record, db_url, trend_baseline, notes),
    )


def _trends(record: RunRecord, db_url: str | None, baseline: str | None, notes: list[str]) -> TrendsView:
    """This run against earlier runs in the results database; a plain statement when that cannot be done."""
    if db_url is None:
        return unavailable("Trends not computed: this report was built without a results database", code=True)
    run = record.run
    if run is None or not run.run_id:
        return unavailable("Trends not computed: the journal has no run start, so the run has no ID.")
    # imported here: SQLAlchemy is only loaded when a report compares runs
    from sqlalchemy.exc import SQLAlchemyError

    from reports.db import DatabaseError, open_db
    from reports.trends import REPORT_MAX_ROWS, CurrentValue, ResultsError, report_trends

    current = [
        CurrentValue(m.test_id, m.name, float(m.value), m.units, m.low, m.high, m.verdict, m.uncertainty)
        for m in record.measurements()
        if isinstance(m.value, int | float) and not isinstance(m.value, bool) and math.isfinite(m.value)
    ]
    try:
        engine = open_db(db_url, create=False)
    except DatabaseError as exc:
        return unavailable(f"Trends not available: {exc}.")
    try:
        report = report_trends(
            engine,
            run.run_id,
            parse_time(run.time),
            current,
            model_level=run.model_level or (run.dut.model_level if run.dut else ""),
            baseline=baseline,
        )
        return trends_view(report, max_rows=REPORT_MAX_ROWS)
    except (ResultsError, SQLAlchemyError) as exc:
        notes.append(f"trends not computed: {exc}")
        return unavailable(f"Trends not available: {exc}.")
    finally:
        engine.dispose()


def render_trends(view: TrendsView) -> Markup:
    """The body of the "Trends" section alone (the partial report.html includes), e.g. to mail it."""
    return Markup(_template().environment.get_template("_trends.html.j2").render(trends=view))


def _run_duration(record: RunRecord) -> str:
    if record.run is None or record.end is None:
        return ""
    start, end = parse_time(record.run.time), parse_time(record.end.time)
    if start is None or end is None:
        return ""
    return fmt_duration((end - start).total_seconds())


def _bench_text(run: RunInfo | None) -> str:
    """The bench; for a parallel run, how many auto-started twins it ran on (its instruments are listed per twin)."""
    if run is None:
        return ""
    if run.workers:
        return f"{run.bench} — parallel run on {run.workers} auto-started twins (one per worker)"
    return run.bench


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
    condensed = len(t.measurements) > PDF_TABLE_ROWS
    rows = tuple(_row(m) for m in t.measurements)
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
        condensed=condensed,
        total_rows=len(t.measurements),
        print_rows=tuple(r for r in rows if r.verdict != "pass") if condensed else rows,
        operator_steps=tuple(_operator_step(a) for a in t.operator_actions),
    )


def _operator_step(a: OperatorAction) -> OperatorStepView:
    answer = a.answer + (f" {a.units}" if a.units and a.answer else "")
    if a.options:
        answer += f" (of {', '.join(a.options)})"
    by = a.answered_by or "nobody"
    if a.note:
        by += f" ({a.note})"
    return OperatorStepView(
        time=fmt_time(a.time), kind=a.prompt, text=a.text, answer=answer or "—", answered_by=by,
        outcome=a.outcome, waited=fmt_duration(a.waited) if a.waited is not None else "",
    )  # fmt: skip


def _campaign_fields(c: CampaignInfo | None) -> tuple[Field, ...]:
    """The campaign file on the cover: which file and which version of it (its text is in the journal)."""
    if c is None:
        return ()
    return (Field("Campaign purpose", c.purpose), Field("Campaign file", f"{c.path} (SHA-256 {c.sha256})"))


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
    if a.mime not in (TRACE_MIME, PLOT_MIME):
        return AttachmentView(name, a.path, href, a.mime, None, "", "")
    try:
        plot, caption = _trace_plot(run_dir, rel) if a.mime == TRACE_MIME else _xy_plot(run_dir, rel)
    except (OSError, ValueError) as exc:
        note = f"{'trace' if a.mime == TRACE_MIME else 'plot'} could not be drawn: {exc}"
        notes.append(f"attachment {name!r}: {note}")
        return AttachmentView(name, a.path, href, a.mime, None, "", note)
    return AttachmentView(name, a.path, href, a.mime, plot, caption, "")


def _read_json(run_dir: Path, rel: PurePosixPath) -> object:
    base = run_dir.resolve()
    file = (base / rel).resolve()
    if not file.is_relative_to(base):
        raise ValueError("the file lies outside the run directory")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{rel} not found in the run directory") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{rel} is not valid JSON ({exc})") from None


def _xy_plot(run_dir: Path, rel: PurePosixPath) -> tuple[Markup, str]:
    try:
        spec = PlotSpec.from_json(_read_json(run_dir, rel))
    except ValueError as exc:
        raise ValueError(f"{rel}: {exc}" if not str(exc).startswith(str(rel)) else str(exc)) from None
    svg = spec.svg()
    caption = "; ".join(
        f"{s.name}: {'limit' if s.style == 'limit' else f'{len(s.x)} point' + ('s' if len(s.x) != 1 else '')}"
        for s in spec.series
    )
    return Markup(svg), caption  # safe: xy_plot escapes every text it places


def _trace_plot(run_dir: Path, rel: PurePosixPath) -> tuple[Markup, str]:
    obj = _read_json(run_dir, rel)
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
    elif status == "n/a":
        note = "carries the link, measures nothing: no calibration needed"
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
        flagged=status not in ("valid", "n/a"),
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
    for stop in record.emergency_stops:
        where = stop.test_id or "between tests"
        out.append(Anomaly("emergency stop", None, fmt_time(stop.time), where, stop.describe()))
    for t, view in zip(record.tests, tests, strict=True):
        if t.outcome in ("failed", "error", "interrupted"):
            out.append(Anomaly(f"test {t.outcome}", view.anchor, t.test_id, t.name, t.message, view.attachments))
        for m in t.measurements:
            if m.verdict != "fail":
                continue
            row = _row(m)
            units = f" {m.units}" if m.units else ""
            limits = f"[{row.low or '−∞'}, {row.high or '+∞'}]{units}"
            text = f"{row.value}{units} outside limits {limits}"
            if row.margin:
                text += f", margin {row.margin}{units}"
            if m.description:
                text += f" — {m.description}"
            out.append(Anomaly("measurement fail", view.anchor, t.test_id, m.name, text, view.attachments))
    for e in record.safe_state:
        for role, res in e.results.items():
            if res != "ok":
                out.append(Anomaly("safe state not reached", None, fmt_time(e.time), role, res))
    for i in instruments:
        if i.flagged:
            out.append(Anomaly(f"calibration {i.status}", None, "instruments", i.role, i.note))
    return tuple(out)


def _row(m: Measurement) -> MeasurementRow:
    return MeasurementRow(
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


_APPENDIX_CHARS: Final = 208
"""Characters per appendix line (landscape A4 at 6 pt monospace): up to three measurements share a line."""


def _appendix(view: TestView) -> AppendixTable:
    """Fixed-width entries (name, value, units, low, high, verdict), up to three per line when they fit.

    Fewer columns than the test's table (the margin follows from value and limits) and several entries per line:
    WeasyPrint's time goes with the number of line boxes and glyphs (docs/requirements-and-vcrm.md).
    """
    rows = view.rows
    width = max((len(r.name) for r in rows), default=4)
    vwidth = max((len(r.value) for r in rows), default=1)
    uwidth = max((len(r.units) for r in rows), default=0)
    lwidth = max((len(r.low) for r in rows), default=0)
    hwidth = max((len(r.high) for r in rows), default=0)
    entries = [
        (
            r.verdict,
            f"{r.name:<{width}} {r.value:>{vwidth}} {r.units:<{uwidth}} "
            f"{r.low:>{lwidth}} {r.high:>{hwidth}} {r.verdict:<8}",
        )
        for r in rows
    ]
    entry = len(entries[0][1]) if entries else 1
    gap = "  │  "
    per_line = max(1, min(3, (_APPENDIX_CHARS + len(gap)) // (entry + len(gap))))
    lines: list[tuple[str, Markup]] = []
    for k in range(0, len(entries), per_line):
        chunk = entries[k : k + per_line]
        parts = [
            escape(text) if v == "pass" else Markup('<span class="l-{}">{}</span>').format(v, text) for v, text in chunk
        ]
        verdicts = {v for v, _ in chunk}
        worst = "fail" if "fail" in verdicts else "marginal" if "marginal" in verdicts else "pass"
        lines.append((worst, Markup(gap).join(parts)))
    return AppendixTable(view.anchor, view.number, view.test_id, tuple(lines), per_line)


def default_requirements_path(record: RunRecord) -> Path | None:
    """``requirements.yaml`` next to the limits file the run used, or None when the journal names none."""
    if not record.limits_path:
        return None
    return Path(record.limits_path).parent / REQUIREMENTS_NAME


def _load_requirements(path: Path | None) -> tuple[RequirementSet | None, str]:
    if path is None:
        return None, ""
    try:
        return load_requirements(path), ""
    except RequirementsError as exc:
        return None, f"VCRM not built: {exc}"


def _collapse_tests(test_ids: Iterable[str], anchors: Mapping[str, str]) -> tuple[tuple[str, str | None], ...]:
    """``file.py::test[a]``, ``file.py::test[b]`` → ``file.py::test [a, b]``, linked to the first run in this report."""
    groups: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
    for tid in test_ids:
        path, _, rest = tid.partition("::")
        base, bracket, param = rest.partition("[")
        params, found = groups.setdefault((path, base), ([], []))
        if bracket:
            params.append(param.removesuffix("]"))
        if tid in anchors:
            found.append(anchors[tid])
    out = []
    for (path, base), (params, found) in groups.items():
        label = f"{PurePosixPath(path).name}::{base}" if base else path
        if params:
            label += f" [{', '.join(params)}]"
        out.append((label, found[0] if found else None))
    return tuple(out)


def _firmware_summary(identity: tuple[IdentityView, ...]) -> str:
    if not identity:
        return "not read"
    return "; ".join(f"{i.node} {i.firmware}".strip() for i in identity)


_CELL_TEXT: Final = {
    "verified": "verified",
    "failed": "FAILED",
    "incomplete": "INCOMPLETE (test interrupted)",
    "not run": "not run",
    "n/a": "—",
    "evidence": "evidence",
}


def _latest_defect_run(db_url: str | None, run_dir: Path, notes: list[str]) -> tuple[DefectRun | None, str]:
    """The newest defect run (`bench defects`): from the results database, else the runs folder; and its source."""
    if db_url is not None:
        from sqlalchemy.exc import SQLAlchemyError

        from reports.db import DatabaseError, latest_defect_run, open_db

        try:
            engine = open_db(db_url, create=False)
            try:
                found = latest_defect_run(engine)
            finally:
                engine.dispose()
            if found is not None:
                return found, "the results database"
        except (DatabaseError, SQLAlchemyError) as exc:
            notes.append(f"defect run not read from the results database: {exc}")
    found = latest_defect_run_in(run_dir.parent)
    return found, (f"{run_dir.parent}" if found is not None else "")


def _vcrm_view(
    record: RunRecord,
    req_set: RequirementSet | None,
    req_path: Path | None,
    problem: str,
    tests: tuple[TestView, ...],
    defect_run: tuple[DefectRun | None, str] = (None, ""),
) -> VcrmView:
    if req_set is None:
        if problem:
            source = problem.removeprefix("VCRM not built: ")
        elif req_path is None:
            source = (
                "no requirements file: the journal names no limits file, and none was given "
                "(write_html_report(run_dir, requirements=...))"
            )
        else:
            source = f"no requirements file at {req_path}"
        return VcrmView(source, False, LEVELS, (), (), (), (), "")
    plans_dir = req_set.path.parent if req_set.path is not None else None
    # the plan set: the test plans next to the requirements, when they sit in a test_plans folder (with limits.yaml)
    is_plans = plans_dir is not None and (plans_dir / "limits.yaml").is_file()
    plan = scan_plans(plans_dir) if plans_dir is not None and is_plans and any(plans_dir.rglob("test_*.py")) else None
    vcrm: Vcrm = build_vcrm(req_set, [record], plan_citations=plan)
    seeded, seeded_from = defect_run
    caught_of = defect_coverage(seeded) if seeded is not None else {}
    anchors: dict[str, str] = {}
    for t in tests:
        anchors.setdefault(t.test_id, t.anchor)
    rows = []
    for row in vcrm.rows:
        req = row.requirement
        cells = tuple(
            VcrmCell(
                r.status,
                _CELL_TEXT[r.status] + (" (marginal)" if r.marginal and r.status == "verified" else ""),
                " ".join(
                    x
                    for x in (
                        r.run_id,
                        fmt_time(r.time),
                        ", ".join(r.tests) if r.status in ("failed", "incomplete") else "",
                    )
                    if x
                ),
            )
            for r in row.results
        )
        rows.append(
            VcrmRowView(
                req_id=req.req_id,
                text=req.text,
                subsystem=req.subsystem,
                method=req.method,
                method_name=req.method_name,
                levels=", ".join(req.levels),
                tests=_collapse_tests(row.tests, anchors),
                evidence=req.evidence,
                parent=req.parent,
                cells=cells,
                flagged=any(c.status in ("failed", "incomplete") for c in cells)
                or any(e.req_id == req.req_id for e in vcrm.errors),
                defects=_defects_cell(seeded, caught_of.get(req.req_id)),
                defects_missed=req.req_id in caught_of and caught_of[req.req_id][0] < caught_of[req.req_id][1],
            )
        )
    counts = vcrm.counts()
    source = f"{req_set.document} ({req_set.path})" if req_set.path else str(req_set.document)
    plan_set = f"test plans under {plans_dir}" if plan is not None else "the tests of this run"
    return VcrmView(
        source=source,
        available=True,
        levels=LEVELS,
        rows=tuple(rows),
        errors=tuple(str(e) for e in vcrm.errors),
        gaps=tuple(str(g) for g in vcrm.gaps),
        counts=tuple((f"{m} ({name})", counts[m]) for m, name in METHODS.items()),
        plan_set=plan_set,
        defect_source=(
            f"defect run {seeded.run_id} of {fmt_time(seeded.started)} ({seeded_from})"
            if seeded is not None
            else "no defect run (`bench defects` has not been run against this results database or runs folder)"
        ),
        defects_missed=tuple(
            f"{d.defect} ({d.subsystem}; {', '.join(d.requirements)}): {d.description}"
            + (f" — {d.note}" if d.note else f" — expected to be caught by {', '.join(d.expected)}")
            for d in (seeded.missed if seeded is not None else ())
        ),
    )


def _defects_cell(run: DefectRun | None, counts: tuple[int, int] | None) -> str:
    if run is None:
        return "no defect run"
    if counts is None:
        return "—"
    return f"{counts[0]}/{counts[1]}"
