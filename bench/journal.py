"""The run journal: the durable, append-only record of everything a run measured and concluded.

JSON Lines (format: docs/contracts.md §4), strict JSON: no record holds NaN or Infinity, which are not JSON
(a non-finite number is written as null; a measured value that is not finite, as its text "nan", "inf" or
"-inf", so the report shows what the instrument returned). Each record is written and flushed to the OS the
moment it is taken, so a bench process that dies keeps everything up to its last record. `sync()` forces the data to
disk (fsync); the bench calls it at every test end and on safe state rather than per record, because an
fsync costs more than the whole per-measurement budget. Reports are built from the journal alone, so a
killed run can still be reported.

Every line is encoded by one encoder, :data:`ENCODER` (msgspec's JSON encoder; benchmarks/bench_codec.py
compares it with orjson and the standard library): an ordinary record from its fields, a measurement record
from :class:`MeasurementLine`, whose fields are the contract's, in its order. msgspec writes a non-finite
float as null; the measured value, which must keep its text, is turned into "nan"/"inf"/"-inf" before.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import msgspec

from bench.measurement import Measurement

__all__ = [
    "ENCODER",
    "JOURNAL_NAME",
    "Journal",
    "MeasurementLine",
    "encode_measurement",
    "encode_record",
    "utc_now",
    "worker_journal_name",
]

JOURNAL_NAME: Final = "journal.jsonl"


def worker_journal_name(worker: str) -> str:
    """The journal a parallel run's worker keeps beside the run's own (reports.run_record reads them together)."""
    return f"journal-{worker}.jsonl"


_second_cache: tuple[int, str] = (-1, "")


def utc_now() -> str:
    """ISO-8601 UTC with microseconds; the date-time part is formatted once per second (hot path)."""
    global _second_cache
    now = time.time()
    sec = int(now)
    if sec != _second_cache[0]:
        _second_cache = (sec, dt.datetime.fromtimestamp(sec, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_second_cache[1]}.{int((now - sec) * 1e6):06d}+00:00"


def _text_of(obj: Any) -> Any:
    """What the encoder writes for a value (or a mapping key) JSON has no type for: its text."""
    if obj is None:
        return "null"  # a None mapping key, as json.dumps writes it
    if isinstance(obj, dt.date | dt.datetime | Path):
        return str(obj)
    if isinstance(obj, bool):
        return "true" if obj else "false"
    return repr(obj)  # a NaN/inf mapping key → "nan"/"inf"; any other object → its repr


ENCODER: Final = msgspec.json.Encoder(enc_hook=_text_of)
"""The journal's one encoder: strict JSON (non-finite floats → null), compact, UTF-8."""


class MeasurementLine(msgspec.Struct, tag_field="kind", tag="measurement", omit_defaults=True, gc=False):
    """A ``measurement`` record as written: the contract's fields in its order; ``description``,
    ``uncertainty`` and ``extra`` only when they hold something."""

    test_id: str
    name: str
    value: float | str
    """The measured value; its text ("nan", "inf", "-inf") when it is not a finite number."""
    units: str
    low: float | None
    high: float | None
    verdict: str
    margin: float | None
    margin_pct: float | None
    requirements: tuple[str, ...]
    time: str
    description: str = ""
    uncertainty: float | None = None
    extra: Mapping[str, object] | None = None


def _cut(obj: object, depth: int = 0) -> object:
    """``obj`` with its nesting cut at 32 levels (deeper, or circular: its text), for the encoder to retry."""
    if depth > 32:
        return repr(obj)
    if isinstance(obj, Mapping):
        return {k: _cut(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_cut(v, depth + 1) for v in obj]
    return obj


def encode_record(obj: Mapping[str, object]) -> bytes:
    """One journal line (no newline) of any record."""
    try:
        return ENCODER.encode(obj)
    except (RecursionError, ValueError, TypeError, msgspec.EncodeError):  # circular or absurdly deep: keep the rest
        return ENCODER.encode(_cut(obj))


def encode_measurement(m: Measurement) -> bytes:
    """One ``measurement`` line (no newline), docs/contracts.md §4."""
    value = m.value
    line = MeasurementLine(
        m.test_id, m.name, value if value - value == 0 else repr(float(value)), m.units, m.low, m.high,
        m.verdict, m.margin, m.margin_pct, m.requirements, m.time, m.description, m.uncertainty, m.extra or None,
    )  # fmt: skip
    try:
        return ENCODER.encode(line)
    except (RecursionError, ValueError, TypeError, msgspec.EncodeError):
        return ENCODER.encode(msgspec.structs.replace(line, extra=_cut(m.extra)))


class Journal:
    """Append-only JSON Lines writer; safe to call from a signal handler (re-entrant lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Unbuffered binary: one os-level write per record, nothing held back in a Python buffer.
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed by close()
        self._lock = threading.RLock()
        self.closed = False

    def record(self, kind: str, **fields: Any) -> None:
        fields.setdefault("time", utc_now())
        self._write(encode_record({"kind": kind, **fields}))

    def measurement(self, m: Measurement) -> bytes:
        """Journal one measurement; returns the line written (to mirror it elsewhere without re-encoding)."""
        line = encode_measurement(m)
        self._write(line)
        return line

    def _write(self, line: bytes) -> None:
        data = line + b"\n"
        with self._lock:
            if self.closed:
                return
            self._file.write(data)

    def sync(self) -> None:
        """Force everything written so far onto the disk."""
        with self._lock:
            if not self.closed:
                os.fsync(self._file.fileno())

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                os.fsync(self._file.fileno())
                self._file.close()
                self.closed = True
