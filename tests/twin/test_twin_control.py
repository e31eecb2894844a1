"""The control endpoint: state, switchable loads, fault injection, refusals."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest


def booted(twin: Any, wait_for: Callable[..., Any]) -> Any:
    client = twin.scpi()
    client.write("VOLT 3.8,(@1);CURR 3,(@1);OUTP ON,(@1)")
    wait_for(lambda: twin.dut()["booted"], 3.0, "the DUT to boot")
    return client


def test_state_reports_psu_and_dut(keysight: Any) -> None:
    state = keysight.state()
    assert state["psu"]["dialect"] == "keysight"
    assert [ch["channel"] for ch in state["psu"]["channels"]] == [1, 2, 3]
    assert set(state["psu"]["channels"][0]) >= {
        "voltage_setpoint",
        "current_limit",
        "output",
        "ovp_tripped",
        "ocp_tripped",
        "watchdog_tripped",
    }
    assert state["psu"]["watchdog"] == {"available": True, "enabled": False, "delay": 60.0, "tripped": False}
    assert set(state["dut"]) >= {"powered", "booted", "boot_count", "loads", "reset_cause"}
    # Latching faults with their state, all off at start (the RF path's faults are latching too).
    assert state["faults"] == {
        "psu_silent": False,
        "rf_cable_disconnected": False,
        "rf_tx_off": False,
        "rf_off_frequency": False,
        "rf_interferer": False,
    }


def test_switching_a_load_changes_the_supply_current(keysight: Any, wait_for: Callable[..., Any]) -> None:
    client = booted(keysight, wait_for)
    assert keysight.control({"cmd": "load", "name": "payload", "on": True}) == {
        "ok": True,
        "load": "payload",
        "on": True,
    }
    assert keysight.dut()["loads"]["payload"] is True
    assert abs(float(client.query("MEAS:CURR? (@1)")) - (1.9 + 3.5) / 3.8) < 0.01
    keysight.control({"cmd": "load", "name": "payload", "on": False})
    assert abs(float(client.query("MEAS:CURR? (@1)")) - 1.9 / 3.8) < 0.01


def test_loads_are_refused_while_the_dut_is_unpowered(keysight: Any) -> None:
    reply = keysight.control({"cmd": "load", "name": "heaters", "on": True})
    assert reply["ok"] is False and "not powered" in reply["error"]


def test_psu_silent_makes_queries_time_out(keysight: Any) -> None:
    client = keysight.scpi(timeout=0.3)
    try:
        assert keysight.control({"cmd": "fault", "name": "psu_silent", "on": True})["ok"]
        assert keysight.state()["faults"]["psu_silent"] is True
        with pytest.raises(TimeoutError):
            client.query("*IDN?")
    finally:
        keysight.control({"cmd": "fault", "name": "psu_silent", "on": False})
    client.sock.settimeout(5.0)  # the short timeout was for the silence; an answer due may take longer
    assert client.query("*IDN?").startswith("Keysight")


def test_psu_drop_closes_every_connection(keysight: Any) -> None:
    first, second = keysight.scpi(), keysight.scpi()
    assert first.query("*OPC?") == second.query("*OPC?") == "1"
    reply = keysight.control({"cmd": "fault", "name": "psu_drop"})
    assert reply["ok"] and reply["closed"] >= 2
    for client in (first, second):
        with pytest.raises((ConnectionError, OSError)):
            client.query("*OPC?")
    assert keysight.scpi().query("*OPC?") == "1"  # still listening


@pytest.mark.parametrize(
    ("request_line", "error"),
    [
        (b"not json\n", "invalid JSON"),
        (b"[1, 2]\n", "JSON object"),
        (b'{"cmd": "self_destruct"}\n', "unknown cmd"),
        (b'{"cmd": "fault", "name": "psu_melt"}\n', "unknown fault"),
        (b'{"cmd": "fault", "name": "psu_silent"}\n', "'on' must be a bool"),
        (b'{"cmd": "load", "name": "warp_drive", "on": true}\n', "unknown load"),
    ],
)
def test_refusals(keysight: Any, request_line: bytes, error: str) -> None:
    with socket.create_connection(("127.0.0.1", keysight.port("control")), timeout=2) as sock:
        sock.sendall(request_line)
        with sock.makefile("rb") as reader:
            reply = json.loads(reader.readline())
    assert reply["ok"] is False
    assert error in reply["error"]


def test_help_lists_loads_and_faults(rigol: Any) -> None:
    reply = rigol.control({"cmd": "help"})
    assert reply["loads"] == ["adcs_wheels", "antenna_burn", "heaters", "payload", "uhf_tx"]
    assert {"psu_silent", "psu_drop"} <= set(reply["faults"])  # plus the satellite's (tests/twin_sat)
    assert rigol.state()["psu"]["watchdog"]["available"] is False
