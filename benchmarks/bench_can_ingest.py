"""CAN hub ingest: can the twin's simulated bus carry a saturated 1 Mbit/s bus to python-can clients?

    python benchmarks/bench_can_ingest.py                 # 10 s per paced run (quick)
    python benchmarks/bench_can_ingest.py --seconds 60    # the figure quoted in the issue

The ceiling is a saturated 1 Mbit/s bus of extended 8-byte frames back to back: 131 bits each without bit
stuffing (7,634 frames/s), 160 with worst-case stuffing (6,250 frames/s); see `twin.canbus_wire`. Offering the
unstuffed figure is the harder test. Runs, each on a fresh hub (in this process, on its own event-loop thread),
every receiver a python-can client in its own process:

1. node → socketcand   an in-process node offers frames at the ceiling, paced by absolute deadlines
                       (frame k is due at t0 + k/rate; a late wake-up sends the backlog at once, so the pace
                       does not drift); one socketcand client receives.
2. socketcand → socketcand   the same offered load from a python-can socketcand client in a separate process.
3. node → slcan        the same offered load to a python-can slcan client over socket:// (python-can 4.6.1
                       reads one byte per read() call, so expect ~4,000 frames/s and drops at the hub once its
                       queue is full: that row measures the client, not the hub).
4. baseline            socketcand client → hub → socketcand client, unpaced: the pipe's raw throughput.

Every frame carries a sequence number, so the receiver counts losses, and order violations, itself.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import struct
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from twin.canbus import CanFrame, CanHub, NodePort
from twin.canbus_wire import max_frame_rate

T = TypeVar("T")
BITRATE = 1_000_000
PROBE_ID = 0x7FF  # standard ids: never confused with the extended data frames
END_ID = 0x7FE
IDLE_S = 3.0  # a receiver gives up this long after its last frame (if the end marker was dropped)


def data_frame(seq: int) -> CanFrame:
    return CanFrame(0x0C000000 | (seq & 0x3FF), struct.pack(">Q", seq))


# --- processes ------------------------------------------------------------------------------------------------


def receiver(kind: str, address: str, conn: multiprocessing.connection.Connection) -> None:
    """A python-can client in its own process: counts frames, losses and order; reports to `conn`."""
    import can  # imported here: only the spawned processes need python-can

    logging.getLogger("can").setLevel(logging.ERROR)  # python-can warns on every partial TCP read
    host, port = address.rsplit(":", 1)
    if kind == "socketcand":
        bus = can.Bus(interface="socketcand", channel="vcan0", host=host, port=int(port))
    else:
        bus = can.Bus(interface="slcan", channel=f"socket://{address}", bitrate=BITRATE, sleep_after_open=0)
    live = False
    received = expected = missing = out_of_order = 0
    first = last = 0.0
    deadline = time.monotonic() + 60.0
    while True:
        timeout = IDLE_S if received else max(0.0, deadline - time.monotonic())
        msg = bus.recv(timeout=timeout)
        if msg is None:
            break
        if not msg.is_extended_id:
            if msg.arbitration_id == PROBE_ID and not live:
                live = True
                conn.send("live")
            elif msg.arbitration_id == END_ID:
                break
            continue
        now = time.perf_counter()
        if not received:
            first = now
        last = now
        received += 1
        seq = struct.unpack(">Q", msg.data)[0]
        if seq == expected:
            expected += 1
        elif seq > expected:
            missing += seq - expected
            expected = seq + 1
        else:
            out_of_order += 1
    conn.send({"received": received, "span": last - first, "missing": missing, "out_of_order": out_of_order})
    bus.shutdown()


def sender(port: int, rate: float | None, seconds: float, conn: multiprocessing.connection.Connection) -> None:
    """A python-can socketcand client offering frames at `rate` (None: as fast as it can) for `seconds`."""
    import can

    logging.getLogger("can").setLevel(logging.ERROR)
    bus = can.Bus(interface="socketcand", channel="vcan0", host="127.0.0.1", port=port)

    def message(seq: int) -> can.Message:
        return can.Message(arbitration_id=0x0C000000 | (seq & 0x3FF), data=struct.pack(">Q", seq))

    conn.send("connected")
    conn.recv()  # go
    sent = 0
    t0 = time.perf_counter()
    if rate is not None:
        total = int(rate * seconds)
        while sent < total:
            due = min(total, int((time.perf_counter() - t0) * rate) + 1)
            while sent < due:
                bus.send(message(sent))
                sent += 1
            delay = t0 + sent / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    else:
        end = t0 + seconds
        while time.perf_counter() < end:
            for _ in range(500):
                bus.send(message(sent))
                sent += 1
    elapsed = time.perf_counter() - t0
    bus.send(can.Message(arbitration_id=END_ID, is_extended_id=False))  # behind every data frame on this TCP link
    conn.send((sent, elapsed))
    conn.recv()  # stay connected until the receiver is done
    bus.shutdown()


# --- the hub in this process ------------------------------------------------------------------------------------


class HubRunner:
    """A CanHub on its own event-loop thread, with one in-process node (also used by bench_satellite_ingest)."""

    def __init__(self, node_name: str = "bench-node") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.hub = CanHub()
        self.run(self.hub.start("127.0.0.1", 0, 0))
        self.node: NodePort = self.call(lambda: self.hub.attach(name=node_name))
        endpoints = self.hub.endpoints()
        self.socketcand = f"127.0.0.1:{endpoints['can_socketcand']['port']}"
        self.slcan = f"127.0.0.1:{endpoints['can_slcan']['port']}"
        self.slcan_url = str(endpoints["can_slcan"]["url"])

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        async def in_loop() -> T:
            return fn()

        return self.run(in_loop())

    def close(self) -> None:
        self.run(self.hub.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def until_live(self, conn: multiprocessing.connection.Connection) -> None:
        """Probe until the receiver has one (its connection is past the handshake and the grace period)."""
        deadline = time.monotonic() + 30
        while not conn.poll(0.05):
            if time.monotonic() > deadline:
                raise SystemExit("receiver never became live")
            self.call(lambda: self.hub.send_nowait(CanFrame(PROBE_ID, b"", is_extended_id=False)))
        assert conn.recv() == "live"

    async def paced(self, rate: float, seconds: float) -> tuple[int, float, float]:
        """Offer `rate` frames/s for `seconds` from the node, by absolute deadlines. → (sent, elapsed, load %)."""
        loop = asyncio.get_running_loop()
        total = int(rate * seconds)
        sent = 0
        load = 0.0
        t0 = loop.time()
        while sent < total:
            due = min(total, int((loop.time() - t0) * rate) + 1)
            while sent < due:
                self.node.send_nowait(data_frame(sent))
                sent += 1
            if loop.time() - t0 > seconds - 0.5 and not load:
                load = self.hub.stats().bus_load_pct  # a full 1 s window, before the tail
            await asyncio.sleep(max(0.0, t0 + sent / rate - loop.time()))
        elapsed = loop.time() - t0
        self.node.send_nowait(CanFrame(END_ID, b"", is_extended_id=False))
        return sent, elapsed, load

    async def flood(self, seconds: float) -> tuple[int, float, float]:
        """Send as fast as the receiving client drains (its hub queue kept under 2,000 frames) for `seconds`."""
        loop = asyncio.get_running_loop()
        sent = 0
        load = 0.0
        t0 = loop.time()
        while loop.time() - t0 < seconds:
            stats = self.hub.stats()
            if loop.time() - t0 > seconds - 0.5 and not load:
                load = stats.bus_load_pct
            if max(p.queued for p in stats.ports) < 2_000:
                for _ in range(500):
                    self.node.send_nowait(data_frame(sent))
                    sent += 1
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(0.0005)  # the client is behind: let it catch up
        elapsed = loop.time() - t0
        self.node.send_nowait(CanFrame(END_ID, b"", is_extended_id=False))
        return sent, elapsed, load


@dataclass
class Row:
    path: str
    offered: float  # frames/s actually offered
    sent: int
    received: int
    missing: int
    hub_drops: int
    out_of_order: int
    rate: float  # received / receive span
    load_pct: float


def spawn(target: Callable[..., None], *args: Any) -> tuple[Any, multiprocessing.connection.Connection]:
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=target, args=(*args, theirs), daemon=True)
    proc.start()
    return proc, ours


def run_node(kind: str, rate: float | None, seconds: float) -> Row:
    runner = HubRunner()
    try:
        proc, conn = spawn(receiver, kind, runner.socketcand if kind == "socketcand" else runner.slcan)
        runner.until_live(conn)
        offer = runner.paced(rate, seconds) if rate is not None else runner.flood(seconds)
        sent, elapsed, load = runner.run(offer)
        result = conn.recv()
        proc.join(10)
        drops = runner.call(runner.hub.stats).overflow_drops
    finally:
        runner.close()
    name = f"node → {kind}" + ("" if rate else " (as fast as it drains)")
    return Row(name, sent / elapsed, sent, result["received"], result["missing"], drops, result["out_of_order"],
               result["received"] / max(result["span"], 1e-9), load)  # fmt: skip


def run_socketcand_sender(rate: float | None, seconds: float) -> Row:
    runner = HubRunner()
    try:
        rx_proc, rx = spawn(receiver, "socketcand", runner.socketcand)
        runner.until_live(rx)
        port = int(runner.socketcand.rsplit(":", 1)[1])
        tx_proc, tx = spawn(sender, port, rate, seconds)
        assert tx.recv() == "connected"
        started = time.monotonic()
        tx.send("go")
        load = 0.0
        if seconds > 1.5:  # sample the hub's load figure once its 1 s window lies inside the run
            time.sleep(max(0.0, started + seconds - 0.3 - time.monotonic()))
            load = runner.call(runner.hub.stats).bus_load_pct
        sent, elapsed = tx.recv()
        result = rx.recv()
        tx.send("done")
        rx_proc.join(10)
        tx_proc.join(10)
        drops = runner.call(runner.hub.stats).overflow_drops
    finally:
        runner.close()
    name = "socketcand → socketcand" + ("" if rate else " (unpaced)")
    return Row(name, sent / elapsed, sent, result["received"], result["missing"], drops, result["out_of_order"],
               result["received"] / max(result["span"], 1e-9), load)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the paced socketcand runs")
    parser.add_argument("--aux-seconds", type=float, default=None,
                        help="length of the slcan and unpaced runs (default: min(seconds, 10))")  # fmt: skip
    args = parser.parse_args(argv)
    aux = args.aux_seconds if args.aux_seconds is not None else min(args.seconds, 10.0)

    ceiling, ceiling_stuffed = max_frame_rate(BITRATE)
    print("1 Mbit/s ceiling, extended 8-byte frames back to back:")
    print(f"  131 bits/frame without stuffing:          {ceiling:8.1f} frames/s  (offered below)")
    print(f"  160 bits/frame with worst-case stuffing:  {ceiling_stuffed:8.1f} frames/s")
    print()

    rows = [
        run_node("socketcand", ceiling, args.seconds),
        run_socketcand_sender(ceiling, args.seconds),
        run_node("slcan", ceiling, aux),
        run_node("socketcand", None, aux),
        run_socketcand_sender(None, aux),
    ]
    header = (f"{'path':<42} {'offered/s':>9} {'sent':>8} {'received':>8} {'lost':>7} {'hub drops':>9} "
              f"{'order err':>9} {'recv rate/s':>11} {'÷ ceiling':>9} {'load %':>6}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r.path:<42} {r.offered:9.0f} {r.sent:8d} {r.received:8d} {r.sent - r.received:7d} {r.hub_drops:9d} "
              f"{r.out_of_order:9d} {r.rate:11.0f} {r.rate / ceiling:9.3f} {r.load_pct:6.1f}")  # fmt: skip
    print()
    print("lost = sent − received; hub drops = frames the hub dropped at a full client queue (the end-of-run marker")
    print("included, when it was dropped too);")
    print("recv rate = frames received ÷ time from first to last; ÷ ceiling against 7,634 frames/s;")
    print("load % = the hub's own bus-load figure (unstuffed bits over its last 1 s window) near the end of the run.")
    ok = rows[0].sent == rows[0].received and rows[1].sent == rows[1].received
    print("\nsaturated bus to socketcand: " + ("0 frames lost" if ok else "FRAMES LOST"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
