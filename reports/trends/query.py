"""Trends, the SQL side: what the results database (:mod:`reports.db`) holds, as plain rows.

Nothing here judges or formats: each function runs one query (portable SQL, SQLAlchemy Core, the same on
SQLite and PostgreSQL) and returns plain tuples; :mod:`reports.trends.analysis` makes trends of them.
Times are returned as stored, naive UTC (:func:`utc` makes them aware).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from reports.db import measurements, runs, tests

__all__ = [
    "MeasurementRow",
    "ResultsError",
    "RunRow",
    "ValueRow",
    "connect",
    "earlier_runs",
    "measurement_values",
    "run_by_id",
    "run_measurements",
    "run_tests",
    "utc",
    "values_in_runs",
]


class ResultsError(LookupError):
    """A query names something the database does not hold (run, measurement, baseline)."""


class RunRow(NamedTuple):
    pk: int
    run_id: str
    started_at: datetime | None
    """Naive UTC, as stored."""
    model_level: str
    status: str
    verdict: str


class ValueRow(NamedTuple):
    """One numeric measurement value of a run, with its run's identity."""

    run: RunRow
    seq: int
    test_id: str
    name: str
    value: float
    verdict: str
    low: float | None
    high: float | None
    units: str
    uncertainty: float | None


class connect:
    """``with connect(engine_or_connection) as conn``: borrow a connection, or use the caller's."""

    def __init__(self, db: Engine | Connection) -> None:
        self.db = db
        self.own: Connection | None = None

    def __enter__(self) -> Connection:
        if isinstance(self.db, Engine):
            self.own = self.db.connect()
            return self.own
        return self.db

    def __exit__(self, *exc: object) -> None:
        if self.own is not None:
            self.own.close()


def utc(t: datetime | None) -> datetime | None:
    """A stored time (naive UTC, reports.db) as an aware UTC datetime."""
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


_RUN_COLUMNS = (runs.c.id, runs.c.run_id, runs.c.started_at, runs.c.model_level, runs.c.status, runs.c.verdict)


def _run_row(row: Sequence[object]) -> RunRow:
    pk, run_id, started, level, status, verdict = row
    return RunRow(int(pk), str(run_id), started, str(level), str(status), str(verdict))  # type: ignore[call-overload, arg-type]


def run_by_id(conn: Connection, run_id: str) -> RunRow:
    """The run ``run_id``; :class:`ResultsError` when the database does not hold it."""
    row = conn.execute(select(*_RUN_COLUMNS).where(runs.c.run_id == run_id)).first()
    if row is None:
        raise ResultsError(f"no run {run_id!r} in the database")
    return _run_row(row)


def measurement_values(conn: Connection, name: str, model_level: str | None) -> list[ValueRow]:
    """Every numeric value of measurement ``name`` in every run (at ``model_level``, if given)."""
    m = measurements.c
    query = (
        select(*_RUN_COLUMNS, m.seq, m.test_id, m.name, m.value, m.verdict, m.low, m.high, m.units, m.uncertainty)
        .join_from(measurements, runs, m.run_pk == runs.c.id)
        .where(m.name == name, m.value.is_not(None))
    )
    if model_level:
        query = query.where(runs.c.model_level == model_level)
    out = []
    for row in conn.execute(query):
        run = _run_row(row[:6])
        seq, test_id, mname, value, verdict, low, high, units, u = row[6:]
        out.append(ValueRow(run, seq, test_id, mname, float(value), verdict, low, high, units, u))
    return out


def earlier_runs(conn: Connection, run_id: str, started: datetime | None, model_level: str, last: int) -> list[RunRow]:
    """The ``last`` runs other than ``run_id`` that started before ``started`` (aware UTC; None: any time)
    at ``model_level`` (empty: any), newest first."""
    r = runs.c
    query = select(*_RUN_COLUMNS).where(r.run_id != run_id)
    if model_level:
        query = query.where(r.model_level == model_level)
    if started is not None:
        query = query.where(r.started_at < started.astimezone(UTC).replace(tzinfo=None))
    rows = conn.execute(query.order_by(r.started_at.desc(), r.id.desc()).limit(max(1, last)))
    return [_run_row(row) for row in rows]


def values_in_runs(conn: Connection, chosen: Iterable[RunRow]) -> list[ValueRow]:
    """Every numeric measurement value of the runs ``chosen``, in one query."""
    by_pk = {run.pk: run for run in chosen}
    if not by_pk:
        return []
    m = measurements.c
    rows = conn.execute(
        select(m.run_pk, m.seq, m.test_id, m.name, m.value, m.verdict, m.low, m.high, m.units, m.uncertainty).where(
            m.run_pk.in_(list(by_pk)), m.value.is_not(None)
        )
    )
    return [
        ValueRow(by_pk[pk], seq, test_id, name, float(value), verdict, low, high, units, u)
        for pk, seq, test_id, name, value, verdict, low, high, units, u in rows  # positional: fast
    ]


class MeasurementRow(NamedTuple):
    name: str
    value: float | str | None
    """The number, or the value's text when it is not one (booleans, text, NaN)."""
    units: str
    low: float | None
    high: float | None
    verdict: str


def run_measurements(conn: Connection, run_pk: int) -> list[MeasurementRow]:
    """Every measurement of a run, in journal order."""
    m = measurements.c
    rows = conn.execute(
        select(m.name, m.value, m.value_text, m.units, m.low, m.high, m.verdict)
        .where(m.run_pk == run_pk)
        .order_by(m.seq)
    )
    return [
        MeasurementRow(name, float(value) if value is not None else text, units, low, high, verdict)
        for name, value, text, units, low, high, verdict in rows
    ]


def run_tests(conn: Connection, run_pk: int) -> list[tuple[str, str]]:
    """(test id, outcome) of every test of a run, in journal order."""
    t = tests.c
    return [
        (str(a), str(b))
        for a, b in conn.execute(select(t.test_id, t.outcome).where(t.run_pk == run_pk).order_by(t.seq))
    ]
