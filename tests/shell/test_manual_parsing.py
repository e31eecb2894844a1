"""bench.manual without a bench: operator lines → checked commands, refusals in one line, completion."""

from __future__ import annotations

import pytest

from bench.config import load_config
from bench.icd import load_icd
from bench.manual import (
    CommandError,
    EventsCommand,
    PowerCommand,
    TcCommand,
    TmCommand,
    complete,
    parse_command,
    parse_value,
)

ICD = load_icd()
ENVELOPE = load_config(None).config.dut.envelope


def parse(line: str):
    return parse_command(line, ICD, ENVELOPE)


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("OFF", False), ("12", 12), ("0x0C", 12), ("-1.5", -1.5), ("NADIR", "NADIR")],
)
def test_values(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_lines_become_commands():
    assert parse("power on") == PowerCommand("on")
    assert parse("  # a comment") is None and parse("") is None
    assert parse("tc comms.set_beacon enabled=true") == TcCommand("COMMS.SET_BEACON", {"enabled": True})
    assert parse("tc COMMS.SET_TX_POWER dbm=30") == TcCommand("COMMS.SET_TX_POWER", {"dbm": 30})
    assert parse("tm COMMS.BEACON_ENABLED") == TmCommand("COMMS.BEACON_ENABLED")
    assert parse("tm eps --follow") == TmCommand("EPS", follow=True)
    assert parse("tm EPS.VBUS --count 3") == TmCommand("EPS.VBUS", follow=True, count=3)
    assert parse("events --follow") == EventsCommand(follow=True)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("tc COMMS.SET_BEACN enabled=true", "unknown command 'COMMS.SET_BEACN'; did you mean COMMS.SET_BEACON"),
        ("tc COMMS.SET_BEACON", "missing enabled"),
        ("tc COMMS.SET_BEACON enabled=true power=3", "unknown power"),
        ("tc COMMS.SET_TX_POWER dbm=40", "above the maximum 33"),
        ("tc COMMS.SET_BEACON enabled", "'enabled' is not name=value"),
        ("tm COMMS.BEACON_ENABLE", "did you mean COMMS.BEACON_ENABLED"),
        ("tm", "tm takes one"),
        ("tm EPS --count x", "--count takes a whole number"),
        ("power up", "power takes one of: on, off, status"),
        ("powr on", "did you mean power?"),
        ("tc 'unclosed", "cannot read the line"),
    ],
)
def test_refusals_are_one_line_naming_what_to_fix(line, says):
    with pytest.raises(CommandError) as err:
        parse(line)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_the_envelope_bounds_what_the_icd_allows():
    tighter = ENVELOPE.model_copy(update={"rf": ENVELOPE.rf.model_copy(update={"max_tx_power_dbm": 27.0})})
    assert parse_command("tc COMMS.SET_TX_POWER dbm=27", ICD, tighter) is not None
    with pytest.raises(CommandError, match=r"above the DUT envelope \(dut.envelope.rf.max_tx_power_dbm: 27\)"):
        parse_command("tc COMMS.SET_TX_POWER dbm=30", ICD, tighter)


def test_completion_of_verbs_mnemonics_and_arguments():
    assert complete(ICD, "", "p") == ["power "]
    assert complete(ICD, "power ", "") == ["on", "off", "status"]
    assert "COMMS.SET_BEACON" in complete(ICD, "tc comms.set_b", "comms.set_b")
    assert complete(ICD, "tc COMMS.SET_BEACON ", "") == ["enabled="]
    assert complete(ICD, "tc COMMS.SET_BEACON enabled=", "enabled=") == ["enabled=true", "enabled=false"]
    assert complete(ICD, "tm COMMS.BEACON_E", "COMMS.BEACON_E") == ["COMMS.BEACON_ENABLED"]
    assert complete(ICD, "tm EPS ", "--f") == ["--follow"]
