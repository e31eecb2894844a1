"""Fuzz: the twin's byte-stream front ends — socketcand and slcan lines, the USB-ISS command parser — survive
anything a bench client sends.

* ``twin.canbus_wire``: ``parse_socketcand_send`` and ``parse_slcan_frame`` raise only ``ValueError`` (their
  documented error) and every frame they accept re-encodes to the same line.
* The hub's socketcand and slcan ports (``data_received``, as asyncio calls it with whatever TCP chunks arrive):
  no exception, malformed input counted, every frame a client transmits published once, with the bus's
  invariants (29-bit IDs, at most 8 bytes).
* The USB-ISS emulator's command parser (``feed`` in arbitrary chunks): no exception; every reply has the size
  the command's protocol promises — or the parser would leave a client reading the wrong bytes for ever; the EPS
  and temperature sensor behind it take whatever I2C writes arrive.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from fuzz_strategies import call_on_loop, fuzz, run_on_loop
from hypothesis import given
from hypothesis import strategies as st

from twin.canbus import _PORT_CLASSES, CanBusStats, CanHub
from twin.canbus_wire import CanFrame, parse_slcan_frame, parse_socketcand_send, slcan_frame
from twin.eps_i2c import EPS_I2C_ADDRESS, TMP100_ADDRESS, EpsI2CDevice, Tmp100Device
from twin.usbiss import UsbIssEmulator, _Parser

hex_chars = st.sampled_from("0123456789abcdefABCDEF")
tokens = st.one_of(
    st.text(hex_chars, min_size=1, max_size=9),
    st.sampled_from(("send", "0", "8", "9", "-1", "", "123", "1FFFFFFF", "20000000", "7FF", "800")),
    st.text(max_size=4),
)


@fuzz(100)
@given(words=st.lists(tokens, max_size=12))
def test_socketcand_send_tokens(words: list[str]) -> None:
    line = [b"send"] + [w.encode() for w in words]
    try:
        can_id, extended, data = parse_socketcand_send(line)
    except ValueError:
        return
    assert 0 <= can_id <= (0x1FFFFFFF if extended else 0x7FF) and len(data) <= 8
    assert int(words[1]) == len(data)


slcan_lines = st.one_of(
    st.binary(max_size=30),
    st.tuples(st.sampled_from("tTrR"), st.text(hex_chars, max_size=8), st.sampled_from("0123456789"))
    .flatmap(lambda head: st.text(hex_chars, max_size=18).map(lambda data: "".join(head) + data))
    .map(str.encode),
)


@fuzz(100)
@given(line=slcan_lines)
def test_slcan_frame_lines(line: bytes) -> None:
    try:
        frame = parse_slcan_frame(line)
    except ValueError:
        return
    assert slcan_frame(frame) == line[:1] + line[1:].upper() + b"\r"  # hex digits come back upper-case


class FakeTransport(asyncio.Transport):
    """What the hub's stream ports use of an asyncio transport: the bytes written are kept."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True

    def close(self) -> None:
        self.closing = True


std_ids = st.integers(0, 0x7FF)
ext_ids = st.integers(0, 0x1FFFFFFF)
frame_data = st.binary(max_size=8)
good_socketcand_sends = st.one_of(
    st.builds(lambda i, d: f"< send {i:03X} {len(d)} {' '.join(f'{b:x}' for b in d)} >".encode(), std_ids, frame_data),
    st.builds(lambda i, d: f"< send {i:08X} {len(d)} {' '.join(f'{b:X}' for b in d)} >".encode(), ext_ids, frame_data),
)
good_slcan_frames = st.one_of(
    st.builds(lambda i, d: f"t{i:03X}{len(d)}{d.hex()}\r".encode(), std_ids, frame_data),
    st.builds(lambda i, d: f"T{i:08X}{len(d)}{d.hex().upper()}\r".encode(), ext_ids, frame_data),
    st.builds(lambda i, n: f"R{i:08X}{n}\r".encode(), ext_ids, st.integers(0, 8)),
)
socketcand_items = st.one_of(
    st.binary(max_size=40),
    st.sampled_from((b"< open vcan0 >", b"< rawmode >", b"< bcmmode >", b"< echo >", b"<", b">", b"< send ")),
    st.builds(lambda ws: ("< send " + " ".join(ws) + " >").encode(), st.lists(tokens, max_size=10)),
    good_socketcand_sends,
    good_socketcand_sends,
)
slcan_items = st.one_of(
    st.binary(max_size=40),
    st.sampled_from((b"O\r", b"L\r", b"C\r", b"S8\r", b"V\r", b"Z1\r", b"\r", b"\n")),
    slcan_lines.map(lambda line: line + b"\r"),
    good_slcan_frames,
    good_slcan_frames,
)


@st.composite
def client_stream(draw: st.DrawFn, protocol: str) -> list[bytes]:
    """A client session (mostly opened first, as a real client does) cut into arbitrary TCP chunks."""
    opening = {"socketcand": b"< open vcan0 >< rawmode >", "slcan": b"S8\rO\r"}[protocol]
    items = draw(st.lists(socketcand_items if protocol == "socketcand" else slcan_items, max_size=12))
    stream = (opening if draw(st.integers(0, 4)) else b"") + b"".join(items)
    cuts = sorted({0, len(stream), *draw(st.lists(st.integers(0, len(stream)), max_size=5))})
    return [stream[a:b] for a, b in itertools.pairwise(cuts)]


@fuzz(100)
@given(protocol=st.sampled_from(("socketcand", "slcan")), data=st.data())
def test_can_hub_ports_take_any_bytes(protocol: str, data: st.DataObject) -> None:
    chunks = data.draw(client_stream(protocol))

    async def session() -> tuple[CanBusStats, int, list[CanFrame]]:
        hub = CanHub(raw_grace_s=0.0)
        heard: list[CanFrame] = []
        listener = hub.attach(heard.append, name="listener")  # a node, as the satellite's are
        port = _PORT_CLASSES[protocol](hub, 100)
        transport = FakeTransport()
        port.connection_made(transport)
        for chunk in chunks:
            port.data_received(chunk)
        while listener.queue:  # let the node take what the client sent
            await asyncio.sleep(0)
        port.connection_lost(None)
        stats = hub.stats()
        await hub.close()
        return stats, port.malformed, heard

    stats, malformed, heard = run_on_loop(session())
    assert stats.callback_errors == 0
    assert stats.malformed_lines == malformed
    assert len(heard) == stats.frames  # every frame a client put on the bus reached the node once


# --- USB-ISS ----------------------------------------------------------------------------------------------------

iss_commands = st.one_of(
    st.binary(max_size=12),
    st.sampled_from((b"\x5a\x01", b"\x5a\x03", b"\x5a\x02\x60\x0a", b"\x5a\x02\x61\x00\x01", b"\x5a\x02\x99",
                     b"\x58\x04", b"\x58\x90", b"\x54\x05\x02", b"\x54\x04\x02\x08\x00", b"\x55\x91\x00\x02",
                     b"\x57\x01\x30\x04\x31\x05\x08\x02\x30\x05\x21\x03", b"\x57" + b"\x3f" * 5, b"\x53\x91")),
    st.tuples(st.sampled_from((0x53, 0x54, 0x55, 0x56, 0x58)), st.sampled_from((0x04, 0x05, 0x90, 0x91, 0x00)),
              st.binary(max_size=10)).map(lambda t: bytes(t[:2]) + t[2]),
)  # fmt: skip


def expected_reply_size(command: bytes) -> int | None:
    """The reply size the USB-ISS protocol promises for one complete command (None: it depends on the data)."""
    cmd = command[0]
    if cmd == 0x5A:
        return {0x01: 3, 0x03: 8}.get(command[1], 2)
    if cmd == 0x58:
        return 1
    if cmd in (0x53, 0x54, 0x55, 0x56):
        header = {0x53: 2, 0x54: 3, 0x55: 4, 0x56: 5}[cmd]
        if command[1] & 1:
            return 1 if cmd == 0x53 else command[header - 1]
        return 1
    return None  # I2C_DIRECT: [FF, n] + n bytes or [00, error]


def run_usb_iss(chunks: list[bytes]) -> tuple[list[bytes], list[bytes], dict[str, int]]:
    """Feed ``chunks`` to a fresh emulator (EPS and sensor attached, time frozen): the commands it executed, its
    replies (each checked against the protocol's size as it is made) and its counters."""
    iss = UsbIssEmulator()
    iss.attach(EPS_I2C_ADDRESS, EpsI2CDevice(clock=lambda: 0.0))
    iss.attach(TMP100_ADDRESS, Tmp100Device())
    execute = iss.execute
    executed: list[bytes] = []
    replies: list[bytes] = []

    def checked(command: bytes) -> bytes:
        executed.append(command)
        reply = execute(command)
        size = expected_reply_size(command)
        if size is not None:
            assert len(reply) == size, (command, reply)
        else:
            # I2C_DIRECT: [FF, n] + n bytes read, or [00, error]
            assert (reply[:1] == b"\xff" and len(reply) == 2 + reply[1]) or (reply[:1] == b"\x00" and len(reply) == 2)
        return reply

    iss.execute = checked  # type: ignore[method-assign]
    parser = _Parser(iss, replies.append)

    def feed() -> None:
        for chunk in chunks:
            parser.feed(chunk)
        parser.close()

    call_on_loop(feed)
    return executed, replies, iss.stats


@fuzz(100)
@given(stream=st.lists(iss_commands, max_size=10).map(b"".join), cuts=st.lists(st.integers(0, 200), max_size=6))
def test_usb_iss_parser_on_any_byte_stream(stream: bytes, cuts: list[int]) -> None:
    executed, replies, stats = run_usb_iss([stream])
    # Every byte is part of one executed command, dropped as unknown, or still waiting as a partial command.
    assert sum(map(len, executed)) + stats["unknown_bytes"] <= len(stream)
    assert len(replies) <= len(executed) == stats["commands"]
    # The same bytes cut into other TCP segments are the same commands: framing never depends on timing
    # (short of the resynchronisation gap).
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    assert run_usb_iss([stream[a:b] for a, b in itertools.pairwise(bounds)])[:2] == (executed, replies)
