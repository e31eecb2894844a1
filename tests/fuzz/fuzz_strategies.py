"""Shared pieces of the decoder fuzz tests (tests/fuzz): the example-count profile and the input strategies.

Profile. Every fuzz test is decorated with :func:`fuzz`: a bounded smoke (``smoke`` examples, ~100-300) in an
ordinary ``pytest`` run, so the folder stays a few seconds in CI; ``FUZZ_EXAMPLES=N`` in the environment runs N
examples per test instead (``benchmarks/fuzz_decoders.py`` drives the long runs). No deadline — a loaded CI
machine must not turn a slow example into a failure; the long-run script times each example itself and reports
any over one second. No example database: the tests must not leave files in the tree, and a failure prints its
reproduction blob.

Strategies. Inputs come in two kinds per decoder: plain garbage (what a broken or hostile peer sends) and *valid
messages with bus faults applied* (:func:`mutated`: bit flips, truncation, inserted and deleted bytes), which get
past the first length and checksum gates and so reach the deeper parsing code.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

T = TypeVar("T")

FUZZ_EXAMPLES_ENV = "FUZZ_EXAMPLES"
SMOKE_EXAMPLES = 100
SLOW_EXAMPLE_S = 1.0  # the long run reports any single example slower than this as a hang


def max_examples(smoke: int = SMOKE_EXAMPLES) -> int:
    """``FUZZ_EXAMPLES`` if set, else the smoke count."""
    raw = os.environ.get(FUZZ_EXAMPLES_ENV, "").strip()
    return int(raw) if raw else smoke


def fuzz(smoke: int = SMOKE_EXAMPLES) -> settings:
    """The settings of one fuzz test (see the module docstring)."""
    return settings(
        max_examples=max_examples(smoke),
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- generic byte strategies ------------------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, base: bytes, max_ops: int = 3) -> bytes:
    """``base`` with 0..``max_ops`` faults applied: a flipped bit, a replaced byte, truncation, an inserted or
    deleted run of bytes. Zero faults keeps some examples valid, so the success paths are fuzzed too."""
    data = bytearray(base)
    for _ in range(draw(st.integers(0, max_ops))):
        op = draw(st.sampled_from(("flip", "set", "truncate", "insert", "delete")))
        if op == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif not data:
            continue
        elif op == "flip":
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[draw(st.integers(0, len(data) - 1)) :]
        else:
            at = draw(st.integers(0, len(data) - 1))
            del data[at : at + draw(st.integers(1, 8))]
    return bytes(data)


def bytes_or_mutation(valid: st.SearchStrategy[bytes], garbage_max: int = 64) -> st.SearchStrategy[bytes]:
    """Either plain garbage or a mutation of a valid message."""
    return st.one_of(st.binary(max_size=garbage_max), valid.flatmap(mutated))


# --- CAN -------------------------------------------------------------------------------------------------------

CAN_EFF_MAX = 0x1FFFFFFF
can_ids = st.integers(0, CAN_EFF_MAX)
can_data = st.binary(max_size=8)
raw_frames = st.tuples(can_ids, can_data)
# Clock advance before a frame: mostly none, sometimes past a 1 s reassembly timeout.
clock_steps = st.sampled_from((0.0, 0.0, 0.0, 0.001, 0.5, 1.5, 1e6))


@st.composite
def faulty_frames(draw: st.DrawFn, frames: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """A frame list after a bad bus: frames lost, repeated, swapped, their IDs or data damaged."""
    out = list(frames)
    for _ in range(draw(st.integers(0, 3))):
        if not out:
            break
        at = draw(st.integers(0, len(out) - 1))
        can_id, data = out[at]
        op = draw(st.sampled_from(("drop", "repeat", "swap", "id_bit", "data", "truncate")))
        if op == "drop":
            del out[at]
        elif op == "repeat":
            out.insert(at, out[at])
        elif op == "swap" and at + 1 < len(out):
            out[at], out[at + 1] = out[at + 1], out[at]
        elif op == "id_bit":
            out[at] = (can_id ^ (1 << draw(st.integers(0, 28))), data)
        elif op == "data":
            out[at] = (can_id, draw(can_data))
        elif op == "truncate":
            out[at] = (can_id, data[: draw(st.integers(0, len(data)))])
    return out


@st.composite
def interleaved(draw: st.DrawFn, streams: list[list[T]]) -> list[T]:
    """Merge lists keeping each one's own order (several transmitters on one bus)."""
    queues = [list(s) for s in streams if s]
    out: list[T] = []
    while queues:
        q = queues[draw(st.integers(0, len(queues) - 1))]
        out.append(q.pop(0))
        if not q:
            queues.remove(q)
    return out


# --- bits ------------------------------------------------------------------------------------------------------

bit_lists = st.lists(st.integers(0, 1), max_size=2000)


# --- text ------------------------------------------------------------------------------------------------------

# A reply an instrument could put on one line: anything but the line terminator (a reply containing "\n" is
# two replies on the wire). Weighted towards the characters that number and list parsers care about.
reply_text = st.one_of(
    st.text(st.characters(exclude_characters="\n", exclude_categories=["Cs"]), max_size=40),  # Cs: not encodable
    st.text(st.sampled_from('0123456789+-.,eE "infaINFAN_\t\r#'), max_size=30),
    st.lists(st.floats(allow_nan=True, allow_infinity=True).map(repr), min_size=1, max_size=5).map(",".join),
    st.integers(-(10**30), 10**30).map(str),
)


# --- one event loop for the twin components (they expect to run on one) ---------------------------------------

_loop: asyncio.AbstractEventLoop | None = None


def run_on_loop(coro: Coroutine[Any, Any, T], timeout_s: float = 5.0) -> T:
    """Run ``coro`` on a long-lived private event loop; a coroutine still running after ``timeout_s`` is a hang
    (``TimeoutError``). One loop for the whole session: a fresh loop per example would cost more than the example."""
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    return _loop.run_until_complete(asyncio.wait_for(coro, timeout_s))


def call_on_loop(fn: Callable[[], T], timeout_s: float = 5.0) -> T:
    """Call ``fn`` from inside the private loop (for components that look up the running loop)."""

    async def inside() -> T:
        return fn()

    return run_on_loop(inside(), timeout_s)
