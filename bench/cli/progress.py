"""`bench run`'s live progress line: the test running now, its elapsed time, its measurements so far, what it
waits for (an operator prompt) and the power the DUT draws, under pytest's own output; on a terminal only.

In a parallel run the tests run in the workers and the controller draws one line per running test: start and
end come from xdist's reports, the measurements from the workers' journals (``journal-gwN.jsonl``, tailed as the
line is drawn); the power each draws stays in its worker (the report has every test's trace).

pytest writes its report to ``sys.stdout``; while the progress line is live, that stream is a :class:`LineProxy`
that prints every finished line above the live region and keeps the unfinished one (pytest's row of dots) in
it, so the two never overwrite each other. The live region is drawn on its own copy of the terminal's file
descriptor, so pytest's output capture (which redirects descriptors 1 and 2 during each test) cannot swallow it.
While the bench waits for an operator the live region is taken off the screen, and put back after the answer.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import pytest
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

__all__ = ["LineProxy", "RunProgress", "live_progress", "wanted"]


def wanted() -> bool:
    """A live line only where a person watches a terminal (never in CI logs or pipes)."""
    if os.environ.get("TERM") == "dumb" or os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        return False
    return sys.stdout.isatty() and sys.stderr.isatty()


class LineProxy(io.TextIOBase):
    """Stands in for ``sys.stdout``: finished lines go to ``console`` (above the live region), the unfinished
    one is kept for the live region to show."""

    def __init__(self, console: Console, original: TextIO) -> None:
        self._console = console
        self._original = original
        self.pending = ""

    def write(self, text: str) -> int:
        *done, self.pending = (self.pending + text).split("\n")
        if done:
            self._console.print(Text("\n").join(Text.from_ansi(line) for line in done))
        return len(text)

    def flush(self) -> None:  # the live region shows the unfinished line; nothing to push
        pass

    def isatty(self) -> bool:
        return self._original.isatty()

    def fileno(self) -> int:
        return self._original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._original, "encoding", "utf-8")

    def close_line(self) -> None:
        """Print the unfinished line (end of run)."""
        if self.pending:
            self._console.print(Text.from_ansi(self.pending))
            self.pending = ""


class RunProgress:
    """A pytest plugin object (passed to ``pytest.main``) that follows the run for the live line. ``run_dir``:
    the run's directory, where a parallel run's workers write their journals."""

    def __init__(self, proxy: LineProxy | None = None, run_dir: Path | None = None) -> None:
        self.proxy = proxy
        self.run_dir = run_dir
        self.live: Live | None = None
        self.total = 0
        self.done = 0
        self.item: Any = None
        self.started = 0.0
        self.activity = ""
        self.monitor: Any = None
        self.parallel = False  # a parallel run's controller: the tests run in the workers
        self.running: dict[str, float] = {}  # parallel: test id -> when a worker started it (monotonic)
        self.taken: dict[str, tuple[int, str]] = {}  # parallel: test id -> measurements so far, the last one
        self._tails: dict[Path, Any] = {}

    # -- pytest hooks ----------------------------------------------------------------------------------
    def pytest_collection_finish(self, session: Any) -> None:
        self.total = len(session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.total = len(ids)  # a parallel run's controller collects nothing itself
        self.parallel = True

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        if self.parallel:
            self.running[nodeid] = time.monotonic()

    def pytest_runtest_setup(self, item: Any) -> None:
        self.item, self.started, self.activity, self.monitor = item, time.monotonic(), "", None

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.done += 1
        self.item = None
        self.activity = ""
        self.running.pop(nodeid, None)
        self.taken.pop(nodeid, None)

    def pytest_bench_power_monitor(self, nodeid: str, monitor: Any) -> None:
        if monitor is not None:
            self.monitor = monitor  # kept after it stops: the line shows the last reading until the test ends

    def pytest_bench_activity(self, nodeid: str, text: str, waiting: bool) -> None:
        self.activity = text
        if self.live is None:
            return
        if waiting and self.live.is_started:
            self.live.stop()  # the operator's prompt needs the screen
        elif not waiting and not self.live.is_started:
            self.live.start()

    # -- what the live region shows ---------------------------------------------------------------------
    def measurements(self) -> tuple[int, str]:
        """How many measurements the running test took so far, and the name of the last one."""
        recorder = getattr(self.item, "funcargs", {}).get("measure") if self.item is not None else None
        taken = list(getattr(recorder, "measurements", ()))
        return len(taken), (str(getattr(taken[-1], "name", "")) if taken else "")

    def power(self) -> str:
        """The DUT supply's last reading (its first channel), e.g. ``3.800 V  0.501 A  1.90 W``."""
        sample = self.monitor.latest() if self.monitor is not None else None
        if sample is None:
            return ""
        volts, amps = sample.volts[0], sample.amps[0]
        if not (math.isfinite(volts) and math.isfinite(amps)):  # a failed reading (NaN)
            return ""
        return f"{volts:.3f} V  {amps:.3f} A  {volts * amps:.2f} W"

    def line(self) -> Text:
        count = f"[{self.done}/{self.total}]" if self.total else f"[{self.done}]"
        if self.item is None:
            return Text(f"{count} …", style="dim")
        n, last = self.measurements()
        return self._test_line(count, str(self.item.name), self.started, n, last, self.power(), self.activity)

    @staticmethod
    def _test_line(count: str, name: str, started: float, n: int, last: str, power: str, activity: str) -> Text:
        text = Text()
        text.append(f"{count} ", style="dim")
        text.append(name, style="bold")
        text.append(f"  {time.monotonic() - started:5.1f} s  {n} measurement{'s' if n != 1 else ''}")
        if power:
            text.append(f"  {power}", style="cyan")
        if activity:
            text.append(f"  {activity}", style="yellow")
        elif last:
            text.append(f"  last: {last}", style="dim")
        return text

    def parallel_lines(self) -> list[Text]:
        """One line per test running in a worker (a parallel run's controller has no item of its own)."""
        self._read_worker_journals()
        count = f"[{self.done}/{self.total}]" if self.total else f"[{self.done}]"
        return [
            self._test_line(count, nodeid.rsplit("::", 1)[-1], started, *self.taken.get(nodeid, (0, "")), "", "")
            for nodeid, started in sorted(self.running.items(), key=lambda kv: kv[1])
        ]

    def _read_worker_journals(self) -> None:
        """Count the measurements of the running tests in what the workers journaled since the last look."""
        if self.run_dir is None or not self.running:
            return
        from bench.live.feed import MEASUREMENT_PREFIX, JournalTail  # the live view's tail: whole lines only

        for path in self.run_dir.glob("journal-gw*.jsonl"):
            tail = self._tails.get(path)
            if tail is None:
                tail = self._tails[path] = JournalTail(path)
            for line in tail.read_lines():
                if not line.startswith(MEASUREMENT_PREFIX):
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                test_id = str(record.get("test_id", ""))
                n, _ = self.taken.get(test_id, (0, ""))
                self.taken[test_id] = (n + 1, str(record.get("name", "")))

    def __rich__(self) -> RenderableType:
        pending = self.proxy.pending if self.proxy is not None else ""
        lines = self.parallel_lines() if self.parallel and self.running else [self.line()]
        return Group(Text.from_ansi(pending), *lines) if pending else Group(*lines)


@contextmanager
def live_progress(run_dir: Path | None = None) -> Iterator[RunProgress]:
    """A progress line on the terminal for the duration of the block; ``sys.stdout`` goes through it.
    ``run_dir``: the run's directory (a parallel run's workers journal there)."""
    terminal = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding="utf-8", errors="replace")
    console = Console(file=terminal, force_terminal=True)
    original = sys.stdout
    proxy = LineProxy(console, original)
    progress = RunProgress(proxy, run_dir)
    live = Live(
        progress, console=console, refresh_per_second=4, transient=True, redirect_stdout=False, redirect_stderr=False
    )
    progress.live = live
    sys.stdout = proxy  # pytest's terminal report reads it when it configures
    live.start()
    try:
        yield progress
    finally:
        if live.is_started:
            live.stop()
        sys.stdout = original
        proxy.close_line()
        terminal.close()
