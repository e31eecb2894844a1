"""The Keysight E36312A dialect over the wire: raw sockets and pyvisa-py, as the bench talks to it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pyvisa
from pyvisa.resources import MessageBasedResource

IDN = "Keysight Technologies,E36312A,MY61000123,2.1.0-twin"
NO_ERROR = '+0,"No error"'


@pytest.fixture(scope="module")
def visa() -> Iterator[pyvisa.ResourceManager]:
    rm = pyvisa.ResourceManager("@py")
    yield rm
    rm.close()


@pytest.fixture
def psu(keysight: Any, visa: pyvisa.ResourceManager) -> Iterator[MessageBasedResource]:
    resource = visa.open_resource(keysight.resource(), read_termination="\n", write_termination="\n")
    assert isinstance(resource, MessageBasedResource)
    resource.timeout = 3000
    yield resource
    resource.close()


def power_dut(client: Any, twin: Any, wait_for: Callable[..., Any], volts: float = 3.8) -> dict[str, Any]:
    client.write(f"VOLT {volts},(@1);CURR 3,(@1);OUTP ON,(@1)")
    dut: dict[str, Any] = wait_for(lambda: (d := twin.dut())["booted"] and d, 3.0, "the DUT to boot")
    return dut


def test_identity_and_empty_error_queue_via_pyvisa(psu: MessageBasedResource) -> None:
    assert psu.query("*IDN?") == IDN
    assert psu.query("SYST:ERR?") == NO_ERROR
    assert psu.query("*TST?") == "0"
    assert psu.query("*OPC?") == "1"
    assert psu.query("SYST:VERS?") == "1999.0"
    psu.write("SYST:REM")
    assert psu.query("*ESR?") == "+0"


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ("VOLT:BOGUS 1,(@1)", '-113,"Undefined header"'),
        ("VOLT 1,(@1", '-102,"Syntax error"'),
        ("VOLT 7,(@1)", '-222,"Data out of range"'),
        ("VOLT 1,(@4)", '-222,"Data out of range"'),
        ("OUTP MAYBE,(@1)", '-224,"Illegal parameter value"'),
        ("VOLT (@1)", '-109,"Missing parameter"'),
        ("OUTP:PROT:WDOG:DEL 0.5", '-222,"Data out of range"'),
        ("CURR:PROT:DEL 11,(@1)", '-222,"Data out of range"'),
        ("*TRG", '-211,"Trigger ignored"'),
    ],
)
def test_error_codes(keysight: Any, command: str, code: str) -> None:
    client = keysight.scpi()
    client.write(command)
    assert client.error() == code
    assert client.error() == NO_ERROR


def test_error_queue_overflows_at_twenty(keysight: Any) -> None:
    client = keysight.scpi()
    client.write(";".join(["NOPE"] * 25))
    errors = [client.error() for _ in range(21)]
    assert errors[:19] == ['-113,"Undefined header"'] * 19
    assert errors[19:] == ['-350,"Queue overflow"', NO_ERROR]


def test_error_queues_are_per_connection(keysight: Any) -> None:
    a, b = keysight.scpi(), keysight.scpi()
    a.write("NOPE")
    assert b.error() == NO_ERROR
    assert a.error() == '-113,"Undefined header"'


def test_out_of_range_refuses_the_whole_list(keysight: Any) -> None:
    client = keysight.scpi()
    client.write("VOLT 3,(@1:3)")
    client.write("VOLT 7,(@1:3)")  # fine for CH2/CH3, too much for CH1: nothing changes
    assert client.error() == '-222,"Data out of range"'
    assert client.query("VOLT? (@1:3)") == "+3.00000000E+00,+3.00000000E+00,+3.00000000E+00"
    client.write("CURR 5.2,(@1)")
    assert client.error() == '-222,"Data out of range"'
    client.write("CURR 5.15,(@1);VOLT 25.75,(@2)")  # the ratings include the 3 % over-range
    assert client.error() == NO_ERROR


def test_channel_lists_and_case_insensitive_long_forms(keysight: Any) -> None:
    client = keysight.scpi()
    client.write("volt 1.5,(@1,3);:OUTPut:STATe ON,(@2:3)")
    assert client.query("VOLT? (@1:3)") == "+1.50000000E+00,+0.00000000E+00,+1.50000000E+00"
    assert client.query("OUTP? (@1:3)") == "0,1,1"
    assert client.query("OUTP? (@3:1)") == "1,1,0"
    volts = client.query("MEASure:VOLTage:DC? (@1,3)").split(",")
    assert [round(float(v), 2) for v in volts] == [0.0, 1.5]
    # After MEAS:VOLT? the path is MEAS, so CURR? is MEAS:CURR? (two replies joined by ';').
    volt3, curr3 = client.query("MEAS:VOLT? (@3);CURR? (@3)").split(";")
    assert abs(float(volt3) - 1.5) < 0.01 and abs(float(curr3)) < 0.01
    client.write("INST:NSEL 3")
    assert client.query("VOLT?") == "+1.50000000E+00"  # no list: the selected channel
    assert client.error() == NO_ERROR


def test_ovp_trip_and_clear(keysight: Any) -> None:
    client = keysight.scpi()
    client.write("VOLT:PROT 4,(@2);VOLT 5,(@2);OUTP 1,(@2)")
    assert client.query("VOLT:PROT:TRIP? (@2)") == "1"
    assert client.query("STAT:QUES:COND? (@2)") == "+1"
    assert abs(float(client.query("MEAS:VOLT? (@2)"))) < 0.01
    assert client.query("OUTP? (@2)") == "1"  # the programmed state is kept while latched
    client.write("OUTP:PROT:CLE (@2)")  # cause still present: trips again
    assert client.query("VOLT:PROT:TRIP? (@2)") == "1"
    client.write("VOLT 3,(@2);OUTP:PROT:CLE (@2)")
    assert client.query("VOLT:PROT:TRIP? (@2)") == "0"
    assert abs(float(client.query("MEAS:VOLT? (@2)")) - 3.0) < 0.01
    assert client.error() == NO_ERROR


def test_ocp_trips_after_the_delay_in_current_limit(keysight: Any, wait_for: Callable[..., Any]) -> None:
    client = keysight.scpi()
    power_dut(client, keysight, wait_for)
    assert keysight.control({"cmd": "load", "name": "payload", "on": True})["ok"]
    client.write("CURR:PROT:DEL 0.5,(@1);CURR:PROT:STAT ON,(@1)")
    assert client.query("CURR:PROT:STAT? (@1);DEL? (@1)") == "1;+5.00000000E-01"
    started = time.monotonic()
    client.write("CURR 1.2,(@1)")  # 5.4 W at 3.8 V wants 1.42 A: constant current, bus sags to ≈3.2 V
    early = client.query("CURR:PROT:TRIP? (@1)")
    if time.monotonic() - started < 0.5:  # answered within the delay (unless this test was descheduled)
        assert early == "0"
    wait_for(lambda: client.query("CURR:PROT:TRIP? (@1)") == "1", 3.0, "the OCP trip")
    assert time.monotonic() - started >= 0.5
    assert int(client.query("STAT:QUES:COND? (@1)")) & 2
    assert abs(float(client.query("MEAS:CURR? (@1)"))) < 0.01
    assert not keysight.dut()["powered"]


def test_ocp_delay_rides_through_the_inrush(keysight: Any, wait_for: Callable[..., Any]) -> None:
    client = keysight.scpi()
    for delay, trips in (("0.05", "0"), ("0", "1")):
        client.write(f"*RST;CURR:PROT:DEL {delay},(@1);CURR:PROT:STAT ON,(@1)")
        assert client.query("*OPC?") == "1"  # the output is off from here on (the twin's clock is this host's)
        # Off for 50 ms ≈ 16 τ: the bus capacitance is discharged. An output-on right behind the *RST — the two
        # writes read in one go by a busy twin — would find it still charged: no inrush, nothing to trip on.
        time.sleep(0.05)
        client.write("VOLT 3.8,(@1);CURR 1,(@1);OUTP ON,(@1)")  # 2.7 A inrush against a 1 A limit
        wait_for(lambda: keysight.dut()["booted"] or keysight.channel(1)["ocp_tripped"], 3.0, "boot or trip")
        assert client.query("CURR:PROT:TRIP? (@1)") == trips


def test_watchdog_latches_every_output_off_and_clears(keysight: Any, wait_for: Callable[..., Any]) -> None:
    client = keysight.scpi()
    boots = power_dut(client, keysight, wait_for)["boot_count"]
    client.write("VOLT 5,(@2);OUTP ON,(@2);OUTP:PROT:WDOG:DEL 1;OUTP:PROT:WDOG ON")
    last_io = time.monotonic()  # before the last SCPI exchange: the twin saw it later, never earlier
    assert client.query("OUTP:PROT:WDOG?;WDOG:DEL?") == "1;+1.00000000E+00"
    # Watch through the control endpoint only: a SCPI query would feed the watchdog.
    wait_for(lambda: keysight.state()["psu"]["watchdog"]["tripped"], 3.0, "the watchdog to trip")
    assert time.monotonic() - last_io >= 1.0  # not before its delay
    state = keysight.state()
    assert [ch["delivering"] for ch in state["psu"]["channels"]] == [False, False, False]
    assert not state["dut"]["powered"]
    assert int(client.query("STAT:QUES:COND? (@1)")) & (1 << 10)
    assert client.query("OUTP? (@1:2)") == "1,1"  # programmed state unchanged
    client.write("OUTP:PROT:WDOG OFF;OUTP:PROT:CLE (@1:3)")
    dut = wait_for(lambda: (d := keysight.dut())["powered"] and d, 3.0, "the DUT to power up again")
    assert dut["boot_count"] == boots + 1
    assert int(client.query("STAT:QUES:COND? (@1)")) == 0
    assert abs(float(client.query("MEAS:VOLT? (@2)")) - 5.0) < 0.01


def test_io_on_any_connection_feeds_the_watchdog(keysight: Any, wait_for: Callable[..., Any]) -> None:
    arming, feeding = keysight.scpi(), keysight.scpi()
    arming.write("VOLT 5,(@2);OUTP ON,(@2);OUTP:PROT:WDOG:DEL 1;OUTP:PROT:WDOG ON")
    assert arming.query("*OPC?") == "1"
    end = time.monotonic() + 1.3

    def fed_until_end() -> bool:
        feeding.write("SYST:REM")  # a command with no reply is I/O too
        return time.monotonic() > end

    wait_for(fed_until_end, 3.0, "1.3 s of I/O (longer than the 1 s delay)", interval=0.2)
    assert not keysight.state()["psu"]["watchdog"]["tripped"]


def test_digitizer_captures_the_power_on_inrush(
    keysight: Any, psu: MessageBasedResource, wait_for: Callable[..., Any]
) -> None:
    psu.write("VOLT 3.8,(@1);CURR 5,(@1)")
    # 4000 × 20 µs = 80 ms: room for the output-on command to arrive late on a busy machine.
    psu.write("SENS:SWE:POIN 4000,(@1);SENS:SWE:TINT 20e-6,(@1);TRIG:ACQ:SOUR BUS,(@1)")
    assert psu.query("SENS:SWE:POIN? (@1);TINT? (@1)") == "+4000;+2.00000000E-05"
    psu.write("INIT:ACQ (@1)")
    psu.write("*TRG")
    psu.write("OUTP ON,(@1)")
    amps = psu.query_ascii_values("FETC:ARR:CURR? (@1)")
    volts = psu.query_ascii_values("FETC:ARR:VOLT? (@1)")
    assert psu.query("SYST:ERR?") == NO_ERROR
    assert len(amps) == len(volts) == 4000
    assert abs(amps[0]) < 0.01 and abs(volts[0]) < 0.01  # triggered before the output came on
    assert 2.5 < max(amps) < 2.8  # 3.8 V / 1.4 Ω ≈ 2.71 A, invisible to MEAS? polling
    assert abs(volts[-1] - 3.8) < 0.01
    assert 0.25 < amps[-1] < 0.35  # the OBC booting at 1.1 W


def test_digitizer_refusals(keysight: Any) -> None:
    client = keysight.scpi(timeout=1.0)
    client.write("FETC:ARR:CURR? (@1)")  # nothing acquired: no reply, an error instead
    assert client.error() == '-230,"Data corrupt or stale"'
    client.write("INIT:ACQ (@1);FETC:ARR:CURR? (@1)")  # armed, never triggered
    assert client.error() == '-221,"Settings conflict"'
    client.write("SENS:SWE:POIN 1,(@2)")
    assert client.error() == '-222,"Data out of range"'
    client.write("SENS:SWE:TINT 1e-6,(@1)")
    assert client.error() == '-222,"Data out of range"'


def test_a_pending_fetch_does_not_block_other_clients(keysight: Any) -> None:
    waiting, other = keysight.scpi(timeout=3.0), keysight.scpi(timeout=3.0)
    started = time.monotonic()  # before the trigger: the record cannot complete before started + 1 s
    waiting.write("SENS:SWE:POIN 500,(@1);SENS:SWE:TINT 2e-3,(@1);INIT:ACQ (@1);*TRG")
    waiting.write("FETC:ARR:CURR? (@1)")
    assert other.query("*IDN?") == IDN
    # Answered before the record could complete: a fetch that blocked the twin would hold this reply >= 1 s.
    assert time.monotonic() - started < 1.0
    assert len(waiting.read().split(",")) == 500
    assert time.monotonic() - started >= 1.0


def test_brownout_reboots_the_dut(keysight: Any, wait_for: Callable[..., Any]) -> None:
    client = keysight.scpi()
    boots = power_dut(client, keysight, wait_for)["boot_count"]
    assert 0.45 < float(client.query("MEAS:CURR? (@1)")) < 0.55  # idle 1.9 W at 3.8 V
    client.write("VOLT 3.0,(@1)")  # below the 3.10 V lockout
    wait_for(lambda: not keysight.dut()["powered"], 2.0, "the EPS to lock out")
    assert abs(float(client.query("MEAS:CURR? (@1)")) - 0.004) < 0.008  # quiescent only
    client.write("VOLT 3.8,(@1)")
    dut = wait_for(lambda: (d := keysight.dut())["powered"] and d, 2.0, "the EPS to come back")
    assert dut["boot_count"] == boots + 1
    assert dut["reset_cause"] == "brownout"
