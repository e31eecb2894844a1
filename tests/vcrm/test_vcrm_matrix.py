"""reports.vcrm.build_vcrm: requirement → tests → latest verdict per model level, over several runs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from reports.run_record import RunRecord, read_journal
from reports.vcrm import RequirementSet, build_vcrm, main, parse_requirements

REQS: dict[str, Any] = {
    "schema": 1,
    "document": {"id": "OTS-SAT-RQ-001", "issue": "1.0"},
    "requirements": {
        "OTS-SYS-001": {"text": "Mass.", "subsystem": "SYS", "method": "A", "levels": ["QM", "FM"], "evidence": "AN-1"},
        "OTS-EPS-010": {"text": "Inrush.", "subsystem": "EPS", "method": "T", "levels": ["EM", "QM", "FM", "PFM"]},
        "OTS-EPS-020": {"text": "Idle.", "subsystem": "EPS", "method": "T", "levels": ["EM", "QM", "FM", "PFM"]},
        "OTS-EPS-030": {"text": "UVLO.", "subsystem": "EPS", "method": "T", "levels": ["EM", "FM"]},
        "OTS-OBC-010": {"text": "Ping.", "subsystem": "OBC", "method": "T", "levels": ["EM", "QM", "FM", "PFM"]},
    },
}


def _requirements() -> RequirementSet:
    return parse_requirements(REQS, "requirements.yaml")


def _run(tmp_path: Path, name: str, level: str, time: str, tests: list[dict[str, Any]]) -> RunRecord:
    """A journal with one test per entry: {id, reqs, outcome, meas: [(reqs, verdict)]}."""
    lines: list[dict[str, Any]] = [
        {"kind": "run_start", "run_id": name, "time": time, "campaign": "c", "model_level": level, "dut": {}}
    ]
    for t in tests:
        lines.append({"kind": "test_start", "test_id": t["id"], "time": time, "requirements": t.get("reqs", [])})
        for n, (reqs, verdict) in enumerate(t.get("meas", [])):
            lines.append(
                {
                    "kind": "measurement",
                    "test_id": t["id"],
                    "name": f"m{n}",
                    "value": 1.0,
                    "verdict": verdict,
                    "requirements": reqs,
                    "time": time,
                }
            )
        lines.append({"kind": "test_end", "test_id": t["id"], "time": time, "outcome": t.get("outcome", "passed")})
    lines.append({"kind": "run_end", "time": time, "exit_status": 0})
    run_dir = tmp_path / name
    run_dir.mkdir()
    (run_dir / "journal.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return read_journal(run_dir / "journal.jsonl")


INRUSH = "test_plans/eps/test_eps_power.py::test_power_on_inrush"
IDLE = "test_plans/eps/test_eps_power.py::test_idle_current"
PING = "test_plans/obc/test_obc_link.py::test_ping"


def test_newest_run_per_level_wins(tmp_path: Path) -> None:
    old_em = _run(
        tmp_path,
        "r1",
        "EM",
        "2026-01-01T10:00:00+00:00",
        [{"id": INRUSH, "reqs": ["OTS-EPS-010"], "outcome": "failed"}],
    )
    new_em = _run(
        tmp_path,
        "r2",
        "EM",
        "2026-01-02T10:00:00+00:00",
        [{"id": INRUSH, "reqs": ["OTS-EPS-010"], "outcome": "passed"}],
    )
    qm = _run(
        tmp_path,
        "r3",
        "QM",
        "2026-01-03T10:00:00+00:00",
        [{"id": INRUSH, "reqs": ["OTS-EPS-010"], "meas": [(["OTS-EPS-010"], "fail")], "outcome": "failed"}],
    )
    vcrm = build_vcrm(_requirements(), [qm, new_em, old_em])  # order given does not matter
    row = next(r for r in vcrm.rows if r.requirement.req_id == "OTS-EPS-010")
    assert row.tests == (INRUSH,)
    assert row.result("EM").status == "verified" and row.result("EM").run_id == "r2"
    assert row.result("QM").status == "failed" and row.result("QM").tests == (INRUSH,)
    assert row.result("FM").status == "not run" and row.result("PFM").status == "not run"
    assert vcrm.levels_run == ("EM", "QM")
    assert vcrm.runs == ("r1", "r2", "r3")

    newer_error = _run(
        tmp_path, "r4", "EM", "2026-01-05T00:00:00+00:00", [{"id": INRUSH, "reqs": ["OTS-EPS-010"], "outcome": "error"}]
    )
    assert build_vcrm(_requirements(), [new_em, newer_error]).rows[1].result("EM").status == "failed"


def test_measurement_citations_count_and_marginal_is_verified(tmp_path: Path) -> None:
    run = _run(
        tmp_path,
        "r1",
        "EM",
        "2026-01-01T10:00:00+00:00",
        [{"id": IDLE, "reqs": [], "meas": [(["OTS-EPS-020"], "pass"), (["OTS-EPS-020"], "marginal")]}],
    )
    row = next(r for r in build_vcrm(_requirements(), [run]).rows if r.requirement.req_id == "OTS-EPS-020")
    assert row.tests == (IDLE,)
    assert row.result("EM").status == "verified" and row.result("EM").marginal


def test_a_skipped_test_does_not_verify_and_does_not_hide_an_older_result(tmp_path: Path) -> None:
    old = _run(tmp_path, "r1", "EM", "2026-01-01T10:00:00+00:00", [{"id": PING, "reqs": ["OTS-OBC-010"]}])
    new = _run(
        tmp_path, "r2", "EM", "2026-01-02T10:00:00+00:00", [{"id": PING, "reqs": ["OTS-OBC-010"], "outcome": "skipped"}]
    )
    assert build_vcrm(_requirements(), [new]).rows[-1].result("EM").status == "not run"
    assert build_vcrm(_requirements(), [old, new]).rows[-1].result("EM").run_id == "r1"


def test_levels_not_applicable_and_analysis_evidence(tmp_path: Path) -> None:
    run = _run(tmp_path, "r1", "QM", "2026-01-01T10:00:00+00:00", [{"id": "t::uv", "reqs": ["OTS-EPS-030"]}])
    vcrm = build_vcrm(_requirements(), [run])
    sys_row = vcrm.rows[0]
    assert sys_row.requirement.req_id == "OTS-SYS-001"  # system requirements first
    assert [r.status for r in sys_row.results] == ["n/a", "evidence", "evidence", "n/a"]
    assert sys_row.requirement.evidence == "AN-1"
    uvlo = next(r for r in vcrm.rows if r.requirement.req_id == "OTS-EPS-030")
    assert uvlo.result("QM").status == "n/a"
    assert any(g.kind == "level not applicable" and g.req_id == "OTS-EPS-030" for g in vcrm.gaps)


def test_errors_unknown_ids_and_untested_test_requirements(tmp_path: Path) -> None:
    run = _run(
        tmp_path,
        "r1",
        "EM",
        "2026-01-01T10:00:00+00:00",
        [
            {"id": INRUSH, "reqs": ["OTS-EPS-010", "OTS-EPS-999"]},
            {"id": IDLE, "reqs": [], "meas": [(["OTS-XYZ-001"], "pass")]},
        ],
    )
    vcrm = build_vcrm(_requirements(), [run])
    unknown = {e.req_id: str(e) for e in vcrm.errors if e.kind == "unknown"}
    assert set(unknown) == {"OTS-EPS-999", "OTS-XYZ-001"}
    assert f"cited by {INRUSH}" in unknown["OTS-EPS-999"]
    assert vcrm.unknown_cited == {"OTS-EPS-999": (INRUSH,), "OTS-XYZ-001": (IDLE,)}
    untested = sorted(e.req_id for e in vcrm.errors if e.kind == "untested")
    assert untested == ["OTS-EPS-020", "OTS-EPS-030", "OTS-OBC-010"]  # A requirements need no test
    assert "in the runs" in next(str(e) for e in vcrm.errors if e.kind == "untested")


def test_the_plan_set_decides_what_is_untested_and_gaps_name_the_levels(tmp_path: Path) -> None:
    run = _run(tmp_path, "r1", "EM", "2026-01-01T10:00:00+00:00", [{"id": INRUSH, "reqs": ["OTS-EPS-010"]}])
    plan = {
        "OTS-EPS-010": [INRUSH],
        "OTS-EPS-020": [IDLE],
        "OTS-EPS-030": ["test_plans/eps/test_eps_power.py::test_uvlo"],
        "OTS-OBC-010": [PING],
        "OTS-OBC-999": [PING],
    }
    vcrm = build_vcrm(_requirements(), [run], plan_citations=plan)
    assert [(e.kind, e.req_id) for e in vcrm.errors] == [("unknown", "OTS-OBC-999")]
    assert sorted(g.req_id for g in vcrm.gaps if g.kind == "not run at level") == [
        "OTS-EPS-020",
        "OTS-EPS-030",
        "OTS-OBC-010",
    ]
    assert "OTS-OBC-010 was not run at EM" in [str(g) for g in vcrm.gaps]
    row = next(r for r in vcrm.rows if r.requirement.req_id == "OTS-OBC-010")
    assert row.tests == (PING,) and row.result("EM").status == "not run"


def test_cli_over_a_runs_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    _run(runs, "r1", "EM", "2026-01-01T10:00:00+00:00", [{"id": INRUSH, "reqs": ["OTS-EPS-010"], "outcome": "failed"}])
    _run(runs, "r2", "QM", "2026-01-02T10:00:00+00:00", [{"id": INRUSH, "reqs": ["OTS-EPS-010"]}])
    reqs = tmp_path / "test_plans" / "requirements.yaml"
    reqs.parent.mkdir()
    reqs.write_text(yaml.safe_dump(REQS), encoding="utf-8")
    assert main([str(runs), "--requirements", str(reqs)]) == 1  # T requirements without a plan
    out = capsys.readouterr().out
    assert "over 2 run(s); levels run: EM, QM" in out
    assert re.search(
        r"OTS-EPS-010\s+T\s+FAIL\s+ok\s+-\s+-\s+test_plans/eps/test_eps_power.py::test_power_on_inrush", out
    )
    assert re.search(r"OTS-SYS-001\s+A\s+n/a\s+ev\s+ev\s+n/a\s+AN-1", out)
    assert "error: OTS-EPS-020 (method T) is cited by no test in the plan set" in out
