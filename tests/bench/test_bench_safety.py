"""Envelope guard and protection arming, against a recording fake supply (pure logic: what gets sent)."""

from collections.abc import Callable

import pytest

from bench.config import ConfigError, load_config
from bench.envelope import EnvelopeViolation, GuardedSupply, arm_protection, check_ratings
from instruments.power import Capabilities, ChannelRating, Identity, ProtectionState, Trace


class RecordingSupply:
    """Stands in for a driver; records every call that would reach the instrument."""

    def __init__(self, watchdog: bool = True, ch1_volts: float = 6.0) -> None:
        self.calls: list[tuple] = []
        self.channels = {1: ChannelRating(ch1_volts, 5.0), 2: ChannelRating(25.0, 1.0)}
        self.capabilities = Capabilities(io_watchdog=watchdog, digitizer=False)
        self.resource = "FAKE"

    def identity(self) -> Identity:
        return Identity("Fake", "PSU-1", "SN1", "1.0")

    def __getattr__(self, name: str) -> Callable[..., None]:
        def record(*args: object) -> None:
            self.calls.append((name, *args))

        return record

    def protection(self, ch: int) -> ProtectionState:
        return ProtectionState(False, False, False)

    def capture_current(self, ch, points, interval_s, start) -> Trace:
        start()
        return Trace(interval_s, (0.0,))


CFG = load_config().config
ENV = CFG.dut.envelope


def guarded(fake: RecordingSupply) -> GuardedSupply:
    return GuardedSupply(fake, {"dut_main": 1}, ENV, "twin.yaml")


@pytest.mark.parametrize("volts", [ENV.bus_voltage.max + 0.01, ENV.bus_voltage.min - 0.01, 0.0, 12.0])
def test_voltage_outside_envelope_refused_before_sending(volts):
    fake = RecordingSupply()
    with pytest.raises(EnvelopeViolation, match=r"outside the DUT envelope.*nothing was sent"):
        guarded(fake).set_voltage(1, volts)
    assert fake.calls == []


def test_voltage_inside_envelope_is_sent():
    fake = RecordingSupply()
    guarded(fake).set_voltage(1, ENV.bus_voltage.max)
    assert fake.calls == [("set_voltage", 1, ENV.bus_voltage.max)]


def test_current_limit_and_ovp_capped_by_envelope():
    fake = RecordingSupply()
    supply = guarded(fake)
    with pytest.raises(EnvelopeViolation):
        supply.set_current_limit(1, ENV.max_current * 1.01)
    with pytest.raises(EnvelopeViolation):
        supply.set_ovp(1, ENV.ovp_level + 0.1)
    with pytest.raises(EnvelopeViolation, match="OCP stays armed"):
        supply.set_ocp(1, False, 0.0)
    assert fake.calls == []
    supply.set_current_limit(1, ENV.max_current / 10)  # lower is always allowed
    assert fake.calls == [("set_current_limit", 1, ENV.max_current / 10)]


def test_unassigned_channel_cannot_be_driven():
    fake = RecordingSupply()
    with pytest.raises(EnvelopeViolation, match="channel 2 has no role"):
        guarded(fake).set_output(2, True)
    assert fake.calls == []


def test_arm_protection_order_outputs_off_first_watchdog_last():
    fake = RecordingSupply()
    assert arm_protection(fake, {"dut_main": 1}, ENV, CFG.safety, "twin.yaml") is True
    names = [c[0] for c in fake.calls]
    assert names[0] == "all_outputs_off"
    assert names[-1] == "arm_watchdog" and fake.calls[-1][1] == CFG.safety.watchdog_s
    assert ("set_ovp", 1, ENV.ovp_level) in fake.calls
    assert ("set_ocp", 1, True, ENV.ocp_delay_s) in fake.calls
    assert ("set_current_limit", 1, ENV.max_current) in fake.calls
    assert "set_output" not in names


def test_supply_without_watchdog_refused_unless_allowed():
    fake = RecordingSupply(watchdog=False)
    with pytest.raises(ConfigError, match=r"safety\.require_watchdog"):
        arm_protection(fake, {"dut_main": 1}, ENV, CFG.safety, "twin.yaml")
    relaxed = CFG.safety.model_copy(update={"require_watchdog": False})
    assert arm_protection(RecordingSupply(watchdog=False), {"dut_main": 1}, ENV, relaxed, "x") is False


def test_envelope_must_fit_the_channel():
    with pytest.raises(ConfigError, match="does not fit channel 1"):
        check_ratings(RecordingSupply(ch1_volts=4.0), {"dut_main": 1}, ENV, "twin.yaml")
    with pytest.raises(ConfigError, match="channel 7 does not exist"):
        check_ratings(RecordingSupply(), {"dut_main": 7}, ENV, "twin.yaml")
