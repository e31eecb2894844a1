"""Fixtures for the twin's CAN hub: the hub in a background loop, and real python-can clients on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import can
import pytest
from can.interfaces.slcan import slcanBus
from can_hub_harness import HubThread


@pytest.fixture
def hub() -> Iterator[HubThread]:
    runner = HubThread()
    yield runner
    runner.close()


@pytest.fixture
def socketcand_bus(hub: HubThread) -> Iterator[Callable[..., can.BusABC]]:
    """Factory: a python-can socketcand bus on the hub, in raw mode and receiving (shut down at teardown)."""
    buses: list[can.BusABC] = []

    def make(channel: str = "vcan0") -> can.BusABC:
        before = len([p for p in hub.port_stats("socketcand") if p.receiving])
        bus = can.Bus(interface="socketcand", channel=channel, host="127.0.0.1", port=hub.socketcand_port)
        buses.append(bus)
        # The constructor returns after "< ok >" to rawmode, which the hub sends after subscribing.
        assert len([p for p in hub.port_stats("socketcand") if p.receiving]) == before + 1
        return bus

    yield make
    for bus in buses:
        bus.shutdown()


@pytest.fixture
def slcan_bus(hub: HubThread) -> Iterator[Callable[[], can.BusABC]]:
    """Factory: a python-can slcan bus on the hub over socket://, opened (shut down at teardown)."""
    buses: list[can.BusABC] = []

    def make() -> can.BusABC:
        bus = can.Bus(interface="slcan", channel=hub.slcan_url, bitrate=1_000_000, sleep_after_open=0)
        assert isinstance(bus, slcanBus)
        buses.append(bus)
        # python-can writes C, S8, "", O, O without reading replies; the hub handles a connection's lines in
        # order, so the V round trip proves the channel is open.
        assert bus.get_version(timeout=5.0) == (10, 13)
        return bus

    yield make
    for bus in buses:
        bus.shutdown()
