"""reports.html: the qualification test report, from a run directory to one self-contained HTML file."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import pytest
from html_support import section, visible_text
from journal_builder import JournalBuilder

from reports.html import TRACE_MIME, write_html_report

TRACE = {"interval_s": 0.0005, "units": "A", "title": "Power-on current, main bus"}


def _report(builder: JournalBuilder, tail: str = "") -> str:
    builder.write(tail)
    path = write_html_report(builder.run_dir)
    assert path == builder.run_dir / "report.html"
    return path.read_text(encoding="utf-8")


def _verdict(html: str) -> str:
    match = re.search(r'<div class="verdict verdict-(\w+)" id="verdict">(\w+)</div>', html)
    assert match
    assert match.group(1) == match.group(2).lower()
    return match.group(2)


def test_passing_run_report(passing_run: JournalBuilder) -> None:
    html = _report(passing_run)

    assert _verdict(html) == "PASS"
    cover = visible_text(html.split("<section", 1)[0])
    for expected in (
        "OTS-SAT qualification test report",
        "nightly",
        "EM",
        "OTS-SAT EM",
        "EM-001",
        "20251125T184100Z-nightly",
        "2025-11-25 18:41:00 UTC",
        "a.tester",
        "bench-01",
        "04aca61",
        "0.1.0",
        "bench/configs/twin.yaml",
        "sha256:9f2c1e",
        "Run status complete",
    ):
        assert expected in cover, expected

    summary = visible_text(section(html, "summary"))
    assert "passed failed error skipped interrupted total 2 0 0 0 0 2" in summary
    assert "pass marginal fail total 1 1 0 2" in summary
    assert "OTS-EPS-010 1 1 pass" in summary and "OTS-EPS-011 1 1 marginal" in summary

    config = visible_text(section(html, "configuration"))
    assert "main_bus.voltage_v 8.2" in config and "main_bus.current_limit_a 2.5" in config
    assert "ovp_v 8.6" in config

    tests = visible_text(section(html, "tests"))
    assert "test_plans/eps/test_power_on.py::test_inrush" in tests
    assert "Power on the DUT and check the inrush current." in tests
    # value 4 significant digits, limits, signed margin, margin %, verdict
    assert "inrush_peak 1.380 A 0.5000 1.500 +0.1200 +12.0 % pass" in tests
    assert "bus_voltage 8.050 ± 0.00050 V 7.000 8.100 +0.05000 +4.5 % marginal" in tests

    assert "No anomalies" in visible_text(section(html, "anomalies"))
    assert "session end psu : ok" in visible_text(section(html, "safe-state"))
    signoff = visible_text(section(html, "sign-off"))
    assert "Test conductor" in signoff and "Quality assurance" in signoff and "Customer representative" in signoff


def test_sections_come_in_order(passing_run: JournalBuilder) -> None:
    html = _report(passing_run)
    order = ["summary", "configuration", "instruments", "tests", "anomalies", "safe-state", "sign-off"]
    positions = [html.index(f'id="{s}"') for s in order]
    assert positions == sorted(positions)
    assert html.index('id="verdict"') < positions[0]


def test_failed_measurement_report(failing_run: JournalBuilder) -> None:
    html = _report(failing_run)

    assert _verdict(html) == "FAIL"
    tests = visible_text(section(html, "tests"))
    assert "idle_current OBC + EPS idle draw 0.8000 A 0.2000 0.5000 −0.3000 −100.0 % fail" in tests
    assert "AssertionError: idle_current 0.8 A outside [0.2, 0.5] A" in tests

    anomalies = visible_text(section(html, "anomalies"))
    assert "test failed test_plans/eps/test_power_on.py::test_idle_current" in anomalies
    assert "AssertionError: idle_current 0.8 A outside [0.2, 0.5] A" in anomalies
    assert "measurement fail" in anomalies
    assert (
        "idle_current 0.8000 A outside limits [0.2000, 0.5000] A, margin −0.3000 A — OBC + EPS idle draw" in anomalies
    )
    # anomalies link to the test section
    assert re.search(r'<a href="#test-1"', section(html, "anomalies"))


def test_killed_run_report(journal: JournalBuilder) -> None:
    journal.run_start().instrument().test_start("t::power_on").measurement("t::power_on", "inrush_peak", 1.2)
    html = _report(journal, tail='{"kind":"measurement","test_id":"t::power_on","na')

    assert _verdict(html) == "INCOMPLETE"
    cover = visible_text(html.split("<section", 1)[0])
    assert "incomplete (bench process ended without closing the run)" in cover
    assert "incomplete last line ignored" in cover  # the reader's notes are shown
    assert "run ended during this test" in visible_text(section(html, "tests"))
    anomalies = visible_text(section(html, "anomalies"))
    assert "test interrupted t::power_on" in anomalies and "run ended during this test" in anomalies


def test_report_without_run_start(journal: JournalBuilder) -> None:
    html = _report(journal.test_start("t").test_end("t"))
    assert _verdict(html) == "INCOMPLETE"
    assert "no run_start" in html


def test_hostile_strings_are_escaped(journal: JournalBuilder) -> None:
    evil = '<script>alert("x")</script>'
    journal.run_start(operator=evil, dut={"name": evil, "envelope": {evil: evil}})
    journal.instrument(role=evil)
    journal.test_start(f"t::{evil}", name=evil, doc=evil, subsystem=evil, requirements=[evil])
    journal.measurement(f"t::{evil}", evil, evil, units=evil, description=evil, verdict="fail")
    journal.add("attachment", test_id=f"t::{evil}", name=evil, path="javascript:alert(1)", mime="text/plain")
    journal.add("attachment", test_id=f"t::{evil}", name="escape", path="../../../etc/passwd", mime=TRACE_MIME)
    journal.test_end(f"t::{evil}", "failed", message=evil).safe_state(**{evil: evil}).run_end(1)

    html = _report(journal)

    assert "<script" not in html.lower()
    assert "&lt;script&gt;" in html
    assert 'href="javascript:' not in html
    assert 'href="../' not in html
    assert "not inside the run directory" in html


def test_expired_and_missing_calibration_are_highlighted(journal: JournalBuilder) -> None:
    journal.run_start()
    journal.instrument()  # valid
    expired = {"status": "expired", "certificate": "CAL-2023-0007", "due": "2024-01-31"}
    journal.instrument(role="psu2", identity={"model": "DP832", "serial": "DP8C1"}, calibration=expired)
    journal.instrument(role="vsa", identity={"model": "FSV", "serial": "F1"}, calibration={"status": "missing"})
    stale = {"status": "valid", "certificate": "CAL-2024-0100", "due": "2025-01-01"}  # due before the run
    journal.instrument(role="dmm", identity={"model": "34465A", "serial": "M1"}, calibration=stale)
    journal.test_start("t").measurement("t", "a", 1.0).test_end("t").run_end(0)

    html = _report(journal)

    rows = re.findall(r"<tr( class=\"flagged\")?><td>([^<]*)</td>", section(html, "instruments"))
    assert [(role, bool(flag)) for flag, role in rows] == [("psu", False), ("psu2", True), ("vsa", True), ("dmm", True)]
    instruments = visible_text(section(html, "instruments"))
    assert "CAL-2023-0007 2024-01-31 expired calibration expired" in instruments
    assert "missing no calibration record" in instruments
    assert "expired due 2025-01-01 is before the run started" in instruments
    assert "uncertainty voltage_v: 0.0005, current_a: 0.001" in instruments
    anomalies = visible_text(section(html, "anomalies"))
    assert "calibration expired instruments psu2" in anomalies
    assert "calibration missing instruments vsa" in anomalies
    assert "Instruments with calibration not valid: 3" in visible_text(section(html, "summary"))


def _write_trace(run_dir: Path, rel: str, values: list[float], **extra: object) -> None:
    path = run_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**TRACE, "values": values, **extra}), encoding="utf-8")


def test_power_on_trace_is_plotted_inline(journal: JournalBuilder) -> None:
    t = "t::power_on"
    values = [0.0] * 10 + [2.4 * math.exp(-i / 10) + 0.35 for i in range(300)]
    _write_trace(journal.run_dir, "traces/power_on.json", values)
    journal.run_start().test_start(t).measurement(t, "inrush_peak", 2.75, high=3.0, low=None)
    journal.add("attachment", test_id=t, name="PSU CH1 current", path="traces/power_on.json", mime=TRACE_MIME)
    journal.add("attachment", test_id=t, name="CAN log", path="can/power on.log", mime="text/plain")
    journal.test_end(t).run_end(0)

    html = _report(journal)

    article = re.search(r'<article class="test" id="test-1">.*?</article>', html, re.S)
    assert article
    svg = re.search(r"<svg .*?</svg>", article.group(0), re.S)
    assert svg, "trace not drawn inline"
    assert "Power-on current, main bus" in svg.group(0)
    assert "current (A)" in svg.group(0) and "time (ms)" in svg.group(0)
    assert "<polyline" in svg.group(0)
    assert "310 samples every 0.5 ms; peak 2.750 A at 5 ms" in visible_text(article.group(0))
    # attachments are relative links
    assert '<a href="traces/power_on.json">PSU CH1 current</a>' in html
    assert '<a href="can/power%20on.log">CAN log</a>' in html


def test_unreadable_trace_is_noted_not_fatal(journal: JournalBuilder) -> None:
    t = "t::power_on"
    journal.run_dir.mkdir(parents=True)
    (journal.run_dir / "bad.json").write_text('{"interval_s": 0, "values": [1, 2]}')
    journal.run_start().test_start(t)
    journal.add("attachment", test_id=t, name="missing", path="nope.json", mime=TRACE_MIME)
    journal.add("attachment", test_id=t, name="bad", path="bad.json", mime=TRACE_MIME)
    journal.test_end(t).run_end(0)

    html = _report(journal)

    assert "<svg" not in html
    assert "nope.json not found in the run directory" in html
    assert "&#39;interval_s&#39; should be a positive number" in html


def test_report_is_self_contained(passing_run: JournalBuilder) -> None:
    _write_trace(passing_run.run_dir, "t.json", [0.0, 1.0, 0.5])
    passing_run.lines.insert(
        -2, json.dumps({"kind": "attachment", "test_id": None, "name": "t", "path": "t.json", "mime": TRACE_MIME})
    )
    html = _report(passing_run)
    assert "<svg" in html
    assert not re.search(r"<(script|link|img|iframe)\b", html, re.I)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html, re.I)
    assert not re.search(r"url\(|@import", html, re.I)
    assert "@page" in html and "size: A4" in html


def test_render_time_with_10000_measurements(journal: JournalBuilder, capsys: pytest.CaptureFixture[str]) -> None:
    """Sanity check of the render time (target: ≤ 2 s for 10,000 measurements; asserted loosely here)."""
    journal.run_start().instrument()
    for n in range(100):
        t = f"test_plans/eps/test_sweep.py::test_point[{n}]"
        journal.test_start(t)
        for k in range(100):
            value = 1.0 + 0.001 * k
            verdict = "fail" if k == 99 and n % 10 == 0 else "pass"
            journal.measurement(t, f"current_{k}", value, verdict=verdict, margin=1.5 - value, margin_pct=50.0)
        journal.test_end(t, "failed" if n % 10 == 0 else "passed")
    journal.run_end(1)
    journal.write()

    start = time.process_time()  # CPU time: the work done, which other jobs on a loaded machine do not change
    html = write_html_report(journal.run_dir).read_text(encoding="utf-8")
    elapsed = time.process_time() - start

    with capsys.disabled():
        print(f"\n[reports] 10,000 measurements: report written in {elapsed:.3f} s CPU ({len(html) / 1e6:.1f} MB)")
    assert html.count('<tr class="row-') == 10_000
    assert elapsed < 10.0
