"""The twin's CAN hub with real python-can clients (socketcand and slcan over socket://) and in-process nodes."""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import threading
from collections.abc import Callable

import can
import pytest
from can_hub_harness import HubThread, RawClient, recv_n
from loop_support import wait_until

from twin.canbus import CanBusStats, CanErrorClass, CanFrame, CanHub, NodePort

BusFactory = Callable[..., can.BusABC]


def msg(arbitration_id: int, data: bytes = b"", *, extended: bool = True) -> can.Message:
    return can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=extended)


def same(a: can.Message, b: can.Message) -> bool:
    return (a.arbitration_id, a.is_extended_id, bytes(a.data), a.dlc, a.is_error_frame) == (
        b.arbitration_id,
        b.is_extended_id,
        bytes(b.data),
        b.dlc,
        b.is_error_frame,
    )


def counter_frame(i: int) -> CanFrame:
    return CanFrame(0x0C000000 | (i & 0x3FF), struct.pack(">Q", i))


def counter_of(m: can.Message) -> int:
    value: int = struct.unpack(">Q", bytes(m.data))[0]
    return value


def socketcand_raw(hub: HubThread, **kwargs: int) -> RawClient:
    """A bare socketcand client taken through the handshake into raw mode."""
    client = RawClient(hub.socketcand_port, **kwargs)
    assert client.recv_exact_write() == b"< hi >"
    client.send(b"< open vcan0 >")
    assert client.recv_exact_write() == b"< ok >"
    client.send(b"< rawmode >")
    assert client.recv_exact_write() == b"< ok >"
    return client


# --- socketcand handshake -------------------------------------------------------------------------------------


def test_socketcand_handshake_is_byte_exact_and_echo_is_answered(hub: HubThread) -> None:
    client = socketcand_raw(hub)
    client.send(b"< echo >")
    assert client.read_until(b">") == b"< echo >"
    node = hub.call(hub.hub.attach, name="obc")
    hub.call(node.send_nowait, CanFrame(0x0000ABCD, b"\x01\x02"))
    hub.call(node.send_nowait, CanFrame(0x12, b"", is_extended_id=False))
    assert re.fullmatch(rb"< frame 0000ABCD \d+\.\d{6} 0102 >", client.read_until(b">"))
    assert re.fullmatch(rb"< frame 012 \d+\.\d{6}  >", client.read_until(b">"))
    client.close()


def test_handshake_survives_a_busy_bus(hub: HubThread, socketcand_bus: BusFactory) -> None:
    """Frames flowing while a client connects must not share a TCP read with its "< ok >" (python-can compares
    whole reads): five python-can clients connect while a node keeps the bus busy."""
    stop = asyncio.Event()

    async def keep_busy(node: NodePort) -> int:
        sent = 0
        while not stop.is_set():
            node.send_nowait(counter_frame(sent))
            sent += 1
            await asyncio.sleep(0.0002)
        return sent

    node = hub.call(hub.hub.attach, name="chatty")
    busy = asyncio.run_coroutine_threadsafe(keep_busy(node), hub.loop)
    try:
        buses = [socketcand_bus() for _ in range(5)]
        first = [recv_n(bus, 1)[0] for bus in buses]  # frames do arrive once the grace period is over
    finally:
        hub.loop.call_soon_threadsafe(stop.set)
    assert busy.result(5) > 0
    assert all(m.arbitration_id & 0x0C000000 for m in first)


def test_any_channel_name_lands_on_the_one_bus_and_is_reported(hub: HubThread, socketcand_bus: BusFactory) -> None:
    a = socketcand_bus("otssat0")
    b = socketcand_bus("can0")
    a.send(msg(0x100, b"\x42", extended=False))
    assert same(recv_n(b, 1)[0], msg(0x100, b"\x42", extended=False))
    assert sorted(p.channel for p in hub.port_stats("socketcand")) == ["can0", "otssat0"]


def test_unknown_command_before_raw_mode_is_answered_like_socketcand(hub: HubThread) -> None:
    client = RawClient(hub.socketcand_port)
    assert client.recv_exact_write() == b"< hi >"
    client.send(b"< bogus >")
    assert client.read_until(b">") == b"< error unknown command >"
    client.close()


# --- frames across protocols ----------------------------------------------------------------------------------


def test_frames_cross_protocols_both_ways_without_echo(socketcand_bus: BusFactory, slcan_bus: BusFactory) -> None:
    a, b, s = socketcand_bus(), socketcand_bus(), slcan_bus()
    f1, f2, f3 = msg(0x0C8A0001, b"\x01\x02\x03"), msg(0x123, b"\xff", extended=False), msg(0x1FFFFFFF, bytes(8))

    a.send(f1)
    assert same(recv_n(b, 1)[0], f1)
    assert same(recv_n(s, 1)[0], f1)

    s.send(f2)  # a's next frame is f2, not its own f1: the hub never echoes a sender
    assert same(recv_n(a, 1)[0], f2)
    assert same(recv_n(b, 1)[0], f2)

    b.send(f3)  # s's next frame is f3, not its own f2
    assert same(recv_n(a, 1)[0], f3)
    assert same(recv_n(s, 1)[0], f3)

    a.send(f1)  # and b's next frame is f1, not its own f3
    assert same(recv_n(b, 1)[0], f1)


@pytest.mark.parametrize("extended", [False, True], ids=["std", "ext"])
def test_ids_and_dlc_0_to_8_survive_every_path(
    extended: bool, socketcand_bus: BusFactory, slcan_bus: BusFactory
) -> None:
    a, b, s = socketcand_bus(), socketcand_bus(), slcan_bus()
    ids = [0x000, 0x123, 0x7FF] if not extended else [0x00000000, 0x0C8A0001, 0x1FFFFFFF]
    frames = [msg(i, bytes(range(0xF8, 0xF8 + n)) if n else b"", extended=extended) for i in ids for n in range(9)]
    for f in frames:
        a.send(f)
    for bus in (b, s):
        got = recv_n(bus, len(frames))
        assert all(same(g, f) for g, f in zip(got, frames, strict=True))
    for f in frames:
        s.send(f)
    got = recv_n(a, len(frames))
    assert all(same(g, f) for g, f in zip(got, frames, strict=True))


def test_order_is_preserved_over_1000_frames(hub: HubThread, socketcand_bus: BusFactory, slcan_bus: BusFactory) -> None:
    a, b, s = socketcand_bus(), socketcand_bus(), slcan_bus()
    seen: list[int] = []
    hub.call(hub.hub.attach, lambda f: seen.append(struct.unpack(">Q", f.data)[0]), name="obc")
    for i in range(1000):
        a.send(can.Message(arbitration_id=0x0C000000 | (i & 0x3FF), data=struct.pack(">Q", i)))
    assert [counter_of(m) for m in recv_n(b, 1000)] == list(range(1000))
    assert [counter_of(m) for m in recv_n(s, 1000)] == list(range(1000))
    wait_until(lambda: len(seen) == 1000, what="the node's 1000 frames")
    assert seen == list(range(1000))
    stats = hub.stats()
    assert stats.frames == 1000 and stats.overflow_drops == 0


def test_concurrent_senders_one_global_order(hub: HubThread, socketcand_bus: BusFactory, slcan_bus: BusFactory) -> None:
    """Two clients sending at once: every receiver sees the same interleaving, and each sender's frames in order."""
    a, b, c, s = socketcand_bus(), socketcand_bus(), socketcand_bus(), slcan_bus()
    seen: list[tuple[int, int]] = []
    hub.call(hub.hub.attach, lambda f: seen.append((f.arbitration_id, f.data[0])), name="obc")
    n = 300

    def blast(bus: can.BusABC, can_id: int) -> None:
        for i in range(n):
            bus.send(msg(can_id, bytes([i % 256])))

    senders = [threading.Thread(target=blast, args=(a, 0xA)), threading.Thread(target=blast, args=(b, 0xB))]
    for t in senders:
        t.start()
    for t in senders:
        t.join(10)
    on_c = [(m.arbitration_id, m.data[0]) for m in recv_n(c, 2 * n)]
    on_s = [(m.arbitration_id, m.data[0]) for m in recv_n(s, 2 * n)]
    wait_until(lambda: len(seen) == 2 * n, what="the node's frames")
    assert on_c == on_s == seen
    for can_id in (0xA, 0xB):
        assert [d for i, d in on_c if i == can_id] == [i % 256 for i in range(n)]


# --- in-process nodes -----------------------------------------------------------------------------------------


def test_in_process_nodes_send_and_receive(hub: HubThread, socketcand_bus: BusFactory, slcan_bus: BusFactory) -> None:
    a, s = socketcand_bus(), slcan_bus()
    eps_rx: list[CanFrame] = []
    obc_rx: list[CanFrame] = []

    async def obc_callback(frame: CanFrame) -> None:  # async callbacks are awaited in order
        await asyncio.sleep(0)
        obc_rx.append(frame)

    eps = hub.call(hub.hub.attach, eps_rx.append, name="eps")
    hub.call(hub.hub.attach, obc_callback, name="obc")

    a.send(msg(0x0A080C05, b"\x94\x10"))
    assert same(recv_n(s, 1)[0], msg(0x0A080C05, b"\x94\x10"))
    wait_until(lambda: len(eps_rx) == 1 and len(obc_rx) == 1, what="both nodes receiving the client's frame")
    assert eps_rx[0].arbitration_id == 0x0A080C05 and eps_rx[0].data == b"\x94\x10" and eps_rx[0].timestamp > 0

    reply = CanFrame(0x020A0000, b"\x01\x02\x03\x04")
    hub.run(eps.send(reply))
    for bus in (a, s):
        assert same(recv_n(bus, 1)[0], msg(0x020A0000, b"\x01\x02\x03\x04"))
    wait_until(lambda: len(obc_rx) == 2, what="the other node receiving the node's frame")
    assert obc_rx[1].data == reply.data

    s.send(msg(0x7FF, b"", extended=False))  # eps's next frame is this one, not its own reply
    wait_until(lambda: len(eps_rx) == 2, what="eps receiving the slcan frame")
    assert eps_rx[1].arbitration_id == 0x7FF and not eps_rx[1].is_extended_id
    assert {p.name: p.sent for p in hub.port_stats("node")} == {"eps": 1, "obc": 0}


def test_send_only_node_and_detach(hub: HubThread, socketcand_bus: BusFactory) -> None:
    a = socketcand_bus()
    got: list[CanFrame] = []
    listener = hub.call(hub.hub.attach, got.append, name="listener")
    talker = hub.call(hub.hub.attach, name="talker")  # no callback: sends only
    hub.call(talker.send_nowait, CanFrame(1, b"\x01"))
    assert same(recv_n(a, 1)[0], msg(1, b"\x01"))
    wait_until(lambda: len(got) == 1, what="listener frame")
    hub.call(listener.detach)
    hub.call(talker.send_nowait, CanFrame(2, b"\x02"))
    assert same(recv_n(a, 1)[0], msg(2, b"\x02"))
    assert [p.name for p in hub.port_stats("node")] == ["talker"] and len(got) == 1
    with pytest.raises(RuntimeError, match="detached"):
        hub.call(listener.send_nowait, CanFrame(3, b"\x03"))


def test_callback_errors_are_counted_and_delivery_goes_on(hub: HubThread) -> None:
    got: list[int] = []

    def flaky(frame: CanFrame) -> None:
        if frame.data == b"\x00":
            raise RuntimeError("simulated node bug")
        got.append(frame.data[0])

    hub.call(hub.hub.attach, flaky, name="flaky")
    for value in (1, 0, 2):
        hub.call(hub.hub.send_nowait, CanFrame(5, bytes([value])))
    wait_until(lambda: got == [1, 2], what="frames after the failing one")
    assert hub.stats().callback_errors == 1


# --- robustness -----------------------------------------------------------------------------------------------


def test_malformed_socketcand_lines_are_counted_and_never_answered_in_raw_mode(
    hub: HubThread, socketcand_bus: BusFactory
) -> None:
    b = socketcand_bus()
    client = socketcand_raw(hub)
    bad = [b"< send XYZ 1 0 >", b"< send 123 9 0 >", b"< send 123 2 1 >", b"< bogus >", b"garbage", b"< send 800 0 >"]
    for line in bad:
        client.send(line)
    client.send(b"< send 123 1 ab >< echo >")
    assert client.read_until(b"< echo >") == b"< echo >"  # nothing, in particular no "< error ... >", before it
    assert same(recv_n(b, 1)[0], msg(0x123, b"\xab", extended=False))
    stats = hub.stats()
    assert stats.malformed_lines == len(bad)
    assert [p.malformed for p in stats.ports if p.kind == "socketcand" and p.sent] == [len(bad)]
    client.send(b"x" * 2000)  # an endless unterminated line is discarded, not buffered for ever
    wait_until(lambda: hub.stats().malformed_lines == len(bad) + 1, what="the long garbage counted")
    client.close()


def test_slcan_command_set_byte_exact(hub: HubThread, socketcand_bus: BusFactory) -> None:
    a = socketcand_bus()
    c = RawClient(hub.slcan_port)
    c.send(b"t1230\r")  # channel still closed: refused
    assert c.read_until(b"\a") == b"\a"
    c.send(b"C\rS8\r\rO\rO\r")  # python-can's init: empty line and double open are fine
    assert c.read_until(b"\r\r\r\r\r") == b"\r\r\r\r\r"
    for command, reply in [
        (b"V\r", b"V1013\r"),
        (b"N\r", b"NA123\r"),
        (b"F\r", b"F00\r"),
        (b"Z0\r", b"\r"),
        (b"Z1\r", b"\a"),  # timestamps are never appended
        (b"S4\r", b"\a"),  # no bit rate change while open
        (b"t1232ABCD\r", b"z\r"),
        (b"T0C8A00018" + b"01" * 8 + b"\r", b"Z\r"),
        (b"r1230\r", b"z\r"),
        (b"R1FFFFFFF4\r", b"Z\r"),
        (b"X\r", b"\a"),
        (b"t12\r", b"\a"),
        (b"d1230\r", b"\a"),  # CAN FD: not on this bus
    ]:
        c.send(command)
        assert c.read_until(reply[-1:]) == reply, command
    got = recv_n(a, 2)  # remote frames are not forwarded to socketcand clients (socketcand does not either)
    assert same(got[0], msg(0x123, b"\xab\xcd", extended=False))
    assert same(got[1], msg(0x0C8A0001, b"\x01" * 8))
    c.send(b"C\rL\rt1230\r")  # listen-only: receives, may not transmit
    assert c.read_until(b"\a") == b"\r\r\a"
    assert hub.stats().malformed_lines == 5  # Z1, S4 while open, X, t12, d1230
    c.close()


def test_slcan_receive_format(hub: HubThread) -> None:
    c = RawClient(hub.slcan_port)
    c.send(b"O\r")
    assert c.read_until(b"\r") == b"\r"
    for frame in [
        CanFrame(0x0C8A0001, bytes(range(8))),
        CanFrame(0x123, b"", is_extended_id=False),
        CanFrame(0x7FF, is_extended_id=False, is_remote_frame=True, dlc=4),
    ]:
        hub.call(hub.hub.send_nowait, frame)
    hub.call(hub.hub.inject_error, CanErrorClass.PROT)  # no Lawicel encoding: skipped
    hub.call(hub.hub.send_nowait, CanFrame(0x1FFFFFFF, b"\xaa"))
    assert c.read_until(b"T1FFFFFFF1AA\r") == b"T0C8A000180001020304050607\rt1230\rr7FF4\rT1FFFFFFF1AA\r"
    c.close()


def test_client_disconnect_mid_stream_does_not_disturb_others(hub: HubThread, socketcand_bus: BusFactory) -> None:
    b = socketcand_bus()
    leaver = socketcand_raw(hub)
    node = hub.call(hub.hub.attach, name="obc")
    total = 3000

    async def stream() -> None:
        for i in range(total):
            await node.send(counter_frame(i))

    streaming = asyncio.run_coroutine_threadsafe(stream(), hub.loop)
    wait_until(lambda: leaver.read_until(b">").startswith(b"< frame"), what="the leaver receiving")
    leaver.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    leaver.close()  # abortive close (RST) while frames are still flowing to it
    assert [counter_of(m) for m in recv_n(b, total, timeout_s=10)] == list(range(total))
    streaming.result(5)
    wait_until(lambda: len(hub.port_stats("socketcand")) == 1, what="the leaver gone from the statistics")
    late = socketcand_bus()  # the hub still accepts clients
    hub.call(node.send_nowait, counter_frame(7))
    assert counter_of(recv_n(late, 1)[0]) == 7


def test_slow_client_overflows_its_own_queue_only() -> None:
    # Small buffers everywhere on the hub's side, so that the stalled client overflows after ~500 frames instead
    # of after the ~50,000 that Linux's autotuned socket buffers would absorb.
    slow_hub = HubThread(queue_limit=200, write_buffer_high=4096, socket_sndbuf=4096)
    try:
        b = can.Bus(interface="socketcand", channel="vcan0", host="127.0.0.1", port=slow_hub.socketcand_port)
        stalled = socketcand_raw(slow_hub, rcvbuf=4096)  # completes the handshake, then never reads
        node_rx: list[int] = []
        slow_hub.call(slow_hub.hub.attach, lambda f: node_rx.append(struct.unpack(">Q", f.data)[0]), name="eps")
        node = slow_hub.call(slow_hub.hub.attach, name="obc")
        slow_hub.call(node.send_nowait, counter_frame(0))  # a probe: once b has it, b is past its grace period
        assert counter_of(recv_n(b, 1)[0]) == 0
        wait_until(lambda: node_rx == [0], what="the node's probe")
        node_rx.clear()
        total = 3000
        received: list[int] = []
        reader = threading.Thread(target=lambda: received.extend(counter_of(m) for m in recv_n(b, total, timeout_s=15)))
        reader.start()

        async def stream() -> None:
            for i in range(total):
                await node.send(counter_frame(i))
                if i % 20 == 19:
                    await asyncio.sleep(0.001)  # ~15k frames/s at most: a pace the reading client keeps up with

        slow_hub.run(stream(), timeout_s=15)
        reader.join(20)
        assert received == list(range(total))  # the reading client lost nothing ...
        wait_until(lambda: len(node_rx) == total, what="the node's frames")
        assert node_rx == list(range(total))  # ... nor did the node
        stats = slow_hub.stats()
        stalled_stats = next(p for p in stats.ports if p.kind == "socketcand" and p.delivered < total)
        assert stalled_stats.dropped > 0 and stalled_stats.queued == 200
        assert stats.overflow_drops == stalled_stats.dropped
        b.shutdown()
        stalled.close()
    finally:
        slow_hub.close()


def test_slow_node_overflows_its_own_queue_only(hub: HubThread) -> None:
    got: list[int] = []
    release = asyncio.Event()

    async def blocked(frame: CanFrame) -> None:
        await release.wait()
        got.append(frame.data[0])

    hub.call(hub.hub.attach, blocked, name="stuck", queue_limit=10)

    def burst() -> None:
        for i in range(50):
            hub.hub.send_nowait(CanFrame(9, bytes([i])))

    hub.call(burst)  # one loop turn: the node's task cannot take anything off its queue meanwhile
    stuck = wait_until(lambda: [p for p in hub.port_stats("node") if p.delivered == 1], what="the node blocked")[0]
    assert (stuck.queued, stuck.dropped) == (9, 40)  # one frame in the callback, nine waiting, the rest dropped
    hub.loop.call_soon_threadsafe(release.set)
    wait_until(lambda: len(got) == 10, what="the ten queued frames")
    assert got == list(range(10))


# --- faults and statistics ------------------------------------------------------------------------------------


def test_injected_error_frames_and_bus_off(hub: HubThread, socketcand_bus: BusFactory) -> None:
    a, b = socketcand_bus(), socketcand_bus()
    node_rx: list[CanFrame] = []
    hub.call(hub.hub.attach, node_rx.append, name="obc")

    hub.call(hub.hub.inject_error, CanErrorClass.PROT)
    for bus in (a, b):
        err = recv_n(bus, 1)[0]
        assert err.is_error_frame and err.arbitration_id == CanErrorClass.PROT

    hub.call(hub.hub.inject_error, CanErrorClass.BUSOFF)
    assert recv_n(a, 1)[0].arbitration_id == CanErrorClass.BUSOFF
    b.send(msg(0x111, b"\x01"))  # lost: the bus is off
    wait_until(lambda: hub.stats().bus_off_drops == 1, what="the frame refused in bus-off")
    hub.call(hub.hub.recover)
    restarted = recv_n(a, 1)[0]
    assert restarted.is_error_frame and restarted.arbitration_id == CanErrorClass.RESTARTED
    b.send(msg(0x222, b"\x02"))
    assert same(recv_n(a, 1)[0], msg(0x222, b"\x02"))  # the bus-off frame never arrived

    hub.call(hub.hub.inject_error, CanErrorClass.BUSOFF | CanErrorClass.CRTL, bus_off_s=0.1)
    assert recv_n(a, 1)[0].arbitration_id == CanErrorClass.BUSOFF | CanErrorClass.CRTL
    assert recv_n(a, 1, timeout_s=3)[0].arbitration_id == CanErrorClass.RESTARTED  # recovered by itself
    assert not hub.stats().bus_off
    wait_until(lambda: len(node_rx) == 6, what="the node's error frames and data frame")
    assert [f.is_error_frame for f in node_rx] == [True, True, True, False, True, True]
    assert hub.stats().error_frames == 5


def test_bus_load_statistics() -> None:
    runner = HubThread(window_s=0.3)
    try:

        def load() -> CanBusStats:
            for i in range(100):
                runner.hub.send_nowait(CanFrame(i, bytes(8)))
            for i in range(50):
                runner.hub.send_nowait(CanFrame(i, b"", is_extended_id=False))
            # Read in the same loop turn: from a later call the 0.3 s window may already have slid past, if
            # this thread was descheduled in between.
            return runner.hub.stats()

        stats = runner.call(load)
        assert (stats.frames, stats.bytes, stats.frames_in_window) == (150, 800, 150)
        assert stats.bits_in_window == 100 * 131 + 50 * 47
        assert stats.bits_in_window_worst == 100 * 160 + 50 * 55
        assert stats.bus_load_pct == pytest.approx(stats.bits_in_window / (1e6 * 0.3) * 100)
        assert stats.bus_load_worst_pct == pytest.approx(stats.bits_in_window_worst / (1e6 * 0.3) * 100)
        wait_until(lambda: runner.stats().frames_in_window == 0, timeout_s=3, what="the window to slide past")
        assert runner.stats().bus_load_pct == 0 and runner.stats().frames == 150
    finally:
        runner.close()


def test_endpoints_and_banner(hub: HubThread) -> None:
    endpoints = hub.hub.endpoints()
    assert endpoints["can_socketcand"] | {"description": ""} == {
        "kind": "socketcand", "interface": "socketcand", "host": "127.0.0.1", "port": hub.socketcand_port,
        "channel": "vcan0", "bitrate": 1_000_000, "description": "",
    }  # fmt: skip
    assert endpoints["can_slcan"]["url"] == f"socket://127.0.0.1:{hub.slcan_port}"
    assert endpoints["can_slcan"]["kind"] == "slcan"
    lines = hub.hub.endpoint_lines()
    assert lines[0].startswith("can_socketcand") and f"socketcand://127.0.0.1:{hub.socketcand_port}/vcan0" in lines[0]
    assert lines[1].startswith("can_slcan") and endpoints["can_slcan"]["url"] in lines[1]


def test_hub_as_async_context_manager_closes_clients() -> None:
    async def scenario() -> bytes:
        async with CanHub() as hub:
            await hub.start("127.0.0.1", 0, 0)
            reader, writer = await asyncio.open_connection("127.0.0.1", hub.endpoints()["can_socketcand"]["port"])
            assert await reader.readexactly(6) == b"< hi >"
        rest = await reader.read()  # the hub closed the connection
        writer.close()
        return rest

    assert asyncio.run(scenario()) == b""


def test_per_protocol_services_share_one_bus_and_close_the_hub_last() -> None:
    """The shape the twin app registers: one service per listener, both on the same hub."""

    async def scenario() -> None:
        hub = CanHub()
        socketcand, slcan = hub.service("socketcand"), hub.service("slcan")
        assert (socketcand.name, socketcand.kind, socketcand.visa) == ("can_socketcand", "socketcand", False)
        sc_port = await socketcand.start("127.0.0.1", 0)
        sl_port = await slcan.start("127.0.0.1", 0)
        assert socketcand.extra == {"interface": "socketcand", "channel": "vcan0", "bitrate": 1_000_000}
        assert slcan.extra["url"] == f"socket://127.0.0.1:{sl_port}"
        got: list[CanFrame] = []
        hub.attach(got.append, name="obc")

        reader, writer = await asyncio.open_connection("127.0.0.1", sl_port)
        writer.write(b"O\rt1231AA\r")
        assert await reader.readuntil(b"z\r") == b"\rz\r"

        async def node_has_it() -> None:
            while not got:
                await asyncio.sleep(0.001)  # poll interval; ends on the predicate

        await asyncio.wait_for(node_has_it(), timeout=5)
        assert got[0].arbitration_id == 0x123

        await slcan.stop()  # its client is disconnected, the other listener stays
        assert await reader.read() == b""
        assert list(hub.endpoints()) == ["can_socketcand"] and hub.stats().ports[0].name == "obc"
        sc_reader, sc_writer = await asyncio.open_connection("127.0.0.1", sc_port)
        assert await sc_reader.readexactly(6) == b"< hi >"
        await socketcand.stop()  # the last one: the hub closes
        assert await sc_reader.read() == b"" and hub.stats().ports == ()
        writer.close()
        sc_writer.close()

    asyncio.run(scenario())
