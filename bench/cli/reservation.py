"""`bench safe` and `bench status`: the emergency stop and who holds which bench.

bench safe [-c CONFIG] [--run RUN_ID] [--reason TEXT]
    Emergency stop, from any terminal of the PC: every supply output off and generator RF off *now*, and an
    interlock set on the bench, which the session holding it sees within one heartbeat (it fails the running test,
    skips the rest, ends ABORTED). Nothing powers the DUT again until the interlock is cleared. Without a config
    it acts on every bench of this PC that a session holds (each lease records its instruments' addresses, the
    private twin of a run included); `--run` narrows it to one run.
bench safe --clear (-c CONFIG | --bench NAME)
    Clear the interlock once the cause is understood; refused while a session still holds the bench.
bench status [--json]
    Every known bench: free, or held by whom, since when, running which test; and any interlock set.

Where leases live: the config's `bench.reservation`, else $BENCH_DB when it is a PostgreSQL URL (a lab's bench
PCs share it), else this PC's file system (bench/reservation.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from bench.reservation import BenchStatus, ReservationStore

__all__ = ["register"]

console = Console(stderr=True)
out = Console()


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _store() -> ReservationStore:
    from bench.stop import reservation_store

    return reservation_store(None)


def safe(
    bench_config: Annotated[
        Path | None, typer.Option("--bench-config", "-c", help="the bench to stop [default: every bench of this PC]")
    ] = None,
    run: Annotated[str | None, typer.Option("--run", help="only the bench held by this run id")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="clear the interlock (refused while the bench is held)")] = (
        False
    ),
    bench: Annotated[str | None, typer.Option("--bench", help="the bench by name (for --clear without a config)")] = (
        None
    ),
    reason: Annotated[str, typer.Option(help="why the bench is stopped (journaled)")] = "",
) -> None:
    """Emergency stop: outputs and RF off now, and an interlock that keeps the DUT off until `--clear`."""
    from bench.cli.stop import stop

    if not clear:  # the stop is the same lean code the console script runs before loading this module
        if bench is not None:
            raise _fail("--bench names a bench for --clear; to stop one bench use -c CONFIG or --run RUN_ID")
        raise typer.Exit(stop(bench_config, run, reason))
    _clear(bench_config, bench)


def _clear(bench_config: Path | None, name: str | None) -> None:
    """Clear the interlock of the bench named by --bench or the config; refused while a session holds it."""
    from bench.reservation import ReservationError, local_identity
    from bench.stop import StopRefused, read_stop_config, reservation_store

    reservation = None
    if bench_config is not None:
        try:
            plan = read_stop_config(bench_config)
        except StopRefused as exc:
            raise _fail(str(exc)) from None
        name, reservation = name or plan.name, plan.reservation
    if name is None:
        raise _fail("--clear needs the bench: -c CONFIG or --bench NAME (see `bench status`)")
    who, _ = local_identity()
    try:
        store = reservation_store(reservation)
        current = store.status(name)
        if current.held and current.lease is not None:  # never clear under a running session
            raise _fail(
                f"bench {name} is {current.lease.describe()}; refusing to clear — let that run end first", code=1
            )
        cleared = store.clear_interlock(name, who=who)
    except ReservationError as exc:
        raise _fail(str(exc), code=1) from None
    if cleared is None:
        console.print(f"bench {name}: no interlock was set", highlight=False)
    else:
        console.print(f"[green]cleared[/]: bench {name} (stopped by {cleared.who} at {cleared.time})", highlight=False)


def status(json_lines: Annotated[bool, typer.Option("--json", help="one JSON object per bench")] = False) -> None:
    """Every known bench: free, or held by whom, since when, running which test; and any interlock set."""
    from rich.table import Table

    from bench.reservation import ReservationError

    try:
        statuses = _store().statuses()
    except ReservationError as exc:
        raise _fail(str(exc), code=1) from None
    if json_lines:
        for s in statuses:
            lease, lock = s.lease, s.interlock
            entry = {
                "bench": s.bench,
                "state": _state(s),
                "holder": f"{lease.holder}@{lease.host}" if lease else None,
                "pid": lease.pid if lease else None,
                "run_id": lease.run_id if lease else None,
                "since": lease.since.isoformat() if lease else None,
                "test": lease.test if lease else None,
                "interlock": {"who": lock.who, "time": lock.time.isoformat(), "reason": lock.reason} if lock else None,
            }
            out.print(json.dumps(entry), highlight=False, soft_wrap=True)
        return
    if not statuses:
        out.print("no bench is known on this PC (none was ever held)")
        return
    table = Table(title="benches", title_justify="left")
    for column in ("bench", "state", "holder", "since", "running", "interlock"):
        table.add_column(column)
    for s in statuses:
        lease, lock = s.lease, s.interlock
        table.add_row(
            s.bench,
            _state(s),
            f"{lease.holder}@{lease.host} pid {lease.pid} run {lease.run_id}" if lease else "",
            lease.since.isoformat(timespec="seconds") if lease else "",
            (lease.test or "") if lease else "",
            f"stopped by {lock.who}@{lock.host} at {lock.time.isoformat(timespec='seconds')}" if lock else "",
        )
    out.print(table)


def _state(s: BenchStatus) -> str:
    if s.lease is None or s.stale:
        return "STOPPED" if s.interlock else "free"
    return "held, STOPPED" if s.interlock else "held"


def register(app: typer.Typer) -> None:
    """Add `safe` and `status` to the `bench` command line."""
    app.command()(safe)
    app.command()(status)
