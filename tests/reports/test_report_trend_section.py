"""The "Trends" section of report.html: this run against earlier runs in the results database."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from html_support import section, visible_text
from journal_builder import JournalBuilder

from reports.db import import_run, open_db
from reports.html import render_trends, write_html_report
from reports.run_record import parse_time, read_journal
from reports.trend_view import trends_view
from reports.trends import CurrentValue, report_trends

T = "test_plans/eps/test_power_on.py::test_idle_current"
T2 = "test_plans/eps/test_power_on.py::test_bus_voltage"


def _run(root: Path, run_id: str, day: int, idle: float, bus: float = 7.6, verdict: str = "pass") -> JournalBuilder:
    j = JournalBuilder(root / run_id)
    j.run_start(run_id=run_id, time=f"2025-11-{day:02d}T18:41:00.000000+00:00")
    j.test_start(T).measurement(T, "idle_current", idle, low=0.2, high=0.5, verdict=verdict, uncertainty=0.001)
    j.test_end(T)
    j.test_start(T2).measurement(T2, "bus_voltage", bus, units="V", low=7.0, high=8.2).measurement(
        T2, "firmware", "1.2.3", units="", low=None, high=None
    )
    j.test_end(T2).run_end(0)
    j.write()
    return j


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'results.sqlite'}"


def _import(db_url: str, *builders: JournalBuilder) -> None:
    engine = open_db(db_url)
    try:
        for b in builders:
            import_run(engine, b.run_dir)
    finally:
        engine.dispose()


def test_trend_section_lists_earlier_values_and_flags_a_regression(tmp_path: Path, db_url: str) -> None:
    r1 = _run(tmp_path, "r1", 20, 0.30)
    r2 = _run(tmp_path, "r2", 21, 0.31)
    _import(db_url, r1, r2)
    # this run: idle current jumped towards the high limit (> 10 % of the span) — not yet imported
    r3 = _run(tmp_path, "r3", 22, 0.45)

    html = write_html_report(r3.run_dir, db_url=db_url).read_text(encoding="utf-8")

    trends = section(html, "trends")
    text = visible_text(trends)
    assert "2 earlier run(s) at model level EM" in text
    assert "baseline: run r2 (the previous run)" in text
    assert "2 measurement(s) with earlier values: 1 regression(s) flagged" in text
    rows = re.findall(r'<tr class="trend (row-\w+)">(.*?)</tr>', trends, re.S)
    assert len(rows) == 2  # the text measurement is not trended
    first_class, first = rows[0]
    assert first_class == "row-fail"  # regressions come first
    first_text = visible_text(first)
    assert "idle_current" in first_text and T in first_text
    assert "0.3100 A" in first_text and "0.4500 A" in first_text  # baseline and this run
    assert "REGRESSION" in first_text and "towards the limit" in first_text
    ET.fromstring(re.search(r"<svg .*?</svg>", first, re.S).group(0))  # type: ignore[union-attr]
    assert rows[1][0] == "row-pass" and "bus_voltage" in visible_text(rows[1][1])
    # the section sits after the sign-off, before any appendix
    assert html.index('id="sign-off"') < html.index('id="trends"')


def test_trend_section_with_explicit_baseline_and_rebuilt_report(tmp_path: Path, db_url: str) -> None:
    r1 = _run(tmp_path, "r1", 20, 0.30)
    r2 = _run(tmp_path, "r2", 21, 0.46)
    r3 = _run(tmp_path, "r3", 22, 0.46)
    _import(db_url, r1, r2, r3)  # r3 is already in the database: a report rebuilt later

    html = write_html_report(r3.run_dir, db_url=db_url, trend_baseline="r1").read_text(encoding="utf-8")
    text = visible_text(section(html, "trends"))
    assert "baseline: run r1 (chosen for this report)" in text
    assert "2 earlier run(s)" in text and "1 regression(s) flagged" in text

    default = visible_text(section(write_html_report(r3.run_dir, db_url=db_url).read_text(encoding="utf-8"), "trends"))
    assert "baseline: run r2 (the previous run)" in default and "no regression" in default


def test_no_earlier_run_is_said_plainly(tmp_path: Path, db_url: str) -> None:
    later = _run(tmp_path, "r9", 25, 0.3)
    _import(db_url, later)  # only a later run: nothing before this one
    r1 = _run(tmp_path, "r1", 20, 0.30)
    text = visible_text(section(write_html_report(r1.run_dir, db_url=db_url).read_text(encoding="utf-8"), "trends"))
    assert "No earlier runs at model level EM in the results database: nothing to compare this run with" in text


def test_no_database_is_said_plainly(tmp_path: Path) -> None:
    r1 = _run(tmp_path, "r1", 20, 0.30)
    text = visible_text(section(write_html_report(r1.run_dir).read_text(encoding="utf-8"), "trends"))
    assert "Trends not computed: this report was built without a results database" in text
    missing = f"sqlite:///{tmp_path / 'nope.sqlite'}"
    text = visible_text(section(write_html_report(r1.run_dir, db_url=missing).read_text(encoding="utf-8"), "trends"))
    assert "Trends not available: no results database at" in text
    assert not (tmp_path / "nope.sqlite").exists()


def test_unknown_baseline_is_noted_not_fatal(tmp_path: Path, db_url: str) -> None:
    r1 = _run(tmp_path, "r1", 20, 0.30)
    _import(db_url, r1)
    r2 = _run(tmp_path, "r2", 21, 0.30)
    html = write_html_report(r2.run_dir, db_url=db_url, trend_baseline="<zz>").read_text(encoding="utf-8")
    assert "Trends not available: baseline run &#39;&lt;zz&gt;&#39; is not in the database" in html


def test_trend_section_is_fast_and_capped_for_10000_measurements(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def big(run_id: str, day: int, shift: float) -> JournalBuilder:
        j = JournalBuilder(tmp_path / run_id)
        j.run_start(run_id=run_id, time=f"2025-11-{day:02d}T18:41:00.000000+00:00")
        for n in range(100):
            t = f"test_plans/eps/test_sweep.py::test_point[{n}]"
            j.test_start(t)
            for k in range(100):
                # in the last run, the measurements of test 7 move by half the span: 100 regressions
                value = 1.0 + 0.001 * k + (shift if n == 7 else 0.0)
                j.measurement(t, f"current_{k}", value, low=0.5, high=1.6)
            j.test_end(t)
        j.run_end(0)
        j.write()
        return j

    earlier = [big(f"b{i}", 10 + i, 0.0) for i in range(5)]
    _import(db_url, *earlier)
    this = big("b9", 20, 0.5)
    record = read_journal(this.run_dir / "journal.jsonl")
    current = [
        CurrentValue(m.test_id, m.name, float(m.value), m.units, m.low, m.high, m.verdict, m.uncertainty)  # type: ignore[arg-type]
        for m in record.measurements()
    ]
    engine = open_db(db_url)
    try:
        # CPU time of this process, not wall time: the budget is the work done, which other jobs on a loaded
        # machine do not change (they only delay it).
        start = time.process_time()
        report = report_trends(engine, "b9", parse_time(record.run.time), current, model_level="EM")  # type: ignore[union-attr]
        fragment = str(render_trends(trends_view(report, max_rows=200)))
        elapsed = time.process_time() - start
    finally:
        engine.dispose()
    with capsys.disabled():
        print(f"\n[reports] trend section, 10,000 measurements × 5 earlier runs: {elapsed:.3f} s CPU")
    assert len(report.items) == 10_000 and len(report.regressions) == 100
    assert fragment.count('<tr class="trend ') == 200
    assert fragment.count('<tr class="trend row-fail">') == 100  # all regressions listed, first
    assert "9800 more measurement(s) not listed" in fragment and "none of them flagged" in fragment
    assert elapsed < 5.0
