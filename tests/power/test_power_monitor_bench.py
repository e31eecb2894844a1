"""The power monitor on a real bench run against a standalone twin (SCPI over TCP): every test holding the DUT
gets its trace attached (CSV, plots, a journaled summary), and a monitored ceiling that the DUT's current
breaks fails the test with the value and the time it happened — while the DUT still ends switched off."""

from __future__ import annotations

import csv
import json
import textwrap
from collections.abc import Iterator

import pytest
from safety_rig import LIMITS, TwinHandle, bench_config_for

from bench.twin_launcher import TwinProcess

PLAN = textwrap.dedent(
    """
    import time

    import pytest


    @pytest.mark.power_limit("TEST.CURRENT_CEILING")
    def test_idle_breaks_a_tight_ceiling(dut_power, power_monitor):
        dut_power.on()
        power_monitor.await_sample_after(time.time(), timeout_s=5)


    def test_within_a_generous_ceiling(dut_power, power_monitor):
        power_monitor.watch("EPS.BUS_CURRENT_MAX")
        dut_power.on()
        power_monitor.await_sample_after(time.time(), timeout_s=5)
    """
)

EXTRA_LIMIT = """
  TEST.CURRENT_CEILING:
    description: a ceiling below the idle current, for the test to break
    units: A
    requirements: [OTS-EPS-020]
    all: {high: 0.2}
"""


@pytest.fixture(scope="module")
def standalone_twin() -> Iterator[TwinHandle]:
    with TwinProcess(ports="auto") as twin:
        yield TwinHandle(twin)


def test_trace_attached_and_violation_fails_with_its_time(standalone_twin, tmp_path):
    import subprocess
    import sys

    plan = tmp_path / "test_power_plan.py"
    plan.write_text(PLAN)
    limits = tmp_path / "limits.yaml"
    limits.write_text(LIMITS.read_text().replace("\nlimits:\n", "\nlimits:\n" + EXTRA_LIMIT, 1))
    config = bench_config_for(standalone_twin, tmp_path, watchdog_s=5.0)
    argv = [sys.executable, "-m", "pytest", str(plan), "-q", "-p", "no:cacheprovider", "--bench-config", str(config)]
    argv += ["--out", str(tmp_path / "runs"), "--limits", str(limits), "--rootdir", str(tmp_path), "-rf"]
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 failed, 1 passed" in out, out

    [run] = [p for p in (tmp_path / "runs").iterdir() if p.is_dir() and p.name != "latest"]
    records = [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]
    ends = {r["test_id"].rsplit("::", 1)[1]: r for r in records if r["kind"] == "test_end"}
    failed = ends["test_idle_breaks_a_tight_ceiling"]
    assert failed["outcome"] == "failed"
    assert "power limit(s) violated: bus current" in failed["message"]
    assert "> 0.2 A at t+" in failed["message"] and "TEST.CURRENT_CEILING on dut_main" in failed["message"]
    assert ends["test_within_a_generous_ceiling"]["outcome"] == "passed"

    traces = [r for r in records if r["kind"] == "power_trace"]
    assert len(traces) == 2
    for trace in traces:
        assert trace["samples"] >= 2 and trace["errors"] == 0
        [channel] = trace["channels"]
        assert channel["role"] == "dut_main" and channel["i_max"] > 0.2
        rows = list(csv.reader((run / trace["path"]).read_text().splitlines()))
        assert rows[0][:2] == ["time", "t_s"] and len(rows) == 1 + trace["samples"]
        names = {r["name"] for r in records if r["kind"] == "attachment" and r["test_id"] == trace["test_id"]}
        assert {"power trace (CSV)", "Power trace current", "Power trace voltage"} <= names
    assert "violations" in traces[0] and traces[0]["violations"][0].startswith("bus current")
    judged = [r for r in records if r["kind"] == "measurement" and r["name"] == "TEST.CURRENT_CEILING"]
    assert judged[0]["verdict"] == "fail" and "at_s" in judged[0]["extra"]
    assert "Power trace current" in (run / "report.html").read_text()
    # The sampler only reads: the DUT ends the run switched off.
    assert not standalone_twin.output_on()
