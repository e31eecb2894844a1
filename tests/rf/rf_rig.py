"""Fixtures for the RF tests: a twin-backed bench (session, satellite, RF front end) with the DUT powered,
and the twin's control endpoint (fault injection, state) — one twin per test module.

Test modules import ``rig_fixture`` (the ``rig`` fixture) from here: the folder is on sys.path in pytest's
default import mode and the basename is unique in the repo (no test imports a ``conftest``: that name is
shared by every folder).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from bench.twin_launcher import twin_control

if TYPE_CHECKING:
    from bench.dut_power import DutPower
    from bench.rf import RfFrontEnd
    from bench.satellite import Satellite
    from bench.session import BenchSession


class TwinControl:
    """The twin's control endpoint (JSON lines over TCP)."""

    def __init__(self, endpoints: dict[str, dict[str, Any]]) -> None:
        self.endpoints = endpoints

    def __call__(self, **cmd: Any) -> dict[str, Any]:
        return twin_control(self.endpoints, **cmd)

    def rf(self) -> dict[str, Any]:
        return self(cmd="state")["rf"]

    def fault(self, name: str, on: bool) -> None:
        self(cmd="fault", name=name, on=on)


@dataclass
class RfRig:
    session: BenchSession
    satellite: Satellite
    dut_power: DutPower
    rf: RfFrontEnd
    control: TwinControl

    def key_beacon(self) -> Callable[[], None]:
        """Make the radio send a beacon now (enabling the beacon sends the first one at once)."""

        def key() -> None:
            assert self.satellite.send("COMMS.SET_BEACON", enabled=False).ok
            assert self.satellite.send("COMMS.SET_BEACON", enabled=True).ok

        return key

    def rx_frames(self) -> int:
        return int(self.satellite.request_hk("COMMS")["COMMS.RX_FRAMES"])


@pytest.fixture(scope="module", name="rig")
def rig_fixture() -> Iterator[RfRig]:
    """The default twin bench (twin.yaml: the session starts its own twin) with the DUT on and every node alive."""
    from bench.config import CONFIG_DIR, load_config
    from bench.dut_power import DutPower
    from bench.icd import icd_path, load_icd
    from bench.satellite import open_satellite
    from bench.session import BenchSession

    loaded = load_config(CONFIG_DIR / "twin.yaml")
    session = BenchSession.open(loaded, None, None, install_signals=False)
    try:
        assert session.twin is not None
        cfg = loaded.config
        radio = load_icd(icd_path(loaded.path, cfg.icd)).radio
        front = session.rf_front_end(radio)
        assert front is not None
        sat = open_satellite(loaded, session.can_adapter())
        power = DutPower(session.psu, cfg.dut.envelope, cfg.safety)
        try:
            power.on()
            sat.await_nodes_alive(timeout_s=10)
            yield RfRig(session, sat, power, front, TwinControl(session.twin.endpoints))
        finally:
            front.safe_state()
            power.off()
            sat.close()
    finally:
        session.close("rf test module end")
