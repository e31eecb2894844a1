"""The software's own tests: one thing shared by every folder.

Bench reservations (leases and emergency-stop interlocks, bench/reservation.py) live by default in a folder every
user of the PC shares. The tests take, stop and clear benches on purpose; they do it in a folder of their own,
so that a test run never stops — or is refused by — a bench that another run on the same PC holds.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_OWN_STATE_DIR = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    if "OTS_BENCH_STATE_DIR" not in os.environ:  # subprocess benches inherit it
        os.environ["OTS_BENCH_STATE_DIR"] = config.stash[_OWN_STATE_DIR] = tempfile.mkdtemp(prefix="ots-bench-tests-")


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_STATE_DIR, None)
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)


@pytest.fixture(autouse=True)
def _own_reservations(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test its own leases and interlocks: a stop one test sets on purpose never refuses the next."""
    monkeypatch.setenv("OTS_BENCH_STATE_DIR", str(tmp_path_factory.mktemp("bench-state")))
