"""Fixtures: the twin's RF instrument services on free ports, in a background event-loop thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pytest

from twin.rf_instruments import AnalyzerService, GeneratorService

T = TypeVar("T")
TONE_HZ = 12_500.0


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclass
class ToneProvider:
    """A complex tone at TONE_HZ offset plus a little seeded noise; records every call and its array."""

    overload: bool = False
    calls: list[tuple[float, float, int, float]] = field(default_factory=list)
    last: np.ndarray | None = None

    def __call__(self, centre_hz: float, sample_rate: float, n: int, ref_level: float) -> tuple[np.ndarray, bool]:
        self.calls.append((centre_hz, sample_rate, n, ref_level))
        t = np.arange(n) / sample_rate
        rng = np.random.default_rng(len(self.calls))
        noise = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) * 1e-3
        self.last = (0.5 * np.exp(2j * np.pi * TONE_HZ * t) + noise).astype(np.complex64)
        return self.last, self.overload


@dataclass
class WaveformLog:
    events: list[tuple[float, float, bool, np.ndarray, float]] = field(default_factory=list)

    def __call__(self, freq: float, level: float, rf_on: bool, iq: np.ndarray, clock: float) -> None:
        self.events.append((freq, level, rf_on, iq.copy(), clock))


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture
def analyzer(loop_thread: LoopThread) -> Iterator[tuple[AnalyzerService, ToneProvider, str]]:
    provider = ToneProvider()
    service = AnalyzerService(provider)
    port = loop_thread.run(service.start("127.0.0.1", 0))
    yield service, provider, f"TCPIP0::127.0.0.1::{port}::SOCKET"
    loop_thread.run(service.stop())


@pytest.fixture
def generator(loop_thread: LoopThread) -> Iterator[tuple[GeneratorService, WaveformLog, str]]:
    log = WaveformLog()
    service = GeneratorService(log)
    port = loop_thread.run(service.start("127.0.0.1", 0))
    yield service, log, f"TCPIP0::127.0.0.1::{port}::SOCKET"
    loop_thread.run(service.stop())
