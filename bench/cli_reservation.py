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
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from bench.config import LoadedConfig
    from bench.reservation import BenchStatus, ReservationStore

__all__ = ["register"]

console = Console(stderr=True)
out = Console()


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _store(loaded: LoadedConfig | None) -> ReservationStore:
    from bench.reservation import open_store
    from bench.session import reservation_url

    if loaded is not None:
        return open_store(reservation_url(loaded))
    url = os.environ.get("BENCH_DB", "")
    return open_store(url if url.startswith("postgresql") else None)


def _raw_config(path: Path) -> tuple[str | None, list[tuple[str, str | None, str]]]:
    """The bench name and the supply/generator addresses of a config that does not validate: an emergency stop
    still reaches them. A driver name that is not in the table is left out: the model is found by *IDN?."""
    import yaml

    from instruments.registry import DRIVERS

    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None, []
    if not isinstance(raw, dict):
        return None, []
    bench = raw.get("bench")
    name = str(bench["name"]) if isinstance(bench, dict) and bench.get("name") else None
    instruments = raw.get("instruments") if isinstance(raw.get("instruments"), dict) else {}
    targets: list[tuple[str, str | None, str]] = []
    for role in ("psu", "generator"):
        section = instruments.get(role) if isinstance(instruments, dict) else None
        if not isinstance(section, dict) or not isinstance(section.get("resource"), str):
            continue
        if section["resource"].startswith("twin:"):
            continue
        driver = section.get("driver")
        targets.append((role, driver if driver in DRIVERS[role] else None, section["resource"]))
    return name, targets


def _mine(bench: str, name: str) -> bool:
    """Whether a reserved bench belongs to the config's bench (a private-twin run reserves `<name>/<run-id>`)."""
    return bench == name or bench.startswith(f"{name}/")


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
    from bench.config import ConfigError, load_config
    from bench.reservation import ReservationError

    loaded: LoadedConfig | None = None
    name = bench
    raw_targets: list[tuple[str, str | None, str]] = []
    if bench_config is not None:
        try:
            loaded = load_config(bench_config)
            name = name or loaded.config.bench.name
        except ConfigError as exc:  # an emergency stop must still reach the bench: fall back on what it says
            console.print(f"[yellow]warning:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raw_name, raw_targets = _raw_config(bench_config)
            name = name or raw_name
            if name is None and not raw_targets:
                raise _fail(
                    f"{bench_config}: no bench name or instrument in it; run `bench safe` without -c to stop every "
                    "bench this PC holds"
                ) from None
    from bench.reservation import local_identity

    who, host = local_identity()
    try:
        store = _store(loaded)
        if clear:
            if name is None:
                raise _fail("--clear needs the bench: -c CONFIG or --bench NAME (see `bench status`)")
            current = store.status(name)
            if current.held and current.lease is not None:  # never clear under a running session
                raise _fail(
                    f"bench {name} is {current.lease.describe()}; refusing to clear — let that run end first",
                    code=1,
                )
            cleared = store.clear_interlock(name, who=who)
            if cleared is None:
                console.print(f"bench {name}: no interlock was set", highlight=False)
            else:
                console.print(
                    f"[green]cleared[/]: bench {name} (stopped by {cleared.who} at {cleared.time})", highlight=False
                )
            return
        statuses = store.statuses()
    except ReservationError as exc:
        raise _fail(str(exc), code=1) from None
    failed = _stop(store, statuses, loaded, name, run, who, host, reason, raw_targets)
    if failed:
        raise typer.Exit(1)


def _stop(
    store: ReservationStore,
    statuses: list[BenchStatus],
    loaded: LoadedConfig | None,
    name: str | None,
    run: str | None,
    who: str,
    host: str,
    reason: str,
    raw_targets: list[tuple[str, str | None, str]],
) -> bool:
    """Interlock the chosen benches, then make their instruments safe; True if any instrument is NOT SAFE."""
    held = [s for s in statuses if s.lease is not None and not s.stale]
    if run is not None:
        held = [s for s in held if s.lease is not None and s.lease.run_id == run]
        if not held:
            raise _fail(f"no bench is held by run {run} (see `bench status`)", code=1)
    elif name is not None:
        held = [s for s in held if _mine(s.bench, name)]
    targets: dict[str, tuple[str, str | None, str]] = {}  # resource -> (role, driver or None: by *IDN?, resource)
    for status in held:
        assert status.lease is not None
        store.set_interlock(status.bench, who=who, host=host, reason=reason or "bench safe")
        console.print(f"[bold red]interlock set[/]: bench {status.bench} ({status.lease.describe()})", highlight=False)
        for t in status.lease.safe_targets:
            targets.setdefault(t.resource, (t.role, t.driver, t.resource))
    if run is None:
        for role, driver, resource in _configured_targets(loaded) if loaded is not None else raw_targets:
            targets.setdefault(resource, (role, driver, resource))
        if loaded is not None and name is not None and not held and not loaded.config.twin.autostart:
            store.set_interlock(name, who=who, host=host, reason=reason or "bench safe")
            console.print(f"[bold red]interlock set[/]: bench {name} (no session holds it)", highlight=False)
    if not targets:
        where = f"bench {name}" if name else "no bench of this PC"
        console.print(f"nothing to make safe: {where} is held by a session, and no instrument address is configured")
        return False
    return _make_safe(targets.values())


def _configured_targets(loaded: LoadedConfig) -> list[tuple[str, str | None, str]]:
    """The config's supply and generator at their addresses. A `twin:` resource names a private twin of one
    run, reached through that run's lease instead (the lease records the twin's resolved address)."""
    found: list[tuple[str, str | None, str]] = []
    for role in ("psu", "generator"):
        section = loaded.config.instruments.get(role)
        if section is not None and not section.resource.startswith("twin:"):
            found.append((role, section.driver, section.resource))
    return found


def _make_safe(targets: Iterable[tuple[str, str | None, str]]) -> bool:
    from bench.roles import make_safe_at
    from instruments.errors import InstrumentError

    failed = False
    for role, driver, resource in targets:
        try:
            console.print(f"[green]safe[/]: {escape(make_safe_at(role, driver, resource))}", highlight=False)
        except (InstrumentError, ValueError) as exc:
            failed = True
            console.print(f"[bold red]NOT SAFE[/]: {role} {resource}: {escape(str(exc))}", highlight=False)
    return failed


def status(json_lines: Annotated[bool, typer.Option("--json", help="one JSON object per bench")] = False) -> None:
    """Every known bench: free, or held by whom, since when, running which test; and any interlock set."""
    from rich.table import Table

    from bench.reservation import ReservationError

    try:
        statuses = _store(None).statuses()
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
