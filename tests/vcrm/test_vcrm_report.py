"""The VCRM, cover and deviations in report.html, and report.pdf (reports.pdf)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from html_support import section, visible_text

from reports.html import css_string, write_html_report
from reports.pdf import CHROMIUM_NAMES, PDF_NAME, Engine, write_pdf_report
from reports.report_files import write_html_and_pdf
from reports.run_record import read_journal

REQUIREMENTS = """\
schema: 1
document: {id: OTS-SAT-RQ-001, issue: "1.0"}
procedure: {id: OTS-SAT-TP-001, issue: "1.0"}
requirements:
  OTS-SYS-001:
    text: The satellite shall have a launch mass of no more than 24.0 kg.
    subsystem: SYS
    method: A
    levels: [QM, FM]
    evidence: OTS-SAT-AN-010 Mass budget
  OTS-EPS-010:
    text: The EPS shall limit the main bus inrush current at power-on to 3.3 A.
    subsystem: EPS
    method: T
    levels: [EM, QM, FM, PFM]
  OTS-EPS-020:
    text: The satellite shall draw between 0.35 A and 0.65 A at idle.
    subsystem: EPS
    method: T
    levels: [EM, QM, FM, PFM]
"""

INRUSH = "test_plans/eps/test_eps_power.py::test_power_on_inrush"
IDLE = "test_plans/eps/test_eps_power.py::test_idle_current"


def _journal(run_dir: Path, *, limits_path: str, extra: list[dict[str, Any]] = (), rows: int = 2) -> Path:  # type: ignore[assignment]
    t = "2026-11-25T18:41:00+00:00"
    lines: list[dict[str, Any]] = [
        {
            "kind": "run_start",
            "run_id": "R1",
            "time": t,
            "campaign": "nightly",
            "model_level": "EM",
            "operator": "a.tester",
            "bench": "twin-bench",
            "git_revision": "abc123",
            "software_version": "0.1.0",
            "dut": {"name": "OTS-SAT", "part_number": "OTS-SAT-12U", "serial": "OTS-EM-001", "model_level": "EM"},
        },
        {"kind": "limits", "path": limits_path, "model_level": "EM", "limits": {}},
        *extra,
        {"kind": "test_start", "test_id": INRUSH, "time": t, "requirements": ["OTS-EPS-010", "OTS-EPS-999"]},
    ]
    for k in range(rows):
        verdict = "fail" if k == rows - 1 and rows > 2 else "pass"
        lines.append(
            {
                "kind": "measurement",
                "test_id": INRUSH,
                "name": f"EPS.POINT_{k:05d}",
                "value": 1.0 + k * 1e-3,
                "units": "A",
                "high": 3.3,
                "verdict": verdict,
                "margin": 2.3,
                "requirements": ["OTS-EPS-010"],
                "time": t,
            }
        )
    lines.append({"kind": "test_end", "test_id": INRUSH, "time": t, "outcome": "passed", "duration": 1.0})
    lines.append({"kind": "run_end", "time": "2026-11-25T18:45:00+00:00", "exit_status": 0})
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "journal.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A test_plans folder with limits.yaml, requirements.yaml and no plans."""
    plans = tmp_path / "test_plans"
    plans.mkdir()
    (plans / "limits.yaml").write_text("schema: 1\nlimits: {}\n", encoding="utf-8")
    (plans / "requirements.yaml").write_text(REQUIREMENTS, encoding="utf-8")
    return plans


def test_html_has_the_vcrm_from_the_requirements_next_to_the_limits_file(tmp_path: Path, project: Path) -> None:
    run_dir = tmp_path / "run"
    _journal(run_dir, limits_path=str(project / "limits.yaml"))
    html = write_html_report(run_dir).read_text(encoding="utf-8")

    order = ["summary", "tests", "anomalies", "vcrm", "deviations", "sign-off"]
    positions = [html.index(f'id="{s}"') for s in order]
    assert positions == sorted(positions)
    vcrm = section(html, "vcrm")
    text = visible_text(vcrm)
    assert "OTS-SAT-RQ-001 issue 1.0" in text and str(project / "requirements.yaml") in text
    assert f"OTS-EPS-999 cited by {INRUSH} is not in the requirements file" in text
    assert "OTS-EPS-020 (method T) is cited by no test in the tests of this run" not in text
    assert "OTS-EPS-020 (method T) is cited by no test in the runs" in text
    assert re.search(r'id="req-OTS-EPS-010".*?lv-verified"[^>]*>verified</td><td class="lv lv-not-run"', vcrm, re.S)
    assert "analysis: OTS-SAT-AN-010 Mass budget" in text
    assert 'href="#test-1"' in vcrm  # the citing test links to its section
    assert "test_eps_power.py::test_power_on_inrush" in text


def test_cover_procedure_part_number_identity_and_deviations(tmp_path: Path, project: Path) -> None:
    run_dir = tmp_path / "run"
    identity = {"kind": "dut_identity", "node": "OBC", "firmware": "ots-obc 1.4.2", "hardware": "rev C", "serial": "42"}
    deviation = {"kind": "deviation", "id": "DEV-7", "text": "Probe at 2 kHz.", "approved_by": "J. Smith (QA)"}
    _journal(run_dir, limits_path=str(project / "limits.yaml"), extra=[identity, deviation])
    html = write_html_report(run_dir).read_text(encoding="utf-8")
    cover = visible_text(html.split("<section", 1)[0])
    for expected in (
        "Test procedure OTS-SAT-TP-001 issue 1.0",
        "Requirements OTS-SAT-RQ-001 issue 1.0",
        "DUT part number OTS-SAT-12U",
        "DUT serial OTS-EM-001",
        "DUT firmware (read from the satellite) OBC ots-obc 1.4.2",
        "OBC ots-obc 1.4.2 rev C 42",
    ):
        assert expected in cover, expected
    assert "DEV-7 Probe at 2 kHz. — J. Smith (QA)" in visible_text(section(html, "deviations"))
    config = visible_text(section(html, "configuration"))
    assert "Bench twin-bench" in config and "Operator a.tester" in config


def test_without_identity_or_deviation_records(tmp_path: Path, project: Path) -> None:
    run_dir = tmp_path / "run"
    _journal(run_dir, limits_path=str(project / "limits.yaml"))
    html = write_html_report(run_dir).read_text(encoding="utf-8")
    assert "DUT firmware (read from the satellite) not read" in visible_text(html.split("<section", 1)[0])
    assert "None: the run was executed as written" in visible_text(section(html, "deviations"))


def test_explicit_requirements_path_and_a_bad_file(tmp_path: Path, project: Path) -> None:
    run_dir = tmp_path / "run"
    _journal(run_dir, limits_path="/nowhere/limits.yaml")
    assert "/nowhere/requirements.yaml: cannot read the requirements file" in visible_text(
        section(write_html_report(run_dir).read_text(encoding="utf-8"), "vcrm")
    )
    html = write_html_report(run_dir, project / "requirements.yaml").read_text(encoding="utf-8")
    assert 'id="req-OTS-EPS-010"' in html

    bad = tmp_path / "bad.yaml"
    bad.write_text(REQUIREMENTS.replace("method: A", "method: Q"), encoding="utf-8")
    html = write_html_report(run_dir, bad).read_text(encoding="utf-8")
    line = f"{bad}: requirements.OTS-SYS-001.method: 'Q' is not one of T, A, I, R"
    assert line in visible_text(section(html, "vcrm"))
    assert f"VCRM not built: {line}" in visible_text(html.split("<section", 1)[0])  # in the notes too


def test_plans_next_to_the_requirements_are_the_plan_set(tmp_path: Path, project: Path) -> None:
    (project / "eps").mkdir()
    (project / "eps" / "test_eps_power.py").write_text(
        'import pytest\n\n@pytest.mark.requirement("OTS-EPS-020")\ndef test_idle_current():\n    pass\n'
    )
    run_dir = tmp_path / "run"
    _journal(run_dir, limits_path=str(project / "limits.yaml"))
    text = visible_text(section(write_html_report(run_dir).read_text(encoding="utf-8"), "vcrm"))
    assert "OTS-EPS-020 (method T) is cited by no test" not in text
    assert "OTS-EPS-020 was not run at EM" in text
    assert f"test plans under {project}" in text


# ---------------------------------------------------------------------------------------------------------
# PDF

_HAVE_WEASYPRINT = importlib.util.find_spec("weasyprint") is not None
_HAVE_CHROMIUM = any(shutil.which(n) for n in CHROMIUM_NAMES)
ENGINES = [
    pytest.param(
        "weasyprint",
        marks=pytest.mark.skipif(
            not _HAVE_WEASYPRINT, reason="PDF engine WeasyPrint not installed: pip install weasyprint"
        ),
    ),
    pytest.param(
        "chromium",
        marks=pytest.mark.skipif(
            not _HAVE_CHROMIUM, reason="PDF engine Chromium not installed: apt-get install chromium"
        ),
    ),
]


def _pdf_text(pdf: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed: cannot read the PDF's text")
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("engine", ENGINES)
def test_pdf_is_written_with_the_same_sections(tmp_path: Path, project: Path, engine: Engine) -> None:
    run_dir = tmp_path / "run"
    _journal(run_dir, limits_path=str(project / "limits.yaml"))
    pdf = write_pdf_report(run_dir, engine=engine)
    assert pdf == run_dir / PDF_NAME
    assert pdf.read_bytes().startswith(b"%PDF-")
    text = _pdf_text(pdf)
    for heading in ("1. Summary", "4. Tests", "5. Anomalies", "7. Verification control matrix", "9. Sign-off"):
        assert heading in text, heading
    assert "OTS-SAT-TP-001 issue 1.0" in text and "OTS-EPS-999" in text
    assert "OTS-SAT qualification test report · R1" in text  # the page footer
    assert not list(run_dir.glob(".report*"))  # no temporary file left behind


@pytest.mark.parametrize("engine", ENGINES)
def test_pdf_condenses_long_tables_into_an_appendix(tmp_path: Path, project: Path, engine: Engine) -> None:
    run_dir = tmp_path / "run"
    _journal(run_dir, limits_path=str(project / "limits.yaml"), rows=120)
    text = _pdf_text(write_pdf_report(run_dir, engine=engine))
    tests = text[text.index("4. Tests") : text.index("5. Anomalies")]
    assert "120 measurements" in tests and "Appendix A" in tests
    assert "EPS.POINT_00000" not in tests and "EPS.POINT_00119" in tests  # only the failing one in 4
    appendix = text[text.index("Appendix A. Full measurement tables") :]
    for k in (0, 1, 59, 118, 119):
        assert f"EPS.POINT_{k:05d}" in appendix
    assert len(read_journal(run_dir / "journal.jsonl").tests[0].measurements) == 120


def test_missing_pdf_engine_is_one_line_and_html_is_still_written(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    _journal(run_dir, limits_path=str(project / "limits.yaml"))
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import weasyprint → ImportError
    monkeypatch.setattr("reports.pdf.shutil.which", lambda name: None)  # and no Chromium on PATH
    files = write_html_and_pdf(run_dir)
    assert files.html.exists() and files.pdf is None
    assert "\n" not in files.problem
    assert files.problem.startswith("PDF not written: no Chromium on PATH and module weasyprint not found")
    assert "apt-get install -y chromium" in files.problem
    assert "pip install weasyprint" in files.problem and "libpango-1.0-0" in files.problem
    assert not (run_dir / PDF_NAME).exists()


def test_cli_exit_status_without_engine(tmp_path: Path, project: Path) -> None:
    run_dir = tmp_path / "run"
    _journal(run_dir, limits_path=str(project / "limits.yaml"))
    code = (
        "import sys; sys.modules['weasyprint'] = None; from reports.report_files import main; raise SystemExit(main())"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(run_dir)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PATH": str(tmp_path)},  # no Chromium
    )
    assert proc.returncode == 3
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stdout.strip() == str(run_dir / "report.html")


def test_an_unknown_or_absent_engine_is_one_line(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    _journal(run_dir, limits_path=str(project / "limits.yaml"))
    monkeypatch.setenv("OTS_PDF_ENGINE", "prince")
    assert "unknown PDF engine 'prince'" in write_html_and_pdf(run_dir).problem
    monkeypatch.setattr("reports.pdf.shutil.which", lambda name: None)
    assert write_html_and_pdf(run_dir, engine="chromium").problem.startswith(
        "PDF not written: Chromium not found on PATH"
    )


def test_css_string_cannot_break_out_of_the_style_element() -> None:
    escaped = str(css_string('a · </style>"; }'))
    assert escaped == '"a \\0000b7  \\00003c \\00002f style\\00003e \\000022 \\00003b  \\00007d "'
    assert "<" not in escaped and escaped.count('"') == 2


def test_anomalies_link_the_evidence_of_the_failed_test(tmp_path: Path, project: Path) -> None:
    run_dir = tmp_path / "run"
    log = {"kind": "attachment", "test_id": INRUSH, "name": "CAN bus log", "path": "logs/can.asc", "mime": "text/plain"}
    journal = _journal(run_dir, limits_path=str(project / "limits.yaml"), rows=3)
    lines = journal.read_text(encoding="utf-8").splitlines()
    lines.insert(-2, json.dumps(log))
    journal.write_text("\n".join(lines) + "\n", encoding="utf-8")
    anomalies = section(write_html_report(run_dir).read_text(encoding="utf-8"), "anomalies")
    assert "EPS.POINT_00002" in visible_text(anomalies)
    assert '<a href="logs/can.asc">CAN bus log</a>' in anomalies
