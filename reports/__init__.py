"""Reports: pure functions from a run's results to documents.

A run leaves a journal (``<run-dir>/journal.jsonl``, JSON Lines, docs/contracts.md §4) that the bench
appends to and fsyncs as the run happens. This package reads that journal and nothing else: it never talks
to instruments or the twin, and imports nothing from the bench, so a report can be made on any machine,
at any time after the run, including from the journal of a run that was killed.

Modules:

* :mod:`reports.run_record` — ``read_journal(path) -> RunRecord``: the journal as immutable records, tolerant
  of a killed run (truncated last line, open test, no ``run_end``) and strict about anything else
  (``JournalError`` names file and line). Also decides the run's overall verdict: PASS / FAIL / INCOMPLETE.
* :mod:`reports.html` — ``write_html_report(run_dir) -> Path``: the qualification test report as one
  self-contained HTML file (inline CSS, inline SVG plots, A4 print styles; the PDF is printed from it).
* :mod:`reports.svgplot` — ``line_plot(...)``: dependency-free SVG line plots (power-on current traces).
* :mod:`reports.formatting` — how numbers, margins, times and durations are written in every report.
"""

# Nothing is imported here: `reports.vcrm` is used at pytest collection, which must not pay for Jinja2.
