"""Power-supply drivers against an in-process fake: command syntax, refusal before sending, safe state."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fake_scpi import FakeScpi

from instruments.errors import (
    ConnectionLost,
    InstrumentError,
    InstrumentTimeout,
    NotSupported,
    SettingOutOfRange,
    UnexpectedReply,
)
from instruments.power import PowerSupply, ProtectionState
from instruments.psu_base import ScpiPowerSupply
from instruments.psu_keysight import KeysightE36312A
from instruments.psu_rigol import RigolDP832
from instruments.registry import POWER_SUPPLIES, UnknownDriver, open_power_supply


def sent(fake: FakeScpi) -> list[str]:
    """Commands received, without the error-queue reads that follow each write."""
    return [command for command in fake.received if command != "SYST:ERR?"]


def nothing() -> None:
    raise AssertionError("start() must not be called")


@pytest.fixture
def keysight(fake: FakeScpi) -> Iterator[KeysightE36312A]:
    psu = KeysightE36312A(fake.resource, 0.5)
    yield psu
    psu.close()


@pytest.fixture
def rigol(fake: FakeScpi) -> Iterator[RigolDP832]:
    psu = RigolDP832(fake.resource, 0.5)
    yield psu
    psu.close()


KEYSIGHT_REFUSALS: list[tuple[str, Callable[[KeysightE36312A], Any]]] = [
    ("CH1 above 6 V", lambda p: p.set_voltage(1, 6.01)),
    ("CH2 above 25 V", lambda p: p.set_voltage(2, 25.5)),
    ("no CH4", lambda p: p.set_voltage(4, 1.0)),
    ("no CH0", lambda p: p.set_output(0, True)),
    ("negative", lambda p: p.set_voltage(1, -0.1)),
    ("NaN", lambda p: p.set_voltage(1, math.nan)),
    ("CH1 above 5 A", lambda p: p.set_current_limit(1, 5.1)),
    ("CH3 above 1 A", lambda p: p.set_current_limit(3, 1.5)),
    ("OVP above rating", lambda p: p.set_ovp(1, 7.0)),
    ("measure CH4", lambda p: p.measure_voltage(4)),
    ("query CH9", lambda p: p.output(9)),
    ("watchdog below 1 s", lambda p: p.arm_watchdog(0.5)),
    ("watchdog above 3600 s", lambda p: p.arm_watchdog(4000)),
    ("negative OCP delay", lambda p: p.set_ocp(1, True, -1.0)),
    ("zero points", lambda p: p.capture_current(1, 0, 1e-3, nothing)),
    ("zero interval", lambda p: p.capture_current(1, 10, 0.0, nothing)),
    ("capture CH4", lambda p: p.capture_current(4, 10, 1e-3, nothing)),
]

RIGOL_REFUSALS: list[tuple[str, Callable[[RigolDP832], Any]]] = [
    ("CH3 above 5 V", lambda p: p.set_voltage(3, 5.5)),
    ("CH1 above 30 V", lambda p: p.set_voltage(1, 31.0)),
    ("CH1 above 3 A", lambda p: p.set_current_limit(1, 3.5)),
    ("OVP above CH3 rating", lambda p: p.set_ovp(3, 6.0)),
    ("no CH4", lambda p: p.output(4)),
    ("no CH0", lambda p: p.clear_protection(0)),
]


@pytest.mark.parametrize(("why", "call"), KEYSIGHT_REFUSALS, ids=[why for why, _ in KEYSIGHT_REFUSALS])
def test_keysight_refuses_before_sending(
    fake: FakeScpi, keysight: KeysightE36312A, why: str, call: Callable[[KeysightE36312A], Any]
) -> None:
    with pytest.raises(SettingOutOfRange):
        call(keysight)
    assert fake.received == [], "nothing may reach the instrument"


@pytest.mark.parametrize(("why", "call"), RIGOL_REFUSALS, ids=[why for why, _ in RIGOL_REFUSALS])
def test_rigol_refuses_before_sending(
    fake: FakeScpi, rigol: RigolDP832, why: str, call: Callable[[RigolDP832], Any]
) -> None:
    with pytest.raises(SettingOutOfRange):
        call(rigol)
    assert fake.received == []


def test_refusal_message_names_command_resource_and_rating(fake: FakeScpi, keysight: KeysightE36312A) -> None:
    with pytest.raises(SettingOutOfRange) as info:
        keysight.set_voltage(1, 9)
    message = str(info.value)
    assert info.value.command == "VOLT 9,(@1)"
    assert "'VOLT 9,(@1)'" in message and fake.resource in message and "0..6" in message and "CH1" in message


def test_keysight_command_syntax(fake: FakeScpi, keysight: KeysightE36312A) -> None:
    keysight.set_voltage(1, 3.8)
    keysight.set_current_limit(1, 3)
    keysight.set_ovp(1, 4.35)
    keysight.set_ocp(1, True, 0.05)
    keysight.set_output(1, True)
    keysight.clear_protection(1)
    keysight.arm_watchdog(5)
    keysight.disarm_watchdog()
    assert sent(fake) == [
        "VOLT 3.8,(@1)",
        "CURR 3,(@1)",
        "VOLT:PROT 4.35,(@1)",
        "CURR:PROT:DEL 0.05,(@1)",
        "CURR:PROT:STAT 1,(@1)",
        "OUTP 1,(@1)",
        "OUTP:PROT:CLE (@1)",
        "OUTP:PROT:WDOG:DEL 5",
        "OUTP:PROT:WDOG ON",
        "OUTP:PROT:WDOG OFF",
    ]
    assert fake.received.count("SYST:ERR?") == 10  # every write is checked


def test_keysight_readbacks(fake: FakeScpi, keysight: KeysightE36312A) -> None:
    fake.replies.update(
        {
            "VOLT? (@2)": "+1.20000000E+01",
            "CURR? (@2)": "+5.00000000E-01",
            "OUTP? (@2)": "1",
            "MEAS:VOLT? (@2)": "11.9987",
            "MEAS:CURR? (@2)": "0.1234",
            "VOLT:PROT:TRIP? (@2)": "0",
            "CURR:PROT:TRIP? (@2)": "1",
            "STAT:QUES:COND? (@2)": "1024",
        }
    )
    assert keysight.voltage_setpoint(2) == 12.0
    assert keysight.current_limit(2) == 0.5
    assert keysight.output(2) is True
    assert keysight.measure_voltage(2) == pytest.approx(11.9987)
    assert keysight.measure_current(2) == pytest.approx(0.1234)
    assert keysight.protection(2) == ProtectionState(ovp_tripped=False, ocp_tripped=True, watchdog_tripped=True)
    fake.replies["STAT:QUES:COND? (@2)"] = "+3"  # other questionable bits are not the watchdog
    assert keysight.protection(2).watchdog_tripped is False


def test_keysight_capture_arms_triggers_then_starts_then_fetches(fake: FakeScpi, keysight: KeysightE36312A) -> None:
    fake.replies["FETC:ARR:CURR? (@1)"] = ",".join(["0.1"] * 4 + ["2.7"] + ["1.0"] * 5)
    seen_at_start: list[str] = []
    trace = keysight.capture_current(1, 10, 1e-3, lambda: seen_at_start.extend(sent(fake)))
    assert seen_at_start == [
        "SENS:SWE:POIN 10,(@1)",
        "SENS:SWE:TINT 0.001,(@1)",
        "TRIG:ACQ:SOUR BUS,(@1)",
        "INIT:ACQ (@1)",
        "*TRG",
    ]
    assert sent(fake)[-1] == "FETC:ARR:CURR? (@1)"
    assert trace.interval_s == 1e-3 and len(trace.current) == 10
    assert trace.peak == 2.7 and trace.duration_s == pytest.approx(0.01)


def test_keysight_capture_with_a_short_reply_is_unexpected(fake: FakeScpi, keysight: KeysightE36312A) -> None:
    fake.replies["FETC:ARR:CURR? (@1)"] = "0.1,0.2"
    with pytest.raises(UnexpectedReply, match="10 values"):
        keysight.capture_current(1, 10, 1e-3, lambda: None)


def test_rigol_command_syntax_and_ocp_tracks_the_current_limit(
    fake: FakeScpi, rigol: RigolDP832, caplog: pytest.LogCaptureFixture
) -> None:
    fake.replies[":SOUR1:CURR?"] = "2.5000"
    rigol.set_voltage(1, 3.8)
    rigol.set_current_limit(1, 2.5)
    rigol.set_ovp(1, 4.35)
    with caplog.at_level(logging.INFO, logger="instruments.psu_rigol"):
        rigol.set_ocp(1, True, 0.05)
    rigol.set_output(1, True)
    rigol.clear_protection(1)
    assert sent(fake) == [
        ":SOUR1:VOLT 3.8",
        ":SOUR1:CURR 2.5",
        ":OUTP:OCP:VAL CH1,2.5",
        ":OUTP:OVP:VAL CH1,4.35",
        ":OUTP:OVP CH1,ON",
        ":SOUR1:CURR?",
        ":OUTP:OCP:VAL CH1,2.5",
        ":OUTP:OCP CH1,ON",
        ":OUTP CH1,ON",
        ":OUTP:OVP:CLE CH1",
        ":OUTP:OCP:CLE CH1",
    ]
    assert "no OCP delay" in caplog.text


def test_rigol_readbacks(fake: FakeScpi, rigol: RigolDP832) -> None:
    fake.replies.update(
        {
            ":OUTP? CH2": "OFF",
            ":SOUR2:VOLT?": "12.000",
            ":MEAS:CURR? CH2": "0.0000",
            ":OUTP:OVP:QUES? CH2": "YES",
            ":OUTP:OCP:QUES? CH2": "NO",
        }
    )
    assert rigol.output(2) is False
    assert rigol.voltage_setpoint(2) == 12.0
    assert rigol.measure_current(2) == 0.0
    assert rigol.protection(2) == ProtectionState(ovp_tripped=True, ocp_tripped=False, watchdog_tripped=False)


def test_rigol_lacks_watchdog_and_digitizer_and_says_so_before_sending(fake: FakeScpi, rigol: RigolDP832) -> None:
    assert rigol.capabilities.io_watchdog is False and rigol.capabilities.digitizer is False
    with pytest.raises(NotSupported, match="I/O watchdog") as info:
        rigol.arm_watchdog(5)
    assert info.value.command == "arm_watchdog" and fake.resource in str(info.value)
    with pytest.raises(NotSupported, match="digitizer"):
        rigol.capture_current(1, 10, 1e-3, nothing)
    rigol.disarm_watchdog()  # nothing to disarm: teardown may call it on any model
    assert fake.received == []


def test_unexpected_boolean_reply(fake: FakeScpi, rigol: RigolDP832) -> None:
    fake.replies[":OUTP? CH1"] = "MAYBE"
    with pytest.raises(UnexpectedReply, match="MAYBE"):
        rigol.output(1)


def test_heartbeat_and_reset(fake: FakeScpi, keysight: KeysightE36312A) -> None:
    keysight.heartbeat()
    keysight.reset()
    assert sent(fake) == ["*OPC?", "*CLS", "*RST", "*OPC?"]
    fake.replies["*OPC?"] = "0"
    with pytest.raises(UnexpectedReply):
        keysight.heartbeat()


class Outputs:
    """Output state of a fake three-channel Keysight, switchable by `OUTP n,(@ch)`."""

    def __init__(self, stuck: int | None = None) -> None:
        self.on = {1: True, 2: True, 3: True}
        self.stuck = stuck

    def __call__(self, command: str) -> str | None:
        if command.startswith("OUTP? (@"):
            return "1" if self.on[int(command[8])] else "0"
        if command.startswith("OUTP ") and command[7:9] == "(@":
            channel = int(command[9])
            if channel != self.stuck:
                self.on[channel] = command[5] == "1"
        return None


def test_all_outputs_off_switches_each_channel_and_verifies(fake: FakeScpi, keysight: KeysightE36312A) -> None:
    fake.handler = outputs = Outputs()
    keysight.all_outputs_off()
    assert outputs.on == {1: False, 2: False, 3: False}
    assert sent(fake) == ["OUTP 0,(@1)", "OUTP 0,(@2)", "OUTP 0,(@3)", "OUTP? (@1)", "OUTP? (@2)", "OUTP? (@3)"]


def test_all_outputs_off_raises_naming_the_channel_that_stays_on(fake: FakeScpi, keysight: KeysightE36312A) -> None:
    fake.handler = Outputs(stuck=2)
    with pytest.raises(InstrumentError, match=r"CH2 of the Keysight E36312A .* still on"):
        keysight.all_outputs_off()


def test_all_outputs_off_retries_on_a_fresh_connection_after_a_drop(fake: FakeScpi, keysight: KeysightE36312A) -> None:
    fake.handler = outputs = Outputs()
    keysight.heartbeat()
    fake.drop_on = "OUTP 0,(@1)"  # the link dies in the middle of the safe state
    keysight.all_outputs_off()
    assert outputs.on == {1: False, 2: False, 3: False}
    assert fake.connections == 2


def test_all_outputs_off_on_a_hung_instrument_raises_timeout_after_the_retry(
    fake: FakeScpi, keysight: KeysightE36312A
) -> None:
    fake.silent = True
    with pytest.raises(InstrumentTimeout):
        keysight.all_outputs_off()
    assert fake.connections == 2


def test_connection_lost_surfaces_through_the_driver(fake: FakeScpi, keysight: KeysightE36312A) -> None:
    fake.drop_on = "MEAS:CURR? (@1)"
    with pytest.raises(ConnectionLost):
        keysight.measure_current(1)


def test_registry_opens_each_driver_and_each_satisfies_the_protocol(fake: FakeScpi) -> None:
    assert set(POWER_SUPPLIES) == {"keysight-e36312a", "rigol-dp832"}
    for name, entry in POWER_SUPPLIES.items():
        psu = open_power_supply(name, fake.resource, 0.5, verify=False)
        try:
            assert type(psu) is entry.load() and isinstance(psu, ScpiPowerSupply)
            assert isinstance(psu, PowerSupply)
            assert psu.resource == fake.resource
        finally:
            psu.close()


def test_unknown_driver_lists_the_known_names(fake: FakeScpi) -> None:
    with pytest.raises(UnknownDriver) as info:
        open_power_supply("agilent-e3631a", fake.resource, 0.5)
    assert "'agilent-e3631a'" in str(info.value)
    assert "keysight-e36312a, rigol-dp832" in str(info.value)
    assert fake.connections == 0


def test_keysight_capture_aborts_the_acquisition_when_start_fails(fake: FakeScpi, keysight: KeysightE36312A) -> None:
    def start() -> None:
        raise RuntimeError("DUT relay stuck")

    with pytest.raises(RuntimeError, match="relay stuck"):
        keysight.capture_current(1, 10, 1e-3, start)
    assert sent(fake)[-2:] == ["*TRG", "ABOR:ACQ (@1)"]
