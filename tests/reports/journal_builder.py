"""Builds synthetic run journals (format: docs/contracts.md §4) for the report tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RUN_START: dict[str, Any] = {
    "run_id": "20251125T184100Z-nightly",
    "time": "2025-11-25T18:41:00.000000+00:00",
    "campaign": "nightly",
    "model_level": "EM",
    "operator": "a.tester",
    "host": "bench-01",
    "git_revision": "04aca61",
    "software_version": "0.1.0",
    "bench_config": "bench/configs/twin.yaml",
    "config_hash": "sha256:9f2c1e",
    "dut": {
        "name": "OTS-SAT EM",
        "model_level": "EM",
        "serial": "EM-001",
        "envelope": {"main_bus": {"voltage_v": 8.2, "current_limit_a": 2.5}, "ovp_v": 8.6},
    },
    "argv": ["bench", "run", "nightly"],
}

INSTRUMENT: dict[str, Any] = {
    "role": "psu",
    "driver": "keysight-e36312a",
    "resource": "TCPIP0::127.0.0.1::5025::SOCKET",
    "identity": {"maker": "Keysight Technologies", "model": "E36312A", "serial": "MY5940001", "firmware": "2.1.0"},
    "calibration": {
        "serial": "MY5940001",
        "status": "valid",
        "certificate": "CAL-2025-0042",
        "due": "2026-06-30",
        "uncertainty": {"voltage_v": 0.0005, "current_a": 0.001},
    },
}


class JournalBuilder:
    """Collects journal records and writes them as JSON Lines into a run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.lines: list[str] = []
        self.clock = 0

    def _time(self) -> str:
        self.clock += 1
        minutes, seconds = divmod(self.clock, 60)
        return f"2025-11-25T18:{41 + minutes:02d}:{seconds:02d}.000000+00:00"

    def add(self, kind: str, **fields: Any) -> JournalBuilder:
        fields.setdefault("time", self._time())
        self.lines.append(json.dumps({"kind": kind, **fields}))
        return self

    def raw(self, line: str) -> JournalBuilder:
        self.lines.append(line)
        return self

    def run_start(self, **overrides: Any) -> JournalBuilder:
        return self.add("run_start", **{**RUN_START, **overrides})

    def instrument(self, **overrides: Any) -> JournalBuilder:
        return self.add("instrument", **{**INSTRUMENT, **overrides})

    def test_start(self, test_id: str, **fields: Any) -> JournalBuilder:
        defaults = {
            "name": test_id.rsplit("::", 1)[-1],
            "requirements": ["OTS-EPS-010"],
            "subsystem": "EPS",
            "doc": "Power on the DUT and check the inrush current.",
        }
        return self.add("test_start", test_id=test_id, **{**defaults, **fields})

    def measurement(self, test_id: str, name: str, value: Any, **fields: Any) -> JournalBuilder:
        defaults = {
            "units": "A",
            "low": 0.5,
            "high": 1.5,
            "verdict": "pass",
            "margin": 0.12,
            "margin_pct": 12.0,
            "requirements": ["OTS-EPS-010"],
        }
        return self.add("measurement", test_id=test_id, name=name, value=value, **{**defaults, **fields})

    def test_end(self, test_id: str, outcome: str = "passed", **fields: Any) -> JournalBuilder:
        defaults: dict[str, Any] = {"duration": 1.25, "message": ""}
        return self.add("test_end", test_id=test_id, outcome=outcome, **{**defaults, **fields})

    def safe_state(self, reason: str = "session end", **results: str) -> JournalBuilder:
        return self.add("safe_state", reason=reason, results=results or {"psu": "ok"})

    def run_end(self, exit_status: int = 0, counts: dict[str, int] | None = None) -> JournalBuilder:
        fields: dict[str, Any] = {"exit_status": exit_status}
        if counts is not None:
            fields["counts"] = counts
        return self.add("run_end", **fields)

    def write(self, tail: str = "") -> Path:
        """Write the journal; ``tail`` is appended verbatim after the last newline (a half-written line)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / "journal.jsonl"
        path.write_text("".join(line + "\n" for line in self.lines) + tail, encoding="utf-8")
        return path
