"""The Rigol DP832 dialect over the wire."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import pyvisa
from pyvisa.resources import MessageBasedResource

IDN = "RIGOL TECHNOLOGIES,DP832,DP8C241000123,00.01.16"
NO_ERROR = '0,"No error"'


def test_identity_via_pyvisa(rigol: Any) -> None:
    rm = pyvisa.ResourceManager("@py")
    try:
        psu = rm.open_resource(rigol.resource(), read_termination="\n", write_termination="\n")
        assert isinstance(psu, MessageBasedResource)
        assert psu.query("*IDN?") == IDN
        assert psu.query("SYST:ERR?") == NO_ERROR
        psu.write(":APPL CH1,3.8,3")
        assert psu.query(":APPL? CH1") == "CH1,3.800,3.0000"
        psu.close()
    finally:
        rm.close()


def test_channel_selection_and_source_suffixes(rigol: Any) -> None:
    client = rigol.scpi()
    client.write(":INST:NSEL 2")
    assert client.query(":INST:NSEL?") == "2"
    client.write(":SOUR:VOLT 5;:SOUR:CURR 1.5")  # no suffix: the selected channel
    assert client.query(":SOUR2:VOLT?;:SOUR2:CURR?") == "5.000;1.5000"
    client.write(":INST CH3;:SOUR1:VOLT 12")
    assert client.query(":INST?") == "CH3"
    assert client.query(":APPL? CH1") == "CH1,12.000,3.2000"
    assert client.query(":APPL?") == "CH3,0.000,3.2000"
    assert client.error() == NO_ERROR


def test_output_and_measurements(rigol: Any, wait_for: Callable[..., Any]) -> None:
    client = rigol.scpi()
    client.write(":APPL CH1,3.8,3;:OUTP CH1,ON")
    assert client.query(":OUTP? CH1") == "ON"
    assert client.query(":OUTP? CH2") == "OFF"
    wait_for(lambda: rigol.dut()["booted"], 3.0, "the DUT to boot")
    assert abs(float(client.query(":MEAS:VOLT? CH1")) - 3.8) < 0.01
    assert abs(float(client.query(":MEAS:VOLT:DC? CH1")) - 3.8) < 0.01
    assert abs(float(client.query(":MEAS:CURR? CH1")) - 0.5) < 0.01
    assert client.query(":OUTP:MODE? CH1") == "CV"
    volts, amps, watts = (float(x) for x in client.query(":MEAS:ALL? CH1").split(","))
    assert abs(watts - volts * amps) < 1e-3
    client.write(":OUTP CH1,OFF")
    assert client.query(":OUTP? CH1") == "OFF"
    assert client.error() == NO_ERROR


def test_ovp_trip_turns_the_output_off(rigol: Any) -> None:
    client = rigol.scpi()
    client.write(":OUTP:OVP:VAL CH2,5;:OUTP:OVP CH2,ON")
    assert client.query(":OUTP:OVP? CH2") == "ON"
    assert client.query(":OUTP:OVP:VAL? CH2") == "5.000"
    client.write(":APPL CH2,6,1;:OUTP CH2,ON")
    assert client.query(":OUTP:OVP:QUES? CH2") == "YES"
    assert client.query(":OUTP? CH2") == "OFF"
    client.write(":OUTP:OVP:CLE CH2")
    assert client.query(":OUTP:OVP:QUES? CH2") == "NO"
    assert client.error() == NO_ERROR


def test_ocp_trips_at_its_value(rigol: Any, wait_for: Callable[..., Any]) -> None:
    client = rigol.scpi()
    client.write(":OUTP:OCP:VAL CH1,0.4;:OUTP:OCP CH1,ON;:APPL CH1,3.8,3;:OUTP CH1,ON")
    wait_for(lambda: client.query(":OUTP:OCP:QUES? CH1") == "YES", 3.0, "the OCP trip")  # idle 0.5 A
    assert client.query(":OUTP? CH1") == "OFF"
    client.write(":OUTP:OCP:CLE CH1")
    assert client.query(":OUTP:OCP:QUES? CH1") == "NO"
    assert client.error() == NO_ERROR


@pytest.mark.parametrize(
    ("command", "error"),
    [
        ("SENS:SWE:POIN 100,(@1)", '-113,"Undefined header"'),  # no digitizer
        ("OUTP:PROT:WDOG ON", '-113,"Undefined header"'),  # no watchdog
        (":APPL CH1,33,1", '-222,"Data out of range"'),
        (":APPL CH3,5.4", '-222,"Data out of range"'),
        (":SOUR2:CURR 3.3", '-222,"Data out of range"'),
        (":OUTP CH4,ON", '-222,"Data out of range"'),
        (":OUTP CH1,MAYBE", '-224,"Illegal parameter value"'),
        (":APPL", '-109,"Missing parameter"'),
    ],
)
def test_errors(rigol: Any, command: str, error: str) -> None:
    client = rigol.scpi()
    client.write(command)
    assert client.error() == error
    assert client.error() == NO_ERROR


def test_ratings_accept_their_maxima(rigol: Any) -> None:
    client = rigol.scpi()
    client.write(":APPL CH1,32,3.2;:APPL CH2,32,3.2;:APPL CH3,5.3,3.2")
    assert client.error() == NO_ERROR
