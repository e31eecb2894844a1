"""The PDF qualification report: the same document as ``report.html``, printed to A4.

``write_pdf_report(run_dir)`` reads ``<run_dir>/journal.jsonl`` and writes ``<run_dir>/report.pdf``. The HTML
comes from the same view and template as :func:`reports.html.write_html_report` (same sections, same numbers,
same VCRM), rendered with ``pdf=True``, which changes two things: each test's header is a paragraph instead of
a table, and a test with more than :data:`reports.html.PDF_TABLE_ROWS` measurements lists in its section only
the measurements that did not pass, its full table going to Appendix A as fixed-width lines (name, value,
units, low, high, verdict; up to three per line on landscape pages). Nothing is dropped.

Two engines print that HTML (measurements: docs/requirements-and-vcrm.md):

``chromium``    headless Chromium ``--print-to-pdf`` (Debian package ``chromium``): 10,000 measurements in
                ~5 s, a normal run in ~2.5 s. Preferred when it is on PATH.
``weasyprint``  WeasyPrint (``pip install weasyprint``; needs Pango: Debian ``libpango-1.0-0
                libpangoft2-1.0-0``): ~17-30 s for 10,000 measurements, ~5-9 s for a normal run.

``engine="auto"`` (default; environment ``OTS_PDF_ENGINE`` overrides) takes Chromium if found, else
WeasyPrint. When neither can run, :class:`PdfEngineMissing` says in one line what to install;
:func:`write_reports` then still writes the HTML and returns that line instead of raising.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, TypeAlias

from reports.html import JOURNAL_NAME, render_html, write_html_report
from reports.journal import JournalError, read_journal

__all__ = [
    "CHROMIUM_NAMES",
    "ENGINES",
    "INSTALL_HINT",
    "PDF_NAME",
    "Engine",
    "PdfEngineMissing",
    "PdfError",
    "ReportFiles",
    "available_engine",
    "main",
    "write_pdf_report",
    "write_reports",
]

Engine: TypeAlias = Literal["auto", "chromium", "weasyprint"]
ENGINES: Final[tuple[Engine, ...]] = ("auto", "chromium", "weasyprint")
CHROMIUM_NAMES: Final = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_TIMEOUT_S: Final = 300.0

PDF_NAME: Final = "report.pdf"
INSTALL_HINT: Final = (
    "PDF not written: {reason}; install `apt-get install -y chromium` (fastest), or `pip install weasyprint` "
    "with `apt-get install -y libpango-1.0-0 libpangoft2-1.0-0`"
)


class PdfError(RuntimeError):
    """The PDF engine ran and failed; the message is one line."""


class PdfEngineMissing(PdfError):
    """No PDF engine can run here; the message says in one line what to install."""


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    pdf: Path | None
    problem: str
    """Why there is no PDF (one line), or ""."""


def write_pdf_report(
    run_dir: Path | str,
    requirements: Path | str | None = None,
    *,
    engine: Engine | None = None,
    db_url: str | None = None,
) -> Path:
    """Write ``<run_dir>/report.pdf``; return its path.

    ``requirements``: as for :func:`reports.html.write_html_report`. ``engine``: see the module docstring
    (default: ``OTS_PDF_ENGINE`` or ``auto``). Raises :class:`PdfEngineMissing` when no engine can run,
    :class:`PdfError` when it fails, :class:`reports.journal.JournalError` when the journal cannot be read.
    """
    run_dir = Path(run_dir)
    chosen, chromium = available_engine(engine)
    record = read_journal(run_dir / JOURNAL_NAME)
    html = render_html(record, run_dir, requirements=requirements, pdf=True, db_url=db_url)
    target = run_dir / PDF_NAME
    tmp = target.with_name(f".{PDF_NAME}.{os.getpid()}.tmp")
    try:
        if chosen == "chromium" and chromium is not None:
            _print_chromium(chromium, html, run_dir, tmp)
        else:
            _weasyprint()(string=html, base_url=str(run_dir.resolve()) + os.sep).write_pdf(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def write_reports(
    run_dir: Path | str,
    requirements: Path | str | None = None,
    *,
    engine: Engine | None = None,
    db_url: str | None = None,
) -> ReportFiles:
    """HTML, then PDF. A PDF that cannot be made is returned as ``problem`` (one line); the HTML is always
    written. ``db_url``: the results database whose earlier runs feed the trend section. Raises
    :class:`reports.journal.JournalError` when the journal cannot be read."""
    html = write_html_report(Path(run_dir), requirements, db_url=db_url)
    try:
        pdf = write_pdf_report(run_dir, requirements, engine=engine, db_url=db_url)
    except PdfError as exc:
        return ReportFiles(html, None, str(exc))
    return ReportFiles(html, pdf, "")


def available_engine(engine: Engine | None = None) -> tuple[Literal["chromium", "weasyprint"], str | None]:
    """The engine that will print (and Chromium's executable). Raises :class:`PdfEngineMissing`."""
    wanted = engine or os.environ.get("OTS_PDF_ENGINE", "") or "auto"
    if wanted not in ENGINES:
        raise PdfEngineMissing(INSTALL_HINT.format(reason=f"unknown PDF engine {wanted!r} (use {', '.join(ENGINES)})"))
    chromium = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    if wanted in ("auto", "chromium") and chromium is not None:
        return "chromium", chromium
    if wanted == "chromium":
        raise PdfEngineMissing(INSTALL_HINT.format(reason="Chromium not found on PATH"))
    _weasyprint()
    return "weasyprint", None


def _weasyprint() -> type[_HtmlLike]:
    try:
        for name in ("weasyprint", "fontTools", "fontTools.subset"):
            logging.getLogger(name).setLevel(logging.ERROR)  # per-glyph font warnings are not report problems
        from weasyprint import HTML
    except ImportError as exc:
        missing = exc.name or "weasyprint"
        raise PdfEngineMissing(
            INSTALL_HINT.format(reason=f"no Chromium on PATH and module {missing} not found")
        ) from None
    except OSError as exc:  # cffi could not dlopen Pango / GObject
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PdfEngineMissing(
            INSTALL_HINT.format(reason=f"no Chromium on PATH and WeasyPrint cannot load Pango ({first})")
        ) from None
    return HTML  # type: ignore[no-any-return]


class _HtmlLike:  # the part of weasyprint.HTML used here (WeasyPrint ships no type hints)
    def __init__(self, *, string: str, base_url: str) -> None: ...  # pragma: no cover

    def write_pdf(self, target: Path) -> object: ...  # pragma: no cover


def _print_chromium(executable: str, html: str, run_dir: Path, target: Path) -> None:
    """Print ``html`` with headless Chromium. The HTML is written next to the journal so that relative links
    resolve as they do in report.html; no network, no profile kept."""
    page = run_dir / f".report-pdf.{os.getpid()}.html"
    try:
        page.write_text(html, encoding="utf-8")
        with tempfile.TemporaryDirectory(prefix="ots-chromium-") as profile:
            argv = [
                executable,
                "--headless",
                "--no-sandbox",  # runs as root in CI containers
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                f"--user-data-dir={profile}",
                "--no-pdf-header-footer",
                "--print-to-pdf-no-header",  # the name of the same switch in older Chromium
                f"--print-to-pdf={target.resolve()}",
                page.resolve().as_uri(),
            ]
            try:
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False)
            except subprocess.TimeoutExpired:
                raise PdfError(f"PDF not written: Chromium did not finish within {CHROMIUM_TIMEOUT_S:g} s") from None
            except OSError as exc:
                raise PdfError(f"PDF not written: Chromium could not start ({exc})") from None
        ok = target.exists() and target.read_bytes()[:5] == b"%PDF-"
        if proc.returncode != 0 or not ok:
            lines = [x for x in proc.stderr.splitlines() if x.strip() and "dbus" not in x]
            why = lines[-1].strip() if lines else f"exit status {proc.returncode}"
            raise PdfError(f"PDF not written: Chromium failed ({why})")
    finally:
        page.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m reports.pdf RUN_DIR [--requirements FILE] [--engine E]``: write report.html and report.pdf."""
    parser = argparse.ArgumentParser(prog="python -m reports.pdf", description=main.__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--requirements", type=Path, default=None, help="requirements file for the VCRM")
    parser.add_argument("--engine", choices=ENGINES, default=None, help="PDF engine (default: OTS_PDF_ENGINE or auto)")
    args = parser.parse_args(argv)
    try:
        files = write_reports(args.run_dir, args.requirements, engine=args.engine)
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
