"""The twin's RF services at the byte level: binary-safe block reading, block replies, endpoints."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from loop_support import LoopThread
from rfi_rig import EmissionLog, ToneSource

import instruments.scpi as scpi_module
from instruments.scpi import resource_manager
from instruments.vsa import SignalAnalyzer
from twin.rf_instruments import (
    VSA_PORT,
    VSG_PORT,
    AnalyzerService,
    GeneratorService,
    build_wv,
    parse_wv,
)

Analyzer = tuple[AnalyzerService, ToneSource, str]
Generator = tuple[GeneratorService, EmissionLog, str]


def _connect(resource: str) -> socket.socket:
    port = int(resource.split("::")[2])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


def _readline(sock: socket.socket) -> bytes:
    out = bytearray()
    while not out.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        out += chunk
    return bytes(out)


def _block(data: bytes) -> bytes:
    return f"#{len(str(len(data)))}{len(data)}".encode() + data


def test_block_with_newlines_semicolons_and_quotes_then_more_commands(generator: Generator) -> None:
    service, _, resource = generator
    iq = np.array([[0x0A0A, 0x3B3B], [0x2727, 0x2222], [0x0A00, 0x230A]], dtype=np.int16)  # \n ; ' " #
    wv = build_wv(iq, 1e6)
    message = b"SOUR:BB:ARB:WAV:DATA 'a;b#1',"
    message += _block(wv) + b";:SOUR:BB:ARB:WAV:SEL 'a;b#1'\n*IDN?;SOUR:BB:ARB:WAV:SEL?\nSYST:ERR?\n"
    with _connect(resource) as sock:
        for i in range(0, len(message), 7):  # split across many TCP segments, block header included
            sock.sendall(message[i : i + 7])
        assert _readline(sock).startswith(b"Rohde&Schwarz,SMBV100B")
        assert _readline(sock) == b'0,"No error"\n'
    np.testing.assert_array_equal(service.waveforms["a;b#1"].iq, iq)
    assert service.selected == "a;b#1"


def test_bad_block_header_is_a_syntax_error(generator: Generator) -> None:
    service, _, resource = generator
    with _connect(resource) as sock:
        sock.sendall(b"SOUR:BB:ARB:WAV:DATA 'x',#0abc\nSYST:ERR?\n")
        assert _readline(sock).startswith(b"-102")
    assert service.waveforms == {}


def test_arb_on_without_waveform_is_refused(generator: Generator) -> None:
    _, _, resource = generator
    with _connect(resource) as sock:
        sock.sendall(b"SOUR:BB:ARB:STAT ON;:SYST:ERR?\n")
        assert _readline(sock).startswith(b"-221")


def test_wv_checksum_is_verified() -> None:
    iq = np.arange(8, dtype=np.int16).reshape(-1, 2)
    wv = build_wv(iq, 2e6)
    parsed = parse_wv(wv)
    np.testing.assert_array_equal(parsed.iq, iq)
    assert parsed.clock_hz == 2e6
    with pytest.raises(ValueError, match="checksum"):
        parse_wv(wv.replace(b"\x01\x00\x02\x00", b"\x01\x00\x03\x00"))


def test_analyzer_block_reply_is_ieee_definite_with_newline(analyzer: Analyzer) -> None:
    _, source, resource = analyzer
    with _connect(resource) as sock:
        sock.sendall(b"FORM REAL,32;:TRAC:IQ:RLEN 10;:INIT:IMM;*OPC?\n")
        assert _readline(sock) == b"1\n"
        sock.sendall(b"TRAC:IQ:DATA:MEM?\n")
        assert source.last is not None
        expected = b"#280" + source.last.tobytes() + b"\n"
        got = b""
        while len(got) < len(expected):
            got += sock.recv(4096)
    assert got == expected


def test_pyvisa_default_binary_query_reads_the_block(analyzer: Analyzer) -> None:
    """The block is what stock pyvisa expects too (header, float32 LE, trailing newline)."""
    _, source, resource = analyzer
    with SignalAnalyzer(resource, 2.0) as vsa:
        vsa.reset()
        vsa.set_record_length(1000)
        vsa.capture_iq()
    res = resource_manager().open_resource(resource, read_termination="\n", write_termination="\n", timeout=2000)
    try:
        values = res.query_binary_values("TRAC:IQ:DATA:MEM?", datatype="f", container=np.array)
        assert res.query("*IDN?").startswith("Rohde&Schwarz")
    finally:
        res.close()
    assert source.last is not None
    np.testing.assert_array_equal(values.astype(np.float32).view(np.complex64), source.last)


def test_generic_pyvisa_fallback_path(analyzer: Analyzer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pyvisa-py internals the driver reads the block with pyvisa's read_bytes (termchar off)."""
    _, source, resource = analyzer
    monkeypatch.setattr(scpi_module._BlockReader, "read_into", scpi_module._BlockReader._fallback_into)
    with SignalAnalyzer(resource, 2.0) as vsa:
        vsa.reset()
        vsa.set_record_length(20_000)
        capture = vsa.capture_iq()
        assert vsa.record_length() == 20_000
    assert source.last is not None and b"\n" in source.last.tobytes()
    np.testing.assert_array_equal(capture.samples, source.last)


def test_endpoints_and_default_ports(loop_thread: LoopThread) -> None:
    assert (VSA_PORT, VSG_PORT) == (5026, 5027)
    service = AnalyzerService(ToneSource())
    with pytest.raises(RuntimeError):
        service.endpoints()
    port = loop_thread.run(service.start("127.0.0.1", 0))
    try:
        record = service.endpoints()["vsa"]
        assert record["resource"] == f"TCPIP0::127.0.0.1::{port}::SOCKET"
        assert record["port"] == port and record["kind"] == "scpi"
    finally:
        loop_thread.run(service.stop())
    gen = GeneratorService(EmissionLog())
    port = loop_thread.run(gen.start("127.0.0.1", 0))
    try:
        assert gen.endpoints()["vsg"]["port"] == port
    finally:
        loop_thread.run(gen.stop())
