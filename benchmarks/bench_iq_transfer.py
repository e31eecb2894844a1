"""IQ capture transfer rate: `SignalAnalyzer.capture_iq` vs pyvisa's default binary query vs a raw socket.

Run:  .venv/bin/python benchmarks/bench_iq_transfer.py [--samples N] [--repeat R]
Import: ``run(samples=..., repeat=...)`` returns the results without printing.

The twin's `AnalyzerService` (in a background event-loop thread, 127.0.0.1) serves one capture of N complex64
samples (default 4 M = 32 MB as float32 IQ pairs; random data, so 0x0A bytes occur throughout). Measured, best
of R, interleaved so all three see the same machine load; MB = 1e6 bytes of IQ payload:

* **driver** — ``SignalAnalyzer.fetch_iq()`` (``ScpiInstrument.query_block``: header parsed by hand,
  ``recv_into`` a preallocated buffer). Target ≥ 400 MB/s. Also ``capture_iq()`` end to end (INIT:IMM, polling
  STAT:OPER:COND?, STAT:QUES:POW:COND?, the block).
* **pyvisa** — ``query_binary_values("TRAC:IQ:DATA:MEM?", datatype="f", container=np.array)`` on a
  pyvisa-py SOCKET resource with ``read_termination="\\n"`` (the bench's default), chunk_size left default.
* **socket** — a bare TCP socket (kept open, like the others): send the query, ``recv_into`` until
  header + payload + ``\\n`` (the ceiling).

Every transfer is checked against the source's array.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

try:
    import instruments  # noqa: F401 — only probing whether the project is importable
except ImportError:  # run as a plain script from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from instruments.scpi import resource_manager
from instruments.vsa import SignalAnalyzer
from twin.rf_instruments import AnalyzerService, CaptureRequest

TARGET_MB_S = 400.0


class _FixedSource:
    """An `IqSource` that completes at once with (a prefix of) one fixed array."""

    def __init__(self, data: np.ndarray) -> None:
        self._data = data

    async def capture(self, request: CaptureRequest) -> tuple[np.ndarray, bool]:
        return self._data[: request.n_samples], False


def _raw_socket_fetch(sock: socket.socket, nbytes: int) -> np.ndarray:
    """Query on an open connection and receive header + payload + newline into one preallocated buffer."""
    sock.sendall(b"TRAC:IQ:DATA:MEM?\n")
    header = f"#{len(str(nbytes))}{nbytes}".encode()
    total = len(header) + nbytes + 1
    buf = bytearray(total)
    view = memoryview(buf)
    pos = 0
    while pos < total:
        got = sock.recv_into(view[pos:], min(4 << 20, total - pos))
        if not got:
            raise ConnectionError("closed")
        pos += got
    assert buf[: len(header)] == header and buf[-1:] == b"\n"
    return np.frombuffer(buf, dtype="<c8", count=nbytes // 8, offset=len(header))


def _best(fn: Callable[[], Any], check: Callable[[Any], None], times: list[float]) -> None:
    t0 = time.perf_counter()
    result = fn()
    times.append(time.perf_counter() - t0)
    check(result)


def run(samples: int = 4 << 20, repeat: int = 5) -> dict[str, float]:
    rng = np.random.default_rng(1)
    data = (rng.standard_normal(samples) + 1j * rng.standard_normal(samples)).astype(np.complex64)
    service = AnalyzerService(_FixedSource(data))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        port = asyncio.run_coroutine_threadsafe(service.start("127.0.0.1", 0), loop).result(10)
        resource = f"TCPIP0::127.0.0.1::{port}::SOCKET"
        vsa = SignalAnalyzer(resource, 30.0, capture_timeout_s=60.0)
        vsa.reset()
        vsa.set_record_length(samples)
        vsa.capture_iq()  # warm-up; leaves the capture in memory for the other two
        visa = resource_manager().open_resource(
            resource, read_termination="\n", write_termination="\n", timeout=120_000
        )
        nbytes = samples * 8
        raw = socket.create_connection(("127.0.0.1", port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def same(result: Any) -> None:
            samples_ = result.samples if hasattr(result, "samples") else result
            arr = np.asarray(samples_)
            if arr.dtype != np.complex64:
                arr = arr.astype(np.float32).view(np.complex64)
            if not np.array_equal(arr, data):
                raise AssertionError("transfer corrupted the IQ data")

        times: dict[str, list[float]] = {"driver fetch_iq": [], "driver capture_iq": [], "pyvisa": [], "socket": []}
        for _ in range(repeat):
            _best(vsa.fetch_iq, same, times["driver fetch_iq"])
            _best(vsa.capture_iq, same, times["driver capture_iq"])
            _best(
                lambda: visa.query_binary_values("TRAC:IQ:DATA:MEM?", datatype="f", container=np.array),
                same,
                times["pyvisa"],
            )
            _best(lambda: _raw_socket_fetch(raw, nbytes), same, times["socket"])
        raw.close()
        visa.close()
        vsa.close()
        return {name: nbytes / 1e6 / min(ts) for name, ts in times.items()}
    finally:
        asyncio.run_coroutine_threadsafe(service.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=4 << 20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rates = run(args.samples, args.repeat)
    print(f"IQ transfer, {args.samples} samples = {args.samples * 8 / 1e6:.1f} MB, best of {args.repeat}:")
    for name, rate in rates.items():
        print(f"  {name:<20} {rate:8.0f} MB/s")
    driver = rates["driver fetch_iq"]
    print(f"  driver / pyvisa query_binary_values: {driver / rates['pyvisa']:.1f}x")
    print(f"  driver / raw socket:                 {driver / rates['socket']:.2f}x")
    met = driver >= TARGET_MB_S
    print(f"  target >= {TARGET_MB_S:.0f} MB/s: {'MET' if met else 'NOT MET'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
