"""Triggered, non-blocking analyzer captures and single-shot generator playouts (twin and drivers)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from loop_support import FakeClock, LoopThread, wait_until
from rfi_rig import EmissionLog, ToneSource

from instruments.errors import CaptureTimeout, InstrumentError, InstrumentRejected, PlayoutTimeout
from instruments.vsa import IqCapture, SignalAnalyzer
from instruments.vsg import SignalGenerator
from twin.rf_instruments import AnalyzerService, Emission, GeneratorService, build_wv

Analyzer = tuple[AnalyzerService, ToneSource, str]
Generator = tuple[GeneratorService, EmissionLog, str]


class Conn:
    """A raw SCPI socket with line reads (the twin's replies are text unless a block is asked for)."""

    def __init__(self, resource: str) -> None:
        port = int(resource.split("::")[2])
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def send(self, text: str | bytes) -> None:
        self.sock.sendall((text.encode() if isinstance(text, str) else text) + b"\n")

    def line(self) -> str:
        out = bytearray()
        while not out.endswith(b"\n"):
            chunk = self.sock.recv(1)
            if not chunk:
                break
            out += chunk
        return out.decode("latin-1").rstrip("\n")

    def ask(self, text: str) -> str:
        self.send(text)
        return self.line()

    def error(self) -> int:
        return int(self.ask("SYST:ERR?").split(",")[0])

    def exact(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return bytes(out)

    def block(self, command: str) -> bytes:
        self.send(command)
        head = self.exact(2)
        assert head[:1] == b"#", head
        count = int(self.exact(int(head[1:2])))
        data = self.exact(count + 1)
        assert data[-1:] == b"\n"
        return data[:-1]

    def close(self) -> None:
        self.sock.close()


def _arm_ifp(conn: Conn, n: int = 10) -> None:
    conn.send(f"FORM REAL,32;:TRAC:IQ:RLEN {n};:TRIG:SOUR IFP;:TRIG:LEV:IFP -30;:TRIG:HOLD -1e-3;:INIT:IMM")
    assert conn.error() == 0


# -- analyzer: twin --------------------------------------------------------------------------------------


def test_ifp_capture_waits_for_the_burst_while_other_commands_are_served(
    analyzer: Analyzer, loop_thread: LoopThread
) -> None:
    service, source, resource = analyzer
    a, b = Conn(resource), Conn(resource)
    try:
        _arm_ifp(a)
        wait_until(lambda: source.waiting == 1, what="the capture to wait for its trigger")
        assert a.ask("*IDN?").startswith("Rohde&Schwarz,FSV3030")
        assert a.ask("STAT:OPER:COND?") == "16"
        assert a.ask("TRIG:SOUR?;:TRIG:LEV:IFP?;:TRIG:HOLD?") == "IFP;-30.0;-0.001"
        a.send("TRAC:IQ:DATA:MEM?")  # no data while measuring: error, no reply
        assert a.error() == -221
        a.send("*OPC?")  # blocks connection a until the capture completes...
        assert b.ask("*IDN?").startswith("Rohde&Schwarz")  # ...while b is served
        assert b.ask("STAT:OPER:COND?") == "16"
        assert service.captures == 0
    finally:
        b.close()
    try:
        loop_thread.call(source.burst)
        assert a.line() == "1"
        assert a.ask("STAT:OPER:COND?") == "0"
        (request,) = source.requests
        assert (request.trigger, request.trigger_level_dbm, request.trigger_offset_s, request.n_samples) == (
            "IFP", -30.0, -1e-3, 10,
        )  # fmt: skip
        assert source.last is not None
        assert a.block("TRAC:IQ:DATA:MEM?") == source.last.tobytes()
        assert service.captures == 1
    finally:
        a.close()


def test_abort_cancels_the_capture_and_invalidates_the_memory(analyzer: Analyzer) -> None:
    service, source, resource = analyzer
    conn = Conn(resource)
    try:
        conn.send("FORM REAL,32;:TRAC:IQ:RLEN 10;:INIT:IMM;*OPC?")  # a first, good capture
        assert conn.line() == "1"
        assert len(conn.block("TRAC:IQ:DATA:MEM?")) == 80
        _arm_ifp(conn)
        wait_until(lambda: source.waiting == 1, what="the capture to wait for its trigger")
        conn.send("INIT:IMM")  # already running
        assert conn.error() == -221
        assert conn.ask("ABOR;*OPC?;:STAT:OPER:COND?") == "1;0"
        wait_until(lambda: source.cancelled == 1, what="the source to see the cancellation")
        conn.send("TRAC:IQ:DATA:MEM?")
        assert conn.error() == -230
        assert service.aborts == 1 and service.captures == 1
    finally:
        conn.close()


def test_rst_cancels_a_running_capture(analyzer: Analyzer) -> None:
    service, source, resource = analyzer
    conn = Conn(resource)
    try:
        _arm_ifp(conn)
        wait_until(lambda: source.waiting == 1, what="the capture to wait for its trigger")
        assert conn.ask("*RST;*OPC?;:STAT:OPER:COND?;:TRIG:SOUR?") == "1;0;IMM"
        wait_until(lambda: source.cancelled == 1, what="the source to see the cancellation")
    finally:
        conn.close()
    assert not service.measuring


def test_capture_takes_the_sources_time_and_opc_waits_for_it(analyzer: Analyzer) -> None:
    service, source, resource = analyzer
    source.delay_s = 0.15
    conn = Conn(resource)
    try:
        t0 = time.monotonic()
        assert conn.ask("TRAC:IQ:RLEN 5;:INIT;:STAT:OPER:COND?") == "16"
        assert conn.ask("*OPC?") == "1"
        assert time.monotonic() - t0 >= 0.14
        assert conn.ask("STAT:OPER:COND?") == "0"
    finally:
        conn.close()
    assert service.captures == 1


def test_trigger_parameters_are_checked(analyzer: Analyzer) -> None:
    _, _, resource = analyzer
    conn = Conn(resource)
    try:
        conn.send("TRIG:SOUR EXT")
        assert conn.error() == -224
        conn.send("TRIG:SEQ:SOUR IFPower;:TRIG:SEQ:LEV:IFP 40")
        assert conn.error() == -222
        assert conn.ask("TRIGger:SEQuence:SOURce?") == "IFP"
    finally:
        conn.close()


# -- analyzer: driver ------------------------------------------------------------------------------------


def _vsa(resource: str, n: int = 1000) -> SignalAnalyzer:
    vsa = SignalAnalyzer(resource, 2.0, capture_timeout_s=5.0)
    vsa.reset()
    vsa.set_sample_rate(100e3)
    vsa.set_record_length(n)
    return vsa


def test_capture_iq_raises_capture_timeout_and_aborts_when_no_trigger_comes(analyzer: Analyzer) -> None:
    service, source, resource = analyzer
    with _vsa(resource) as vsa:
        vsa.set_trigger("IFP", -30.0, -1e-3)
        t0 = time.monotonic()
        with pytest.raises(CaptureTimeout) as info:
            vsa.capture_iq(timeout_s=0.2)
        assert 0.2 <= time.monotonic() - t0 < 2.0
        message = str(info.value)
        assert resource in message and "-30 dBm" in message and "IF power" in message and "\n" not in message
        assert isinstance(info.value, InstrumentError) and info.value.command == "INIT:IMM"
        assert "ABOR" in service.server.received
        wait_until(lambda: source.cancelled == 1, what="the capture to be cancelled")
        assert not vsa.measuring()
        # still usable: an immediate capture works afterwards
        vsa.set_trigger("IMM")
        assert len(vsa.capture_iq().samples) == 1000


def test_capture_iq_waits_for_the_trigger(analyzer: Analyzer, loop_thread: LoopThread) -> None:
    service, source, resource = analyzer
    result: list[IqCapture | BaseException] = []
    with _vsa(resource) as vsa:
        vsa.set_trigger("IFP", -40.0)

        def run() -> None:
            try:
                result.append(vsa.capture_iq(timeout_s=5.0))
            except BaseException as exc:  # reported below
                result.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        wait_until(lambda: source.waiting == 1, what="the capture to wait for its trigger")
        assert not result
        source.overload = True
        loop_thread.call(source.burst)
        thread.join(5)
    (capture,) = result
    assert isinstance(capture, IqCapture)
    assert capture.overload is True
    assert source.last is not None
    np.testing.assert_array_equal(capture.samples, source.last)
    assert source.requests[-1].trigger == "IFP" and source.requests[-1].trigger_level_dbm == -40.0
    assert "ABOR" not in service.server.received


# -- generator: twin -------------------------------------------------------------------------------------


Clocked = tuple[GeneratorService, EmissionLog, FakeClock, str]


@pytest.fixture
def clocked_generator(loop_thread: LoopThread) -> Iterator[Clocked]:
    clock = FakeClock()
    log = EmissionLog()
    service = GeneratorService(log, clock=clock)
    port = loop_thread.run(service.start("127.0.0.1", 0))
    yield service, log, clock, f"TCPIP0::127.0.0.1::{port}::SOCKET"
    loop_thread.run(service.stop())


def _load(conn: Conn, n: int, clock_hz: float, name: str = "burst") -> np.ndarray:
    iq = np.arange(2 * n, dtype=np.int16).reshape(-1, 2)
    wv = build_wv(iq, clock_hz)
    length = str(len(wv))
    conn.send(
        f"SOUR:BB:ARB:WAV:DATA '{name}',#{len(length)}{length}".encode()
        + wv
        + f";:SOUR:BB:ARB:WAV:SEL '{name}'".encode()
    )
    assert conn.error() == 0
    return iq


def test_single_shot_playout_runs_for_n_over_clock(clocked_generator: Clocked) -> None:
    service, log, clock, resource = clocked_generator
    conn = Conn(resource)
    try:
        iq = _load(conn, 1000, 1e6)  # 1 ms
        conn.send("SOUR:FREQ 437.5e6;:SOUR:POW -60;:OUTP ON;:SOUR:BB:ARB:SEQ SING;:SOUR:BB:ARB:STAT ON")
        assert conn.error() == 0
        assert conn.ask("SOUR:BB:ARB:SEQ?;:SOUR:BB:ARB:TRIG:RMOD?") == "SING;STOP"
        idle = log.events[-1]
        assert (idle.iq, idle.started_at, idle.repeat, idle.rf_on) == (None, None, False, True)
        clock.t = 1001.0
        conn.send("SOUR:BB:ARB:TRIG:EXEC")
        assert conn.error() == 0
        assert conn.ask("SOUR:BB:ARB:TRIG:RMOD?") == "RUN"
        playing = log.events[-1]
        assert isinstance(playing, Emission)
        assert (playing.freq_hz, playing.level_dbm, playing.rf_on, playing.clock_hz) == (437.5e6, -60.0, True, 1e6)
        assert (playing.started_at, playing.repeat) == (1001.0, False)
        assert playing.iq is not None
        np.testing.assert_array_equal(playing.iq, iq)
        clock.t = 1001.0005
        conn.send("SOUR:POW -70")
        assert conn.error() == 0
        changed = log.events[-1]
        assert (changed.level_dbm, changed.started_at, changed.repeat) == (-70.0, 1001.0, False)
        assert conn.ask("SOUR:BB:ARB:TRIG:RMOD?") == "RUN"
        clock.t = 1001.0011
        assert conn.ask("SOUR:BB:ARB:TRIG:RMOD?") == "STOP"
        assert service.playouts == 1
    finally:
        conn.close()


def test_auto_mode_repeats_while_the_arb_is_on(clocked_generator: Clocked) -> None:
    _, log, clock, resource = clocked_generator
    conn = Conn(resource)
    try:
        iq = _load(conn, 100, 1e6)
        assert conn.ask("SOUR:BB:ARB:SEQ?;:SOUR:BB:ARB:TRIG:RMOD?") == "AUTO;STOP"
        clock.t = 1005.0
        conn.send("SOUR:BB:ARB:STAT ON")
        assert conn.error() == 0
        on = log.events[-1]
        assert (on.started_at, on.repeat, on.rf_on) == (1005.0, True, False)
        assert on.iq is not None
        np.testing.assert_array_equal(on.iq, iq)
        clock.t = 2000.0  # long after n/clock: still running
        assert conn.ask("SOUR:BB:ARB:TRIG:RMOD?") == "RUN"
        conn.send("OUTP ON")
        assert conn.error() == 0
        assert (log.events[-1].rf_on, log.events[-1].started_at) == (True, 1005.0)
        conn.send("SOUR:BB:ARB:TRIG:EXEC")  # no single-shot trigger in AUTO
        assert conn.error() == -211
        conn.send("SOUR:BB:ARB:STAT OFF")
        assert conn.error() == 0
        off = log.events[-1]
        assert off.iq is None and off.started_at is None
        assert conn.ask("SOUR:BB:ARB:TRIG:RMOD?") == "STOP"
    finally:
        conn.close()


def test_trigger_without_waveform_or_arb_is_refused(clocked_generator: Clocked) -> None:
    service, log, _, resource = clocked_generator
    conn = Conn(resource)
    try:
        conn.send("SOUR:BB:ARB:SEQ SING;:SOUR:BB:ARB:TRIG:EXEC")
        assert conn.error() == -221
        _load(conn, 10, 1e6)
        conn.send("SOUR:BB:ARB:TRIG:EXEC")  # waveform selected but the ARB is off
        assert conn.error() == -221
        assert conn.ask("SOUR:BB:ARB:TRIG:RMOD?") == "STOP"
    finally:
        conn.close()
    assert service.playouts == 0
    assert all(e.started_at is None for e in log.events)


# -- generator: driver -----------------------------------------------------------------------------------


def test_play_once_returns_after_the_playout(generator: Generator) -> None:
    service, log, resource = generator
    iq = np.zeros((2000, 2), dtype=np.int16)  # 20 ms at 100 kHz
    with SignalGenerator(resource, max_level_dbm=0.0) as vsg:
        vsg.upload_waveform("short", iq, 100e3)
        vsg.select_waveform("short")
        vsg.set_single_shot(True)
        vsg.set_arb(True)
        assert not vsg.playing()
        t0 = time.monotonic()
        vsg.play_once(timeout_s=2.0)
        assert time.monotonic() - t0 >= 0.02
        assert not vsg.playing()
        assert service.playouts == 1
        single = [e for e in log.events if e.started_at is not None]
        assert single and all(e.repeat is False for e in single)
        with pytest.raises(InstrumentRejected) as info:  # AUTO mode: the trigger is ignored
            vsg.set_single_shot(False)
            vsg.play_once(timeout_s=1.0)
        assert info.value.code == -211


def test_play_once_times_out_on_a_long_waveform(generator: Generator) -> None:
    service, _, resource = generator
    with SignalGenerator(resource, max_level_dbm=0.0) as vsg:
        vsg.upload_waveform("long", np.zeros((4000, 2), dtype=np.int16), 400.0)  # 10 s
        vsg.select_waveform("long")
        vsg.set_single_shot(True)
        vsg.set_arb(True)
        with pytest.raises(PlayoutTimeout) as info:
            vsg.play_once(timeout_s=0.1)
        assert resource in str(info.value) and vsg.playing()
        vsg.safe_state()
        assert not vsg.playing()
    assert not service.arb_on


def test_safe_state_turns_rf_and_arb_off(generator: Generator) -> None:
    service, log, resource = generator
    with SignalGenerator(resource, max_level_dbm=0.0) as vsg:
        vsg.upload_waveform("w", np.zeros((10, 2), dtype=np.int16), 1e6)
        vsg.select_waveform("w")
        vsg.set_arb(True)
        vsg.set_rf(True)
        assert log.events[-1].iq is not None
        vsg.safe_state()
        assert not vsg.rf_on() and not vsg.arb_on()
    assert not service.rf_on and not service.arb_on
    last = log.events[-1]
    assert (last.rf_on, last.iq, last.started_at) == (False, None, None)
