"""Fixtures for the report tests: synthetic journals of typical runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from journal_builder import JournalBuilder


@pytest.fixture
def journal(tmp_path: Path) -> JournalBuilder:
    return JournalBuilder(tmp_path / "run")


@pytest.fixture
def passing_run(journal: JournalBuilder) -> JournalBuilder:
    """Two EPS tests that pass, one with a marginal measurement."""
    t1 = "test_plans/eps/test_power_on.py::test_inrush"
    t2 = "test_plans/eps/test_power_on.py::test_bus_voltage"
    journal.run_start().instrument()
    journal.test_start(t1).measurement(t1, "inrush_peak", 1.5 - 0.12).test_end(t1)
    journal.test_start(t2, requirements=["OTS-EPS-011"], doc="Bus voltage at nominal load.")
    journal.measurement(
        t2,
        "bus_voltage",
        8.05,
        units="V",
        low=7.0,
        high=8.1,
        margin=0.05,
        margin_pct=4.5455,
        verdict="marginal",
        requirements=["OTS-EPS-011"],
        uncertainty=0.0005,
    )
    journal.test_end(t2)
    journal.safe_state().run_end(0, {"passed": 2, "failed": 0, "error": 0, "skipped": 0})
    return journal


@pytest.fixture
def failing_run(journal: JournalBuilder) -> JournalBuilder:
    t1 = "test_plans/eps/test_power_on.py::test_idle_current"
    journal.run_start().instrument()
    journal.test_start(t1, requirements=["OTS-EPS-020"])
    journal.measurement(
        t1,
        "idle_current",
        0.8,
        units="A",
        low=0.2,
        high=0.5,
        margin=-0.3,
        margin_pct=-100.0,
        verdict="fail",
        requirements=["OTS-EPS-020"],
        description="OBC + EPS idle draw",
    )
    journal.test_end(t1, "failed", message="AssertionError: idle_current 0.8 A outside [0.2, 0.5] A")
    journal.safe_state().run_end(1, {"passed": 0, "failed": 1, "error": 0, "skipped": 0})
    return journal
