"""`bench run --parallel 2`: the plans run on two pytest-xdist workers, each with its own auto-started twin, and the
result is still one run — one run directory, one journal (the workers' read with it), one report, one JUnit, one
Allure directory, one results-DB row, one manifest — with nothing left running. A bench of real instruments is
refused in one line."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench.waiting import await_true
from reports.run_record import read_journal

PROJECT = Path(__file__).resolve().parents[2]
# Three plan files: whole files go to a worker (--dist loadfile), so both workers get at least one.
PLANS = ("test_plans/eps/test_eps_power.py", "test_plans/obc/test_obc_console.py", "test_plans/payload")
LAB_CONFIG = PROJECT / "bench" / "configs" / "example-lab.yaml"


def _env(tmp_path: Path) -> dict[str, str]:
    """The run's twins keep their endpoint files in a folder of this test's, so that what they leave is visible;
    no shared results DB: the run's own results.sqlite beside it."""
    runtime = tmp_path / "xdg"
    runtime.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "BENCH_DB"}
    return env | {"XDG_RUNTIME_DIR": str(runtime), "CI": "1"}


def _bench(tmp_path: Path, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args],
        cwd=PROJECT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in argv:
            found.append(argv)
    return found


@pytest.mark.slow
def test_parallel_run_is_one_run_on_two_twins(tmp_path):
    out = tmp_path / "runs"
    done = _bench(tmp_path, "run", *PLANS, "--parallel", "2", "--out", str(out))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output

    # One run directory (plus `latest` and the results DB beside it).
    [run_dir] = [p for p in out.iterdir() if p.is_dir() and not p.is_symlink()]
    assert (out / "latest").resolve() == run_dir.resolve()
    run_id = run_dir.name

    # Each worker journaled its own part, on its own twin, under its own lease of the run.
    workers = {}
    for journal in sorted(run_dir.glob("journal-gw*.jsonl")):
        records = _records(journal)
        [start] = [r for r in records if r["kind"] == "worker_start"]
        [lease] = [r for r in records if r["kind"] == "lease"]
        workers[start["worker"]] = {
            "pid": start["pid"],
            "bench": lease["bench"],
            "psu": {r["resource"] for r in records if r["kind"] == "instrument" and r["role"] == "psu"},
            "tests": {r["test_id"] for r in records if r["kind"] == "test_end"},
            "measurements": {(r["test_id"], r["name"], r["time"]) for r in records if r["kind"] == "measurement"},
        }
    assert sorted(workers) == ["gw0", "gw1"], output
    gw0, gw1 = workers["gw0"], workers["gw1"]
    assert gw0["tests"] and gw1["tests"], "both workers ran tests"
    assert gw0["bench"] != gw1["bench"] and run_id in gw0["bench"] and run_id in gw1["bench"]
    assert gw0["psu"] and gw1["psu"] and gw0["psu"].isdisjoint(gw1["psu"]), "each worker had its own twin"
    assert (run_dir / "twin-gw0.log").exists() and (run_dir / "twin-gw1.log").exists()

    # The controller's journal indexes the workers; read with it, the run holds every worker's tests and values.
    controller = _records(run_dir / "journal.jsonl")
    assert controller[0]["kind"] == "run_start" and controller[0]["workers"] == 2
    assert not any(r["kind"] in ("test_start", "measurement") for r in controller)
    record = read_journal(run_dir / "journal.jsonl")
    all_tests = gw0["tests"] | gw1["tests"]
    assert {t.test_id for t in record.tests} == all_tests and len(record.tests) == len(all_tests)
    assert {(m.test_id, m.name, m.time) for m in record.measurements()} == gw0["measurements"] | gw1["measurements"]
    assert gw0["measurements"] and gw1["measurements"]
    assert record.verdict == "PASS", record.verdict_reason
    assert record.end is not None and sum(record.end.counts.values()) == len(all_tests), "run_end counts them all"
    assert not record.warnings, record.warnings

    # One report, one JUnit, one Allure directory, one DB row, one manifest: every test of both workers in each.
    html = (run_dir / "report.html").read_text()
    assert all(t.name in html for t in record.tests)
    assert "parallel run on 2 auto-started twins" in html
    assert (run_dir / "report.pdf").stat().st_size > 0
    junit = ET.parse(run_dir / "junit.xml").getroot()
    cases = {f"{c.get('classname')}.{c.get('name')}" for c in junit.iter("testcase")}
    assert len(cases) == len(all_tests), cases
    allure = run_dir / "allure-results"
    results = [json.loads(p.read_text()) for p in allure.glob("*-result.json")]
    assert sorted(r["name"] for r in results) == sorted(t.name for t in record.tests)
    assert all(r["status"] == "passed" for r in results)
    assert f"run_id={run_id}" in (allure / "environment.properties").read_text()
    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute("SELECT run_id FROM runs").fetchall() == [(run_id,)]
        assert db.execute("SELECT count(*) FROM tests").fetchone() == (len(all_tests),)
    verify = _bench(tmp_path, "verify", str(run_dir), timeout_s=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    manifest = (run_dir / "manifest.sha256").read_text()
    assert "journal-gw0.jsonl" in manifest and "journal-gw1.jsonl" in manifest

    # Nothing left running: no worker, no twin, no lease.
    await_true(lambda: not any(_alive(w["pid"]) for w in workers.values()), timeout_s=10, what="the workers gone")
    assert not _processes_mentioning(str(tmp_path / "xdg")), "a twin outlived its run"
    assert not list((tmp_path / "xdg").rglob("twin-*.json"))
    status = _bench(tmp_path, "status", "--json", timeout_s=60)
    assert status.returncode == 0, status.stderr
    assert not [line for line in status.stdout.splitlines() if json.loads(line)["state"] == "held"], status.stdout


def test_parallel_run_refuses_real_instruments_in_one_line(tmp_path):
    out = tmp_path / "runs"
    done = _bench(tmp_path, "run", "test_plans/eps", "--parallel", "2", "-c", str(LAB_CONFIG), "--out", str(out))
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 2, lines
    assert len(lines) == 1 and "one bench, one DUT" in lines[0] and "example-lab.yaml" in lines[0], lines
    assert not out.exists(), "a refused run leaves nothing"


def test_pytest_parallel_option_refuses_real_instruments_in_one_line(tmp_path):
    out = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "test_plans/eps", "--parallel", "2", "--bench-config", str(LAB_CONFIG),
         f"--out={out}", "-p", "no:cacheprovider"],
        cwd=PROJECT, env=_env(tmp_path), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, lines
    assert len(lines) == 1 and "one bench, one DUT" in lines[0], lines
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_parallel_run_refuses_the_live_view_in_one_line(tmp_path):
    """The live page follows one journal and one session; it is refused, not silently served by each worker."""
    out = tmp_path / "runs"
    done = _bench(tmp_path, "run", "test_plans/eps", "--parallel", "2", "--live", "--out", str(out))
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode != 0, lines
    assert len(lines) == 1 and "--live" in lines[0] and "serial" in lines[0], lines
    assert not out.exists(), "a refused run leaves nothing"


def test_xdist_run_without_bench_tests_leaves_no_run(tmp_path):
    """`pytest -n 2` maps onto a parallel run; when no worker used the bench there is no run to keep."""
    (tmp_path / "test_pure.py").write_text("def test_one():\n    pass\n\n\ndef test_two():\n    pass\n")
    out = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", str(tmp_path / "test_pure.py"), f"--out={out}",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path)],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    assert not out.exists() or not list(out.iterdir()), list(out.iterdir())
    assert "junit.xml" not in done.stdout


def test_plans_refused_at_collection_are_refused_in_one_line_in_parallel_too(tmp_path):
    """The workers collect the plans; a plan they refuse (a malformed requirement ID) is said once, by the
    controller, as a serial run says it — not as an xdist INTERNALERROR — and no run is left."""
    plan = tmp_path / "test_bad_marker.py"
    plan.write_text('import pytest\n\n\n@pytest.mark.requirement("EPS-1")\ndef test_x(bench):\n    pass\n')
    out = tmp_path / "runs"
    done = _bench(tmp_path, "run", str(plan), "--parallel", "2", "--out", str(out), "--", "--limits",
                  str(PROJECT / "test_plans" / "limits.yaml"))  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, output
    errors = [line for line in output.splitlines() if "EPS-1" in line]
    assert len(errors) == 1 and errors[0].startswith("ERROR: requirement IDs must look like OTS-EPS-010: "), output
    assert "INTERNALERROR" not in output and "Traceback" not in output
    assert not [p for p in out.glob("*") if p.is_dir()], "a refused run leaves no run directory"
