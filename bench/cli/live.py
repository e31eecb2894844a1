"""`bench view`: the live view's page for a bench without a run — the last runs (with their reports), every
bench's state and lease holder (as `bench status`). Read-only: it has no control (a run's own page has them).

`bench run --live` serves the same page beside a run (fixtures/live.py); docs/live-view.md.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

__all__ = ["register"]

console = Console(stderr=True)
LAST_RUNS = 15
VIEW_REFRESH_S = 3.0  # the store and the runs folder are read at most this often, however many pages are open


class BenchView:
    """The benches and the last runs, as plain data for the page; cached for VIEW_REFRESH_S."""

    def __init__(self, runs: Path) -> None:
        self.runs = runs
        self._verdicts: dict[Path, tuple[float, dict[str, Any]]] = {}
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, Any]:
        import time

        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= VIEW_REFRESH_S:
                self._cached = (now, {"benches": self.benches(), "runs": self.last_runs()})
            return self._cached[1]

    def benches(self) -> list[dict[str, Any]]:
        from bench.reservation import ReservationError
        from bench.stop import reservation_store

        try:
            statuses = reservation_store(None).statuses()
        except ReservationError as exc:
            return [{"bench": "?", "state": f"lease store unreachable: {exc}"}]
        rows = []
        for s in statuses:
            lease, lock = s.lease, s.interlock
            held = lease is not None and not s.stale
            state = ("held" if held else "free") + (", STOPPED" if lock else "")
            rows.append(
                {
                    "bench": s.bench,
                    "state": state,
                    "holder": f"{lease.holder}@{lease.host} run {lease.run_id}" if held and lease else "",
                    "since": lease.since.isoformat(timespec="seconds") if held and lease else "",
                    "test": (lease.test or "") if held and lease else "",
                }
            )
        return rows

    def last_runs(self) -> list[dict[str, Any]]:
        if not self.runs.is_dir():
            return []
        dirs = sorted(
            (p for p in self.runs.iterdir() if p.is_dir() and not p.is_symlink() and (p / "journal.jsonl").exists()),
            key=lambda p: p.name,
            reverse=True,
        )
        return [self._run(p) for p in dirs[:LAST_RUNS]]

    def _run(self, run_dir: Path) -> dict[str, Any]:
        from reports.run_record import JournalError, read_journal

        journal = run_dir / "journal.jsonl"
        mtime = journal.stat().st_mtime
        cached = self._verdicts.get(run_dir)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        entry: dict[str, Any] = {"run_id": run_dir.name}
        try:
            record = read_journal(journal)
        except JournalError as exc:
            entry["verdict"] = f"unreadable: {exc}"
        else:
            entry["verdict"] = record.verdict
            if record.run is not None:
                entry["campaign"] = record.run.campaign
                entry["dut"] = f"{record.run.dut.part_number} S/N {record.run.dut.serial}"
        entry["reports"] = {
            name: f"/runs/{run_dir.name}/{name}" for name in ("report.html", "report.pdf") if (run_dir / name).exists()
        }
        self._verdicts[run_dir] = (mtime, entry)
        return entry


def view(
    out: Annotated[Path, typer.Option(help="the folder of run directories")] = Path("runs"),
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port [default: a free one]")] = 0,
) -> None:
    """Serve the live view's page for the bench without a run: last runs, bench status, lease holders (Ctrl-C stops)."""
    from bench.live.feed import LiveFeed
    from bench.live.server import LiveServer

    server = LiveServer(LiveFeed(view=BenchView(out)), host=host, port=port, runs_dir=out)
    try:
        server.start()
    except OSError as exc:
        console.print(f"[bold red]error:[/] cannot listen on {host}:{port}: {exc}", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"bench view: {server.url}  (read-only; Ctrl-C stops)", highlight=False)
    stopped = threading.Event()
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(drain_s=0)


def register(app: typer.Typer) -> None:
    app.command()(view)
