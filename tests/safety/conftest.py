"""The standalone twin the exit-path tests share (one per module); helpers live in safety_rig.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from safety_rig import TwinHandle

from bench.twin_launcher import TwinProcess


@pytest.fixture(scope="module")
def standalone_twin() -> Iterator[TwinHandle]:
    with TwinProcess(ports="auto") as twin:
        yield TwinHandle(twin)
