"""Fixtures: the twin's RF instrument services on free ports, in a background event-loop thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pytest

from twin.rf_instruments import AnalyzerService, CaptureRequest, Emission, GeneratorService

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
class ToneSource:
    """An `IqSource`: a complex tone at TONE_HZ offset plus a little seeded noise; records every request.

    Immediate captures complete at once (after ``delay_s`` if set). IF-power captures wait for a burst:
    `burst()` (call it on the loop, e.g. ``loop_thread.call(source.burst)``) releases the waiting capture.
    """

    overload: bool = False
    delay_s: float = 0.0
    requests: list[CaptureRequest] = field(default_factory=list)
    last: np.ndarray | None = None
    waiting: int = 0  # captures currently waiting for a trigger
    cancelled: int = 0
    _burst: asyncio.Event | None = None

    def burst(self) -> None:
        if self._burst is None:
            self._burst = asyncio.Event()
        self._burst.set()

    async def capture(self, request: CaptureRequest) -> tuple[np.ndarray, bool]:
        self.requests.append(request)
        try:
            if request.trigger == "IFP":
                if self._burst is None:
                    self._burst = asyncio.Event()
                self.waiting += 1
                try:
                    await self._burst.wait()
                finally:
                    self.waiting -= 1
                self._burst.clear()
            if self.delay_s:
                await asyncio.sleep(self.delay_s)  # the simulated record time
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        n, rate = request.n_samples, request.sample_rate
        t = np.arange(n) / rate
        rng = np.random.default_rng(len(self.requests))
        noise = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) * 1e-3
        self.last = (0.5 * np.exp(2j * np.pi * TONE_HZ * t) + noise).astype(np.complex64)
        return self.last, self.overload


@dataclass
class EmissionLog:
    """An `EmissionSink` that keeps every `Emission`."""

    events: list[Emission] = field(default_factory=list)

    def __call__(self, emission: Emission) -> None:
        self.events.append(emission)


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0, what: str = "condition") -> None:
    """Await ``predicate`` (polled) with a deadline; fails the test on timeout."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.002)


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture
def analyzer(loop_thread: LoopThread) -> Iterator[tuple[AnalyzerService, ToneSource, str]]:
    source = ToneSource()
    service = AnalyzerService(source)
    port = loop_thread.run(service.start("127.0.0.1", 0))
    yield service, source, f"TCPIP0::127.0.0.1::{port}::SOCKET"
    loop_thread.run(service.stop())


@pytest.fixture
def generator(loop_thread: LoopThread) -> Iterator[tuple[GeneratorService, EmissionLog, str]]:
    log = EmissionLog()
    service = GeneratorService(log)
    port = loop_thread.run(service.start("127.0.0.1", 0))
    yield service, log, f"TCPIP0::127.0.0.1::{port}::SOCKET"
    loop_thread.run(service.stop())
