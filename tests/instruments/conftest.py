"""Fixtures for the instrument-driver tests: an in-process fake SCPI server, and the twin (a subprocess)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_scpi import FakeScpi


@pytest.fixture
def fake() -> Iterator[FakeScpi]:
    server = FakeScpi()
    yield server
    server.close()
