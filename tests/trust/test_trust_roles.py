"""The session owns the bench: one role table opens every instrument, checks it is the model its driver is for
before any setting, journals it, and `bench check` validates every driver name against the same table."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import can
import pytest
import yaml
from fake_scpi import FakeScpi

from bench.config import CONFIG_DIR, ConfigError, load_config
from bench.journal import Journal
from bench.roles import ROLES, open_role
from bench.session import BenchSession
from instruments.errors import WrongInstrument
from instruments.registry import DRIVERS, driver_names, make_safe_at

PROJECT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    raw = yaml.safe_load((CONFIG_DIR / "twin-standalone.yaml").read_text())
    edit(raw)
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_every_role_has_an_opener_and_every_driver_an_importable_class():
    assert set(ROLES) == set(DRIVERS)
    for role, entries in DRIVERS.items():
        for name, entry in entries.items():
            assert callable(entry.load()), f"{role}.{name}: {entry.target}"


@pytest.mark.parametrize("role", ["psu", "analyzer", "generator", "i2c", "console"])
def test_an_unknown_driver_is_refused_at_load_naming_the_field(tmp_path, role):
    def edit(raw: dict) -> None:
        raw["instruments"][role]["driver"] = "acme-9000"

    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, edit))
    message = str(err.value)
    assert message.count("\n") == 0, message
    assert f"instruments.{role}.driver: unknown driver 'acme-9000'" in message
    assert ", ".join(DRIVERS[role]) in message  # and what it could have been


def test_bench_check_refuses_an_unknown_psu_driver_in_one_line(tmp_path):
    path = _config(tmp_path, lambda raw: raw["instruments"]["psu"].update(driver="keysight-e36313a"))
    proc = subprocess.run(
        [sys.executable, "-m", "bench.cli", "check", "-c", str(path)], capture_output=True, text=True, cwd=PROJECT
    )
    assert proc.returncode == 2
    assert "instruments.psu.driver: unknown driver 'keysight-e36313a'" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_the_can_role_takes_any_python_can_interface(tmp_path):
    assert {"socketcan", "pcan", "kvaser", "gs_usb", "vector", "virtual"} <= set(driver_names("can"))
    channel = f"bench-{uuid.uuid4().hex[:8]}"

    def edit(raw: dict) -> None:
        raw["instruments"]["can"] = {
            "driver": "virtual",
            "channel": channel,
            "options": {"receive_own_messages": False},
        }

    loaded = load_config(_config(tmp_path, edit))
    opened = open_role("can", loaded)
    peer = can.Bus(interface="virtual", channel=channel)
    try:
        assert opened.identity.maker == "virtual" and opened.resource == f"virtual:{channel}"
        opened.handle.send(0x123, b"\x01\x02")
        msg = peer.recv(timeout=5)
        assert msg is not None and msg.arbitration_id == 0x123 and bytes(msg.data) == b"\x01\x02"
    finally:
        peer.shutdown()
        opened.handle.close()


@pytest.fixture
def impostor() -> Iterator[FakeScpi]:
    """An unrelated instrument answering *IDN? (a DMM where the supply should be)."""
    server = FakeScpi(replies={"*IDN?": "Keysight Technologies,34465A,MY5400001,A.03.01"})
    yield server
    server.close()


def test_a_supply_driver_refuses_another_instrument_before_any_setting(tmp_path, impostor):
    path = _config(tmp_path, lambda raw: raw["instruments"]["psu"].update(resource=impostor.resource))
    with pytest.raises(WrongInstrument) as err:
        open_role("psu", load_config(path))
    assert "34465A" in str(err.value) and "keysight-e36312a" in str(err.value)
    assert impostor.received == ["*IDN?"], "nothing but the identity query may reach the wrong instrument"


def test_bench_safe_does_not_send_output_commands_to_the_wrong_instrument(impostor):
    with pytest.raises(WrongInstrument):
        make_safe_at("psu", "keysight-e36312a", impostor.resource)
    assert impostor.received == ["*IDN?"]


def test_a_session_against_the_wrong_instrument_never_arms_or_powers_anything(tmp_path, impostor):
    path = _config(tmp_path, lambda raw: raw["instruments"]["psu"].update(resource=impostor.resource))
    with pytest.raises(WrongInstrument):
        BenchSession.open(load_config(path), None, None, install_signals=False)
    assert impostor.received == ["*IDN?"]


def test_every_opened_instrument_is_journaled_with_its_identity(tmp_path):
    """The default twin bench: supply, analyzer, generator at open; CAN, I2C and console when first asked."""
    journal = Journal(tmp_path / "journal.jsonl")
    session = BenchSession.open(load_config(CONFIG_DIR / "twin.yaml"), journal, tmp_path, install_signals=False)
    try:
        session.can_adapter()
        session.i2c_bus()
        session.open_console(tmp_path / "console.log").close()
        session.open_console(tmp_path / "console.log").close()  # a console per test, journaled once
    finally:
        session.close("test end")
        journal.close()
    records = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    instruments = {r["role"]: r for r in records if r["kind"] == "instrument"}
    assert sorted(instruments) == ["analyzer", "can", "console", "generator", "i2c", "psu"]
    assert sum(1 for r in records if r["kind"] == "instrument" and r["role"] == "console") == 1
    assert instruments["psu"]["identity"]["model"] == "E36312A"
    assert instruments["i2c"]["identity"]["model"] == "USB-ISS"
    for role in ("can", "i2c", "console"):
        assert instruments[role]["calibration"]["status"] == "n/a"  # links measure nothing
    for role in ("psu", "analyzer", "generator"):
        assert instruments[role]["calibration"]["status"] == "valid"
