"""The run journal: the durable, append-only record of everything a run measured and concluded.

JSON Lines (format: docs/contracts.md §4), strict JSON: no record holds NaN or Infinity, which are not JSON
(a non-finite number is written as null; a measured value that is not finite, as its text "nan", "inf" or
"-inf", so the report shows what the instrument returned). Each record is written and flushed to the OS the
moment it is taken, so a bench process that dies keeps everything up to its last record. `sync()` forces the data to
disk (fsync); the bench calls it at every test end and on safe state rather than per record, because an
fsync costs more than the whole per-measurement budget. Reports are built from the journal alone, so a
killed run can still be reported.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from bench.measurement import Measurement

_second_cache: tuple[int, str] = (-1, "")


def utc_now() -> str:
    """ISO-8601 UTC with microseconds; the date-time part is formatted once per second (hot path)."""
    global _second_cache
    now = time.time()
    sec = int(now)
    if sec != _second_cache[0]:
        _second_cache = (sec, dt.datetime.fromtimestamp(sec, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_second_cache[1]}.{int((now - sec) * 1e6):06d}+00:00"


def _num(value: float | None) -> str:
    """JSON number (repr of a finite float is valid JSON); null for None, NaN and ±inf, which JSON has not."""
    if value is None:
        return "null"
    if value - value == 0:  # finite (inf - inf and nan - nan are nan); cheaper than math.isfinite + float()
        return repr(value)
    return "null"


def _measured(value: float) -> str:
    """A measured value: a JSON number when finite, else its text ("nan", "inf", "-inf"); the readers take
    a string value as it is (reports.journal.MeasuredValue), and the results DB keeps it as the value's text."""
    if value - value == 0:
        return repr(value)
    return '"' + repr(float(value)) + '"'


def _default(obj: object) -> object:
    if isinstance(obj, dt.date | dt.datetime | Path):
        return str(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return repr(obj)


def _finite(obj: object, depth: int = 0) -> object:
    """``obj`` with every non-finite float replaced by None (JSON null), for strict JSON."""
    if isinstance(obj, float):
        return obj if obj - obj == 0 else None
    if depth > 32:  # deeper (or circular): no record needs it
        return repr(obj)
    if isinstance(obj, dict):
        return {_key(k): _finite(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_finite(v, depth + 1) for v in obj]
    if isinstance(obj, str | int | bool) or obj is None:
        return obj
    return _finite(_default(obj), depth + 1)


def _key(key: object) -> object:
    """A mapping key JSON can hold: str, int, bool, None or a finite float as they are, anything else as text."""
    if isinstance(key, str | int) or key is None or (isinstance(key, float) and key - key == 0):
        return key
    return repr(key)


def strict_json(obj: object, separators: tuple[str, str] = (",", ":")) -> str:
    """Strict JSON (no NaN/Infinity): a non-finite number becomes null."""
    try:
        return json.dumps(obj, default=_default, separators=separators, allow_nan=False)
    except (ValueError, TypeError):  # a NaN/inf (or a key JSON cannot hold) somewhere: rare; keep the record
        return json.dumps(_finite(obj), default=_default, separators=separators, allow_nan=False)


MeasurementParts = tuple[str, str, str]


def measurement_parts(
    test_id: str, name: str, units: str, low: float | None, high: float | None, requirements: tuple[str, ...]
) -> MeasurementParts:
    """The parts of a measurement line that repeat for a test and a limit, encoded once."""
    return (
        '{"kind":"measurement","test_id":' + json.dumps(test_id) + ',"name":' + json.dumps(name) + ',"value":',
        ',"units":' + json.dumps(units) + ',"low":' + _num(low) + ',"high":' + _num(high) + ',"verdict":"',
        ',"requirements":' + json.dumps(list(requirements)) + ',"time":"',
    )


def measurement_line(parts: MeasurementParts, m: Measurement) -> str:
    """One measurement record (docs/contracts.md §4): only the numbers and the time are formatted anew."""
    tail = '"'
    if m.description:
        tail += ',"description":' + json.dumps(m.description)
    if m.uncertainty is not None:
        tail += ',"uncertainty":' + _num(m.uncertainty)
    if m.extra:
        tail += ',"extra":' + strict_json(m.extra, (", ", ": "))
    value, margin, pct = m.value, m.margin, m.margin_pct
    # One f-string, numbers inlined when finite (the common case): this runs once per measurement.
    return (
        f'{parts[0]}{repr(value) if value - value == 0 else _measured(value)}{parts[1]}{m.verdict.value}","margin":'
        f'{repr(margin) if margin - margin == 0 else _num(margin)},"margin_pct":'
        f"{_num(pct) if pct is None or pct - pct != 0 else repr(pct)}{parts[2]}{m.time}{tail}}}"
    )


class Journal:
    """Append-only JSON Lines writer; safe to call from a signal handler (re-entrant lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Unbuffered binary: one os-level write per record, nothing held back in a Python buffer.
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed by close()
        self._lock = threading.RLock()
        self._parts: dict[tuple[object, ...], tuple[str, str, str]] = {}
        self.closed = False

    def record(self, kind: str, **fields: Any) -> None:
        fields.setdefault("time", utc_now())
        line = strict_json({"kind": kind, **fields})
        self._write(line)

    def measurement(self, m: Measurement) -> str:
        """Journal one measurement; returns the line written (to mirror it elsewhere without re-encoding)."""
        key = (m.test_id, m.name, m.units, m.low, m.high, m.requirements)
        parts = self._parts.get(key)
        if parts is None:
            parts = measurement_parts(m.test_id, m.name, m.units, m.low, m.high, m.requirements)
            if len(self._parts) < 4096:
                self._parts[key] = parts
        line = measurement_line(parts, m)
        self._write(line)
        return line

    def write_line(self, line: str) -> None:
        """Append one already-encoded record (the measurement hot path encodes its own lines)."""
        self._write(line)

    def _write(self, line: str) -> None:
        data = (line + "\n").encode()
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
