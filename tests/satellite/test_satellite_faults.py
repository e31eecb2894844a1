"""The satellite link under faults injected by the twin (control endpoint): every fault is seen, counted and
explained, and none hangs the bench. The twin runs as a subprocess, reached only through its protocols."""

import json
import socket
import time

import pytest

from bench.icd import load_icd
from bench.predicates import equals, greater_equal
from bench.satellite import Satellite, SatelliteTimeout, Timeouts
from bench.twin_launcher import TwinProcess
from bench.waiting import await_value
from instruments.can_adapter import CanAddress, open_can_adapter
from instruments.registry import open_power_supply


class Control:
    """The twin's JSON Lines control endpoint."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.file = self.sock.makefile("rwb")

    def __call__(self, **request):
        self.file.write(json.dumps(request).encode() + b"\n")
        self.file.flush()
        reply = json.loads(self.file.readline())
        assert reply.get("ok"), reply
        return reply

    def close(self):
        self.file.close()
        self.sock.close()


@pytest.fixture(scope="module")
def twin():
    with TwinProcess() as proc:
        psu = open_power_supply("keysight-e36312a", proc.endpoints["psu"]["resource"])
        psu.set_voltage(1, 3.8)
        psu.set_current_limit(1, 3.0)
        psu.set_output(1, True)
        try:
            yield proc
        finally:
            psu.set_output(1, False)
            psu.close()


@pytest.fixture(scope="module")
def control(twin):
    c = Control(twin.endpoints["control"]["port"])
    yield c
    c.close()


@pytest.fixture(scope="module")
def sat(twin):
    ep = twin.endpoints["can_socketcand"]
    adapter = open_can_adapter(CanAddress("socketcand", f"{ep['host']}:{ep['port']}", ep["channel"]))
    # Short acceptance: the silent-node test waits it out. Everything expected to answer has room to spare.
    timeouts = Timeouts(acceptance_s=1.0, completion_s=2.0, service_s=2.0, tm_s=3.0)
    with Satellite(adapter, load_icd(), timeouts=timeouts) as s:
        s.await_nodes_alive(timeout_s=15)
        yield s


def test_satellite_silent_node_times_out_clearly(sat, control):
    control(cmd="fault", name="node_silent", node="ADCS", on=True)
    try:
        with pytest.raises(SatelliteTimeout) as info:
            sat.ping("ADCS", timeout_s=0.3)
        assert "CSP PING reply from ADCS (address 3)" in str(info.value)
        assert "last packet from ADCS" in str(info.value) and "s ago" in str(info.value)
        with pytest.raises(SatelliteTimeout, match=r"acceptance of ADCS\.SET_MODE .*no verification report"):
            sat.send("ADCS.SET_MODE", mode="IDLE")
        with pytest.raises(SatelliteTimeout, match=r"ADCS\.MODE .*last seen"):
            sat.await_tm("ADCS.MODE", timeout_s=0.5)
        sat.ping("OBC")  # the others are unaffected: they answer (a timeout raises)
    finally:
        control(cmd="fault", name="node_silent", node="ADCS", on=False)
    sat.ping("ADCS")  # and ADCS answers again


def test_satellite_crc_errors_counted_never_a_hang(sat, control):
    before = sat.counters
    control(cmd="fault", name="crc_error", node="EPS", count=3)
    # The EPS's next three packets: TM[1,1], TM[1,3] and the HK report of this request. Completion still comes.
    with pytest.raises(SatelliteTimeout, match=r"HK report EPS\.EPS_HK .*last packet from EPS"):
        sat.request_hk("EPS", timeout_s=0.5)
    assert sat.counters.crc_errors - before.crc_errors == 3
    assert sat.request_hk("EPS")["EPS.VBAT"] > 3  # the link carries on


def test_satellite_lost_fragments_counted(sat, control):
    before = sat.counters
    control(cmd="fault", name="lost_fragment", node="EPS", count=2)
    # Both verification reports before the HK report lose a middle frame; the request still completes.
    assert "EPS.VBAT" in sat.request_hk("EPS", timeout_s=1)
    c = sat.counters
    # One sequence drop per spoiled packet; the frames after the gap count as orphans.
    assert c.dropped_sequence - before.dropped_sequence == 2
    assert c.dropped_orphan > before.dropped_orphan and c.crc_errors == before.crc_errors


def test_satellite_babbling_node_does_not_starve_the_bench(sat, control):
    before = sat.counters
    control(cmd="fault", name="babble", node="PAYLOAD", seconds=2)
    sat.await_counters(lambda c: c.non_csp_frames - before.non_csp_frames > 1000, 3, "the babble")
    rtts = [sat.ping("OBC", timeout_s=1.0) for _ in range(10)]
    assert max(rtts) < 0.5, rtts
    assert sat.send("ADCS.SET_MODE", mode="IDLE").ok


def test_satellite_bus_off_reported(sat, control):
    before = sat.counters
    control(cmd="fault", name="bus_off", seconds=1)
    c = sat.await_counters(lambda c: c.bus_off, 2, "bus-off reported")
    assert c.bus_off_events == before.bus_off_events + 1
    try:
        sat.ping("OBC", timeout_s=0.2)
    except SatelliteTimeout:
        pass  # the usual case: the request went out while the bus was off
    else:
        # Only if this test was descheduled until the bus came back: a reply may only follow the recovery
        # (its error frame comes first on the bus), never get through while the bus is off.
        assert not sat.counters.bus_off and sat.counters.restarts == before.restarts + 1
    c = sat.await_counters(lambda c: not c.bus_off, 3, "recovery from bus-off")
    assert c.restarts == before.restarts + 1
    sat.await_nodes_alive(timeout_s=3, nodes=["OBC"])


def test_satellite_reboot_mid_test_detected(sat, control):
    sat.enable_hk("OBC")
    sat.await_tm("OBC.UPTIME", greater_equal(1), timeout_s=4, fresh=False)  # up for a while: a reset shows
    boots = sat.latest("OBC.BOOT_COUNT").value
    mark = sat.event_mark()
    commanded = time.monotonic()  # the twin runs on this host: its uptime counts on this same clock
    control(cmd="reboot", node="OBC")
    boot = sat.await_event("OBC.BOOT", since=mark)
    assert boot.data["boot_count"] == boots + 1
    # The boot stopped periodic HK: the latest sample now is the last one the node sent before its reboot.
    last_before = sat.latest("OBC.UPTIME")
    # Uptime fell: the node cannot have been up for longer than since its reboot was commanded, however late
    # this test gets to ask; without a reset it would have counted on from `last_before` (>= 1 s). Comparing
    # with the value before the reboot would race: the rebooted node gets back to it if this test is slow.
    assert sat.uptime("OBC") < time.monotonic() - commanded
    sat.enable_hk("OBC")  # a boot disables periodic HK
    sat.await_tm("OBC.BOOT_COUNT", equals(boots + 1), fresh=False)  # the first report after the reboot
    first_after = next(s for s in sat.history("OBC.UPTIME") if s.seq > last_before.seq)
    assert first_after.value < first_after.monotonic - commanded  # its uptime counts from the reboot too


@pytest.mark.parametrize(("kind", "reason"), [("bad_crc", "CRC16 mismatch"), ("wrong_length", "length field")])
def test_satellite_malformed_pus_counted_with_reason(sat, control, kind, reason):
    before = sat.counters
    control(cmd="fault", name="malformed_pus", node="OBC", kind=kind, count=1)
    sat.pus_ping("EPS")  # any traffic; the OBC's next TM is spoiled
    result = sat.send("OBC.SET_MODE", mode="NOMINAL", wait="none")
    c = sat.await_counters(lambda c: c.pus_errors > before.pus_errors, 3, f"a {kind} PUS packet counted")
    assert c.pus_errors == before.pus_errors + 1
    assert reason in sat.malformed[-1].reason and sat.malformed[-1].node == "OBC"
    assert result.request_id  # the TC went out; its first report was the spoiled one


def test_satellite_csp_reboot_service(sat):
    def uptime() -> int | None:
        try:
            return sat.uptime("PAYLOAD", timeout_s=0.2)
        except SatelliteTimeout:  # rebooting: the node is silent for about half a second
            return None

    await_value(uptime, lambda u: u is not None and u >= 1, timeout_s=3, what="PAYLOAD uptime >= 1 s")
    commanded = time.monotonic()
    sat.reboot("PAYLOAD")  # CSP port 4: no reply is due, the node goes away and comes back
    # Reset: up for less than the time since the reboot was sent (the twin counts on this host's clock). Not
    # "less than before": a slow test would find the rebooted node's uptime back above a small value.
    await_value(uptime, lambda u: u is not None and u < time.monotonic() - commanded, timeout_s=3,
                what="PAYLOAD uptime restarted after the reboot")  # fmt: skip
