"""Who owns a bench: one session at a time, a lease that dies with its holder, and the emergency-stop interlock.

A bench config names one bench (a flatsat and its instruments). Two sessions driving it at once would fight
over the supply, so a session must *hold* the bench before it touches an instrument:

* **acquire** — the session takes the bench's lock and writes a **lease**: who (user, host, pid, run id),
  since when, until when (``expires``), the test now running, its config and the resolved addresses of the
  instruments ``bench safe`` must switch off without a config (:class:`SafeTarget`). A held bench is refused
  *at once* (:class:`BenchHeld`, one line naming the holder); nobody queues for a flatsat.
* **heartbeat** — a :class:`LeaseKeeper` thread renews the lease every period (``expires = now + ttl``,
  with the current test) and reads the interlock. A holder that hangs stops renewing: ``bench status`` shows
  its lease *expired* and a new session is refused with the pid to kill. Nothing ever steals a bench from a
  live process.
* **death** — the lock is one the operating system or the database server owns on the holder's behalf: a
  ``flock`` on a file (the kernel drops it when the process dies, ``kill -9`` included) or a PostgreSQL
  session-level advisory lock (the server drops it when the holder's connection dies). A crashed CI job
  leaves a *stale* lease record behind, never a stale lock: the bench is free again at once.
* **interlock** — ``bench safe`` (any terminal, any user of the PC) sets an :class:`Interlock` on the bench,
  held or not. The holding session sees it within one heartbeat (``on_interlock``) and stops powering
  anything; no session can acquire the bench until an operator clears it, and clearing is refused while a
  session still holds the bench (:class:`BenchInterlocked`, :class:`BenchHeld`). Setting it twice keeps the
  *first* stop's record: the reason an operator hit the button first is the one worth investigating.

Two stores implement one contract (:class:`ReservationStore`); :func:`open_store` picks one from a URL:

``FileStore``      benches of this PC. Per bench, in :func:`state_dir`: ``<slug>.lock`` (held with
                   ``flock(LOCK_EX)`` for the holder's lifetime), ``<slug>.lease.json`` and
                   ``<slug>.interlock.json``. The directory is sticky and world-writable (``1777``) and every
                   file ``0666``, so any user of the PC can stop and clear any bench.
``PostgresStore``  a lab whose bench PCs share one PostgreSQL server (the results database): tables
                   ``bench_lease`` and ``bench_interlock``, the bench held by ``pg_try_advisory_lock`` on a
                   connection the holder keeps open. Two PCs cannot drive one flatsat.

Held or stale is always decided by the lock, never by the record: the record says *who*, the lock says
*whether*.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import getpass
import hashlib
import json
import logging
import os
import re
import socket
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol, Self, TypeVar

if TYPE_CHECKING:
    from sqlalchemy import MetaData, Table
    from sqlalchemy.engine import Connection, Engine, Row

__all__ = [
    "STATE_DIR_ENV",
    "BenchHeld",
    "BenchInterlocked",
    "BenchStatus",
    "FileStore",
    "Interlock",
    "Lease",
    "LeaseHandle",
    "LeaseKeeper",
    "LeaseLost",
    "PostgresStore",
    "ReservationError",
    "ReservationStore",
    "SafeTarget",
    "local_identity",
    "open_store",
    "state_dir",
]

log = logging.getLogger(__name__)

STATE_DIR_ENV: Final = "OTS_BENCH_STATE_DIR"

T = TypeVar("T")


# --------------------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class SafeTarget:
    """A resolved instrument address that `bench safe` without a config can make safe."""

    role: str  # psu, generator, ...
    driver: str | None  # the registry name, e.g. keysight-e36312a; None: found by *IDN? among the role's drivers
    resource: str  # the VISA resource as resolved by the session (the twin's ports are known only then)


@dataclass(frozen=True)
class Lease:
    """Who holds a bench, since and until when, doing what."""

    bench: str
    holder: str  # user name
    host: str
    pid: int
    run_id: str
    since: datetime  # aware, UTC
    expires: datetime  # renewed by every heartbeat; past it while still held, the holder is hung
    test: str | None = None  # the test running at the last heartbeat
    config: str | None = None  # the bench config the holder runs with
    safe_targets: tuple[SafeTarget, ...] = ()

    def expired_at(self, now: datetime) -> bool:
        return self.expires < now

    def describe(self) -> str:
        """``held by alice@benchpc pid 4242, run 20261204-101500-ab12, since 10:15:00Z, running <test>``."""
        if self.pid == 0:  # the placeholder of a lock whose record could not be read
            return "held by an unknown session (no lease record)"
        running = f", running {self.test}" if self.test else ""
        return (
            f"held by {self.holder}@{self.host} pid {self.pid}, run {self.run_id}, since {_clock(self.since)}{running}"
        )


@dataclass(frozen=True)
class Interlock:
    """An emergency stop on a bench: until an operator clears it, no session may acquire the bench."""

    bench: str
    who: str
    host: str
    time: datetime  # aware, UTC
    reason: str
    run_id: str | None  # the run holding the bench when it was stopped, if any

    def describe(self) -> str:
        """``emergency stop by bob@benchpc at 10:16:02Z (smoke from the EPS), run 20261204-...``"""
        why = f" ({self.reason})" if self.reason else ""
        run = f", run {self.run_id}" if self.run_id else ""
        return f"emergency stop by {self.who}@{self.host} at {_clock(self.time)}{why}{run}"


@dataclass(frozen=True)
class BenchStatus:
    """One bench as ``bench status`` shows it.

    ``lease`` is the holder's lease while the bench is held, or, when ``stale``, the record a holder that
    died left behind (the bench is free; its ``safe_targets`` still say what `bench safe` should switch
    off). ``None``: free, nothing left over. ``expired``: held, but the lease was not renewed in time — the
    holder is alive (its lock stands) but hung.
    """

    bench: str
    lease: Lease | None
    interlock: Interlock | None
    stale: bool = False
    expired: bool = False

    @property
    def held(self) -> bool:
        """A live session holds the bench: acquiring it, or clearing its interlock, is refused."""
        return self.lease is not None and not self.stale

    def describe(self) -> str:
        """One line: ``flatsat-1: held by alice@benchpc pid 4242, ...; INTERLOCKED: emergency stop by ...``."""
        lease = self.lease
        if lease is None:
            text = "free"
        elif self.stale:
            gone = f"{lease.holder}@{lease.host} pid {lease.pid}, run {lease.run_id}"
            text = f"free (stale lease: {gone} ended without releasing it)"
        else:
            text = lease.describe()
            if self.expired:
                hung = f"the holder is hung (kill pid {lease.pid} on {lease.host})"
                text += f" — lease expired at {_clock(lease.expires)}: {hung}"
        if self.interlock is not None:
            text += f"; INTERLOCKED: {self.interlock.describe()}"
        return f"{self.bench}: {text}"


# --------------------------------------------------------------------------------------------------------
# Errors: one line each, naming the bench, the holder or the stop, and what to do


class ReservationError(RuntimeError):
    """The bench cannot be reserved, renewed or stopped; the message says why and what to do."""


class BenchHeld(ReservationError):
    """Another live session holds the bench."""

    def __init__(self, message: str, *, bench: str = "", lease: Lease | None = None) -> None:
        super().__init__(message)
        self.bench = bench
        self.lease = lease


class BenchInterlocked(ReservationError):
    """The bench's emergency-stop interlock is set: nothing may power the DUT until an operator clears it."""

    def __init__(self, message: str, *, interlock: Interlock | None = None) -> None:
        super().__init__(message)
        self.interlock = interlock


class LeaseLost(ReservationError):
    """The holder no longer holds its bench (lock file removed, database connection lost): stop at once."""


def _held_message(status: BenchStatus, config: str | None) -> str:
    lease, bench = status.lease, status.bench
    stop = f"wait for it to finish or stop it with `bench safe -c {config or 'CONFIG'}`"
    if lease is None or lease.pid == 0:
        return f"bench {bench!r} is held by another session (its lease record is unreadable); {stop}"
    who = f"{lease.holder}@{lease.host} (pid {lease.pid}, run {lease.run_id}, since {_clock(lease.since)}"
    who += f", running {lease.test})" if lease.test else ")"
    if status.expired:
        hung = f"the holder is hung; kill pid {lease.pid} on {lease.host}, then try again"
        return f"bench {bench!r} is held by {who} but its lease expired at {_clock(lease.expires)}: {hung}"
    return f"bench {bench!r} is held by {who}; {stop}"


def _clear_refused_message(status: BenchStatus) -> str:
    lease = status.lease
    holder = f"{lease.holder}@{lease.host} (pid {lease.pid}, run {lease.run_id})" if lease else "another session"
    pid = f"kill pid {lease.pid} on {lease.host}" if lease and lease.pid else "stop it"
    wait = f"wait until that run has ended (or {pid}), then clear again"
    return f"cannot clear the interlock on bench {status.bench!r}: it is still held by {holder}; {wait}"


def _interlocked_message(interlock: Interlock, config: str | None) -> str:
    clear = f"nothing powers the DUT until an operator clears it with `bench safe --clear -c {config or 'CONFIG'}`"
    return f"bench {interlock.bench!r} is interlocked: {interlock.describe()}; {clear}"


# --------------------------------------------------------------------------------------------------------
# The contract


class LeaseHandle(ABC):
    """The holder's side of a lease: renew it every heartbeat, read the interlock, release it at the end.

    Thread-safe (the keeper thread renews while the session's thread may release). Once lost, always lost:
    every later renew or interlock read raises the same :class:`LeaseLost`.
    """

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self._lock = threading.Lock()
        self._released = False
        self._lost: LeaseLost | None = None

    @property
    def released(self) -> bool:
        return self._released

    def renew(self, test: str | None = None) -> Lease:
        """Extend ``expires`` by the ttl and record the running test; :class:`LeaseLost` if the bench is no
        longer ours. Any other :class:`ReservationError` is transient (the next heartbeat tries again)."""
        with self._lock:
            if self._released:
                raise ReservationError(f"the lease on bench {self.lease.bench!r} was already released")
            self.lease = self._guard(lambda: self._renew(test))
            return self.lease

    def interlock(self) -> Interlock | None:
        """The bench's interlock, if set: a cheap read, made every heartbeat."""
        with self._lock:
            return None if self._released else self._guard(self._interlock)

    def release(self) -> None:
        """Give the bench back (idempotent). The record stays, marked released, so the bench stays known."""
        with self._lock:
            if not self._released:
                self._released = True
                self._release()

    def _guard(self, call: Callable[[], T]) -> T:
        if self._lost is not None:
            raise self._lost
        try:
            return call()
        except LeaseLost as exc:
            self._lost = exc
            raise

    @abstractmethod
    def _renew(self, test: str | None) -> Lease: ...

    @abstractmethod
    def _interlock(self) -> Interlock | None: ...

    @abstractmethod
    def _release(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class ReservationStore(Protocol):
    """Where leases and interlocks live; :class:`FileStore` and :class:`PostgresStore` keep the same contract."""

    @property
    def location(self) -> str:
        """Where, for humans: a directory or a database URL without its password."""
        ...

    def acquire(
        self,
        bench: str,
        *,
        run_id: str,
        holder: str,
        host: str,
        pid: int,
        ttl_s: float,
        config: str | None = None,
        safe_targets: tuple[SafeTarget, ...] = (),
    ) -> LeaseHandle:
        """Hold ``bench`` or fail at once: :class:`BenchHeld`, :class:`BenchInterlocked`."""
        ...

    def status(self, bench: str) -> BenchStatus: ...

    def statuses(self) -> list[BenchStatus]:
        """Every bench this store knows (ever leased or interlocked), by name."""
        ...

    def set_interlock(self, bench: str, *, who: str, host: str, reason: str) -> Interlock:
        """Stop ``bench``, held or not; a bench already stopped keeps its first stop's record."""
        ...

    def clear_interlock(self, bench: str, *, who: str) -> Interlock | None:
        """Clear the stop and return it (``None``: there was none); :class:`BenchHeld` while a session holds
        the bench — it must end first, so that no run continues across a stop."""
        ...


def open_store(db_url: str | None = None) -> ReservationStore:
    """A PostgreSQL URL gives the lab's shared :class:`PostgresStore`; anything else (``None``, a SQLite URL)
    this PC's :class:`FileStore` in :func:`state_dir`."""
    if db_url and db_url.split("://", 1)[0].split("+", 1)[0] == "postgresql":
        return PostgresStore(db_url)
    return FileStore()


def local_identity() -> tuple[str, str]:
    """(user, host) of this process, as leases and interlocks record them."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container uid with no passwd entry and no $USER
        user = f"uid{os.getuid()}"
    return user, socket.gethostname()


# --------------------------------------------------------------------------------------------------------
# The keeper: the holder's heartbeat


class LeaseKeeper:
    """Renews a lease and watches the interlock every ``period_s``, in a daemon thread.

    ``on_interlock(interlock)`` fires once per interlock (a stop cleared and set again fires again);
    ``on_lost(message)`` fires once, and then the keeper ends — there is nothing left to keep. Both run in
    the keeper's thread; an exception they raise is logged, not propagated. The first heartbeat is at
    :meth:`start`, so a stop set while the session was opening instruments is seen at once.
    """

    def __init__(
        self,
        handle: LeaseHandle,
        period_s: float,
        on_interlock: Callable[[Interlock], None],
        on_lost: Callable[[str], None],
    ) -> None:
        self.handle = handle
        self.period_s = period_s
        self.current_test: str | None = None  # set by the session; written into the lease at the next renew
        self.beats = 0  # heartbeats done (tests await it rather than sleeping)
        self.interlock: Interlock | None = None  # the last interlock seen: a cheap guard for power-on
        self._on_interlock = on_interlock
        self._on_lost = on_lost
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"lease-keeper[{self.handle.lease.bench}]", daemon=True
            )
            self._thread.start()
        return self

    @property
    def running(self) -> bool:
        """The keeper thread is alive (it ends on :meth:`stop`, on a lost lease, or once the handle is released)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop beating and join the thread (idempotent; safe to call from a callback)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            # bounded: a renew on a dead network returns within the store's own timeouts (~15 s)
            thread.join(timeout=30)
            if thread.is_alive():
                log.warning("lease keeper of bench %s did not stop within 30 s", self.handle.lease.bench)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set() and not self.handle.released:
            if not self._beat():
                return
            self.beats += 1
            self._stop.wait(self.period_s)  # the beat's period; stop() ends the wait at once

    def _beat(self) -> bool:
        """One heartbeat: the interlock first (the safety signal), then the renewal. False: the lease is lost."""
        try:
            interlock = self.handle.interlock()
            if interlock is not None and interlock != self.interlock:
                self.interlock = interlock
                self._call(self._on_interlock, interlock)
            self.handle.renew(self.current_test)
        except LeaseLost as exc:
            if not self._stop.is_set() and not self.handle.released:  # a release racing a beat is no loss
                self._call(self._on_lost, str(exc))
            return False
        except (ReservationError, OSError) as exc:
            # transient (a record busy past its patience, a full disk): the next beat tries both again; if it
            # persists the lease expires and `bench status` shows this holder as hung
            log.warning("lease heartbeat of bench %s failed: %s", self.handle.lease.bench, exc)
        return True

    def _call(self, callback: Callable[[T], None], arg: T) -> None:
        try:
            callback(arg)
        except Exception:
            log.exception("lease keeper callback %r failed", callback)


# --------------------------------------------------------------------------------------------------------
# Helpers shared by both stores


def _now() -> datetime:
    return datetime.now(UTC)


def _clock(t: datetime) -> str:
    """``10:15:00Z`` today, ``2026-12-04 10:15:00Z`` otherwise."""
    t = t.astimezone(UTC)
    return t.strftime("%H:%M:%SZ" if t.date() == _now().date() else "%Y-%m-%d %H:%M:%SZ")


def _poll(attempt: Callable[[], T | None], patience_s: float, interval_s: float = 0.005) -> T | None:
    """``attempt()`` until it returns non-None, for at most ``patience_s``; its last result.

    Not `bench.waiting`: an emergency stop ends every await there, and it is during a stop that the lease
    must still be released and the interlock still read.
    """
    deadline = time.monotonic() + patience_s
    while True:
        result = attempt()
        if result is not None or time.monotonic() >= deadline:
            return result
        time.sleep(interval_s)  # a poll interval: the loop ends on the result, not on time


def _targets_to_json(targets: tuple[SafeTarget, ...]) -> list[dict[str, str | None]]:
    return [{"role": t.role, "driver": t.driver, "resource": t.resource} for t in targets]


def _targets_from_json(raw: Any) -> tuple[SafeTarget, ...]:
    return tuple(
        SafeTarget(str(t["role"]), str(t["driver"]) if t.get("driver") else None, str(t["resource"])) for t in raw or ()
    )


def _unknown_lease(bench: str) -> Lease:
    """The placeholder for a lock held by a session whose record cannot be read (describe() says so)."""
    now = _now()
    return Lease(bench, "unknown", "unknown", 0, "unknown", now, now)


# --------------------------------------------------------------------------------------------------------
# FileStore: benches of this PC


def state_dir() -> Path:
    """Where this PC's leases and interlocks live: ``$OTS_BENCH_STATE_DIR``, else ``<tmp>/ots-bench-state``.

    Created ``1777`` (sticky, world-writable, like /tmp) so that every user of the PC can stop a bench. Set
    ``$OTS_BENCH_STATE_DIR`` for every user alike when a CI runner has a private /tmp (systemd PrivateTmp).
    """
    configured = os.environ.get(STATE_DIR_ENV)
    return _shared_dir(Path(configured) if configured else Path(tempfile.gettempdir()) / "ots-bench-state")


def _shared_dir(path: Path) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir()
    except FileExistsError:
        if not path.is_dir():
            raise ReservationError(f"bench state directory {path} is not a directory; remove it") from None
        return path
    except OSError as exc:
        raise ReservationError(f"cannot create bench state directory {path}: {exc.strerror}") from exc
    os.chmod(path, 0o1777)  # mkdir's mode is cut by the umask; every user of the PC must be able to stop a bench
    return path


def _slug(bench: str) -> str:
    """A safe file name for a bench name: readable part + a short hash (names differing only in dropped
    characters stay apart; ``..`` and ``/`` cannot escape the directory)."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "-", bench).strip("-")[:60] or "bench"
    return f"{readable}-{hashlib.sha256(bench.encode()).hexdigest()[:10]}"


class _Files(NamedTuple):
    lock: Path
    lease: Path
    interlock: Path


class _Unreadable:
    """A record that exists but does not parse (a write torn by a crash, a hand edit)."""

    def __init__(self, path: Path, why: str) -> None:
        self.path = path
        self.why = why


_Record = dict[str, Any] | _Unreadable | None  # None: no such file

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # a symlink planted in a world-writable directory is not followed
_EXCLUSIVE_PATIENCE_S: Final = 0.5  # a `bench status` probe holds a shared lock for microseconds
_RECORD_PATIENCE_S: Final = 2.0  # a record is locked only while it is read or rewritten


def _open_shared(path: Path, flags: int) -> tuple[int, bool]:
    """Open ``path``, creating it ``0666`` if missing, so that any user of the PC can later rewrite it;
    (fd, created).

    Never ``O_CREAT`` on an existing file: with ``fs.protected_regular`` the kernel refuses that on another
    user's file in a sticky directory, even when its mode would let us write.
    """
    try:
        return os.open(path, flags | _NOFOLLOW), False
    except FileNotFoundError:
        pass
    try:
        fd = os.open(path, flags | _NOFOLLOW | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:  # someone created it in between
        return os.open(path, flags | _NOFOLLOW), False
    os.fchmod(fd, 0o666)  # the umask cut the mode at creation
    return fd, True


def _try_flock(fd: int, operation: int) -> bool | None:
    """One non-blocking flock attempt: True, or None when someone else holds a conflicting lock."""
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return True


def _flock(fd: int, operation: int, patience_s: float) -> bool:
    return _poll(lambda: _try_flock(fd, operation), patience_s) is not None


def _read_locked(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    chunks, offset = [], 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _parse(path: Path, raw: bytes) -> _Record:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return _Unreadable(path, f"not JSON ({exc})" if raw else "empty")
    return data if isinstance(data, dict) else _Unreadable(path, "not a JSON object")


@contextlib.contextmanager
def _os_errors(path: Path, action: str) -> Iterator[None]:
    try:
        yield
    except PermissionError as exc:
        raise ReservationError(
            f"cannot {action} {path}: permission denied; its directory must be 1777 and its files 0666 "
            f"(chmod them, or remove them as their owner)"
        ) from exc
    except OSError as exc:
        raise ReservationError(f"cannot {action} {path}: {exc.strerror or exc}") from exc


def _read_record(path: Path) -> _Record:
    """The record at ``path`` under a shared flock (a rewrite in progress is never seen half done)."""
    with _os_errors(path, "read"):
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        except FileNotFoundError:
            return None
        try:
            if not _flock(fd, fcntl.LOCK_SH, _RECORD_PATIENCE_S):
                raise ReservationError(f"record {path} stays locked by another process; try again")
            return _parse(path, _read_locked(fd))
        finally:
            os.close(fd)  # closing drops the lock


def _update_record(
    path: Path, change: Callable[[_Record], dict[str, Any] | None], *, sync: bool = False
) -> dict[str, Any] | None:
    """Read-modify-write ``path`` under an exclusive flock; ``change`` returns the new record or None (keep).

    Records are rewritten in place, not replaced by rename: in a sticky directory only a file's owner may
    rename over it, and the next holder or the operator clearing a stop may be another user. The new
    content is written before the file is cut to its length, so a crash mid-write leaves unparseable text,
    never an empty or shorter valid record — and an unparseable interlock reads as *set* (fail-safe).
    """
    with _os_errors(path, "write"):
        fd, created = _open_shared(path, os.O_RDWR)
        try:
            if not _flock(fd, fcntl.LOCK_EX, _RECORD_PATIENCE_S):
                raise ReservationError(f"record {path} stays locked by another process; try again")
            raw = _read_locked(fd)
            # empty and not ours to fill: a writer died between creating and writing it (unreadable, not absent)
            new = change(None if created and not raw else _parse(path, raw))
            if new is not None:
                payload = json.dumps(new, separators=(",", ":")).encode()
                offset = 0
                while offset < len(payload):
                    offset += os.pwrite(fd, payload[offset:], offset)
                os.ftruncate(fd, len(payload))
                if sync:
                    os.fsync(fd)
            return new
        finally:
            os.close(fd)


def _lease_to_json(lease: Lease, *, released: bool) -> dict[str, Any]:
    return {
        "bench": lease.bench,
        "holder": lease.holder,
        "host": lease.host,
        "pid": lease.pid,
        "run_id": lease.run_id,
        "since": lease.since.isoformat(),
        "expires": lease.expires.isoformat(),
        "test": lease.test,
        "config": lease.config,
        "safe_targets": _targets_to_json(lease.safe_targets),
        "released": released,
    }


def _lease_from_json(data: dict[str, Any]) -> Lease | None:
    try:
        return Lease(
            bench=str(data["bench"]),
            holder=str(data["holder"]),
            host=str(data["host"]),
            pid=int(data["pid"]),
            run_id=str(data["run_id"]),
            since=datetime.fromisoformat(data["since"]),
            expires=datetime.fromisoformat(data["expires"]),
            test=data.get("test"),
            config=data.get("config"),
            safe_targets=_targets_from_json(data.get("safe_targets")),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _live_lease(record: _Record) -> Lease | None:
    """The lease a record describes, unless it was released (or cannot be read)."""
    if not isinstance(record, dict) or record.get("released", False):
        return None
    return _lease_from_json(record)


def _interlock_from_record(bench: str, record: _Record, path: Path) -> Interlock | None:
    """The interlock a record describes; a record that cannot be read counts as set (fail-safe)."""
    if record is None:
        return None
    if isinstance(record, _Unreadable):
        why = record.why
    else:
        if record.get("set") is False:
            return None
        try:
            return Interlock(
                bench=str(record["bench"]),
                who=str(record["who"]),
                host=str(record["host"]),
                time=datetime.fromisoformat(record["time"]),
                reason=str(record["reason"]),
                run_id=record.get("run_id"),
            )
        except (KeyError, TypeError, ValueError):
            why = "fields missing"
    try:  # the file's time, not now: the same unreadable stop must compare equal at every heartbeat
        when = datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
    except OSError:
        when = datetime.fromtimestamp(0, UTC)
    reason = f"interlock record unreadable ({why}); treated as set until cleared"
    return Interlock(bench, "unknown", "unknown", when, reason, None)


class FileStore:
    """Leases and interlocks of this PC's benches as files in one shared directory (see the module doc)."""

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = _shared_dir(Path(directory)) if directory is not None else state_dir()

    @property
    def location(self) -> str:
        return str(self.directory)

    def files(self, bench: str) -> _Files:
        slug = _slug(bench)
        d = self.directory
        return _Files(d / f"{slug}.lock", d / f"{slug}.lease.json", d / f"{slug}.interlock.json")

    # -- the contract -----------------------------------------------------------------------------------
    def acquire(
        self,
        bench: str,
        *,
        run_id: str,
        holder: str,
        host: str,
        pid: int,
        ttl_s: float,
        config: str | None = None,
        safe_targets: tuple[SafeTarget, ...] = (),
    ) -> LeaseHandle:
        files = self.files(bench)
        with _os_errors(files.lock, "open"):
            fd, _ = _open_shared(files.lock, os.O_RDONLY)  # flock needs no write access
        try:
            # a brief retry: a concurrent `bench status` probe holds a shared lock for microseconds
            if not _flock(fd, fcntl.LOCK_EX, _EXCLUSIVE_PATIENCE_S):
                status = self.status(bench)
                raise BenchHeld(_held_message(status, config), bench=bench, lease=status.lease)
            interlock = _interlock_from_record(bench, _read_record(files.interlock), files.interlock)
            if interlock is not None:
                raise BenchInterlocked(_interlocked_message(interlock, config), interlock=interlock)
            now = _now()
            lease = Lease(
                bench, holder, host, pid, run_id, now, now + timedelta(seconds=ttl_s), None, config, safe_targets
            )

            def take(record: _Record) -> dict[str, Any]:
                stale = _live_lease(record)
                if stale is not None:
                    log.info("bench %s: taking over from a holder that died (%s)", bench, stale.describe())
                return _lease_to_json(lease, released=False)

            _update_record(files.lease, take)
        except BaseException:
            os.close(fd)  # drops the lock if we took it
            raise
        return _FileLeaseHandle(files, fd, lease, ttl_s)

    def status(self, bench: str) -> BenchStatus:
        files = self.files(bench)

        def consistent() -> tuple[bool, Lease | None] | None:
            held, lease = self._probe(files.lock), _live_lease(_read_record(files.lease))
            # a holder writes its record just after taking the lock, and marks it released just before
            # dropping it: lock and record disagree only for those instants
            return (held, lease) if not held or lease is not None else None

        sample = _poll(consistent, 1.0)
        held, lease = sample if sample is not None else (True, None)
        interlock = _interlock_from_record(bench, _read_record(files.interlock), files.interlock)
        if held:
            lease = lease or _unknown_lease(bench)
            return BenchStatus(bench, lease, interlock, expired=lease.pid != 0 and lease.expired_at(_now()))
        return BenchStatus(bench, lease, interlock, stale=lease is not None)

    def statuses(self) -> list[BenchStatus]:
        names: set[str] = set()
        for path in [*self.directory.glob("*.lease.json"), *self.directory.glob("*.interlock.json")]:
            with contextlib.suppress(ReservationError):
                record = _read_record(path)
                if isinstance(record, dict) and isinstance(record.get("bench"), str):
                    names.add(record["bench"])
                else:
                    log.warning("bench state file %s cannot be read; skipped", path)
        return [self.status(name) for name in sorted(names)]

    def set_interlock(self, bench: str, *, who: str, host: str, reason: str) -> Interlock:
        status = self.status(bench)
        interlock = Interlock(
            bench, who, host, _now(), reason, status.lease.run_id if status.held and status.lease else None
        )
        path = self.files(bench).interlock
        kept: list[Interlock] = []

        def stop(record: _Record) -> dict[str, Any] | None:
            current = _interlock_from_record(bench, record, path)
            if current is not None:  # already stopped: the first stop's record stands
                kept.append(current)
                return None
            return {
                "bench": bench,
                "set": True,
                "who": who,
                "host": host,
                "time": interlock.time.isoformat(),
                "reason": reason,
                "run_id": interlock.run_id,
                "cleared_by": None,
                "cleared_at": None,
            }

        _update_record(path, stop, sync=True)
        return kept[0] if kept else interlock

    def clear_interlock(self, bench: str, *, who: str) -> Interlock | None:
        files = self.files(bench)
        if not files.interlock.exists():
            return None
        with _os_errors(files.lock, "open"):
            fd, _ = _open_shared(files.lock, os.O_RDONLY)
        try:
            # hold the bench's lock while clearing: no session can acquire in between and run on a stop
            if not _flock(fd, fcntl.LOCK_EX, _EXCLUSIVE_PATIENCE_S):
                raise BenchHeld(_clear_refused_message(self.status(bench)), bench=bench)
            cleared: list[Interlock] = []

            def clear(record: _Record) -> dict[str, Any] | None:
                current = _interlock_from_record(bench, record, files.interlock)
                if current is None:
                    return None
                cleared.append(current)
                base = record if isinstance(record, dict) else {"bench": bench}
                return {**base, "bench": bench, "set": False, "cleared_by": who, "cleared_at": _now().isoformat()}

            _update_record(files.interlock, clear, sync=True)
            return cleared[0] if cleared else None
        finally:
            os.close(fd)

    # -- helpers ----------------------------------------------------------------------------------------
    @staticmethod
    def _probe(lock: Path) -> bool:
        """Is the bench held? A shared try-lock: refused only while a holder has the exclusive one."""
        try:
            fd = os.open(lock, os.O_RDONLY | _NOFOLLOW)
        except FileNotFoundError:
            return False
        try:
            return _try_flock(fd, fcntl.LOCK_SH) is None
        finally:
            os.close(fd)


class _FileLeaseHandle(LeaseHandle):
    """Holds the bench through the flock of its open lock file, kept open until release."""

    def __init__(self, files: _Files, fd: int, lease: Lease, ttl_s: float) -> None:
        super().__init__(lease)
        self._files = files
        self._fd = fd
        self._ttl_s = ttl_s
        self._stat = os.fstat(fd)

    def _renew(self, test: str | None) -> Lease:
        self._check_lock_file()
        lease = replace(self.lease, expires=_now() + timedelta(seconds=self._ttl_s), test=test)

        def renew(record: _Record) -> dict[str, Any]:
            if not isinstance(record, dict) or record.get("run_id") != lease.run_id:
                owner = record.get("run_id") if isinstance(record, dict) else "nobody"
                where = f"its record {self._files.lease} now belongs to run {owner}"
                raise LeaseLost(f"lease on bench {lease.bench!r} lost: {where}")
            return _lease_to_json(lease, released=False)

        _update_record(self._files.lease, renew)
        return lease

    def _interlock(self) -> Interlock | None:
        return _interlock_from_record(self.lease.bench, _read_record(self._files.interlock), self._files.interlock)

    def _release(self) -> None:
        run_id = self.lease.run_id

        def mark(record: _Record) -> dict[str, Any] | None:
            if isinstance(record, dict) and record.get("run_id") == run_id:
                return {**record, "released": True}
            return None  # someone else's record (our lock file was removed): not ours to touch

        try:
            _update_record(self._files.lease, mark)
        except ReservationError as exc:  # the lock below is what matters; the record then reads stale
            log.warning("bench %s: could not mark the lease released: %s", self.lease.bench, exc)
        finally:
            os.close(self._fd)  # drops the flock

    def _check_lock_file(self) -> None:
        """Our flock is on the file we opened; if that file was removed, another session may hold a new one."""
        try:
            now = os.stat(self._files.lock)
        except FileNotFoundError:
            now = None
        if now is None or (now.st_dev, now.st_ino) != (self._stat.st_dev, self._stat.st_ino):
            raise LeaseLost(f"lease on bench {self.lease.bench!r} lost: its lock file {self._files.lock} was removed")


# --------------------------------------------------------------------------------------------------------
# PostgresStore: a lab's bench PCs sharing one server


class _PgTables(NamedTuple):
    metadata: MetaData
    lease: Table
    interlock: Table


@functools.cache
def _pg_tables() -> _PgTables:
    # sqlalchemy is imported only by a store that needs it (~0.2 s, paid by nobody running on files)
    from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, MetaData, String, Table, Text

    metadata = MetaData()
    lease = Table(
        "bench_lease",
        metadata,
        Column("bench", String(200), primary_key=True),
        Column("holder", String(200), nullable=False),
        Column("host", String(200), nullable=False),
        Column("pid", Integer, nullable=False),
        Column("run_id", String(200), nullable=False),
        # the server's clock, not each PC's: bench PCs with skewed clocks still agree on "expired"
        Column("since", DateTime(timezone=True), nullable=False),
        Column("expires", DateTime(timezone=True), nullable=False),
        Column("test", Text),
        Column("config", Text),
        Column("safe_targets", JSON, nullable=False),
        Column("released", Boolean, nullable=False, default=False),
    )
    interlock = Table(
        "bench_interlock",
        metadata,
        Column("bench", String(200), primary_key=True),
        Column("who", String(200), nullable=False),
        Column("host", String(200), nullable=False),
        Column("time", DateTime(timezone=True), nullable=False),
        Column("reason", Text, nullable=False),
        Column("run_id", String(200)),
        # a cleared stop is kept (who cleared it, when): the bench stays known and the stop on record
        Column("cleared_by", String(200)),
        Column("cleared_at", DateTime(timezone=True)),
    )
    return _PgTables(metadata, lease, interlock)


def _key(name: str) -> int:
    """A signed 64-bit advisory-lock key from a name (PostgreSQL's bigint key space)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def _advisory_key(bench: str) -> int:
    """The key a bench is held under (its own namespace: no bench name can collide with the schema lock)."""
    return _key(f"ots-bench:lease:{bench}")


_SCHEMA_KEY: Final = _key("ots-bench:schema")


def _key_halves(key: int) -> dict[str, int]:
    # pg_locks shows a bigint key as its high half in classid and its low half in objid (objsubid = 1)
    return {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF}


_LOCK_HELD_SQL: Final = """SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
 AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1{mine})"""

# Every connection: statements cannot hang the heartbeat; the server drops a holder whose PC vanished from
# the network (power cut) within ~25 s instead of the kernel's 2 h keepalive default, freeing its bench.
_SERVER_OPTIONS: Final = (
    "-c statement_timeout=10000 -c lock_timeout=5000 -c idle_in_transaction_session_timeout=60000"
    " -c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
)
_CLIENT_ARGS: Final = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 15000,  # ms: a renew on a dead network fails (LeaseLost) rather than hanging
    "application_name": "ots-bench-reservation",
}


class PostgresStore:
    """Leases and interlocks in a PostgreSQL database shared by the lab's bench PCs (see the module doc).

    The tables are created on first use. Every connection is opened for the call that needs it and closed
    after (no pool): a holder's lock lives exactly as long as its own connection, and nothing else's.
    """

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine, func, select
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, SQLAlchemyError
        from sqlalchemy.pool import NullPool

        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ReservationError(f"not a database URL: {url!r}") from exc
        if parsed.drivername == "postgresql":  # the project's driver is psycopg 3 (pip install '.[postgres]')
            parsed = parsed.set(drivername="postgresql+psycopg")
        self._url = parsed.render_as_string(hide_password=True)
        own = parsed.query.get("options")
        options = f"{own} {_SERVER_OPTIONS}" if isinstance(own, str) else _SERVER_OPTIONS
        try:
            self._engine: Engine = create_engine(
                parsed, poolclass=NullPool, connect_args={**_CLIENT_ARGS, "options": options}
            )
            tables = _pg_tables()
            with self._engine.begin() as conn:
                # two PCs starting at once must not both create the tables
                conn.execute(select(func.pg_advisory_xact_lock(_SCHEMA_KEY)))
                tables.metadata.create_all(conn)
        except (SQLAlchemyError, ImportError) as exc:
            raise ReservationError(f"reservation store {self._url}: {_one_line(exc)}") from exc

    @property
    def location(self) -> str:
        return self._url

    def _connect(self) -> Connection:
        # autocommit: a holder's connection idles between heartbeats, never inside an open transaction
        return self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    @contextlib.contextmanager
    def _db(self) -> Iterator[Connection]:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self._connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise ReservationError(f"reservation store {self._url}: {_one_line(exc)}") from exc

    # -- the contract -----------------------------------------------------------------------------------
    def acquire(
        self,
        bench: str,
        *,
        run_id: str,
        holder: str,
        host: str,
        pid: int,
        ttl_s: float,
        config: str | None = None,
        safe_targets: tuple[SafeTarget, ...] = (),
    ) -> LeaseHandle:
        from sqlalchemy import func, select
        from sqlalchemy.dialects.postgresql import insert
        from sqlalchemy.exc import SQLAlchemyError

        t = _pg_tables()
        key = _advisory_key(bench)
        try:
            conn = self._connect()
        except SQLAlchemyError as exc:
            raise ReservationError(f"reservation store {self._url}: {_one_line(exc)}") from exc
        try:
            if not conn.execute(select(func.pg_try_advisory_lock(key))).scalar_one():
                status = _pg_status(conn, bench, held=True)
                raise BenchHeld(_held_message(status, config), bench=bench, lease=status.lease)
            interlock = _pg_interlock(conn, bench)
            if interlock is not None:
                raise BenchInterlocked(_interlocked_message(interlock, config), interlock=interlock)
            previous = conn.execute(select(t.lease).where(t.lease.c.bench == bench)).first()
            if previous is not None and not previous.released:
                log.info(
                    "bench %s: taking over from a holder that died (%s)", bench, _lease_from_row(previous).describe()
                )
            values = {
                "holder": holder,
                "host": host,
                "pid": pid,
                "run_id": run_id,
                "since": func.now(),
                "expires": func.now() + timedelta(seconds=ttl_s),
                "test": None,
                "config": config,
                "safe_targets": _targets_to_json(safe_targets),
                "released": False,
            }
            stmt = insert(t.lease).values(bench=bench, **values)
            row = conn.execute(
                stmt.on_conflict_do_update(index_elements=[t.lease.c.bench], set_=values).returning(*t.lease.c)
            ).one()
        except SQLAlchemyError as exc:
            conn.close()  # closing the connection drops the advisory lock if we took it
            raise ReservationError(f"reservation store {self._url}: {_one_line(exc)}") from exc
        except BaseException:
            conn.close()
            raise
        return _PgLeaseHandle(self._url, conn, key, _lease_from_row(row), ttl_s)

    def status(self, bench: str) -> BenchStatus:
        with self._db() as conn:
            return _pg_status(conn, bench)

    def statuses(self) -> list[BenchStatus]:
        from sqlalchemy import select, union

        t = _pg_tables()
        with self._db() as conn:
            names = conn.execute(union(select(t.lease.c.bench), select(t.interlock.c.bench))).scalars().all()
            return [_pg_status(conn, name) for name in sorted(names)]

    def set_interlock(self, bench: str, *, who: str, host: str, reason: str) -> Interlock:
        from sqlalchemy import func
        from sqlalchemy.dialects.postgresql import insert

        t = _pg_tables()
        with self._db() as conn:
            status = _pg_status(conn, bench)
            run_id = status.lease.run_id if status.held and status.lease else None
            values = {
                "who": who,
                "host": host,
                "time": func.now(),
                "reason": reason,
                "run_id": run_id,
                "cleared_by": None,
                "cleared_at": None,
            }
            stmt = insert(t.interlock).values(bench=bench, **values)
            # overwrite only a cleared stop: a bench already stopped keeps its first stop's record
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[t.interlock.c.bench],
                    set_=values,
                    where=t.interlock.c.cleared_at.is_not(None),
                )
            )
            interlock = _pg_interlock(conn, bench)
        if interlock is None:  # another operator cleared it in the instant since: report the stop we made
            interlock = Interlock(bench, who, host, _now(), reason, run_id)
        return interlock

    def clear_interlock(self, bench: str, *, who: str) -> Interlock | None:
        from sqlalchemy import func, select, update

        t = _pg_tables()
        key = _advisory_key(bench)
        with self._db() as conn:
            # hold the bench's lock while clearing: no session can acquire in between and run on a stop
            if not conn.execute(select(func.pg_try_advisory_lock(key))).scalar_one():
                raise BenchHeld(_clear_refused_message(_pg_status(conn, bench, held=True)), bench=bench)
            try:
                interlock = _pg_interlock(conn, bench)
                if interlock is not None:
                    conn.execute(
                        update(t.interlock)
                        .where(t.interlock.c.bench == bench, t.interlock.c.cleared_at.is_(None))
                        .values(cleared_by=who, cleared_at=func.now())
                    )
                return interlock
            finally:
                conn.execute(select(func.pg_advisory_unlock(key)))


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)  # the driver's own message is the useful part of a DBAPIError
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _lease_from_row(row: Row[Any]) -> Lease:
    return Lease(
        bench=row.bench,
        holder=row.holder,
        host=row.host,
        pid=row.pid,
        run_id=row.run_id,
        since=row.since.astimezone(UTC),
        expires=row.expires.astimezone(UTC),
        test=row.test,
        config=row.config,
        safe_targets=_targets_from_json(row.safe_targets),
    )


def _pg_lock_held(conn: Connection, key: int, *, mine: bool = False) -> bool:
    from sqlalchemy import text

    sql = _LOCK_HELD_SQL.format(mine=" AND pid = pg_backend_pid()" if mine else "")
    return bool(conn.execute(text(sql), _key_halves(key)).scalar_one())


def _pg_interlock(conn: Connection, bench: str) -> Interlock | None:
    from sqlalchemy import select

    t = _pg_tables()
    row = conn.execute(
        select(t.interlock).where(t.interlock.c.bench == bench, t.interlock.c.cleared_at.is_(None))
    ).first()
    if row is None:
        return None
    return Interlock(row.bench, row.who, row.host, row.time.astimezone(UTC), row.reason, row.run_id)


def _pg_status(conn: Connection, bench: str, *, held: bool | None = None) -> BenchStatus:
    """Held is the advisory lock (pg_locks, which every role may read); the row only says by whom."""
    from sqlalchemy import func, select

    t = _pg_tables()
    key = _advisory_key(bench)
    query = select(t.lease, (t.lease.c.expires < func.now()).label("expired")).where(t.lease.c.bench == bench)

    def consistent() -> tuple[bool, Row[Any] | None] | None:
        is_held = _pg_lock_held(conn, key) if held is None else held
        row = conn.execute(query).first()
        live = row if row is not None and not row.released else None
        # a holder writes its row just after taking the lock and marks it released just before unlocking
        return (is_held, live) if not is_held or live is not None else None

    sample = _poll(consistent, 1.0, interval_s=0.02)
    is_held, row = sample if sample is not None else (True, None)
    interlock = _pg_interlock(conn, bench)
    if row is None:
        return BenchStatus(bench, _unknown_lease(bench) if is_held else None, interlock)
    lease = _lease_from_row(row)
    if is_held:
        return BenchStatus(bench, lease, interlock, expired=bool(row.expired))
    return BenchStatus(bench, lease, interlock, stale=True)


class _PgLeaseHandle(LeaseHandle):
    """Holds the bench through the advisory lock of its own connection, kept open until release.

    A lost connection is a lost lease, for good: SQLAlchemy would quietly reconnect an invalidated
    connection, and the new one holds no lock (renew checks, and the base class latches the loss).
    """

    def __init__(self, url: str, conn: Connection, key: int, lease: Lease, ttl_s: float) -> None:
        super().__init__(lease)
        self._url = url
        self._conn = conn  # not thread-safe: the base class's lock serialises keeper and session
        self._key = key
        self._ttl_s = ttl_s

    def _lost_with(self, exc: BaseException) -> LeaseLost:
        return LeaseLost(f"lease on bench {self.lease.bench!r} lost: {self._url}: {_one_line(exc)}")

    def _renew(self, test: str | None) -> Lease:
        from sqlalchemy import func, update
        from sqlalchemy.exc import SQLAlchemyError

        t = _pg_tables()
        bench = self.lease.bench
        try:
            if not _pg_lock_held(self._conn, self._key, mine=True):
                raise LeaseLost(f"lease on bench {bench!r} lost: its connection no longer holds the bench's lock")
            row = self._conn.execute(
                update(t.lease)
                .where(t.lease.c.bench == bench, t.lease.c.run_id == self.lease.run_id)
                .values(expires=func.now() + timedelta(seconds=self._ttl_s), test=test)
                .returning(t.lease.c.expires)
            ).first()
        except SQLAlchemyError as exc:  # the lock lived on this connection: it may be gone with it
            raise self._lost_with(exc) from exc
        if row is None:
            raise LeaseLost(f"lease on bench {bench!r} lost: its row in {self._url} was overwritten")
        return replace(self.lease, expires=row.expires.astimezone(UTC), test=test)

    def _interlock(self) -> Interlock | None:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return _pg_interlock(self._conn, self.lease.bench)
        except SQLAlchemyError as exc:
            raise self._lost_with(exc) from exc

    def _release(self) -> None:
        from sqlalchemy import func, select, update
        from sqlalchemy.exc import SQLAlchemyError

        t = _pg_tables()
        try:
            if self._lost is None:  # a lost connection may have been silently replaced: touch nothing through it
                self._conn.execute(
                    update(t.lease)
                    .where(t.lease.c.bench == self.lease.bench, t.lease.c.run_id == self.lease.run_id)
                    .values(released=True)
                )
                self._conn.execute(select(func.pg_advisory_unlock(self._key)))
        except SQLAlchemyError as exc:  # closing below frees the lock anyway; the row then reads stale
            log.warning("bench %s: releasing the lease: %s", self.lease.bench, _one_line(exc))
        finally:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.close()
