"""The reservation contract, proved against both stores: this PC's files and a lab's PostgreSQL server.

Every test runs twice (``kit`` is parametrized): on a FileStore in the test's own tmp_path, and on a
PostgresStore in a throwaway server (tests/support/pg_support.py; skipped without PostgreSQL binaries). "Another
PC" is another store object (its own connections) or another process (reservation_holder.py), which the tests
kill with SIGKILL or freeze with SIGSTOP. No sleeps: every wait is an awaited condition with a generous timeout.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pg_support
import pytest
from reservation_holder import Holder, holders

from bench.reservation import (
    BenchHeld,
    BenchInterlocked,
    FileStore,
    Interlock,
    LeaseHandle,
    LeaseKeeper,
    LeaseLost,
    PostgresStore,
    ReservationStore,
    SafeTarget,
)
from bench.waiting import await_true, await_value

pg_url = pg_support.pg_url  # the module-scoped throwaway server (shared with the results-DB suite)

TIMEOUT_S = 60.0  # generous: a loaded 2-core CI machine; every wait returns as soon as its condition holds
PSU = SafeTarget("psu", "keysight-e36312a", "TCPIP0::192.0.2.21::5025::SOCKET")


@dataclass
class Kit:
    """One backend: ``make()`` opens another view of the same store (another PC); ``spec`` feeds holders."""

    kind: str
    make: Callable[[], ReservationStore]
    spec: dict[str, Any]
    break_lease: Callable[[str], None]  # take the bench away from its holder behind its back
    close: Callable[[], None] = lambda: None
    spawned: Callable[[dict[str, Any]], Holder] | None = None  # set by the fixture: killed at teardown

    def spawn(self, bench: str, *, ttl_s: float = 30.0, period_s: float = 0.0) -> Holder:
        """A holder process on "another PC" (user ci, host pc-2), holding ``bench`` once this returns."""
        assert self.spawned is not None
        holder = self.spawned(
            {**self.spec, "bench": bench, "run_id": f"run-{bench}", "ttl_s": ttl_s, "period_s": period_s}
        )
        holder.expect("held")
        return holder

    def await_freed(self, store: ReservationStore, bench: str) -> None:
        """After a holder died: a file lock is gone at once; a PostgreSQL server must first notice the
        connection closed (await it, bounded)."""
        if self.kind == "file":
            assert not store.status(bench).held
        else:
            await_true(lambda: not store.status(bench).held, timeout_s=TIMEOUT_S, what=f"server frees {bench}")


def _pg_kit(url: str) -> Kit:
    from sqlalchemy import create_engine, text

    from bench.reservation import _advisory_key, _key_halves

    engine = create_engine(url)
    with engine.begin() as conn:  # every test starts from an empty store
        conn.execute(text("DROP TABLE IF EXISTS bench_lease, bench_interlock"))

    def break_lease(bench: str) -> None:
        # what a lost network or a DBA's pg_terminate_backend does: the holder's connection, and its lock, end
        with engine.begin() as conn:
            terminated = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1"
                ),
                _key_halves(_advisory_key(bench)),
            )
            assert terminated.scalars().all() == [True]

    return Kit("pg", lambda: PostgresStore(url), {"kind": "pg", "url": url}, break_lease, engine.dispose)


@pytest.fixture(params=["file", "pg"])
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kit]:
    if request.param == "file":
        directory = tmp_path / "state"

        def break_lease(bench: str) -> None:
            FileStore(directory).files(bench).lock.unlink()  # a tmp cleaner removing the lock file

        kit = Kit("file", lambda: FileStore(directory), {"kind": "file", "dir": str(directory)}, break_lease)
    else:
        kit = _pg_kit(request.getfixturevalue("pg_url"))
    try:
        with holders(tmp_path) as spawn:
            kit.spawned = spawn
            yield kit
    finally:
        kit.close()


@pytest.fixture
def store(kit: Kit) -> ReservationStore:
    return kit.make()


@pytest.fixture
def other(kit: Kit) -> ReservationStore:
    """The same store seen from another PC (its own store object and connections)."""
    return kit.make()


@pytest.fixture
def bench() -> str:
    return f"flatsat-{uuid.uuid4().hex[:8]}"  # unique: a PostgreSQL server outlives a test's tables


def _acquire(store: ReservationStore, bench: str, run_id: str = "run-a", **kw: Any) -> LeaseHandle:
    args: dict[str, Any] = {"holder": "alice", "host": "benchpc", "pid": 4242, "ttl_s": 30.0, "config": "lab.yaml"}
    return store.acquire(bench, run_id=run_id, **{**args, **kw})


def _one_line(exc: pytest.ExceptionInfo[Exception], *parts: str) -> str:
    message = str(exc.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"
    return message


class Recorder:
    """LeaseKeeper callbacks that tests can await."""

    def __init__(self) -> None:
        self.interlocks: list[Interlock] = []
        self.lost: list[str] = []
        self.interlocked = threading.Event()
        self.was_lost = threading.Event()

    def on_interlock(self, interlock: Interlock) -> None:
        self.interlocks.append(interlock)
        self.interlocked.set()

    def on_lost(self, why: str) -> None:
        self.lost.append(why)
        self.was_lost.set()


# --------------------------------------------------------------------------------------------------------


def test_a_held_bench_is_refused_at_once_with_one_line_naming_its_holder(
    store: ReservationStore, other: ReservationStore, bench: str
) -> None:
    handle = _acquire(store, bench, safe_targets=(PSU,))
    with pytest.raises(BenchHeld) as refused:
        _acquire(other, bench, run_id="run-b", holder="bob")
    _one_line(refused, repr(bench), "alice@benchpc", "pid 4242", "run run-a", "`bench safe -c lab.yaml`")
    assert refused.value.lease is not None and refused.value.lease.run_id == "run-a"

    status = other.status(bench)
    assert status.held and not status.stale and not status.expired and status.interlock is None
    assert status.lease is not None
    assert (status.lease.holder, status.lease.host, status.lease.pid) == ("alice", "benchpc", 4242)
    assert status.lease.safe_targets == (PSU,) and status.lease.config == "lab.yaml"
    assert status.describe().startswith(f"{bench}: held by alice@benchpc pid 4242, run run-a, since ")

    handle.release()
    handle.release()  # idempotent
    freed = other.status(bench)
    assert not freed.held and freed.lease is None and not freed.stale
    with _acquire(other, bench, run_id="run-b", holder="bob") as second:
        assert second.lease.holder == "bob"
    assert store.status(bench).lease is None


def test_of_many_sessions_racing_for_a_bench_exactly_one_wins(kit: Kit, bench: str) -> None:
    stores = [kit.make() for _ in range(6)]  # six PCs, each with its own store and connections
    start = threading.Barrier(len(stores))
    won: list[LeaseHandle] = []
    refused: list[BenchHeld] = []

    def race(i: int, store: ReservationStore) -> None:
        start.wait(timeout=TIMEOUT_S)
        try:
            won.append(_acquire(store, bench, run_id=f"run-{i}"))
        except BenchHeld as exc:
            refused.append(exc)

    threads = [threading.Thread(target=race, args=(i, s)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT_S)
    try:
        assert len(won) == 1 and len(refused) == len(stores) - 1
        assert {exc.lease.run_id for exc in refused if exc.lease} == {won[0].lease.run_id}
    finally:
        for handle in won:
            handle.release()


def test_a_killed_holder_frees_the_bench(kit: Kit, store: ReservationStore, bench: str) -> None:
    holder = kit.spawn(bench)
    with pytest.raises(BenchHeld) as refused:
        _acquire(store, bench)
    _one_line(refused, "ci@pc-2", f"pid {holder.pid}", f"run-{bench}")

    holder.kill()  # SIGKILL: the holder runs no code at all on its way out
    kit.await_freed(store, bench)
    status = store.status(bench)
    assert status.stale and not status.held and status.lease is not None and status.lease.pid == holder.pid
    assert "stale lease" in status.describe()
    with _acquire(store, bench) as handle:
        assert handle.lease.run_id == "run-a"
        assert store.status(bench).held


def test_an_interlock_reaches_the_holders_keeper_within_a_heartbeat(
    store: ReservationStore, other: ReservationStore, bench: str
) -> None:
    handle = _acquire(store, bench)
    seen = Recorder()
    keeper = LeaseKeeper(handle, 0.1, seen.on_interlock, seen.on_lost).start()
    test_id = "test_plans/eps/test_eps_power.py::test_idle_current"
    try:
        keeper.current_test = test_id  # `bench status` shows which test runs
        status = await_value(
            lambda: other.status(bench),
            lambda s: s.lease is not None and s.lease.test == test_id,
            timeout_s=TIMEOUT_S,
            what="the running test in the lease",
        )
        assert status.describe().endswith(f"running {test_id}")

        stop = other.set_interlock(bench, who="bob", host="pc-3", reason="smoke from the EPS")
        assert (stop.who, stop.host, stop.reason, stop.run_id) == ("bob", "pc-3", "smoke from the EPS", "run-a")
        assert seen.interlocked.wait(timeout=TIMEOUT_S), "the keeper never saw the interlock"
        assert seen.interlocks == [stop] and keeper.interlock == stop

        beats = keeper.beats
        await_true(lambda: keeper.beats >= beats + 3, timeout_s=TIMEOUT_S, what="three more heartbeats")
        assert seen.interlocks == [stop]  # once per interlock, not once per heartbeat

        with pytest.raises(BenchHeld) as refused:
            other.clear_interlock(bench, who="operator")
        _one_line(refused, repr(bench), "alice@benchpc", "pid 4242", "then clear again")
        assert other.status(bench).interlock == stop
    finally:
        keeper.stop()
        handle.release()
    assert seen.lost == []

    assert other.clear_interlock(bench, who="operator") == stop  # allowed once released
    assert other.status(bench).interlock is None
    assert other.clear_interlock(bench, who="operator") is None  # nothing left to clear
    with _acquire(other, bench, run_id="run-b"):
        pass


def test_an_interlocked_bench_cannot_be_acquired_until_cleared(store: ReservationStore, bench: str) -> None:
    first = store.set_interlock(bench, who="bob", host="pc-3", reason="smoke")
    assert first.run_id is None  # the bench was free
    again = store.set_interlock(bench, who="carol", host="pc-4", reason="second press")
    assert again == first  # the first stop's record stands

    with pytest.raises(BenchInterlocked) as refused:
        _acquire(store, bench)
    _one_line(refused, repr(bench), "bob@pc-3", "smoke", "`bench safe --clear -c lab.yaml`")
    assert refused.value.interlock == first
    status = store.status(bench)
    assert status.lease is None and status.interlock == first and "INTERLOCKED" in status.describe()

    assert store.clear_interlock(bench, who="operator") == first
    with _acquire(store, bench) as handle:
        assert handle.interlock() is None


def test_statuses_lists_free_held_stale_and_interlocked_benches(
    kit: Kit, store: ReservationStore, other: ReservationStore, bench: str
) -> None:
    free, held, stale, stopped = (f"{bench}-{kind}" for kind in ("free", "held", "stale", "stopped"))
    with _acquire(store, free):
        pass
    holder = kit.spawn(stale)
    holder.kill()
    kit.await_freed(other, stale)
    other.set_interlock(stopped, who="bob", host="pc-3", reason="smoke")
    with _acquire(store, held, run_id="run-held"):
        statuses = {s.bench: s for s in other.statuses()}

    assert sorted(statuses) == sorted([free, held, stale, stopped])
    assert statuses[free].lease is None and not statuses[free].held and statuses[free].interlock is None
    assert statuses[held].held and statuses[held].lease is not None and statuses[held].lease.run_id == "run-held"
    assert statuses[stale].stale and not statuses[stale].held
    assert statuses[stale].lease is not None and statuses[stale].lease.pid == holder.pid
    assert statuses[stopped].lease is None and statuses[stopped].interlock is not None
    assert statuses[stopped].interlock.who == "bob"
    assert statuses[free].describe() == f"{free}: free"
    assert "held by alice@benchpc" in statuses[held].describe()
    assert "stale lease: ci@pc-2" in statuses[stale].describe()
    assert "INTERLOCKED: emergency stop by bob@pc-3" in statuses[stopped].describe()


def test_a_hung_holder_shows_as_held_but_expired_and_acquire_names_its_pid(
    kit: Kit, store: ReservationStore, bench: str
) -> None:
    holder = kit.spawn(bench, ttl_s=1.0, period_s=0.1)
    holder.pause()  # SIGSTOP: alive, its lock stands, but it renews nothing (resumed and killed at teardown)
    status = await_value(lambda: store.status(bench), lambda s: s.expired, timeout_s=TIMEOUT_S, what="expiry")
    assert status.held and not status.stale
    assert f"the holder is hung (kill pid {holder.pid} on pc-2)" in status.describe()
    with pytest.raises(BenchHeld) as refused:
        _acquire(store, bench)
    _one_line(refused, "ci@pc-2", "lease expired", f"kill pid {holder.pid} on pc-2")
    store.set_interlock(bench, who="bob", host="pc-3", reason="the flatsat stopped answering")
    with pytest.raises(BenchHeld):  # nor is an interlock cleared under a hung holder: it must be killed first
        store.clear_interlock(bench, who="operator")
    holder.resume()  # it wakes up and renews: no longer expired
    await_true(lambda: not store.status(bench).expired, timeout_s=TIMEOUT_S, what="renewal after SIGCONT")


def test_a_lost_lease_is_reported_once_and_ends_the_keeper(kit: Kit, store: ReservationStore, bench: str) -> None:
    handle = _acquire(store, bench)
    seen = Recorder()
    keeper = LeaseKeeper(handle, 0.1, seen.on_interlock, seen.on_lost).start()
    try:
        await_true(lambda: keeper.beats >= 1, timeout_s=TIMEOUT_S, what="the first heartbeat")
        kit.break_lease(bench)
        assert seen.was_lost.wait(timeout=TIMEOUT_S), "the keeper never reported the lost lease"
        await_true(lambda: not keeper.running, timeout_s=TIMEOUT_S, what="the keeper to end")
        assert len(seen.lost) == 1 and repr(bench) in seen.lost[0] and "\n" not in seen.lost[0]
        with pytest.raises(LeaseLost):
            handle.renew()
    finally:
        keeper.stop()
        handle.release()  # releasing a lost lease is quiet
    assert seen.interlocks == []
