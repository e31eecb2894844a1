"""The emergency stop itself: interlock the bench, then switch its supply outputs and generator RF off.

`bench safe` runs this from any terminal of the PC, and it must act within a second of the operator's Enter on
a loaded bench PC. So this module imports only what the stop needs — the reservation store, PyYAML for the
bench config and the instrument drivers (pyvisa) — never typer, rich, pydantic or the report stack; the
`bench` entry point calls it before it loads the rest of the command line (`bench/cli/entry.py`).

What is stopped:

* every bench a live session holds (its lease records the resolved addresses of its supply and generator, the
  private twin of a run included): the interlock is set first, so the holder latches the stop at its next
  heartbeat, then the instruments are made safe from here as well;
* with a bench config (`-c`), that bench only, plus the supply and generator at the addresses the config gives
  (a bench nobody holds is interlocked too, unless it is an auto-started twin, which lives only with its run);
* with a run id (`--run`), only the bench that run holds.

The config is read as plain YAML, not validated: a config with a mistake in it must still stop the bench.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.reservation import (
    BenchStatus,
    ReservationError,
    ReservationStore,
    SafeTarget,
    local_identity,
    open_store,
)

__all__ = [
    "SafeTarget",
    "StopPlan",
    "StopRefused",
    "emergency_stop",
    "read_stop_config",
    "reservation_store",
    "reservation_url",
]

STOP_ROLES = ("psu", "generator")  # the roles that drive the DUT or radiate


class StopRefused(Exception):
    """The stop cannot be carried out as asked (no such run, nothing named); the message says what to do."""


@dataclass(slots=True)
class StopPlan:
    """What a bench config says about stopping its bench, read from plain YAML."""

    name: str | None = None
    reservation: str | None = None
    autostart: bool = False
    targets: list[SafeTarget] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what in the config the stop had to work around


def read_stop_config(path: Path) -> StopPlan:
    """The bench name, lease store and supply/generator addresses of the config at `path`. A `twin:` address
    names a private twin of one run, reached through that run's lease; a driver not in the registry is left to
    *IDN?. Raises StopRefused naming the file when it cannot be read at all."""
    import yaml

    from instruments.registry import DRIVERS

    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise StopRefused(f"{path}: cannot read the bench config ({exc}); run `bench safe` without -c to stop "
                          "every bench this PC holds") from None  # fmt: skip
    plan = StopPlan()
    if not isinstance(raw, dict):
        return plan
    bench, twin, instruments = (_section(raw, key) for key in ("bench", "twin", "instruments"))
    plan.name = str(bench["name"]) if bench.get("name") else None
    plan.reservation = str(bench["reservation"]) if bench.get("reservation") else None
    plan.autostart = bool(twin.get("autostart", False))
    for role in STOP_ROLES:
        section = instruments.get(role)
        if not isinstance(section, dict) or not isinstance(section.get("resource"), str):
            continue
        if section["resource"].startswith("twin:"):
            continue
        driver = section.get("driver")
        if driver is not None and driver not in DRIVERS[role]:
            known = ", ".join(DRIVERS[role])
            plan.warnings.append(f"{path}: instruments.{role}.driver: unknown driver {driver!r} (known: {known}); "
                                 "the model is found by *IDN?")  # fmt: skip
            driver = None
        plan.targets.append(SafeTarget(role, driver, section["resource"]))
    return plan


def _section(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    return value if isinstance(value, dict) else {}


def reservation_url(configured: str | None) -> str | None:
    """Where leases live: the config's `bench.reservation`, else $BENCH_DB when it is PostgreSQL; None: this PC."""
    url = configured or os.environ.get("BENCH_DB") or ""
    return url if url.startswith("postgresql") else None


def reservation_store(configured: str | None) -> ReservationStore:
    """The lease store of a bench whose config says `bench.reservation: configured` (see reservation_url)."""
    return open_store(reservation_url(configured))


def _mine(bench: str, name: str) -> bool:
    """Whether a reserved bench belongs to the config's bench (a private-twin run reserves `<name>/<run-id>`)."""
    return bench == name or bench.startswith(f"{name}/")


Say = Callable[[str, str], Any]  # (kind: "interlock" | "safe" | "NOT SAFE" | "info", text)


def emergency_stop(plan: StopPlan | None, run: str | None, reason: str, say: Say) -> bool:
    """Interlock the chosen benches, then make their instruments safe. Returns False if any instrument could not
    be confirmed safe (each is said as "NOT SAFE"). Raises StopRefused, or ReservationError when the lease
    store cannot be reached (the instruments at the config's addresses are made safe first all the same)."""
    who, host = local_identity()
    name = plan.name if plan else None
    try:
        store = reservation_store(plan.reservation if plan else None)
        statuses = store.statuses()
    except ReservationError:
        if plan is not None and plan.targets:  # the store is down: the instruments must still go off
            _make_safe(plan.targets, say)
        raise
    held = [s for s in statuses if s.lease is not None and not s.stale]
    if run is not None:
        held = [s for s in held if s.lease is not None and s.lease.run_id == run]
        if not held:
            raise StopRefused(f"no bench is held by run {run} (see `bench status`)")
    elif name is not None:
        held = [s for s in held if _mine(s.bench, name)]
    targets: dict[str, SafeTarget] = {}
    private: dict[str, str] = {}  # resource → the private-twin bench it belongs to
    for status in held:
        _interlock(store, status, who, host, reason, say)
        for t in status.lease.safe_targets if status.lease else ():
            targets.setdefault(t.resource, t)
            if "/" in status.bench:  # `<name>/<run-id>[/<worker>]`: an auto-started twin, private to its run
                private.setdefault(t.resource, status.bench)
    if run is None and plan is not None:
        for t in plan.targets:
            targets.setdefault(t.resource, t)
        if name is not None and not held and not plan.autostart:
            store.set_interlock(name, who=who, host=host, reason=reason or "bench safe")
            say("interlock", f"bench {name} (no session holds it)")
    if not targets:
        where = f"bench {name}" if name else "no bench of this PC"
        say("info", f"nothing to make safe: {where} is held by a session, and no instrument address is configured")
        return True
    return _make_safe(targets.values(), say, lambda t: _ended_with_its_run(store, private.get(t.resource)))


def _ended_with_its_run(store: ReservationStore, bench: str | None) -> bool:
    """A private twin that no longer answers, of a bench its session has released: the session saw the interlock,
    entered safe state and ended, and its twin ended with it — there is no supply left to switch off. (Its
    worker-mates in a parallel run react within one heartbeat, often before this stop reaches their twin.)"""
    if bench is None:
        return False
    try:
        return store.status(bench).lease is None  # released by its session, not left behind by a dead one
    except ReservationError:
        return False


def _interlock(store: ReservationStore, status: BenchStatus, who: str, host: str, reason: str, say: Say) -> None:
    store.set_interlock(status.bench, who=who, host=host, reason=reason or "bench safe")
    holder = status.lease.describe() if status.lease else "no holder"
    say("interlock", f"bench {status.bench} ({holder})")


def _make_safe(targets: Iterable[SafeTarget], say: Say, gone: Callable[[SafeTarget], bool] = lambda t: False) -> bool:
    from instruments.errors import InstrumentError
    from instruments.registry import make_safe_at

    ok = True
    for t in targets:
        try:
            say("safe", make_safe_at(t.role, t.driver, t.resource))
        except (InstrumentError, ValueError) as exc:
            if gone(t):
                say("safe", f"{t.role} {t.resource}: its run's session made it safe and ended; its twin is gone")
                continue
            ok = False
            say("NOT SAFE", f"{t.role} {t.resource}: {exc}")
    return ok
