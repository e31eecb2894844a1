"""Synthetic run journals (docs/contracts.md §4) for the results-database tests.

A nightly series of runs, one per day, in which EPS.IDLE_CURRENT drifts up by 0.025 A a run towards its
0.65 A high limit (marginal in the last run) while EPS.BUS_VOLTAGE stays put.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

T0 = datetime(2026, 11, 1, 22, 0, tzinfo=UTC)


@dataclass
class M:
    """A measurement to write: the verdict is judged like the bench does unless given."""

    name: str
    value: Any
    low: float | None = None
    high: float | None = None
    units: str = "A"
    uncertainty: float | None = 0.0025
    verdict: str | None = None
    test: str = "test_plans/eps/test_eps_power.py::test_idle"

    def judged(self) -> str:
        if self.verdict is not None:
            return self.verdict
        v = float(self.value)
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            return "fail"
        if self.low is not None and self.high is not None:
            guard = 0.1 * (self.high - self.low)
            if v - self.low < guard or self.high - v < guard:
                return "marginal"
        return "pass"


@dataclass
class Run:
    run_id: str
    start: datetime = T0
    measurements: Sequence[M] = ()
    model_level: str = "EM"
    outcomes: dict[str, str] = field(default_factory=dict)
    """test id → outcome; default passed (failed if a measurement failed)."""
    killed: bool = False
    """No test_end for the last test, no run_end, and half a line at the end."""
    cal_status: str = "valid"
    cal_due: str = "2027-06-30"
    safe_state: dict[str, str] = field(default_factory=lambda: {"psu": "ok"})


def write_run(root: Path, run: Run) -> Path:
    run_dir = root / run.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    clock = iter(range(10_000))

    def at() -> str:
        return (run.start + timedelta(seconds=next(clock))).isoformat()

    lines: list[dict[str, Any]] = [
        {
            "kind": "run_start",
            "run_id": run.run_id,
            "time": at(),
            "campaign": "nightly",
            "model_level": run.model_level,
            "operator": "ci",
            "host": "bench-01",
            "git_revision": "abc1234",
            "software_version": "0.1.0",
            "bench_config": "bench/configs/twin.yaml",
            "config_hash": "sha256:0f",
            "dut": {
                "name": "OTS-SAT",
                "model_level": run.model_level,
                "serial": f"{run.model_level}-001",
                "envelope": {"ovp_v": 8.6},
            },
            "argv": ["bench", "run"],
        },
        {
            "kind": "instrument",
            "role": "psu",
            "driver": "keysight-e36312a",
            "resource": "TCPIP0::127.0.0.1::5025::SOCKET",
            "identity": {"maker": "Keysight", "model": "E36312A", "serial": "MY1", "firmware": "2.1"},
            "calibration": {
                "certificate": "CAL-1",
                "due": run.cal_due,
                "status": run.cal_status,
                "uncertainty": {"current_a": 0.0025},
            },
        },
    ]
    tests: dict[str, list[M]] = {}
    for m in run.measurements:
        tests.setdefault(m.test, []).append(m)
    for test_id in run.outcomes:
        tests.setdefault(test_id, [])
    items = list(tests.items())
    for index, (test_id, ms) in enumerate(items):
        lines.append({"kind": "test_start", "test_id": test_id, "name": test_id.rsplit("::", 1)[-1], "time": at(),
                      "requirements": ["OTS-EPS-020"], "subsystem": "EPS", "doc": ""})  # fmt: skip
        for m in ms:
            verdict = m.judged()
            record = {"kind": "measurement", "test_id": test_id, "name": m.name, "value": m.value, "units": m.units,
                      "low": m.low, "high": m.high, "verdict": verdict, "margin": None, "margin_pct": None,
                      "requirements": ["OTS-EPS-020"], "time": at(), "description": ""}  # fmt: skip
            if m.uncertainty is not None:
                record["uncertainty"] = m.uncertainty
            lines.append(record)
        if run.killed and index == len(items) - 1:
            break
        failed = any(m.judged() == "fail" for m in ms)
        outcome = run.outcomes.get(test_id, "failed" if failed else "passed")
        lines.append({"kind": "test_end", "test_id": test_id, "time": at(), "outcome": outcome, "duration": 1.5,
                      "message": "assertion failed" if outcome != "passed" else ""})  # fmt: skip
    text = "\n".join(json.dumps(line) for line in lines) + "\n"
    if run.killed:
        text += '{"kind": "measurement", "test_id": "x", "na'  # killed mid-write
    else:
        lines = [
            {"kind": "safe_state", "time": at(), "reason": "session end", "results": run.safe_state},
            {"kind": "run_end", "time": at(), "exit_status": 0, "counts": {}},
        ]
        text += "\n".join(json.dumps(line) for line in lines) + "\n"
    (run_dir / "journal.jsonl").write_text(text)
    return run_dir


def nightly(i: int, *, model_level: str = "EM", prefix: str = "n") -> Run:
    """Night ``i``: idle current 0.500 + 0.025·i A in [0.35, 0.65], bus voltage 8.20 V in [7.8, 8.6]."""
    return Run(
        run_id=f"{prefix}{i:02d}",
        start=T0 + timedelta(days=i),
        model_level=model_level,
        measurements=[
            M("EPS.IDLE_CURRENT", round(0.5 + 0.025 * i, 6), 0.35, 0.65),
            M(
                "EPS.BUS_VOLTAGE",
                8.2 + (0.001 if i % 2 else -0.001),
                7.8,
                8.6,
                units="V",
                uncertainty=0.01,
                test="test_plans/eps/test_eps_power.py::test_bus",
            ),
        ],
    )
