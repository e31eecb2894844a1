"""A standalone twin for the live view's emergency-stop test: it outlives the run, so the DUT's supply can be read
from the twin after the stop (helpers in tests/support/safety_rig.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from safety_rig import TwinHandle

from bench.twin_launcher import TwinProcess


@pytest.fixture(scope="module")
def standalone_twin() -> Iterator[TwinHandle]:
    with TwinProcess(ports="auto") as twin:
        yield TwinHandle(twin)
