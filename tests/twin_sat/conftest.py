"""Fixtures for the simulated-satellite tests: one powered twin for the session, an EGSE on its CAN bus."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twin_sat_harness import Egse, socketcand_bus
from twin_support import TwinUnderTest


@pytest.fixture(scope="session")
def sat_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwinUnderTest]:
    twin = TwinUnderTest(tmp_path_factory.mktemp("twin_sat"), "--seed", "3")
    twin.power_on()
    yield twin
    twin.kill()


@pytest.fixture(scope="session")
def session_egse(sat_twin: TwinUnderTest) -> Iterator[Egse]:
    egse = Egse(socketcand_bus(sat_twin))
    yield egse
    egse.close()


@pytest.fixture
def egse(session_egse: Egse) -> Egse:
    session_egse.pump(0.0)
    session_egse.received.clear()  # each test starts from a quiet inbox
    return session_egse
