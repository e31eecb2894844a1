"""The report files of a run: ``report.html`` and ``report.pdf``, both from one view of one run record.

:func:`write_html_and_pdf` reads the journal once (or takes the run record the caller has), builds the report
view once (:func:`reports.html.build_view`: every section, the VCRM, the trends against earlier runs), renders
it for the screen into ``report.html`` and prints it (:func:`reports.pdf.print_pdf`) into ``report.pdf``. A PDF
that cannot be made (no engine here, the engine failed) is returned as one line in :attr:`ReportFiles.problem`;
the HTML is always written.

``python -m reports.report_files RUN_DIR [--requirements FILE] [--engine E]`` does the same from a shell.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from reports.html import JOURNAL_NAME, build_view, write_html
from reports.pdf import ENGINES, Engine, PdfError, print_pdf
from reports.run_record import JournalError, RunRecord, read_journal

__all__ = ["ReportFiles", "main", "write_html_and_pdf"]


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    pdf: Path | None
    problem: str
    """Why there is no PDF (one line), or ""."""


def write_html_and_pdf(
    run_dir: Path | str,
    requirements: Path | str | None = None,
    *,
    engine: Engine | None = None,
    db_url: str | None = None,
    record: RunRecord | None = None,
) -> ReportFiles:
    """``<run_dir>/report.html``, then ``<run_dir>/report.pdf``, from one view of the run.

    ``record``: the run record when the caller has read it (the bench at the end of a run); by default
    ``<run_dir>/journal.jsonl`` is read. ``requirements``: the requirements file of the VCRM (default: next to
    the run's limits file). ``db_url``: the results database whose earlier runs feed the trend section.
    ``engine``: the PDF engine (:mod:`reports.pdf`). Raises :class:`reports.run_record.JournalError` when the
    journal cannot be read."""
    run_dir = Path(run_dir)
    if record is None:
        record = read_journal(run_dir / JOURNAL_NAME)
    view = build_view(record, run_dir, requirements=requirements, db_url=db_url)
    html = write_html(view, run_dir)
    try:
        pdf = print_pdf(view, run_dir, engine=engine)
    except PdfError as exc:
        return ReportFiles(html, None, str(exc))
    return ReportFiles(html, pdf, "")


def main(argv: list[str] | None = None) -> int:
    """``python -m reports.report_files RUN_DIR [--requirements FILE] [--engine E]``: write report.html and
    report.pdf."""
    parser = argparse.ArgumentParser(prog="python -m reports.report_files", description=main.__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--requirements", type=Path, default=None, help="requirements file for the VCRM")
    parser.add_argument("--engine", choices=ENGINES, default=None, help="PDF engine (default: OTS_PDF_ENGINE or auto)")
    args = parser.parse_args(argv)
    try:
        files = write_html_and_pdf(args.run_dir, args.requirements, engine=args.engine)
    except JournalError as exc:
        print(f"report not written: {exc}", file=sys.stderr)
        return 2
    print(files.html)
    if files.pdf is None:
        print(files.problem, file=sys.stderr)
        return 3
    print(files.pdf)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
