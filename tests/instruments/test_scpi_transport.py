"""ScpiInstrument against an in-process fake: parsing, error-queue checks and the mapping of link failures."""

from __future__ import annotations

import logging
import pickle
import re
import socket
import threading
from collections.abc import Iterator

import pytest
import pyvisa
from fake_scpi import FakeScpi

from instruments.errors import (
    ConnectionLost,
    InstrumentError,
    InstrumentRejected,
    InstrumentTimeout,
    InstrumentUnreachable,
    SettingOutOfRange,
    UnexpectedReply,
)
from instruments.scpi import Identity, ScpiInstrument


def closed_port_resource() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"TCPIP0::127.0.0.1::{port}::SOCKET"


@pytest.fixture
def scpi(fake: FakeScpi) -> Iterator[ScpiInstrument]:
    instrument = ScpiInstrument(fake.resource, timeout_s=0.5)
    yield instrument
    instrument.close()


def test_query_returns_the_reply_and_logs_the_exchange_at_debug(
    fake: FakeScpi, scpi: ScpiInstrument, caplog: pytest.LogCaptureFixture
) -> None:
    fake.replies["MEAS:VOLT? (@1)"] = "+3.80012E+00"
    with caplog.at_level(logging.DEBUG, logger="instruments.scpi"):
        assert scpi.query_float("MEAS:VOLT? (@1)") == pytest.approx(3.80012)
    assert any("MEAS:VOLT? (@1) -> +3.80012E+00" in record.getMessage() for record in caplog.records)


def test_query_floats_and_query_int_parse_scpi_numbers(fake: FakeScpi, scpi: ScpiInstrument) -> None:
    fake.replies["FETC:ARR:CURR? (@1)"] = "1.0,+2.5E-01,-3e-3"
    fake.replies["STAT:QUES:COND?"] = "+1024"
    fake.replies["STAT:OPER:COND?"] = "+1.024E+03"
    assert scpi.query_floats("FETC:ARR:CURR? (@1)") == (1.0, 0.25, -0.003)
    assert scpi.query_int("STAT:QUES:COND?") == 1024
    assert scpi.query_int("STAT:OPER:COND?") == 1024


@pytest.mark.parametrize("reply", ["abc", "", "1.0,,2"])
def test_unparseable_numbers_raise_unexpected_reply_naming_the_command(
    fake: FakeScpi, scpi: ScpiInstrument, reply: str
) -> None:
    fake.replies["X?"] = reply
    with pytest.raises(UnexpectedReply, match=re.escape("'X?'")) as info:
        scpi.query_floats("X?")
    assert info.value.resource == fake.resource


def test_identity_is_parsed_from_idn_and_tolerates_missing_fields(fake: FakeScpi) -> None:
    fake.replies["*IDN?"] = "Keysight Technologies,E36312A,MY61001234,2.1.0-1.0.4-1.12"
    with ScpiInstrument(fake.resource, 0.5) as scpi:
        assert scpi.identity() == Identity("Keysight Technologies", "E36312A", "MY61001234", "2.1.0-1.0.4-1.12")
    assert Identity.parse("ACME,X1\n") == Identity("ACME", "X1", "", "")


def test_write_reads_the_error_queue_and_raises_rejected_with_code_text_and_command(
    fake: FakeScpi, scpi: ScpiInstrument
) -> None:
    fake.reject["VOLT 9"] = '-222,"Data out of range"'
    with pytest.raises(InstrumentRejected) as info:
        scpi.write("VOLT 9,(@1)")
    error = info.value
    assert (error.code, error.text, error.command) == (-222, "Data out of range", "VOLT 9,(@1)")
    assert "'VOLT 9,(@1)'" in str(error) and '-222,"Data out of range"' in str(error)
    assert fake.resource in str(error)
    # The queue was read until empty, so the next command is not blamed for this one's error.
    scpi.write("VOLT 3,(@1)")
    assert fake.received[-2:] == ["VOLT 3,(@1)", "SYST:ERR?"]


def test_write_drains_every_queued_error(fake: FakeScpi, scpi: ScpiInstrument) -> None:
    fake.errors.extend(['-100,"Command error"', '-200,"Execution error"'])
    with pytest.raises(InstrumentRejected, match=r"\+1 more queued") as info:
        scpi.write("*CLS")
    assert info.value.more == ((-200, "Execution error"),)
    assert scpi.drain_errors() == ()


def test_write_without_check_sends_only_the_command(fake: FakeScpi, scpi: ScpiInstrument) -> None:
    scpi.write("*TRG", check=False)
    scpi.query("*OPC?")  # an exchange after it proves the write has been received
    assert fake.received == ["*TRG", "*OPC?"]


def test_silent_instrument_raises_timeout_with_a_clear_message_and_the_next_call_reconnects(
    fake: FakeScpi, scpi: ScpiInstrument
) -> None:
    fake.replies["MEAS:CURR? (@1)"] = "0.5"
    fake.silent = True
    with pytest.raises(InstrumentTimeout) as info:
        scpi.query("MEAS:CURR? (@1)")
    assert str(info.value) == (
        f"no reply within 0.5 s to 'MEAS:CURR? (@1)' from {fake.resource} — is the instrument hung or the link down?"
    )
    assert info.value.command == "MEAS:CURR? (@1)"
    fake.silent = False
    assert scpi.query_float("MEAS:CURR? (@1)") == 0.5
    assert fake.connections == 2  # a fresh connection: a late reply on the old one can never be misread


def test_timeout_while_draining_the_error_queue_names_the_checked_command(fake: FakeScpi, scpi: ScpiInstrument) -> None:
    fake.silent = True
    with pytest.raises(InstrumentTimeout, match=re.escape("'OUTP 1,(@1); SYST:ERR?'")):
        scpi.write("OUTP 1,(@1)")


def test_dropped_link_raises_connection_lost_without_waiting_for_the_timeout(
    fake: FakeScpi, scpi: ScpiInstrument
) -> None:
    assert scpi.query("*OPC?") == "1"
    fake.drop()
    threading.Event().wait(0.05)  # let the FIN reach our socket (the test of the late case is below)
    with pytest.raises(ConnectionLost) as info:
        scpi.query("MEAS:VOLT? (@1)")
    assert "MEAS:VOLT? (@1)" in str(info.value) and fake.resource in str(info.value)
    assert scpi.query("*OPC?") == "1"  # reconnected


def test_link_closed_while_awaiting_a_reply_is_reported_as_lost_not_as_timeout(
    fake: FakeScpi, scpi: ScpiInstrument
) -> None:
    fake.drop_on = "MEAS:VOLT? (@1)"
    with pytest.raises(ConnectionLost, match="closed by the instrument"):
        scpi.query("MEAS:VOLT? (@1)")


def test_closed_port_is_unreachable_at_open_with_advice(fake: FakeScpi) -> None:
    resource = closed_port_resource()
    with pytest.raises(InstrumentUnreachable) as info:
        ScpiInstrument(resource, 0.5)
    message = str(info.value)
    assert resource in message and "refused" in message.lower()
    assert "check the instrument is powered and the resource string in the bench config" in message


def test_malformed_resource_string_is_unreachable() -> None:
    with pytest.raises(InstrumentUnreachable, match="not-a-resource"):
        ScpiInstrument("not-a-resource", 0.5)


def test_stray_bytes_are_discarded_by_resynchronising(fake: FakeScpi, scpi: ScpiInstrument) -> None:
    assert scpi.query("*OPC?") == "1"
    fake.send_stray(b"late reply\n")
    threading.Event().wait(0.05)
    fake.replies["VOLT? (@1)"] = "3.8"
    assert scpi.query_float("VOLT? (@1)") == 3.8


def test_close_then_use_says_to_reopen_and_reopen_restores(fake: FakeScpi, scpi: ScpiInstrument) -> None:
    scpi.close()
    with pytest.raises(InstrumentError, match="reopen"):
        scpi.query("*OPC?")
    scpi.reopen()
    assert scpi.query("*OPC?") == "1"


def test_concurrent_exchanges_never_swap_replies(fake: FakeScpi, scpi: ScpiInstrument) -> None:
    fake.handler = lambda command: command.removeprefix("ECHO? ") if command.startswith("ECHO? ") else None
    failures: list[str] = []

    def worker(tag: str) -> None:
        for i in range(200):
            expected = f"{tag}{i}"
            got = scpi.query(f"ECHO? {expected}")
            if got != expected:
                failures.append(f"{expected} != {got}")
            if i % 20 == 0:
                scpi.write(f"NOP {tag}")  # writes interleave SYST:ERR? with the other thread's queries

    threads = [threading.Thread(target=worker, args=(tag,)) for tag in "abc"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


@pytest.mark.parametrize(
    "error",
    [
        InstrumentTimeout(resource="R", command="C?", timeout_s=2.0),
        InstrumentRejected(resource="R", command="C", code=-222, text="Data out of range"),
        SettingOutOfRange(resource="R", command="C", reason="too high"),
    ],
)
def test_errors_survive_pickling(error: InstrumentError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert (str(copy), copy.resource, copy.command) == (str(error), error.resource, error.command)


def test_a_foreign_resource_manager_close_is_survived_without_an_error(fake: FakeScpi, scpi: ScpiInstrument) -> None:
    assert scpi.query("*OPC?") == "1"
    # pyvisa shares one manager per library: a script that tidies up closes our resource too.
    pyvisa.ResourceManager("@py").close()
    assert scpi.query("*OPC?") == "1"  # nothing had been sent on the dead handle: reconnect is safe
    assert fake.connections == 2
