"""The antenna deployment mechanism's own logic (twin/nodes/antenna.py), in-process: burn time against bus
voltage, the firmware's sequence and burn timeout, a jammed element, stalls of the twin, and the burn wire as a
resistive load of the power model. The plan (test_plans/comms/test_comms_antenna.py) meets the same mechanism
through the real protocols: tests/satellite/test_satellite_antenna_plan.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.icd import load_icd
from twin.nodes.antenna import (
    BURN_OHM,
    ELEMENTS,
    MELT_J,
    MELT_SPREAD,
    P_LOSS_W,
    AntennaDeployer,
    Deployed,
    ElementReleased,
    TimedOut,
    burn_time_s,
)
from twin.power_model import UVLO_FALLING_V, SatellitePowerModel

ICD = load_icd()
TIMEOUT_S = next(p for p in ICD.nodes["COMMS"].parameters if p.name == "ANT_BURN_TIMEOUT_MS").default / 1000


class Heater:
    """The EPS burn output as the deployer sees it: every switching, and a refusal when told to."""

    def __init__(self, refuse: bool = False) -> None:
        self.switched: list[bool] = []
        self.refuse = refuse

    def __call__(self, on: bool) -> bool:
        if on and self.refuse:
            return False
        self.switched.append(on)
        return True


def run(deployer: AntennaDeployer, volts: float, *, step_s: float = 0.005, until_s: float = 60.0) -> list[object]:
    """Tick ``deployer`` at a steady bus voltage until its attempt ends; every outcome, in order."""
    out: list[object] = []
    t = 0.0
    while t < until_s:
        t += step_s
        out += deployer.tick(t, volts)
        if any(isinstance(o, Deployed | TimedOut) for o in out):
            return out
    raise AssertionError(f"the attempt did not end within {until_s} s: {out}")


def test_burn_time_falls_with_bus_voltage_and_never_ends_below_the_loss() -> None:
    volts = [3.0, 3.1, 3.2, 3.5, 3.8, 4.2]
    times = [burn_time_s(v) for v in volts]
    assert times == sorted(times, reverse=True)
    assert burn_time_s(3.8) == pytest.approx(MELT_J / (3.8**2 / BURN_OHM - P_LOSS_W))
    assert 1.5 < burn_time_s(3.2) < 1.8 and 0.8 < burn_time_s(3.8) < 1.0
    assert burn_time_s(math.sqrt(P_LOSS_W * BURN_OHM) - 1e-9) == math.inf  # all the heat is lost: it never parts
    assert burn_time_s(2.0) == math.inf


def test_the_timeout_leaves_margin_over_the_whole_operating_range() -> None:
    """The design the requirement rests on: at the EPS lockout edge, the slowest element a unit can have still
    releases within 80 % of the firmware's burn timeout (the plan's limit); well below it, none would."""
    slowest = burn_time_s(UVLO_FALLING_V, MELT_J * (1 + 3 * MELT_SPREAD))
    assert slowest < 0.8 * TIMEOUT_S
    assert burn_time_s(2.7) > TIMEOUT_S


def test_an_attempt_releases_the_four_elements_in_turn_with_one_burn() -> None:
    heater = Heater()
    deployer = AntennaDeployer(heater)
    assert deployer.start(0.0, TIMEOUT_S)
    assert deployer.burning == 1 and deployer.attempts == 1
    out = run(deployer, 3.2)
    released = [o for o in out if isinstance(o, ElementReleased)]
    assert [r.element for r in released] == [1, 2, 3, 4]
    for r in released:
        assert r.burn_s == pytest.approx(burn_time_s(3.2))
    assert out[-1] == Deployed(ELEMENTS, pytest.approx(4 * burn_time_s(3.2)), pytest.approx(4 * burn_time_s(3.2)))
    assert deployer.released == [True] * ELEMENTS and deployer.burning == 0 and deployer.current_a == 0.0
    assert heater.switched == [True, False]  # one burn output on, off once at the end


def test_too_low_a_voltage_times_out_with_the_elements_stowed() -> None:
    heater = Heater()
    deployer = AntennaDeployer(heater)
    deployer.start(0.0, TIMEOUT_S)
    out = run(deployer, 2.7)
    assert out == [TimedOut(1, 0, pytest.approx(TIMEOUT_S))]  # the attempt ends at the first element's timeout
    assert deployer.released == [False] * ELEMENTS and heater.switched == [True, False]
    assert deployer.attempts == 1  # no retry of its own


def test_a_jammed_element_ends_the_attempt_at_its_timeout() -> None:
    deployer = AntennaDeployer(Heater(), jammed={3})
    deployer.start(0.0, TIMEOUT_S)
    out = run(deployer, 3.8)
    assert [o.element for o in out if isinstance(o, ElementReleased)] == [1, 2]
    assert out[-1] == TimedOut(3, 2, pytest.approx(2 * burn_time_s(3.8) + TIMEOUT_S))
    assert deployer.released == [True, True, False, False]


def test_a_stalled_twin_neither_lengthens_a_burn_nor_fires_a_false_timeout() -> None:
    """One 20 s tick (the process stalled) places the releases where 5 ms ticks do."""
    fine, stalled = AntennaDeployer(Heater()), AntennaDeployer(Heater())
    fine.start(0.0, TIMEOUT_S)
    stalled.start(0.0, TIMEOUT_S)

    def flat(outcomes: list[object]) -> list[float]:
        return [float(x) for o in outcomes for x in vars(o).values()]

    assert flat(stalled.tick(20.0, 3.2)) == pytest.approx(flat(run(fine, 3.2)))


def test_a_second_attempt_burns_only_what_is_still_stowed() -> None:
    deployer = AntennaDeployer(Heater(), jammed={2})
    deployer.start(0.0, TIMEOUT_S)
    run(deployer, 3.8)
    assert deployer.released == [True, False, False, False]
    deployer.jammed.clear()
    deployer.start(100.0, TIMEOUT_S)
    out = [o for o in deployer.tick(130.0, 3.8) if isinstance(o, ElementReleased)]
    assert [o.element for o in out] == [2, 3, 4] and deployer.attempts == 2
    assert deployer.start(200.0, TIMEOUT_S)  # nothing left to burn: it ends at once, all four released
    assert deployer.tick(200.1, 3.8) == [Deployed(ELEMENTS, 0.0, 200.1)]


def test_one_attempt_at_a_time() -> None:
    deployer = AntennaDeployer(Heater())
    deployer.start(0.0, TIMEOUT_S)
    with pytest.raises(RuntimeError, match="under way"):
        deployer.start(0.1, TIMEOUT_S)


def test_reboot_keeps_released_elements_power_on_stows_them() -> None:
    heater = Heater()
    deployer = AntennaDeployer(heater, jammed={4})
    deployer.start(0.0, TIMEOUT_S)
    deployer.tick(2 * burn_time_s(3.8) + 0.1, 3.8)  # two released, the third burning
    assert deployer.burning == 3
    deployer.abort()  # COMMS rebooted
    assert deployer.burning == 0 and heater.switched[-1] is False and deployer.released == [True, True, False, False]
    deployer.stow()  # power-on
    assert deployer.released == [False] * ELEMENTS and deployer.attempts == 0


def test_a_refused_burn_output_fails_the_attempt() -> None:
    deployer = AntennaDeployer(Heater(refuse=True))
    assert not deployer.start(0.0, TIMEOUT_S)
    assert deployer.burning == 0 and deployer.tick(10.0, 3.8) == []


def test_every_unit_draws_its_own_elements_from_the_seed() -> None:
    a = AntennaDeployer.for_unit(Heater(), np.random.default_rng(7))
    b = AntennaDeployer.for_unit(Heater(), np.random.default_rng(7))
    assert a.melt_j == b.melt_j and len(set(a.melt_j)) == ELEMENTS
    assert all(abs(m / MELT_J - 1) <= 3 * MELT_SPREAD for m in a.melt_j)


def test_the_burn_wire_is_a_resistive_load_on_the_bus() -> None:
    """The supply current steps by V/R while it burns: less at a low bus voltage (constant-power loads draw more)."""
    dut = SatellitePowerModel()
    dut.source_step(0.0, 3.8)
    dut.settle(1.0, 3.8)
    for volts in (3.8, 3.2):
        dut.source_step(2.0, volts)
        dut.settle(2.1, volts)
        idle = dut.demand(2.1, volts)
        dut.set_load("antenna_burn", True)
        assert dut.demand(2.1, volts) - idle == pytest.approx(volts / BURN_OHM, rel=1e-3)
        dut.set_load("antenna_burn", False)
