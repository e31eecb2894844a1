"""The PDF qualification report: the same document as ``report.html``, printed to A4.

:func:`print_pdf` prints a report view (:func:`reports.html.build_view`: the one view ``report.html`` is
rendered from, so the same sections, numbers and VCRM) into ``<run_dir>/report.pdf``; ``write_pdf_report(run_dir)``
does it from the run's journal. The view is rendered for print (``render_html(view, for_print=True)``), which
changes two things: each test's header is a paragraph instead of a table, and a test with more than
:data:`reports.html.PDF_TABLE_ROWS` measurements lists in its section only the measurements that did not pass,
its full table going to Appendix A as fixed-width lines (name, value, units, low, high, verdict; up to three per
line on landscape pages). Nothing is dropped. Both documents from one view: :mod:`reports.report_files`.

Two engines print that HTML (measurements: docs/requirements-and-vcrm.md):

``chromium``    headless Chromium ``--print-to-pdf`` (Debian package ``chromium``): 10,000 measurements in
                ~5 s, a normal run in ~2.5 s. Preferred when it is on PATH.
``weasyprint``  WeasyPrint (``pip install weasyprint``; needs Pango: Debian ``libpango-1.0-0
                libpangoft2-1.0-0``): ~17-30 s for 10,000 measurements, ~5-9 s for a normal run.

``engine="auto"`` (default; environment ``OTS_PDF_ENGINE`` overrides) takes Chromium if found, else
WeasyPrint. When neither can run, :class:`PdfEngineMissing` says in one line what to install;
:func:`reports.report_files.write_html_and_pdf` then still writes the HTML and returns that line instead of raising.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final, Literal, TypeAlias

from reports.html import JOURNAL_NAME, ReportView, build_view, render_html
from reports.run_record import RunRecord, read_journal

__all__ = [
    "CHROMIUM_NAMES",
    "ENGINES",
    "INSTALL_HINT",
    "PDF_NAME",
    "Engine",
    "PdfEngineMissing",
    "PdfError",
    "available_engine",
    "print_pdf",
    "write_pdf_report",
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


def write_pdf_report(
    run_dir: Path | str,
    requirements: Path | str | None = None,
    *,
    engine: Engine | None = None,
    db_url: str | None = None,
    record: RunRecord | None = None,
) -> Path:
    """Write ``<run_dir>/report.pdf`` from the run's record (default: read from its journal); return its path.

    ``requirements``, ``db_url``: as for :func:`reports.html.write_html_report`. ``engine``: see the module
    docstring (default: ``OTS_PDF_ENGINE`` or ``auto``). Raises :class:`PdfEngineMissing` when no engine can
    run, :class:`PdfError` when it fails, :class:`reports.run_record.JournalError` when the journal cannot be
    read.
    """
    run_dir = Path(run_dir)
    available_engine(engine)  # before the work: a missing engine is said at once
    if record is None:
        record = read_journal(run_dir / JOURNAL_NAME)
    return print_pdf(build_view(record, run_dir, requirements=requirements, db_url=db_url), run_dir, engine=engine)


def print_pdf(view: ReportView, run_dir: Path | str, *, engine: Engine | None = None) -> Path:
    """``view`` rendered for print and printed into ``<run_dir>/report.pdf``; returns its path.
    Raises :class:`PdfEngineMissing` when no engine can run, :class:`PdfError` when it fails."""
    run_dir = Path(run_dir)
    chosen, chromium = available_engine(engine)
    html = render_html(view, for_print=True)
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
