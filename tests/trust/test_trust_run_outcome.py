"""A run answers for itself: its summary, verdict and exit code come from its own run directory (never from
`runs/latest`, which another run may have moved); a results DB that cannot be written is loud (journaled,
warned with the retry command, an error under --strict); `bench report` re-seals a finished run only when
nothing but its report changed; and `bench run PLAN -- ARGS` hands ARGS to pytest."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.waiting import await_true

PROJECT = Path(__file__).resolve().parents[2]
LIMITS = PROJECT / "test_plans" / "limits.yaml"

# Plans that use `measure` only: a run directory, journal and report, but no instrument and no twin.
PLAN = textwrap.dedent(
    '''
    """Two measurements of the idle current; GO (a file) must exist before the first is taken."""
    import os
    from pathlib import Path

    import pytest

    from bench.waiting import await_true


    @pytest.mark.requirement("OTS-EPS-020")
    def test_first(measure):
        Path(os.environ["STARTED"]).write_text("started")
        await_true(lambda: Path(os.environ["GO"]).exists(), timeout_s=120, what="the go file")
        measure("EPS.IDLE_CURRENT", float(os.environ["VALUE"]))


    @pytest.mark.requirement("OTS-EPS-020")
    def test_second(measure):
        measure("EPS.IDLE_CURRENT", float(os.environ["VALUE"]))
    '''
)
PASSING, FAILING = "0.5", "9.0"  # A, against EPS.IDLE_CURRENT's limits at EM


def bench_run(tmp_path: Path, name: str, value: str, *args: str, go: Path | None = None, env: dict | None = None):
    plan = tmp_path / "test_outcome_plan.py"
    plan.write_text(PLAN)
    go = go or plan  # an existing file: no waiting
    environ = {
        **os.environ,
        "GO": str(go),
        "STARTED": str(tmp_path / f"{name}.started"),
        "VALUE": value,
        **(env or {}),
    }
    argv = [sys.executable, "-m", "bench.cli", "run", str(plan), "--out", str(tmp_path / "runs"), *args]
    if "--" not in args:
        argv.append("--")
    argv += ["--limits", str(LIMITS), "-p", "no:randomly"]
    return subprocess.Popen(argv, cwd=PROJECT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _summary(output: str) -> tuple[str, str]:
    """(run id from the summary table's title, verdict) as `bench run` printed them."""
    run_id = re.search(r"^run (\d{8}T\d{6}Z-\w+)", output, re.MULTILINE)
    verdict = re.search(r"^verdict: (\w+)", output, re.MULTILINE)
    assert run_id and verdict, output
    return run_id.group(1), verdict.group(1)
    return run_id, verdict


def test_each_run_reports_its_own_verdict_while_another_runs(tmp_path):
    go = tmp_path / "go"
    slow = bench_run(tmp_path, "slow", FAILING, go=go)  # starts first, finishes last
    await_true(lambda: (tmp_path / "slow.started").exists() or slow.poll() is not None, timeout_s=60, what="start")
    quick = bench_run(tmp_path, "quick", PASSING)
    quick_out = quick.communicate(timeout=120)[0]
    go.write_text("go")
    slow_out = slow.communicate(timeout=120)[0]
    assert (quick.returncode, slow.returncode) == (0, 1), quick_out + slow_out
    quick_id, quick_verdict = _summary(quick_out)
    slow_id, slow_verdict = _summary(slow_out)
    assert quick_id != slow_id
    assert (quick_verdict, slow_verdict) == ("PASS", "FAIL")
    assert f"{quick_id}/report.html" in quick_out and f"{slow_id}/report.html" in slow_out
    assert (tmp_path / "runs" / "latest").resolve().name == slow_id  # the last run to finish


def test_pytest_arguments_after_the_double_dash_reach_pytest(tmp_path):
    proc = bench_run(tmp_path, "x", FAILING, "--", "-x")
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 1, output
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if p.is_dir() and not p.is_symlink())
    ends = [r for r in map(json.loads, (run_dir / "journal.jsonl").read_text().splitlines()) if r["kind"] == "test_end"]
    assert [e["outcome"] for e in ends] == ["failed"], "-x stops after the first failure"


UNREACHABLE_DB = "postgresql+psycopg://bench@127.0.0.1:1/results?connect_timeout=2"


@pytest.mark.parametrize(("strict", "code"), [((), 0), (("--strict",), 1)])
def test_a_results_db_that_cannot_be_written_is_loud(tmp_path, strict, code):
    proc = bench_run(tmp_path, "db", PASSING, *strict, env={"BENCH_DB": UNREACHABLE_DB})
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == code, output
    assert "not in the results DB" in output and "retry: bench db import" in output, output
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if p.is_dir() and not p.is_symlink())
    last = json.loads((run_dir / "journal.jsonl").read_text().splitlines()[-1])
    assert last["kind"] == "db_import" and last["ok"] is False and "127.0.0.1" in last["error"], last
    assert last["retry"] == f"bench db import {run_dir}"


def test_a_qualification_campaign_is_strict_by_default(tmp_path):
    proc = bench_run(tmp_path, "db", PASSING, "--campaign", "qualification", env={"BENCH_DB": UNREACHABLE_DB})
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 1, output
    assert "strict: the run fails" in output, output


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True, cwd=PROJECT)


def test_bench_report_reseals_a_finished_run_and_refuses_to_launder_a_change(tmp_path):
    proc = bench_run(tmp_path, "seal", PASSING)
    proc.communicate(timeout=120)
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if p.is_dir() and not p.is_symlink())
    assert _bench("verify", str(run_dir)).returncode == 0
    rebuilt = _bench("report", str(run_dir))
    assert rebuilt.returncode == 0 and "re-sealed" in rebuilt.stderr, rebuilt.stderr
    assert _bench("verify", str(run_dir)).returncode == 0
    seals = [json.loads(line) for line in (run_dir / "seals.jsonl").read_text().splitlines()]
    assert [s["by"] for s in seals] == ["bench run", "bench report"] and "report rebuilt" in seals[1]["reason"]
    journal = run_dir / "journal.jsonl"
    journal.write_text(journal.read_text().replace(PASSING, "0.55"))  # someone "corrects" a value
    refused = _bench("report", str(run_dir))
    assert refused.returncode == 1 and "journal.jsonl changed since the run was sealed" in refused.stderr
    assert _bench("verify", str(run_dir)).returncode == 1  # and the evidence still says so
