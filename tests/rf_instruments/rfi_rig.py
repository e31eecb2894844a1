"""The RF instrument services' test doubles: a tone IQ source and an emission log (in-process, pure logic)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np

from twin.rf_instruments import CaptureRequest, Emission

TONE_HZ = 12_500.0


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
