"""Fuzz: the USB-ISS reply handling and the P31u EPS client only ever raise :class:`I2CError` on any adapter bytes.

``instruments.i2c`` documents its errors as all ``I2CError`` (an ``InstrumentError``): NACK, adapter lost,
timeout, EPS reply error. Here the real ``UsbIssI2C`` and ``P31uClient`` run over a scripted serial port whose
every read returns whatever hypothesis draws — short replies, garbage, plausible answers (right echo, status 0,
arbitrary payload) so that the housekeeping decode is reached — and whose port calls sometimes fail like an
unplugged cable. Each operation returns or raises an ``I2CError``; after "adapter lost" every later call says so
again; and a housekeeping record packed by the twin's EPS decodes to the same values on the bench.
"""

from __future__ import annotations

import termios
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
import serial
from fuzz_strategies import fuzz
from hypothesis import given
from hypothesis import strategies as st

from instruments.i2c import (
    EpsHousekeeping,
    I2CAdapterLost,
    I2CError,
    P31uClient,
    UsbIssI2C,
)
from twin.eps_i2c import HK_SIZE, EpsHousekeepingState, encode_housekeeping

# How pyserial reports a pulled cable: SerialException, OSError, and termios.error from a flush on a dead pty.
_PORT_FAILURES = (
    lambda: serial.SerialException("device disconnected"),
    lambda: OSError(5, "EIO"),
    lambda: termios.error(5, "EIO"),
)


class ScriptedPort:
    """A pyserial port whose replies and failures are drawn by hypothesis as the driver asks for them."""

    def __init__(self, data: st.DataObject) -> None:
        self._data = data
        self._command = b""
        self._echo = 0  # first data byte of the last I2C write: what a P31u echoes

    def _maybe_fail(self, failures: tuple[Callable[[], Exception], ...] = _PORT_FAILURES) -> None:
        if self._data.draw(st.integers(0, 49)) == 0:  # rarely: the cable is pulled here
            raise self._data.draw(st.sampled_from(failures))()

    def reset_input_buffer(self) -> None:
        self._maybe_fail()

    def write(self, command: bytes) -> int:
        self._maybe_fail()
        self._command = bytes(command)
        if len(command) > 3 and command[0] == 0x54 and not command[1] & 1:
            self._echo = command[3]
        return len(command)

    def _sound_reply(self, n: int) -> st.SearchStrategy[bytes]:
        """What a working adapter and EPS would answer to the last command (status not always OK)."""
        cmd = self._command
        if cmd[:2] == b"\x5a\x01":
            return st.binary(min_size=2, max_size=2).map(lambda b: b"\x07" + b)
        if cmd[:2] == b"\x5a\x02":
            return st.sampled_from((b"\xff\x00", b"\xff\x00", b"\xff\x00", b"\x00\x05"))
        if cmd[:1] == b"\x54" and len(cmd) > 1 and cmd[1] & 1:
            status = st.sampled_from((0, 0, 0, 1, 0xFE))
            payload = st.binary(min_size=max(n - 2, 0), max_size=max(n - 2, 0))
            return st.tuples(status, payload).map(lambda sp: (bytes((self._echo, sp[0])) + sp[1])[:n])
        return st.sampled_from((b"\x01", b"\xff", b"\x00"))  # ACK / present, or NACK / absent

    def read(self, n: int) -> bytes:
        self._maybe_fail()
        sound = self._sound_reply(n)
        reply = self._data.draw(st.one_of(sound, sound, sound, st.binary(max_size=n + 2)))  # garbage: short or long
        return reply[:n]  # pyserial never returns more than asked

    def close(self) -> None:
        self._maybe_fail(_PORT_FAILURES[:2])  # closing only closes a descriptor: no termios call that could fail


addresses = st.integers(0, 0x7F)
payloads = st.binary(min_size=1, max_size=8)
counts = st.integers(1, 16)
operations = st.one_of(
    st.tuples(st.just("write"), addresses, payloads),
    st.tuples(st.just("read"), addresses, counts),
    st.tuples(st.just("write_read"), addresses, payloads, counts),
    st.tuples(st.just("read_register"), addresses, st.integers(0, 255), counts),
    st.tuples(st.just("write_register"), addresses, st.integers(0, 255), payloads),
    st.tuples(st.just("ping"), st.integers(0, 255)),
    st.tuples(st.just("get_housekeeping")),
    st.tuples(st.just("set_output"), st.integers(0, 255)),
    st.tuples(st.just("set_single_output"), st.integers(0, 7), st.booleans(), st.integers(-(2**15), 2**15 - 1)),
    st.tuples(st.just("reset_wdt")),
    st.tuples(st.just("reset_counters")),
)


def _run(bus: UsbIssI2C, eps: P31uClient, op: tuple[Any, ...]) -> object:
    name, *args = op
    target = bus if hasattr(bus, name) else eps
    return getattr(target, name)(*args)


@fuzz(100)
@given(data=st.data(), ops=st.lists(operations, max_size=12), clock_khz=st.sampled_from((100, 400, 1000)))
def test_usb_iss_and_p31u_raise_only_i2c_errors(
    data: st.DataObject, ops: list[tuple[Any, ...]], clock_khz: int
) -> None:
    port = ScriptedPort(data)
    with mock.patch("instruments.i2c.serial.serial_for_url", return_value=port):
        try:
            bus = UsbIssI2C("fuzz://usb-iss", clock_khz=clock_khz)
        except I2CError:
            return
    eps = P31uClient(bus)
    lost = False
    for op in ops:
        try:
            result = _run(bus, eps, op)
        except I2CAdapterLost:
            lost = True
            continue
        except I2CError:
            assert not lost, "a lost adapter must keep saying it is lost"
            continue
        assert not lost, "a lost adapter must not answer"
        if op[0] in ("read", "write_read", "read_register"):
            assert isinstance(result, bytes) and len(result) == op[-1]
        elif op[0] == "get_housekeeping":
            assert isinstance(result, EpsHousekeeping)
    bus.close()
    with pytest.raises(I2CAdapterLost):
        bus.write(0x02, b"\x01")


@fuzz(300)
@given(payload=st.binary(max_size=HK_SIZE + 2))
def test_housekeeping_decode_of_any_bytes(payload: bytes) -> None:
    try:
        hk = EpsHousekeeping.decode(payload)
    except ValueError:
        assert len(payload) != HK_SIZE
        return
    assert 0 <= hk.output_mask <= 0xFF


u16 = st.integers(-10, 0x10010)  # a little beyond the field: the twin saturates, the bench must read the bound


@fuzz(100)
@given(
    state=st.builds(
        EpsHousekeepingState,
        vbatt_mv=u16,
        cursys_ma=u16,
        vboost_mv=st.lists(u16, min_size=3, max_size=3),
        curout_ma=st.lists(u16, min_size=6, max_size=6),
        outputs=st.lists(st.booleans(), min_size=8, max_size=8),
        latchups=st.lists(u16, min_size=6, max_size=6),
        temps_c=st.lists(st.integers(-40000, 40000), min_size=6, max_size=6),
        boot_cause=st.integers(0, 255),
    ),
    counter_boot=st.integers(0, 0xFFFFFFFF),
)
def test_housekeeping_packed_by_the_twin_decodes_to_the_same_values(
    state: EpsHousekeepingState, counter_boot: int
) -> None:
    raw = encode_housekeeping(
        state, wdt_i2c_time_left=1, wdt_gnd_time_left=2, counter_wdt_i2c=3, counter_wdt_gnd=4, counter_boot=counter_boot
    )
    hk = EpsHousekeeping.decode(raw)

    def sat16(v: int) -> int:
        return max(0, min(0xFFFF, v))

    assert hk.vbatt_mv == sat16(state.vbatt_mv) and hk.cursys_ma == sat16(state.cursys_ma)
    assert hk.vboost_mv == tuple(sat16(v) for v in state.vboost_mv)
    assert hk.curout_ma == tuple(sat16(v) for v in state.curout_ma)
    assert hk.outputs == tuple(state.outputs)
    assert hk.latchups == tuple(sat16(v) for v in state.latchups)
    assert hk.temps_c == tuple(max(-32768, min(32767, t)) for t in state.temps_c)
    assert (hk.boot_cause, hk.counter_boot, hk.counter_wdt_gnd) == (state.boot_cause, counter_boot, 4)
