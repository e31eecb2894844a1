"""The OTS-COM-060 plan (test_plans/comms/test_comms_antenna.py) on real bench runs against a standalone twin.

The requirement is verified at QM only, so the default run (EM) skips the plan — this test is where every CI run
executes it: at EM it is skipped with the reason and the VCRM shows the requirement n/a there, never untested;
at QM it passes; and with an antenna element jammed (the twin's ``antenna_jam`` fault) the same plan fails on the
switches and the burn time — the plan can fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from safety_rig import LIMITS, PROJECT, TwinHandle, bench_config_for

from bench.twin_launcher import TwinProcess
from reports.run_record import read_journal
from reports.vcrm import build_vcrm, load_requirements, scan_plans

PLAN = PROJECT / "test_plans" / "comms" / "test_comms_antenna.py"
REQ = "OTS-COM-060"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def standalone_twin() -> Iterator[TwinHandle]:
    with TwinProcess(ports="auto") as twin:
        yield TwinHandle(twin)


def bench_run(twin: TwinHandle, tmp_path: Path, name: str, *args: str) -> tuple[str, Path]:
    """One pytest bench run of the plan; its output and run directory."""
    out = tmp_path / name
    config = bench_config_for(twin, tmp_path, watchdog_s=5.0)
    can = twin.twin.endpoints["can_socketcand"]  # the CAN bus on this twin's port too (as tests/shell does)
    text = config.read_text()
    assert "127.0.0.1:29536" in text, "the standalone config no longer names the twin's fixed CAN port"
    config.write_text(text.replace("127.0.0.1:29536", f"{can['host']}:{can['port']}"))
    argv = [sys.executable, "-m", "pytest", str(PLAN), "-q", "-p", "no:cacheprovider", "--bench-config", str(config)]
    argv += ["--out", str(out), "--limits", str(LIMITS), "-rs", *args]
    proc = subprocess.run(argv, cwd=PROJECT, capture_output=True, text=True, timeout=300)
    [run] = [p for p in out.iterdir() if p.is_dir() and p.name != "latest"]
    return proc.stdout + proc.stderr, run


def measurements(run: Path) -> dict[str, dict[str, Any]]:
    records = [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]
    return {r["name"]: r for r in records if r["kind"] == "measurement"}


def test_skipped_at_em_passes_at_qm_and_the_vcrm_says_so(standalone_twin: TwinHandle, tmp_path: Path) -> None:
    em_out, em_run = bench_run(standalone_twin, tmp_path, "em")
    assert "1 skipped" in em_out and "runs at model level QM only" in em_out, em_out
    assert measurements(em_run) == {}  # nothing was powered or measured

    qm_out, qm_run = bench_run(standalone_twin, tmp_path, "qm", "--model-level", "QM")
    assert "1 passed" in qm_out, qm_out
    m = measurements(qm_run)
    assert {name: r["verdict"] for name, r in m.items() if name.startswith("COMMS.ANT_")} == {
        "COMMS.ANT_DEPLOY_BUS_VOLTAGE": "pass",
        "COMMS.ANT_ELEMENTS_DEPLOYED": "pass",
        "COMMS.ANT_DEPLOY_ATTEMPTS": "pass",
        "COMMS.ANT_ELEMENT_BURN_TIME_MAX": "pass",
        "COMMS.ANT_DEPLOY_TOTAL_TIME": "pass",
        "COMMS.ANT_BURN_CURRENT": "pass",
    }
    assert m["COMMS.ANT_ELEMENTS_DEPLOYED"]["value"] == 4
    assert 3.15 <= m["COMMS.ANT_DEPLOY_BUS_VOLTAGE"]["value"] <= 3.25  # at the minimum, not at nominal
    assert all(r["requirements"] == [REQ] for name, r in m.items() if name.startswith("COMMS.ANT_"))

    requirements = load_requirements(PROJECT / "test_plans" / "requirements.yaml")
    vcrm = build_vcrm(
        requirements, [read_journal(em_run / "journal.jsonl"), read_journal(qm_run / "journal.jsonl")],
        plan_citations=scan_plans(PROJECT / "test_plans"),
    )  # fmt: skip
    row = next(r for r in vcrm.rows if r.requirement.req_id == REQ)
    assert [r.status for r in row.results] == ["n/a", "verified", "n/a", "n/a"]
    assert row.tests and not [e for e in vcrm.errors if e.req_id == REQ]
    assert not [g for g in vcrm.gaps if g.req_id == REQ]  # not "tested at EM": it was skipped there


def test_a_jammed_element_fails_the_plan(standalone_twin: TwinHandle, tmp_path: Path) -> None:
    standalone_twin.control(cmd="fault", name="antenna_jam", element=3, on=True)
    try:
        out, run = bench_run(standalone_twin, tmp_path, "jam", "--model-level", "QM")
    finally:
        standalone_twin.control(cmd="fault", name="antenna_jam", element=3, on=False)
    assert "1 failed" in out, out
    m = measurements(run)
    assert m["COMMS.ANT_ELEMENTS_DEPLOYED"]["value"] == 2 and m["COMMS.ANT_ELEMENTS_DEPLOYED"]["verdict"] == "fail"
    assert m["COMMS.ANT_ELEMENTS_DEPLOYED"]["extra"]["ended_with"] == "COMMS.ANT_DEPLOY_TIMEOUT"
    assert m["COMMS.ANT_ELEMENT_BURN_TIME_MAX"]["value"] == pytest.approx(3.0)
    assert m["COMMS.ANT_ELEMENT_BURN_TIME_MAX"]["verdict"] == "fail"
    assert m["COMMS.ANT_DEPLOY_ATTEMPTS"]["verdict"] == "pass"  # it failed on its first attempt, not by retrying
