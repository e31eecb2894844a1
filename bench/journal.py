"""The run journal: the durable, append-only record of everything a run measured and concluded.

JSON Lines (format: docs/contracts.md §4). Each record is written and flushed to the OS the moment it is
taken, so a bench process that dies keeps everything up to its last record. `sync()` forces the data to
disk (fsync); the bench calls it at every test end and on safe state rather than per record, because an
fsync costs more than the whole per-measurement budget. Reports are built from the journal alone, so a
killed run can still be reported.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path
from typing import Any

from bench.measurement import Measurement


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _default(obj: object) -> object:
    if isinstance(obj, dt.date | dt.datetime | Path):
        return str(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return repr(obj)


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
        line = json.dumps({"kind": kind, **fields}, default=_default, separators=(",", ":"))
        self._write(line)

    def measurement(self, m: Measurement) -> None:
        # Hot path (one call per measurement): build the dict directly, no dataclass introspection.
        rec = {
            "kind": "measurement",
            "test_id": m.test_id,
            "name": m.name,
            "value": m.value,
            "units": m.units,
            "low": m.low,
            "high": m.high,
            "verdict": m.verdict.value,
            "margin": m.margin,
            "margin_pct": m.margin_pct,
            "requirements": m.requirements,
            "time": m.time,
        }
        if m.description:
            rec["description"] = m.description
        if m.uncertainty is not None:
            rec["uncertainty"] = m.uncertainty
        if m.extra:
            rec["extra"] = m.extra
        self._write(json.dumps(rec, default=_default, separators=(",", ":")))

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
