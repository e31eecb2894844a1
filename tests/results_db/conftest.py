"""Fixtures of the results-database tests (the journal builder is test_results_builder.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_results_builder import nightly, write_run


@pytest.fixture
def runs_root(tmp_path: Path) -> Path:
    """Six nightly EM runs n00..n05 (the last one marginal on idle current)."""
    root = tmp_path / "runs"
    for i in range(6):
        write_run(root, nightly(i))
    return root


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'results.sqlite'}"
