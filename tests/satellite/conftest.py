import itertools
import sys
from pathlib import Path

import can
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_node import FakeNodes

from bench.icd import load_icd
from bench.satellite import Satellite, Timeouts
from instruments.can_adapter import CanAdapter

_channels = itertools.count()


@pytest.fixture(scope="session")
def icd():
    return load_icd()


@pytest.fixture
def virtual_link(icd):
    """(Satellite, FakeNodes) on a private python-can virtual channel."""
    channel = f"sat-test-{next(_channels)}"
    nodes = FakeNodes(channel, icd)
    bus = can.Bus(interface="virtual", channel=channel, receive_own_messages=False)
    sat = Satellite(
        CanAdapter(bus, description=f"virtual:{channel}"),
        icd,
        timeouts=Timeouts(acceptance_s=1.0, completion_s=1.0, service_s=0.5, tm_s=1.0),
    ).start()
    try:
        yield sat, nodes
    finally:
        sat.close()
        nodes.close()
