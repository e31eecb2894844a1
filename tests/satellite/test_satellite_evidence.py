"""A plan using `satellite` leaves its bus evidence: the CAN log (python-can ASC, both directions) and the
decoded CSP/PUS trace, as files in the run directory and `attachment` records in the journal; and the identity
every node reported (CMP ident) on the report's cover."""

import json
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def test_satellite_plan_attaches_can_log_and_trace(tmp_path):
    plan = "test_plans/obc/test_obc_link.py::test_pus_are_you_alive"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", str(PROJECT / plan), "--out", str(tmp_path),
            "--limits", str(PROJECT / "test_plans" / "limits.yaml")]  # fmt: skip
    done = subprocess.run(argv, cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir() and p.name != "latest"]
    records = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    attachments = {r["name"]: r for r in records if r["kind"] == "attachment"}
    asc = (run_dir / attachments["CAN bus log"]["path"]).read_text()
    assert " Tx " in asc and " Rx " in asc and "End TriggerBlock" in asc
    trace = (run_dir / attachments["CSP-PUS trace"]["path"]).read_text()
    assert "TC[17,1] ping" in trace and "TM[17,2]" in trace and "pong" in trace
    assert trace.startswith("# CSP/PUS trace of socketcand://")
    # Every node answered CMP ident once in the run; the report's DUT identity lists each, not only the OBC.
    nodes = sorted(r["node"] for r in records if r["kind"] == "dut_identity")
    assert nodes == ["ADCS", "COMMS", "EPS", "OBC", "PAYLOAD"]
    identity = (run_dir / "report.html").read_text().split('id="dut-identity"')[1].split("</table>")[0]
    assert all(f"<td>{node}</td>" in identity for node in nodes), identity
