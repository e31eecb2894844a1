"""Fixtures for the side channels: the twin components in a background loop, real bench drivers against them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loop_support import LoopThread
from side_harness import ConsoleTwin, I2CTwin


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    yield runner
    runner.close()


@pytest.fixture
def i2c_twin(loop_thread: LoopThread) -> Iterator[I2CTwin]:
    twin = I2CTwin(loop_thread)
    yield twin
    twin.close()


@pytest.fixture
def console_twin(loop_thread: LoopThread) -> Iterator[ConsoleTwin]:
    twin = ConsoleTwin(loop_thread)
    yield twin
    twin.close()
