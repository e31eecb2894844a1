"""What only the FileStore must get right: a shared directory any user of the PC can use, safe file names,
fail-safe records, and a lease that another user can take over. Plus the values' one-line descriptions.

Every store lives in the test's tmp_path (or a private temporary folder for the cross-user test); the real
default state directory is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from reservation_holder import can_run_as, holders

import bench.reservation
from bench.reservation import (
    STATE_DIR_ENV,
    BenchInterlocked,
    BenchStatus,
    FileStore,
    Interlock,
    Lease,
    LeaseHandle,
    LeaseKeeper,
    ReservationError,
    SafeTarget,
    open_store,
    state_dir,
)
from bench.waiting import await_true

PROJECT = Path(bench.reservation.__file__).resolve().parents[1]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _acquire(store: FileStore, name: str, run_id: str = "run-a") -> LeaseHandle:
    return store.acquire(name, run_id=run_id, holder="alice", host="benchpc", pid=4242, ttl_s=30.0)


def test_state_dir_is_made_sticky_and_world_writable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "lab" / "state"))
    made = state_dir()
    assert made == tmp_path / "lab" / "state" and _mode(made) == 0o1777
    assert state_dir() == made  # an existing directory is used as it is

    monkeypatch.delenv(STATE_DIR_ENV)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the default is below the PC's temp directory
    assert state_dir() == tmp_path / "ots-bench-state" and _mode(tmp_path / "ots-bench-state") == 0o1777


def test_open_store_picks_the_store_from_the_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "state"))
    for url in (None, "sqlite:///runs/results.sqlite"):
        store = open_store(url)
        assert isinstance(store, FileStore) and store.location == str(tmp_path / "state")
    with pytest.raises(ReservationError) as refused:  # nothing listens on port 1: the PostgreSQL store says so
        open_store("postgresql+psycopg://bench:secret@127.0.0.1:1/lab")
    message = str(refused.value)
    assert "127.0.0.1:1/lab" in message and "secret" not in message and "\n" not in message


def test_importing_the_module_does_not_import_sqlalchemy() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, bench.reservation; print('sqlalchemy' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert probe.stdout.strip() == "False"  # a PC on files never pays for the database layer


def test_bench_names_become_safe_distinct_file_names(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "state")
    names = ["../../etc/passwd", "flatsat-1/20261204-101500-ab12", "flatsat-1-20261204-101500-ab12", "a b", "."]
    paths = [store.files(name) for name in names]
    for files in paths:
        for path in files:
            assert path.parent == store.directory and not path.name.startswith(".")
    assert len({files.lock for files in paths}) == len(names)
    for name in names:
        with store.acquire(name, run_id="r", holder="alice", host="pc", pid=1, ttl_s=30.0):
            assert store.status(name).held
    assert sorted(s.bench for s in store.statuses()) == sorted(names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]  # nothing escaped the directory


def test_every_file_is_writable_by_every_user_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        store = FileStore(tmp_path / "state")
        with store.acquire("flatsat-1", run_id="r", holder="alice", host="pc", pid=1, ttl_s=30.0):
            store.set_interlock("flatsat-1", who="bob", host="pc", reason="test")
    finally:
        os.umask(old)
    assert _mode(store.directory) == 0o1777
    assert {p.name.split(".", 1)[1]: _mode(p) for p in store.directory.iterdir()} == {
        "lock": 0o666,
        "lease.json": 0o666,
        "interlock.json": 0o666,
    }


@pytest.mark.parametrize("content", [b"", b'{"bench": "flatsat-1", "set": tr', b"[]", b'{"bench": "flatsat-1"}'])
def test_an_unreadable_interlock_counts_as_set(tmp_path: Path, content: bytes) -> None:
    """A crash while writing the interlock (empty or torn file) must never read as "cleared"."""
    store = FileStore(tmp_path / "state")
    store.files("flatsat-1").interlock.write_bytes(content)
    interlock = store.status("flatsat-1").interlock
    assert interlock is not None and "unreadable" in interlock.reason
    assert store.status("flatsat-1").interlock == interlock  # stable: a keeper reports it once, not every beat
    with pytest.raises(BenchInterlocked):
        _acquire(store, "flatsat-1")
    assert store.set_interlock("flatsat-1", who="bob", host="pc", reason="again") == interlock  # first one stands
    assert store.clear_interlock("flatsat-1", who="operator") == interlock
    assert store.status("flatsat-1").interlock is None
    with store.acquire("flatsat-1", run_id="r", holder="alice", host="pc", pid=1, ttl_s=30.0):
        pass


def test_the_keeper_ends_quietly_when_its_lease_is_released(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "state")
    handle = store.acquire("flatsat-1", run_id="r", holder="alice", host="pc", pid=1, ttl_s=30.0)
    lost: list[str] = []
    keeper = LeaseKeeper(handle, 0.05, lambda il: None, lost.append).start()
    await_true(lambda: keeper.beats >= 1, timeout_s=60, what="the first heartbeat")
    handle.release()
    await_true(lambda: not keeper.running, timeout_s=60, what="the keeper to end")
    keeper.stop()
    assert lost == [] and not store.status("flatsat-1").held


def test_descriptions_are_one_line_each() -> None:
    now = datetime.now(UTC).replace(hour=10, minute=15, second=0, microsecond=0)
    psu = SafeTarget("psu", "keysight-e36312a", "TCPIP0::192.0.2.21::5025::SOCKET")
    lease = Lease("flatsat-1", "alice", "benchpc", 4242, "20261204-101500-ab12", now, now + timedelta(seconds=30),
                  test="test_plans/eps/test_eps_power.py::test_idle_current", safe_targets=(psu,))  # fmt: skip
    assert lease.describe() == (
        "held by alice@benchpc pid 4242, run 20261204-101500-ab12, since 10:15:00Z, "
        "running test_plans/eps/test_eps_power.py::test_idle_current"
    )
    old = Lease("flatsat-1", "alice", "benchpc", 1, "r", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), now)
    assert "since 2026-01-02 03:04:05Z" in old.describe()  # not today: the date too
    stop = Interlock("flatsat-1", "bob", "pc-3", now, "smoke", "20261204-101500-ab12")
    assert stop.describe() == "emergency stop by bob@pc-3 at 10:15:00Z (smoke), run 20261204-101500-ab12"
    hung = BenchStatus("flatsat-1", lease, stop, expired=True).describe()
    assert "lease expired at 10:15:30Z: the holder is hung (kill pid 4242 on benchpc)" in hung
    assert "; INTERLOCKED: emergency stop by bob@pc-3" in hung and "\n" not in hung
    assert BenchStatus("flatsat-1", old, None, stale=True).describe().startswith("flatsat-1: free (stale lease:")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder other users can reach (tmp_path is private to root): removed at the end."""
    base = Path(tempfile.mkdtemp(prefix="ots-bench-xuser-"))
    base.chmod(0o755)
    try:
        yield base / "state"
    finally:
        shutil.rmtree(base, ignore_errors=True)


OTHER_USER_CODE = """
import json, os, sys
from bench.reservation import FileStore
store = FileStore(sys.argv[1])
status = store.status("flatsat-1")
cleared = store.clear_interlock("flatsat-1", who="nobody")
handle = store.acquire("flatsat-1", run_id="run-nobody", holder="nobody", host="pc", pid=os.getpid(), ttl_s=30.0)
handle.renew("test_x")
handle.release()
stop = store.set_interlock("flatsat-2", who="nobody", host="pc", reason="from another account")
print(json.dumps({"stale": status.stale, "stopped_by": status.interlock.who, "cleared": cleared.who,
                  "stop": stop.who}))
"""


def test_any_user_of_the_pc_can_clear_a_stop_and_take_over_a_dead_holders_bench(
    shared_dir: Path, tmp_path: Path
) -> None:
    """Root's dead holder and root's stop, cleared and taken over by `nobody`: in a sticky directory only a file's
    owner may rename over it, so this passes only because records are rewritten in place."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root and runuser to act as a second user")
    env = {"PYTHONPATH": str(PROJECT)}
    python = next((p for p in (sys.executable, "/usr/bin/python3") if can_run_as("nobody", p, env)), None)
    if python is None:
        pytest.skip("user 'nobody' cannot run a Python >= 3.11 that imports the bench")

    store = FileStore(shared_dir)
    with holders(tmp_path) as spawn:
        holder = spawn({"kind": "file", "dir": str(shared_dir), "bench": "flatsat-1", "run_id": "run-root",
                        "ttl_s": 30.0, "period_s": 0})  # fmt: skip
        holder.expect("held")
        holder.kill()
    store.set_interlock("flatsat-1", who="root", host="pc", reason="smoke")
    assert {p.stat().st_uid for p in shared_dir.iterdir()} == {0}

    done = subprocess.run(
        ["runuser", "-u", "nobody", "--", python, "-c", OTHER_USER_CODE, str(shared_dir)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"stale": True, "stopped_by": "root", "cleared": "root", "stop": "nobody"}
    status = store.status("flatsat-1")
    assert status.lease is None and status.interlock is None and not status.held
    assert store.status("flatsat-2").interlock is not None
