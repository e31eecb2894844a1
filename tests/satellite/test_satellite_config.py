"""Bench config for the CAN adapter and the ICD: validated at load, resolved from the twin's endpoint records,
and an adapter that cannot connect says so at once."""

import socket
from pathlib import Path
from typing import ClassVar

import pytest

from bench.config import CONFIG_DIR, ConfigError, load_config
from bench.icd import icd_path
from bench.roles import resolve_can
from instruments.can_adapter import CanAddress, open_can_adapter
from instruments.errors import InstrumentUnreachable

GOOD = (CONFIG_DIR / "twin.yaml").read_text()


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bench.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_can_entry_in_shipped_configs():
    for name, driver in [("twin", "socketcand"), ("twin-slcan", "slcan"), ("twin-standalone", "socketcand")]:
        can = load_config(CONFIG_DIR / f"{name}.yaml").config.instruments.can
        assert can is not None and can.driver == driver and can.egse_address == 10


def test_unknown_can_driver_and_typo(tmp_path):
    msg = _error(tmp_path, GOOD.replace("driver: socketcand", "driver: sockecand"))
    assert "instruments.can.driver: unknown driver 'sockecand'" in msg
    assert "socketcand, slcan" in msg and "pcan" in msg and "socketcan" in msg  # ours, then python-can's
    msg = _error(tmp_path, GOOD.replace("egse_address: 10", "egse_adress: 10"))
    assert "instruments.can.egse_adress: unknown field" in msg


def test_versions_must_agree(tmp_path):
    msg = _error(tmp_path, GOOD.replace("cfp_version: 1", "cfp_version: 2"))
    assert "instruments.can" in msg and "CFP v2 carries CSP v2 headers" in msg


def test_unknown_instrument_role_is_a_typo(tmp_path):
    msg = _error(tmp_path, GOOD.replace("  can:\n", "  cam:\n", 1))
    assert "instruments.cam: unknown field" in msg


class _Twin:
    endpoints: ClassVar = {
        "can_socketcand": {"kind": "socketcand", "interface": "socketcand", "host": "127.0.0.1", "port": 4000,
                           "channel": "vcan0"},
        "can_slcan": {"kind": "slcan", "interface": "slcan", "url": "socket://127.0.0.1:4001"},
    }  # fmt: skip


def test_twin_endpoints_resolve_to_addresses():
    socketcand = load_config(CONFIG_DIR / "twin.yaml").config.instruments.can
    slcan = load_config(CONFIG_DIR / "twin-slcan.yaml").config.instruments.can
    path = CONFIG_DIR / "twin.yaml"
    assert resolve_can(socketcand, _Twin(), path) == CanAddress("socketcand", "127.0.0.1:4000", "vcan0")
    assert resolve_can(slcan, _Twin(), path) == CanAddress("slcan", "socket://127.0.0.1:4001", "can0")
    with pytest.raises(ConfigError, match="needs the auto-started twin"):
        resolve_can(socketcand, None, path)
    wrong = slcan.model_copy(update={"resource": "twin:can_socketcand"})
    with pytest.raises(ConfigError, match=r"speaks socketcand, but instruments\.can\.driver is slcan"):
        resolve_can(wrong, _Twin(), path)


def test_icd_path_is_found_in_the_project():
    assert icd_path(CONFIG_DIR / "twin.yaml", "bench/icd/ots-sat.yaml").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_adapters_fail_fast_and_clearly():
    port = _free_port()
    with pytest.raises(InstrumentUnreachable, match=r"is socketcand running\?"):
        open_can_adapter(CanAddress("socketcand", f"127.0.0.1:{port}", "vcan0"), timeout_s=1)
    with pytest.raises(InstrumentUnreachable, match="cannot connect to slcan:socket://"):
        open_can_adapter(CanAddress("slcan", f"socket://127.0.0.1:{port}"), timeout_s=1)


def test_slcan_device_that_does_not_answer():
    with socket.create_server(("127.0.0.1", 0)) as server:  # accepts, never answers: not an slcan adapter
        port = server.getsockname()[1]
        with pytest.raises(InstrumentUnreachable, match="no reply to the slcan version query"):
            open_can_adapter(CanAddress("slcan", f"socket://127.0.0.1:{port}"), timeout_s=0.3)
