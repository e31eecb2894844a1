"""The live bench view in a real browser (headless Chromium through Playwright) against real runs on the twin.

Each test starts a bench run with `--live` in a subprocess, reads the URL it prints, opens the page and drives it
as a person would: the page shows the running test, a measurement appears within 2 s of the journal's time of
it, the power chart moves, the CAN bus load and every node's last telemetry show, a prompt answered in the page
lets its test pass, and the emergency-stop button ends
the run ABORTED with the DUT off (read from the twin's own state). Screenshots of those moments are saved as
evidence in `<--out>/live-view/`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parents[2]
LIMITS = PROJECT / "test_plans" / "limits.yaml"
CHROMIUM = "/usr/bin/chromium"
SEEN_WITHIN_S = 2.0  # the bound: a measurement is on the page within 2 s of being taken
START = "Start measuring: the live view is watching"
SEEN = "The live view showed the measurements and the power chart"
PRESS_STOP = "Hold on: the emergency stop will be pressed in the live view"
RUN_TIMEOUT_MS = 120_000  # a whole run on a loaded machine (twin start, tests, report, PDF)

WATCHED_PLAN = f'''
"""A plan for the live view's browser test: the page's operator starts it, watches it measure, and releases it."""


def test_watched_by_the_live_view(dut_power, satellite, measure, operator):
    """Power the DUT, then measure the bus while the live view watches; the operator answers in the page."""
    dut_power.on()
    satellite.await_nodes_alive(timeout_s=10)
    for node in satellite.icd.nodes:
        satellite.enable_hk(node)  # periodic housekeeping: the page's telemetry per node and bus load
    operator.confirm({START!r})
    for _ in range(6):
        measure("EPS.IDLE_CURRENT", dut_power.await_stable_current(), instrument="psu")
        measure("EPS.BUS_VOLTAGE", dut_power.voltage(), instrument="psu")
    operator.confirm({SEEN!r})
'''

STOPPED_PLAN = f'''
"""A plan for the live view's emergency-stop test: the DUT is powered and the test waits until it is stopped."""


def test_held_powered_until_the_stop(dut_power, measure, operator):
    """Power the DUT and wait for the operator: the live view's emergency stop ends the run."""
    dut_power.on()
    measure("EPS.BUS_VOLTAGE", dut_power.voltage(), instrument="psu")
    operator.confirm({PRESS_STOP!r})


def test_never_runs_after_the_stop(dut_power):
    """Skipped: nothing runs after an emergency stop."""
    dut_power.on()
'''


def _browser_or_skip() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _browser_or_skip()
    with sync_playwright() as p:
        executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
        try:
            launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        except Exception as exc:  # e.g. a Chromium too old for this Playwright
            pytest.skip(f"Chromium at {executable} cannot be driven by Playwright: {exc}")
        yield launched
        launched.close()


@pytest.fixture
def evidence_dir(request: pytest.FixtureRequest) -> Path:
    """Screenshots of the page, kept with the test run's other output (`--out`, default runs/)."""
    folder = Path(request.config.getoption("bench_out")).resolve() / "live-view" / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class LiveRun:
    """A `bench run --live` (pytest with the bench plugin) in a subprocess; its output read by a thread."""

    def __init__(self, plan: Path, out: Path, *args: str) -> None:
        self.out = out
        argv = [sys.executable, "-m", "pytest", str(plan), "-q", "-p", "no:cacheprovider", f"--out={out}", "--live"]
        argv += ["--limits", str(LIMITS), "--rootdir", str(plan.parent), *args]
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
        self.proc = subprocess.Popen(
            argv, cwd=plan.parent, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._url = threading.Event()
        self.url = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("live view: ") and not self.url:
                self.url = line.split("live view: ", 1)[1].strip()
                self._url.set()
        self._url.set()

    def await_url(self, timeout_s: float = 60) -> str:
        assert self._url.wait(timeout_s), "the run printed no live view URL:\n" + self.output
        assert self.url, "the run ended without a live view URL:\n" + self.output
        return self.url

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def finish(self, timeout_s: float = 120) -> int:
        try:
            return self.proc.wait(timeout_s)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def journal(self) -> list[dict[str, Any]]:
        path = next(self.out.glob("*/journal.jsonl"))
        return [json.loads(line) for line in path.read_text().splitlines()]


def _plan(tmp_path: Path, text: str, name: str) -> Path:
    folder = tmp_path / "plans"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def _answer_yes(page: Any, text: str) -> None:
    page.wait_for_function(
        "t => !document.getElementById('prompt').hidden && document.getElementById('prompt-text').textContent === t",
        arg=text,
        timeout=RUN_TIMEOUT_MS,
    )
    page.click("#prompt-yes")
    page.wait_for_function(
        "t => document.getElementById('prompt').hidden || document.getElementById('prompt-text').textContent !== t",
        arg=text,
        timeout=30_000,
    )


def test_the_page_follows_a_run_and_its_operator_answers_there(browser, tmp_path, evidence_dir):
    run = LiveRun(_plan(tmp_path, WATCHED_PLAN, "test_watched.py"), tmp_path / "runs")
    try:
        url = run.await_url()
        assert "token=" in url and url.startswith("http://127.0.0.1:")
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        # The token leaves the address bar at once (it is kept for this tab only).
        assert "token" not in page.url
        page.wait_for_function(
            "() => document.querySelector('#prompt-text').textContent.startsWith('Start measuring')",
            timeout=RUN_TIMEOUT_MS,
        )
        assert page.inner_text("#current-name") == "test_watched_by_the_live_view"
        assert "measure the bus while the live view watches" in page.inner_text("#current-doc")
        assert page.get_attribute("[data-test$='test_watched_by_the_live_view']", "data-state") == "running"
        page.screenshot(path=str(evidence_dir / "1-running-test-with-prompt.png"), full_page=True)
        _answer_yes(page, START)

        # Measurements appear as they are taken: each within 2 s of the journal's time of it.
        page.wait_for_function("() => document.querySelectorAll('#measurements tbody tr').length >= 12", timeout=60_000)
        rows = page.eval_on_selector_all(
            "#measurements tbody tr", "rows => rows.map(r => [r.dataset.name, r.dataset.time, r.dataset.shown])"
        )
        delays = [int(shown) / 1000 - dt.datetime.fromisoformat(taken).timestamp() for _, taken, shown in rows]
        assert all(d < SEEN_WITHIN_S for d in delays), f"measurement shown this long after it was taken: {delays}"
        assert "PASS" in page.inner_text("#measurements tbody")
        # The power chart moves: more samples arrive while the DUT is powered.
        before = int(page.get_attribute("#power", "data-samples") or 0)
        page.wait_for_function(
            "n => Number(document.getElementById('power').dataset.samples || 0) > n + 5", arg=before, timeout=30_000
        )
        assert page.locator("#power canvas").count() >= 1
        # The CAN bus load and the last telemetry of every node, from the satellite link the test opened.
        page.wait_for_function(
            "nodes => Number(document.getElementById('bus-now').dataset.load || 0) > 0"
            " && nodes.every(n => document.querySelector(`#telemetry tr[data-node='${n}']`))",
            arg=["OBC", "EPS", "ADCS", "COMMS", "PAYLOAD"],
            timeout=30_000,
        )
        assert "VBAT" in page.inner_text("#telemetry tr[data-node='EPS']")
        page.screenshot(path=str(evidence_dir / "2-measurements-and-power.png"), full_page=True)
        _answer_yes(page, SEEN)

        page.wait_for_function("() => document.getElementById('verdict-text') !== null", timeout=RUN_TIMEOUT_MS)
        assert page.inner_text("#verdict-text") == "PASS"
        assert page.get_attribute("[data-test$='test_watched_by_the_live_view']", "data-state") == "passed"
        assert page.locator("#verdict a", has_text="report.html").count() == 1
        page.screenshot(path=str(evidence_dir / "3-verdict.png"), full_page=True)
        page.close()
        assert run.finish() == 0, run.output
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    prompts = [r for r in run.journal() if r["kind"] == "operator_prompt"]
    assert [p["text"] for p in prompts] == [START, SEEN]
    assert all(p["answered_by"] == "browser 127.0.0.1" and p["answer"] is True for p in prompts), prompts
    end = next(r for r in run.journal() if r["kind"] == "test_end")
    assert end["outcome"] == "passed", end
    # The token is printed for the operator, and nowhere else in the run's evidence.
    token = run.url.split("token=", 1)[1]
    run_dir = next((tmp_path / "runs").glob("*/journal.jsonl")).parent
    leaked = [p for p in run_dir.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    assert not leaked, f"the run's token is written in {leaked}"


def test_the_emergency_stop_in_the_page_ends_the_run_aborted_with_the_dut_off(
    browser, standalone_twin, tmp_path, evidence_dir
):
    from safety_rig import bench_config_for

    config = bench_config_for(standalone_twin, tmp_path, watchdog_s=5.0)
    run = LiveRun(_plan(tmp_path, STOPPED_PLAN, "test_stopped.py"), tmp_path / "runs", "--bench-config", str(config))
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(run.await_url())
        page.wait_for_function(
            "t => document.getElementById('prompt-text').textContent === t", arg=PRESS_STOP, timeout=RUN_TIMEOUT_MS
        )
        assert standalone_twin.output_on(), "the plan powers the DUT before it waits"
        page.screenshot(path=str(evidence_dir / "1-before-the-stop.png"), full_page=True)
        page.click("#stop")
        page.wait_for_function("() => document.getElementById('verdict-text') !== null", timeout=RUN_TIMEOUT_MS)
        assert page.inner_text("#verdict-text") == "ABORTED"
        assert "EMERGENCY STOP by browser 127.0.0.1" in page.inner_text("#anomalies")
        page.screenshot(path=str(evidence_dir / "2-aborted.png"), full_page=True)
        page.close()
        code = run.finish()
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    assert code == pytest.ExitCode.INTERRUPTED, run.output
    assert not standalone_twin.output_on(), "the DUT supply still delivers power after the stop"
    records = run.journal()
    stop = next(r for r in records if r["kind"] == "emergency_stop")
    assert stop["who"] == "browser 127.0.0.1" and stop["test_id"].endswith("test_held_powered_until_the_stop")
    outcomes = {r["test_id"].split("::")[1]: r["outcome"] for r in records if r["kind"] == "test_end"}
    assert outcomes == {"test_held_powered_until_the_stop": "interrupted", "test_never_runs_after_the_stop": "skipped"}
