"""Satellite over python-can's virtual bus against in-process fake nodes: requests, verification, telemetry,
events and the counters of every kind of bad traffic — the logic, without the twin."""

import struct
import threading

import pytest

from bench.icd import CommandRefused, UnknownMnemonic
from bench.link.image import ImageError
from bench.predicates import greater, within
from bench.satellite import SatelliteTimeout

EPS_HK_FORMAT = None


def eps_hk(icd, **fields):
    hk = icd.hk_structure("EPS", 1).structure
    raw = [fields.get(f.name, 0) for f in hk.fields]
    return struct.pack(hk.format, *raw)


def test_csp_services(virtual_link):
    sat, _nodes = virtual_link
    assert 0 < sat.ping("OBC") < 0.5
    assert sat.uptime("EPS") == 42
    ident = sat.ident("OBC")
    assert ident.revision == "v1.4.2" and ident.hostname == "obc"
    assert sat.pus_ping("ADCS") < 0.5
    assert set(sat.await_nodes_alive(2)) == {"OBC", "EPS", "ADCS", "COMMS", "PAYLOAD"}


def test_send_completes_and_builds_the_tc_from_the_icd(virtual_link):
    sat, nodes = virtual_link
    seen = []
    nodes.on_tc = lambda node, s, st, data: seen.append((node, s, st, data))
    v = sat.send("ADCS.SET_WHEEL_SPEED", axis="Z", rpm=1500)
    assert v.ok and v.accepted and v.start is not None and v.failure_code is None
    assert seen == [("ADCS", 8, 1, struct.pack(">IBh", 2, 2, 1500))]
    assert "completed" in str(v)


def test_rejection_is_a_value_with_code_and_meaning(virtual_link):
    sat, nodes = virtual_link
    nodes.reject[2] = 3
    v = sat.send("ADCS.SET_WHEEL_SPEED", axis="X", rpm=7000, check=False)
    assert not v.ok and not v.accepted
    assert (v.failed_stage, v.failure_code, v.failure_meaning) == ("acceptance", 3, "argument out of range")
    nodes.reject[2] = 7
    v = sat.send("ADCS.SET_WHEEL_SPEED", axis="X", rpm=70)
    assert v.accepted and not v.ok and v.failed_stage == "completion" and v.failure_code == 7


def test_bench_refuses_before_sending(virtual_link):
    sat, _nodes = virtual_link
    with pytest.raises(CommandRefused, match="above the maximum"):
        sat.send("ADCS.SET_WHEEL_SPEED", axis="X", rpm=7000)
    with pytest.raises(UnknownMnemonic, match="did you mean"):
        sat.send("ADCS.SET_MOD", mode="NADIR")
    assert sat.counters.frames_tx == 0


def test_silent_node_times_out_with_a_clear_message(virtual_link):
    sat, nodes = virtual_link
    nodes.silent.add("ADCS")
    with pytest.raises(SatelliteTimeout, match=r"CSP PING reply from ADCS .*nothing ever received from ADCS"):
        sat.ping("ADCS", timeout_s=0.2)
    with pytest.raises(SatelliteTimeout, match=r"acceptance of ADCS.SET_MODE .*no verification report"):
        sat.send("ADCS.SET_MODE", mode="IDLE")


def test_await_tm_wakes_on_arrival_and_times_out_with_last_value(virtual_link, icd):
    sat, nodes = virtual_link
    timer = threading.Timer(0.1, nodes.send_hk, ("EPS", 1, eps_hk(icd, VBAT=3800, IBUS=450)))
    timer.start()
    sample = sat.await_tm("EPS.IBUS", within(0.4, 0.5), timeout_s=2)
    assert sample.value == pytest.approx(0.45) and sample.index == 0
    assert sat.latest("EPS.VBAT").value == pytest.approx(3.8)
    with pytest.raises(SatelliteTimeout) as info:
        sat.await_tm("EPS.VBAT", greater(4.0), timeout_s=0.2, fresh=False)
    assert "EPS.VBAT > 4" in str(info.value) and "EPS.VBAT=3.8" in str(info.value)
    with pytest.raises(SatelliteTimeout, match=r"no ADCS\.MODE received at all"):
        sat.await_tm("ADCS.MODE", timeout_s=0.1)


def test_request_hk_returns_the_fresh_report(virtual_link):
    sat, _nodes = virtual_link
    values = sat.request_hk("EPS")
    assert values["EPS.VBAT"] == 0 and len(values) == 21
    assert sat.counters.hk_reports == 1


def test_await_event(virtual_link):
    sat, nodes = virtual_link
    mark = sat.event_mark()
    nodes.send_event("EPS", 3, 0x0201, b"\x03")
    ev = sat.await_event("EPS.LATCHUP", lambda d: d["channel"] == 3, timeout_s=1, since=mark)
    assert ev.severity == "medium" and ev.node == "EPS"
    with pytest.raises(SatelliteTimeout, match=r"event EPS\.LATCHUP.*EPS\.LATCHUP\(channel=3\)"):
        sat.await_event("EPS.LATCHUP", timeout_s=0.1)


def test_crc_errors_lost_fragments_and_malformed_pus_are_counted(virtual_link, icd):
    sat, nodes = virtual_link
    nodes.corrupt_crc = 1
    nodes.send_hk("EPS", 1, eps_hk(icd))
    nodes.drop_fragment = 1
    nodes.send_hk("EPS", 1, eps_hk(icd))
    nodes.bad_pus = 1
    nodes.send_hk("EPS", 1, eps_hk(icd))
    nodes.send_hk("EPS", 1, eps_hk(icd, VBAT=3700))
    sat.await_tm("EPS.VBAT", fresh=False, timeout_s=1)
    c = sat.counters
    assert (c.crc_errors, c.dropped_sequence, c.pus_errors, c.hk_reports) == (1, 1, 1, 1)
    assert "CRC16" in sat.malformed[-1].reason


def test_hk_that_does_not_match_the_icd_is_a_decode_error(virtual_link):
    sat, nodes = virtual_link
    nodes.send_hk("EPS", 1, b"\x00\x01")
    nodes.send_hk("EPS", 9, b"")
    sat.await_counters(lambda c: c.decode_errors == 2, 1, "two decode errors")
    reasons = [m.reason for m in sat.malformed]
    assert "EPS.EPS_HK (SID 1) has 2 data bytes" in reasons[0] and "SID 9" in reasons[1]


def test_bus_off_error_frames(virtual_link):
    import can

    sat, nodes = virtual_link
    nodes.bus.send(can.Message(arbitration_id=0x040, is_error_frame=True, data=b"\x00"))
    c = sat.await_counters(lambda c: c.bus_off, 1, "bus-off")
    assert c.bus_off_events == 1
    nodes.bus.send(can.Message(arbitration_id=0x100, is_error_frame=True, data=b"\x00"))
    c = sat.await_counters(lambda c: not c.bus_off, 1, "recovery")
    assert c.restarts == 1


def test_listeners_and_tracer_see_both_directions(virtual_link):
    sat, _nodes = virtual_link
    frames, lines = [], []
    sat.add_listener(frames.append)
    sat.add_tracer(lines.append)
    sat.ping("EPS")
    sat.remove_listener(frames.append)
    sat.remove_tracer(lines.append)
    directions = [m.is_rx for m in frames]
    assert directions == [False] * 4 + [True] * 4  # 16-byte ping + CRC32 = 4 CFP frames each way
    sat.ping("EPS")
    assert len(frames) == 8  # removed listeners hear nothing more
    assert any(" TX " in x and "PING" in x for x in lines) and any(" RX " in x for x in lines)


def _image_service(image: bytes, answer_capture: int | None = None):
    """A payload answering the IMAGE service (bench.link.image) from ``image``, as capture 7."""

    def reply(request: bytes) -> bytes:
        capture, offset, length = struct.unpack(">IIH", request)
        if capture != 7:
            return struct.pack(">IIB", capture, offset, 1)
        shown = capture if answer_capture is None else answer_capture
        return struct.pack(">IIB", shown, offset, 0) + image[offset : offset + length]

    return reply


def test_an_image_is_read_chunk_by_chunk_from_the_payloads_port_and_traced(virtual_link):
    sat, nodes = virtual_link
    image = bytes(range(256)) * 3 + b"end"
    nodes.image_reply = _image_service(image)
    lines = []
    sat.add_tracer(lines.append)
    assert sat.read_image(7, len(image)) == image
    assert sum(" RX " in x and "CSP IMAGE reply" in x for x in lines) == 5  # 771 bytes in chunks of 192
    with pytest.raises(ImageError, match="image 8 at offset 0: no such image"):
        sat.read_image(8, 10)
    nodes.image_reply = _image_service(image, answer_capture=6)
    with pytest.raises(ImageError, match="asked image 7 at offset 0, got 192 bytes of image 6"):
        sat.read_image(7, len(image))
    with pytest.raises(UnknownMnemonic, match="EPS serves no 'IMAGE' port"):
        sat.read_image(7, 10, node="EPS")
    assert sat.ping("EPS") < 0.5  # the receive thread lives on
