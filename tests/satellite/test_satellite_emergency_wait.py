"""A wait on the satellite ends the moment the emergency stop latches, not at its timeout."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bench import emergency
from bench.icd import load_icd
from bench.satellite.history import History


@pytest.fixture
def history() -> Iterator[History]:
    emergency.reset()
    h = History(load_icd())
    yield h
    h.close()
    emergency.reset()


def test_a_wait_ends_with_the_stop_not_its_timeout(history: History) -> None:
    waiting = threading.Event()

    def never() -> None:
        waiting.set()
        return None

    stopper = threading.Thread(
        target=lambda: waiting.wait(30) and emergency.latch(emergency.StopRecord("op", "bench-pc", "now", "smoke"))
    )
    stopper.start()
    # A 600 s wait: without the wake-up this test would end in SatelliteTimeout ten minutes later (and fail).
    with pytest.raises(emergency.EmergencyStop, match="emergency stop by op@bench-pc"):
        history.wait(never, 600, "something that never comes", lambda: "nothing")
    stopper.join()
