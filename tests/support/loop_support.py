"""Helpers shared by the tests that run twin components in-process (importable: `pythonpath` in pyproject).

The clients under test are the real bench drivers (blocking, in the test thread); the twin components run on
their own asyncio loop in a daemon thread, exactly as in the twin process. Synchronisation is by awaited
predicates with timeouts (`wait_until` is `bench.waiting.await_value` with a short poll for in-process peers).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from bench.waiting import await_value

T = TypeVar("T")


def wait_until(condition: Callable[[], T], *, timeout_s: float = 5.0, what: str = "condition") -> T:
    """Poll `condition` until it returns something truthy; return that value (AwaitTimeout otherwise)."""
    return await_value(condition, bool, timeout_s=timeout_s, what=what, interval_s=0.002)


class LoopThread:
    """An asyncio loop in a daemon thread; `run` a coroutine or `call` a synchronous method on it."""

    def __init__(self, name: str = "twin-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call a synchronous component method on the loop and return its result."""

        async def in_loop() -> T:
            return fn(*args, **kwargs)

        return self.run(in_loop())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclass
class FakeClock:
    """A clock the test moves by hand (``clock.t += 3600``)."""

    t: float = 1000.0

    def __call__(self) -> float:
        return self.t
