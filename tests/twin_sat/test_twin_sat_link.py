"""The simulated satellite end to end: PSU through pyvisa, CAN through python-can socketcand, CSP + PUS by hand."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from twin_sat_harness import ICD, Egse, socketcand_bus
from twin_support import TwinUnderTest, wait_for

from twin import csp

NODES = list(ICD.nodes)


@pytest.mark.parametrize("node", NODES)
def test_csp_ping_echoes(egse: Egse, node: str) -> None:
    payload = bytes(range(30))  # 4+ frames: exercises fragmentation both ways
    assert egse.request(node, csp.PORT_PING, payload) == payload


def test_csp_ping_with_crc32(egse: Egse) -> None:
    assert egse.request("EPS", csp.PORT_PING, b"\x55", crc=True) == b"\x55"


@pytest.mark.parametrize("node", NODES)
def test_cmp_ident(egse: Egse, node: str) -> None:
    reply = egse.request(node, csp.PORT_CMP, bytes((0x00, 1)))
    assert reply[:2] == b"\xff\x01" and len(reply) == 93
    assert csp.parse_cstr(reply[2:22]) == node
    assert csp.parse_cstr(reply[22:52]) == f"OTS-SAT {node}"
    assert csp.parse_cstr(reply[52:72]).startswith("v")


def test_reserved_ports(egse: Egse) -> None:
    (free,) = struct.unpack(">I", egse.request("OBC", csp.PORT_MEMFREE))
    assert 0 < free < 1 << 20
    (buffers,) = struct.unpack(">I", egse.request("OBC", csp.PORT_BUF_FREE))
    assert buffers > 0
    (uptime,) = struct.unpack(">I", egse.request("ADCS", csp.PORT_UPTIME))
    assert uptime < 3600
    assert b"pus_app" in egse.request("EPS", csp.PORT_PS, b"\x55")
    clock = egse.request("OBC", csp.PORT_CMP, bytes((0x00, 6)) + bytes(8))
    assert clock[:2] == b"\xff\x06" and struct.unpack(">I", clock[2:6])[0] > 1_700_000_000
    stats = egse.request("EPS", csp.PORT_CMP, bytes((0x00, 3)) + b"CAN".ljust(11, b"\0"))
    tx, rx = struct.unpack(">II", stats[13:21])
    assert tx > 0 and rx > 0


@pytest.mark.parametrize("node", NODES)
def test_pus_ping(egse: Egse, node: str) -> None:
    request_id = egse.tc(node, 17, 1)
    egse.verification(node, request_id, 1)
    pong = egse.await_tm(node, lambda t: t.key == (17, 2))
    assert pong.tm is not None and pong.tm.apid == ICD.nodes[node].apid
    egse.verification(node, request_id, 7)


def test_housekeeping_obc(egse: Egse) -> None:
    hk = egse.hk("OBC")
    assert 0 <= hk["UPTIME"] < 3600 and hk["MODE"] == 1 and hk["BOOT_COUNT"] >= 1 and hk["RESET_CAUSE"] in (0, 3)
    assert 0 < hk["CPU_LOAD"] < 100 and hk["FREE_MEM"] > 100_000 and hk["OBT"] > 1_700_000_000


def test_housekeeping_eps_follows_the_power_model(egse: Egse) -> None:
    hk = egse.hk("EPS")
    assert hk["VBUS"] == pytest.approx(3.8, abs=0.05) and hk["VBAT"] == pytest.approx(3.8, abs=0.05)
    assert 0.4 < hk["IBUS"] < 3.0 and hk["IBAT"] < 0
    assert hk["OUT_OBC"] == 1 and hk["OUT_COMMS"] == 1 and hk["I_OBC"] > 0.1
    assert 15 < hk["TBAT"] < 35 and hk["BOOT_COUNT"] >= 1


def test_housekeeping_adcs_comms_payload(egse: Egse) -> None:
    adcs = egse.hk("ADCS")
    magnitude = (adcs["MAG_X"] ** 2 + adcs["MAG_Y"] ** 2 + adcs["MAG_Z"] ** 2) ** 0.5
    assert 10_000 < magnitude < 65_000 and abs(adcs["GYRO_X"]) < 10
    comms = egse.hk("COMMS")
    assert 20 <= comms["TX_POWER"] <= 33 and 5 <= comms["BEACON_PERIOD"] <= 120 and -130 < comms["RSSI"] < -100
    payload = egse.hk("PAYLOAD")
    assert payload["LAST_CAPTURE_STATUS"] in (0, 1, 2) and -20 < payload["IMAGER_TEMP"] < 60


def test_periodic_housekeeping_enable_disable(egse: Egse, sat_twin: TwinUnderTest) -> None:
    request_id = egse.tc("ADCS", 3, 5, struct.pack(">I", 1))
    egse.verification("ADCS", request_id, 7)
    egse.await_tm("ADCS", lambda t: t.key == (3, 25))
    egse.await_tm("ADCS", lambda t: t.key == (3, 25), timeout=2.5)  # the next period
    assert sat_twin.node_state("ADCS")["hk_enabled"] == [1]
    egse.verification("ADCS", egse.tc("ADCS", 3, 6, struct.pack(">I", 1)), 7)
    assert sat_twin.node_state("ADCS")["hk_enabled"] == []


def test_payload_output_steps_the_psu_current(egse: Egse, sat_twin: TwinUnderTest) -> None:
    before = sum(sat_twin.current() for _ in range(5)) / 5
    request_id = egse.function("EPS", "SET_OUTPUT", 3, True)
    egse.verification("EPS", request_id, 7)
    egse.await_tm("EPS", lambda t: t.key == (5, 1))  # OUTPUT_CHANGED
    try:
        after = sum(sat_twin.current() for _ in range(5)) / 5
        assert after - before == pytest.approx(3.5 / 3.8, abs=0.1)  # 3.5 W imager at 3.8 V
        assert egse.hk("EPS")["OUT_PAYLOAD"] == 1
        assert egse.hk("PAYLOAD")["IMAGER_POWER"] == 1
    finally:
        egse.verification("EPS", egse.function("EPS", "SET_OUTPUT", 3, False), 7)


def test_out_of_range_argument_is_rejected_with_code_3(egse: Egse) -> None:
    request_id = egse.function("COMMS", "SET_TX_POWER", 40)
    failure = egse.verification("COMMS", request_id, 2)
    assert failure.tm is not None and failure.tm.source_data[4] == 3


@pytest.mark.parametrize(
    ("node", "app_data", "code"),
    [
        ("ADCS", struct.pack(">I", 99), 2),  # unknown function id
        ("ADCS", struct.pack(">IB", 1, 1) + b"\0", 4),  # one byte too many
        ("ADCS", struct.pack(">IB", 1, 9), 3),  # not in the mode enum
    ],
)
def test_function_rejections(egse: Egse, node: str, app_data: bytes, code: int) -> None:
    failure = egse.verification(node, egse.tc(node, 8, 1, app_data), 2)
    assert failure.tm is not None and failure.tm.source_data[4] == code


def test_unknown_service_and_bad_crc(egse: Egse) -> None:
    failure = egse.verification("OBC", egse.tc("OBC", 42, 1), 2)
    assert failure.tm is not None and failure.tm.source_data[4] == 1
    from spacepackets.ecss import PusTc

    raw = bytearray(PusTc(service=17, message_subtype=1, apid=ICD.nodes["OBC"].apid, seq_count=77).pack())
    raw[-1] ^= 0xFF
    failure = egse.verification("OBC", egse.tc("OBC", 0, 0, raw=bytes(raw)), 2)
    assert failure.tm is not None and failure.tm.source_data[4] == 5


def test_capture_fails_with_imager_off_then_works(egse: Egse) -> None:
    request_id = egse.function("PAYLOAD", "CAPTURE", 10)
    event = egse.await_tm("PAYLOAD", lambda t: t.key == (5, 2))  # CAPTURE_FAILED, low severity
    assert event.tm is not None and struct.unpack(">HB", event.tm.source_data) == (0x0502, 1)
    failure = egse.verification("PAYLOAD", request_id, 8)
    assert failure.tm is not None and failure.tm.source_data[4] == 7
    egse.verification("PAYLOAD", egse.function("PAYLOAD", "POWER", True), 7)
    try:
        request_id = egse.function("PAYLOAD", "CAPTURE", 20)
        done = egse.await_tm("PAYLOAD", lambda t: t.key == (5, 1))
        assert done.tm is not None and struct.unpack(">H", done.tm.source_data[:2])[0] == 0x0501
        egse.verification("PAYLOAD", request_id, 7)
        assert egse.hk("PAYLOAD")["LAST_CAPTURE_STATUS"] == 1
    finally:
        egse.verification("PAYLOAD", egse.function("PAYLOAD", "POWER", False), 7)


def test_wheels_spin_up_when_powered(egse: Egse) -> None:
    failure = egse.verification("ADCS", egse.function("ADCS", "SET_WHEEL_SPEED", 2, 1000), 8)
    assert failure.tm is not None and failure.tm.source_data[4] == 7  # wheels unpowered: WHEEL_FAULT
    egse.verification("EPS", egse.function("EPS", "SET_OUTPUT", 1, True), 7)
    try:
        egse.verification("ADCS", egse.function("ADCS", "SET_WHEEL_SPEED", 2, 1000), 7)
        wait_for(lambda: egse.hk("ADCS")["WHEEL_Z"] > 100, 2.0, "wheel Z to spin up")
        assert egse.hk("ADCS")["IADCS"] > 0.2
    finally:
        egse.verification("EPS", egse.function("EPS", "SET_OUTPUT", 1, False), 7)


def test_parameters_report_and_set(egse: Egse) -> None:
    pid = 0x0301
    egse.verification("ADCS", egse.tc("ADCS", 20, 3, struct.pack(">HHf", 1, pid, 2.5)), 7)
    egse.tc("ADCS", 20, 1, struct.pack(">HH", 1, pid))
    report = egse.await_tm("ADCS", lambda t: t.key == (20, 2))
    assert report.tm is not None and struct.unpack(">HHf", report.tm.source_data) == (1, pid, 2.5)
    failure = egse.verification("ADCS", egse.tc("ADCS", 20, 3, struct.pack(">HHf", 1, pid, 11.0)), 2)
    assert failure.tm is not None and failure.tm.source_data[4] == 3


def test_time_report(egse: Egse) -> None:
    egse.tc("OBC", 9, 1, bytes((4,)))
    report = egse.await_tm("OBC", lambda t: t.key == (9, 3))
    assert report.tm is not None and len(report.tm.source_data) == 8


def test_nodes_are_silent_before_power_on(tmp_path: Path) -> None:
    twin = TwinUnderTest(tmp_path / "cold")
    egse = Egse(socketcand_bus(twin))
    try:
        egse.send(ICD.nodes["OBC"].address, csp.PORT_PING, b"\x55")
        assert egse.nothing_for(lambda p: True, 0.3)
        twin.power_on()
        assert egse.request("OBC", csp.PORT_PING, b"\x55") == b"\x55"
        boot = egse.await_tm("OBC", lambda t: t.key == (5, 1) and t.tm.source_data[:2] == b"\x01\x01")  # type: ignore[union-attr]
        assert boot.tm is not None and boot.tm.source_data[4] == 0  # reset cause: power on
    finally:
        egse.close()
        twin.kill()


def test_csp_v2_cfp2(tmp_path: Path) -> None:
    twin = TwinUnderTest(tmp_path / "v2", "--csp-version", "2")
    egse = Egse(socketcand_bus(twin), version=2)
    try:
        twin.power_on()
        assert twin.control({"cmd": "state"})["satellite"]["cfp_version"] == 2
        assert egse.request("EPS", csp.PORT_PING, bytes(range(25)), crc=True) == bytes(range(25))
        egse.verification("PAYLOAD", egse.tc("PAYLOAD", 17, 1), 7)
        assert egse.hk("EPS")["VBUS"] == pytest.approx(3.8, abs=0.05)
    finally:
        egse.close()
        twin.kill()


def test_beacon_burst_is_a_tx_load(egse: Egse, sat_twin: TwinUnderTest) -> None:
    # A 1 s burst (TX_BURST_MS, 250 ms by default): the state below is sampled, and the burst starts as the
    # enabling TC completes; a busy machine may take a few hundred milliseconds to look.
    burst_ms = struct.pack(">HH", 1, 0x0401)
    egse.verification("COMMS", egse.tc("COMMS", 20, 3, burst_ms + struct.pack(">H", 1000)), 7)
    egse.verification("COMMS", egse.function("COMMS", "SET_BEACON_PERIOD", 5), 7)
    egse.verification("COMMS", egse.function("COMMS", "SET_BEACON", True), 7)
    try:
        wait_for(lambda: sat_twin.control({"cmd": "state"})["dut"]["loads"]["uhf_tx"], 1.0, "the TX burst")
        event = egse.await_tm("COMMS", lambda t: t.key == (5, 1))
        assert event.tm is not None and struct.unpack(">HI", event.tm.source_data) == (0x0401, 1)
        wait_for(lambda: not sat_twin.control({"cmd": "state"})["dut"]["loads"]["uhf_tx"], 3.0, "the burst to end")
    finally:
        egse.verification("COMMS", egse.function("COMMS", "SET_BEACON", False), 7)
        egse.verification("COMMS", egse.tc("COMMS", 20, 3, burst_ms + struct.pack(">H", 250)), 7)
    assert egse.hk("COMMS")["BEACONS_SENT"] == 1


def test_busy_node_rejects_with_code_6(egse: Egse) -> None:
    egse.verification("PAYLOAD", egse.function("PAYLOAD", "POWER", True), 7)
    try:
        first = egse.function("PAYLOAD", "CAPTURE", 300)
        egse.verification("PAYLOAD", first, 3)  # started, exposing
        busy = egse.verification("PAYLOAD", egse.function("PAYLOAD", "CAPTURE", 10), 2)
        assert busy.tm is not None and busy.tm.source_data[4] == 6
        egse.verification("PAYLOAD", first, 7)
    finally:
        egse.verification("PAYLOAD", egse.function("PAYLOAD", "POWER", False), 7)
