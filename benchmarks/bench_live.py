"""The live view's cost to the bench, each as a ratio against the same work without it, in the same invocation.

    python benchmarks/bench_live.py              # both
    python benchmarks/bench_live.py measure      # one of: measure, plan
    python benchmarks/bench_live.py plan --rounds 3

1. measure  cost of one recorded measurement inside a real pytest run (bench_foundation.py's `measure` case),
            live view off against on with a page connected (a server-sent-events reader that keeps up with the
            stream, as a browser does); target on ≤ 1.2× off. The test waits for the page before it measures, so
            every measurement of the loop is streamed while it is taken.
2. plan     wall time of a real plan run on the twin (test_plans/eps/test_eps_power.py and the OBC link plan),
            live view off against on with headless Chromium showing the page (Playwright, Debian's
            /usr/bin/chromium; without it, the SSE reader); target within 5 %. Runs alternate, off first; the
            medians are compared (the machine is shared: single runs move by more than the effect).
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMITS = ROOT / "test_plans" / "limits.yaml"
PLANS = ["test_plans/eps/test_eps_power.py", "test_plans/obc/test_obc_link.py"]
CHROMIUM = "/usr/bin/chromium"
rows: list[tuple[str, str, str, str]] = []

# The test waits (a bounded poll) until the benchmark's page is connected, then times its loop of measure() calls.
MEASURE_TEST = """
import os, time
from pathlib import Path

def test_many(measure):
    ready = os.environ.get("PAGE_READY")
    deadline = time.monotonic() + 30
    while ready and not Path(ready).exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # the benchmark's page connecting, not the thing measured
    t0 = time.perf_counter()
    for i in range({n}):
        measure("EPS.IDLE_CURRENT", 0.5)
    Path("loop.txt").write_text(repr(time.perf_counter() - t0))
"""


class Run:
    """A pytest subprocess; with the live view on, its URL is read from its output as it runs."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)  # fmt: skip
        self.url = ""
        self.out: list[str] = []
        self.has_url = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out.append(line)
            if line.startswith("live view: ") and not self.url:
                self.url = line.split(": ", 1)[1].strip()
                self.has_url.set()
        self.has_url.set()

    def wait(self) -> None:
        if self.proc.wait(600) != 0:
            raise SystemExit("benchmark run failed:\n" + "".join(self.out)[-3000:])


def sse_reader(url: str, connected: Callable[[], None]) -> None:
    """Reads the page's event stream as fast as it comes (a browser that keeps up), until the run ends."""
    try:
        with urllib.request.urlopen(url.split("?")[0] + "events", timeout=60) as stream:
            connected()
            while stream.read(65536):
                pass
    except (OSError, http.client.HTTPException):
        pass  # the run ended


def measure_once(n: int, live: bool) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="bench-live-"))
    (tmp / "test_gen.py").write_text(MEASURE_TEST.format(n=n))
    (tmp / "pytest.ini").write_text("[pytest]\n")
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--limits", str(LIMITS)]
    argv += ["--out", str(tmp / "runs")] + (["--live"] if live else [])
    env = {**os.environ, "PAGE_READY": str(tmp / "page.ready") if live else ""}
    run = Run(argv, tmp, env)
    if live:
        run.has_url.wait(60)
        ready = tmp / "page.ready"
        threading.Thread(target=sse_reader, args=(run.url, ready.touch), daemon=True).start()
    run.wait()
    loop = float((tmp / "loop.txt").read_text())
    shutil.rmtree(tmp, ignore_errors=True)
    return loop / n


def bench_measure(rounds: int) -> None:
    n = 50_000
    off: list[float] = []
    on: list[float] = []
    for _ in range(rounds):
        off.append(measure_once(n, live=False))
        on.append(measure_once(n, live=True))
    ratio = min(on) / min(off)
    rows.append(
        (
            "measure: cost per measurement",
            f"on {min(on) * 1e6:.2f} µs",
            f"off {min(off) * 1e6:.2f} µs",
            f"{ratio:.2f}× (best of {rounds}, {n} measurements each); "
            f"{'within' if ratio <= 1.2 else 'ABOVE'} the 1.2× target",
        )
    )


def plan_once(live: bool, browser: object | None) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="bench-live-plan-"))
    argv = [sys.executable, "-m", "pytest", *PLANS, "-q", "-p", "no:cacheprovider", f"--out={tmp}"]
    argv += ["--live"] if live else []
    t0 = time.perf_counter()
    run = Run(argv, ROOT, dict(os.environ))
    page = None
    if live:
        run.has_url.wait(60)
        if browser is not None:
            page = browser.new_page()  # type: ignore[attr-defined]
            page.goto(run.url)
        else:
            threading.Thread(target=sse_reader, args=(run.url, lambda: None), daemon=True).start()
    run.wait()
    wall = time.perf_counter() - t0
    if page is not None:
        page.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return wall


def bench_plan(rounds: int) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None  # type: ignore[assignment]
    off: list[float] = []
    on: list[float] = []
    client = "SSE reader"
    if sync_playwright is not None and Path(CHROMIUM).exists():
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            client = "headless Chromium"
            for _ in range(rounds):
                off.append(plan_once(False, None))
                on.append(plan_once(True, browser))
            browser.close()
    else:
        for _ in range(rounds):
            off.append(plan_once(False, None))
            on.append(plan_once(True, None))
    ratio = statistics.median(on) / statistics.median(off)
    rows.append(
        (
            "plan: wall time of a plan run",
            f"on {statistics.median(on):.2f} s",
            f"off {statistics.median(off):.2f} s",
            f"{(ratio - 1) * 100:+.1f} % with {client} showing the page (median of {rounds}; on "
            f"{', '.join(f'{x:.2f}' for x in on)}; off {', '.join(f'{x:.2f}' for x in off)}); "
            f"{'within' if ratio <= 1.05 else 'ABOVE'} the 5 % target",
        )
    )


BENCHES = {"measure": bench_measure, "plan": bench_plan}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", choices=[*BENCHES, []], default=list(BENCHES))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for name in args.which or BENCHES:
        BENCHES[name](args.rounds)
    width = max(len(r[0]) for r in rows)
    for name, value, base, verdict in rows:
        print(f"{name:<{width}}  {value:>14}  {base:>16}  {verdict}")


if __name__ == "__main__":
    main()
