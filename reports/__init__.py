"""Reports: pure functions from a run's results to documents.

A run leaves a journal (``<run-dir>/journal.jsonl``, JSON Lines, docs/contracts.md §4) that the bench
appends to and fsyncs as the run happens. This package reads that journal and nothing else: it never talks
to instruments or the twin, and imports nothing from the bench, so a report can be made on any machine,
at any time after the run, including from the journal of a run that was killed.

Modules:

* :mod:`reports.run_record` — ``read_journal(path) -> RunRecord``: the journal read once into one typed record
  (with the cover's extras, the limits, the DUT identity, deviations, emergency stops, the DB-import outcome),
  tolerant of a killed run (truncated last line, open test, no ``run_end``) and strict about anything else
  (``JournalError`` names file and line). Also decides the run's overall verdict: PASS / FAIL / INCOMPLETE /
  ABORTED. That one record feeds the report, the results database and the end-of-run summaries.
* :mod:`reports.html` — ``build_view(record) -> ReportView`` once, ``render_html(view, for_print=...)`` for the
  screen and for print; ``write_html_report(run_dir) -> Path``.
* :mod:`reports.pdf` — prints the view to ``report.pdf`` (Chromium or WeasyPrint).
* :mod:`reports.report_files` — ``write_html_and_pdf(run_dir, record=...)``: both files from one view.
* :mod:`reports.db` — the results database (import a run record or a journal); :mod:`reports.trends` — trends
  across runs (``query``: SQL; ``analysis``: statistics); :mod:`reports.trend_view` — the report's trend section.
* :mod:`reports.svgplot` — ``line_plot(...)``, ``xy_plot(...)``: dependency-free SVG plots of plain data.
* :mod:`reports.vcrm` — the verification cross-reference matrix; :mod:`reports.manifest` — SHA-256 seals.
* :mod:`reports.formatting` — how numbers, margins, times and durations are written in every report.
"""

# Nothing is imported here: `reports.vcrm` is used at pytest collection, which must not pay for Jinja2.
