"""`bench run`'s live progress line: the test running now, its elapsed time, its measurements so far, and what
it waits for (an operator prompt), under pytest's own output; on a terminal only.

pytest writes its report to ``sys.stdout``; while the progress line is live, that stream is a :class:`LineProxy`
that prints every finished line above the live region and keeps the unfinished one (pytest's row of dots) in
it, so the two never overwrite each other. The live region is drawn on its own copy of the terminal's file
descriptor, so pytest's output capture (which redirects descriptors 1 and 2 during each test) cannot swallow it.
While the bench waits for an operator the live region is taken off the screen, and put back after the answer.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

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
    """A pytest plugin object (passed to ``pytest.main``) that follows the run for the live line."""

    def __init__(self, proxy: LineProxy | None = None) -> None:
        self.proxy = proxy
        self.live: Live | None = None
        self.total = 0
        self.done = 0
        self.item: Any = None
        self.started = 0.0
        self.activity = ""

    # -- pytest hooks ----------------------------------------------------------------------------------
    def pytest_collection_finish(self, session: Any) -> None:
        self.total = len(session.items)

    def pytest_runtest_setup(self, item: Any) -> None:
        self.item, self.started, self.activity = item, time.monotonic(), ""

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.done += 1
        self.item = None
        self.activity = ""

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

    def line(self) -> Text:
        count = f"[{self.done}/{self.total}]" if self.total else f"[{self.done}]"
        if self.item is None:
            return Text(f"{count} …", style="dim")
        n, last = self.measurements()
        text = Text()
        text.append(f"{count} ", style="dim")
        text.append(str(self.item.name), style="bold")
        text.append(f"  {time.monotonic() - self.started:5.1f} s  {n} measurement{'s' if n != 1 else ''}")
        if self.activity:
            text.append(f"  {self.activity}", style="yellow")
        elif last:
            text.append(f"  last: {last}", style="dim")
        return text

    def __rich__(self) -> RenderableType:
        pending = self.proxy.pending if self.proxy is not None else ""
        return Group(Text.from_ansi(pending), self.line()) if pending else self.line()


@contextmanager
def live_progress() -> Iterator[RunProgress]:
    """A progress line on the terminal for the duration of the block; ``sys.stdout`` goes through it."""
    terminal = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding="utf-8", errors="replace")
    console = Console(file=terminal, force_terminal=True)
    original = sys.stdout
    proxy = LineProxy(console, original)
    progress = RunProgress(proxy)
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
