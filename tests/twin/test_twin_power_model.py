"""Unit tests of the power model and the supply state machine, on a fake clock (no sockets, no waiting)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin import dialect_keysight, dialect_rigol
from twin.power_model import (
    BOOT_DURATION_S,
    BOOT_POWER_W,
    HARNESS_OHM,
    IDLE_POWER_W,
    QUIESCENT_A,
    SWITCHABLE_LOADS_W,
    UVLO_FILTER_S,
    SatellitePowerModel,
)
from twin.psu import NoLoad, PowerSupply, PsuError, Reason


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def step(self, seconds: float) -> None:
        self.t += seconds


def make_psu(dialect: str = "keysight") -> tuple[PowerSupply, SatellitePowerModel, FakeClock]:
    module = dialect_keysight if dialect == "keysight" else dialect_rigol
    clock = FakeClock()
    dut = SatellitePowerModel()
    psu = PowerSupply(
        module.RATINGS, [dut, NoLoad(), NoLoad()], module.BEHAVIOUR, clock=clock, rng=np.random.default_rng(0)
    )
    return psu, dut, clock


def power_on(psu: PowerSupply, volts: float = 3.8, amps: float = 3.0) -> None:
    psu.set_voltage(1, volts)
    psu.set_current(1, amps)
    psu.set_output(1, True)


# -- the satellite alone ----------------------------------------------------------------------------------


def test_inrush_is_v_over_harness_resistance_and_decays_with_tau() -> None:
    dut = SatellitePowerModel()
    dut.source_step(0.0, 3.8)
    assert dut.demand(0.0, 3.8) == pytest.approx(3.8 / HARNESS_OHM)  # ≈ 2.71 A
    assert dut.demand(3e-3, 3.8) == pytest.approx(3.8 / HARNESS_OHM / math.e, rel=0.05)


def test_uvlo_hysteresis_and_brownout_reboot() -> None:
    dut = SatellitePowerModel()
    dut.source_step(0.0, 3.8)
    dut.settle(1.0, 3.8)
    assert dut.powered and dut.boot_count == 1 and dut.reset_cause == "power_on"
    dut.settle(1.1, 3.2)  # between the thresholds: stays on
    assert dut.powered
    dut.settle(1.2, 3.05)
    assert dut.powered  # a sag must outlast the UVLO filter before the EPS locks out
    dut.settle(1.2 + UVLO_FILTER_S, 3.05)
    assert not dut.powered
    assert dut.demand(1.2, 3.05) == pytest.approx(QUIESCENT_A)
    dut.settle(1.3, 3.25)  # still below the rising threshold
    assert not dut.powered
    dut.settle(1.4, 3.35)
    assert dut.powered and dut.boot_count == 2 and dut.reset_cause == "brownout"


def test_boot_then_idle_power_and_switchable_loads() -> None:
    dut = SatellitePowerModel()
    dut.source_step(0.0, 3.8)
    dut.settle(1.0, 3.8)
    assert dut.power(1.0 + BOOT_DURATION_S / 2) == BOOT_POWER_W
    assert not dut.booted(1.1)
    assert dut.power(1.0 + BOOT_DURATION_S) == IDLE_POWER_W
    dut.set_load("payload", True)
    assert dut.power(2.0) == pytest.approx(IDLE_POWER_W + SWITCHABLE_LOADS_W["payload"])
    assert dut.demand(2.0, 3.8) == pytest.approx((IDLE_POWER_W + 3.5) / 3.8)
    with pytest.raises(KeyError):
        dut.set_load("warp_drive", True)


def test_loads_refuse_while_locked_out() -> None:
    with pytest.raises(RuntimeError):
        SatellitePowerModel().set_load("payload", True)


# -- the supply with the satellite on CH1 ------------------------------------------------------------------


def test_power_on_boots_after_the_bus_charges() -> None:
    psu, dut, clock = make_psu()
    power_on(psu)
    assert not dut.powered  # the bus capacitance has not charged yet
    clock.step(0.02)
    psu.advance()
    assert dut.powered and dut.boot_count == 1
    clock.step(0.5)
    assert psu.reading(1).current == pytest.approx(IDLE_POWER_W / 3.8)


def test_current_limit_sags_voltage_as_an_equivalent_resistance() -> None:
    psu, dut, clock = make_psu()
    power_on(psu)
    clock.step(1.0)
    psu.advance()
    dut_power = IDLE_POWER_W + SWITCHABLE_LOADS_W["payload"]
    psu.apply(lambda t: dut.set_load("payload", True))
    psu.set_current(1, 1.2)
    reading = psu.reading(1)
    assert reading.cc and reading.current == 1.2
    assert reading.voltage == pytest.approx(1.2 * 3.8**2 / dut_power)  # V = I_lim · V²/P ≈ 3.21 V
    assert dut.powered  # still above the 3.10 V lockout


def test_keysight_ocp_trips_after_its_delay_in_constant_current() -> None:
    psu, dut, clock = make_psu()
    power_on(psu)
    clock.step(1.0)
    psu.apply(lambda t: dut.set_load("payload", True))
    psu.set_ocp_delay(1, 0.2)
    psu.set_ocp_enabled(1, True)
    psu.set_current(1, 1.2)
    clock.step(0.15)
    psu.advance()
    assert not psu.channel(1).ocp_tripped
    clock.step(0.06)
    psu.advance()
    ch = psu.channel(1)
    assert ch.ocp_tripped and ch.output and not ch.delivering  # Keysight keeps the programmed state
    assert psu.reading(1).current == 0.0


def test_keysight_ocp_delay_rides_through_inrush_but_zero_delay_does_not() -> None:
    for delay, tripped in ((0.05, False), (0.0, True)):
        psu, _, clock = make_psu()
        psu.set_ocp_delay(1, delay)
        psu.set_ocp_enabled(1, True)
        power_on(psu, amps=1.0)  # the 2.7 A inrush hits the 1 A limit for a few ms
        for _ in range(100):
            clock.step(0.001)
            psu.advance()
        assert psu.channel(1).ocp_tripped is tripped


def test_rigol_ocp_trips_at_its_value_and_switches_the_output_off() -> None:
    psu, _, clock = make_psu("rigol")
    psu.set_ocp_level(1, 0.4)
    psu.set_ocp_enabled(1, True)
    power_on(psu)
    clock.step(0.2)  # boot 1.1 W ≈ 0.29 A: under the value
    psu.advance()
    assert not psu.channel(1).ocp_tripped
    clock.step(0.2)  # idle 1.9 W = 0.5 A for more than 10 ms
    psu.advance()
    assert psu.channel(1).ocp_tripped and not psu.channel(1).output


def test_ovp_latches_and_retrips_while_the_cause_persists() -> None:
    psu, _, _ = make_psu()
    psu.set_ovp_level(2, 4.0)
    psu.set_voltage(2, 5.0)
    psu.set_output(2, True)
    assert psu.channel(2).ovp_tripped
    psu.clear_protection(2)
    assert psu.channel(2).ovp_tripped
    psu.set_voltage(2, 3.0)
    psu.clear_protection(2)
    assert not psu.channel(2).ovp_tripped and psu.reading(2).voltage == 3.0


def test_watchdog_latches_every_output_until_cleared() -> None:
    psu, dut, clock = make_psu()
    power_on(psu)
    psu.set_voltage(2, 5.0)
    psu.set_output(2, True)
    psu.set_watchdog_delay(1.0)
    psu.set_watchdog(True)
    clock.step(0.9)
    psu.note_io()
    clock.step(0.9)
    psu.advance()
    assert not psu.watchdog_tripped
    clock.step(0.2)
    psu.advance()
    assert all(ch.wdog_tripped for ch in psu.channels)
    assert psu.reading(1).voltage == 0.0 and not dut.powered
    psu.note_io()
    for number in (1, 2, 3):
        psu.clear_protection(number)
    clock.step(0.05)
    psu.advance()
    assert dut.powered and dut.boot_count == 2 and dut.reset_cause == "power_on"


def test_digitizer_records_the_inrush() -> None:
    psu, _, clock = make_psu()
    psu.set_voltage(1, 3.8)
    psu.configure_digitizer(points=400, interval=1e-4)
    with pytest.raises(PsuError) as err:
        psu.acquisition_complete_at()
    assert err.value.reason is Reason.NO_DATA
    psu.arm_acquisition()
    with pytest.raises(PsuError) as err:
        psu.acquisition_complete_at()
    assert err.value.reason is Reason.CONFLICT
    psu.trigger_acquisition()
    clock.step(0.002)
    psu.set_output(1, True)
    clock.step(0.05)
    assert psu.acquisition_complete_at() == pytest.approx(clock.t - 0.052 + 400 * 1e-4)
    amps = np.array(psu.fetch("amps"))
    assert len(amps) == 400
    assert abs(amps[:19]).max() < 0.01  # output still off
    # The first sample after the step lands up to one interval (0.1 ms = τ/30) into the exponential.
    peak = 3.8 / HARNESS_OHM
    assert peak * math.exp(-1e-4 / 3e-3) - 0.01 < amps.max() < peak + 0.01
    assert amps[-1] == pytest.approx(BOOT_POWER_W / 3.8, abs=0.01)
    psu.abort_acquisition()
    with pytest.raises(PsuError) as err:
        psu.trigger_acquisition()
    assert err.value.reason is Reason.TRIGGER_IGNORED


def test_out_of_range_settings_change_nothing() -> None:
    psu, _, _ = make_psu()
    with pytest.raises(PsuError) as err:
        psu.set_voltage(1, 6.5)
    assert err.value.reason is Reason.OUT_OF_RANGE
    assert psu.channel(1).v_set == 0.0


def test_measurement_noise_is_seeded() -> None:
    readings = []
    for _ in range(2):
        psu, _, _ = make_psu()
        psu.set_voltage(2, 5.0)
        psu.set_output(2, True)
        readings.append([psu.measure(2) for _ in range(200)])
    assert readings[0] == readings[1]
    volts = np.array([v for v, _ in readings[0]])
    amps = np.array([a for _, a in readings[0]])
    assert volts.mean() == pytest.approx(5.0, abs=3e-4)
    assert volts.std() == pytest.approx(1e-3, rel=0.2)
    assert amps.std() == pytest.approx(1.5e-3, rel=0.2)
