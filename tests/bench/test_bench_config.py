"""Bench config: the shipped configs load; every mistake is one line naming file, field and fix."""

from pathlib import Path

import pytest

from bench.config import CONFIG_DIR, ConfigError, load_config

GOOD = (CONFIG_DIR / "twin.yaml").read_text()


@pytest.mark.parametrize("name", ["twin", "twin-standalone", "twin-rigol", "example-lab"])
def test_shipped_configs_are_valid(name):
    loaded = load_config(CONFIG_DIR / f"{name}.yaml")
    assert loaded.config.instruments["psu"].channels["dut_main"] == 1
    assert len(loaded.sha256) == 64


def test_default_is_the_auto_started_twin():
    assert load_config().config.twin.autostart is True


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bench.yaml"
    path.write_text(text)
    return path


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_out_of_order_envelope_names_field(tmp_path):
    path = _write(tmp_path, GOOD.replace("{min: 3.0, nominal: 3.8, max: 4.2}", "{min: 4.5, nominal: 3.8, max: 4.2}"))
    msg = _error(path)
    assert msg.startswith(str(path))
    assert "dut.envelope.bus_voltage" in msg and "min <= nominal <= max" in msg
    assert "\n" not in msg


def test_typo_is_not_silently_ignored(tmp_path):
    msg = _error(_write(tmp_path, GOOD.replace("max_current: 3.0", "max_curent: 3.0")))
    assert "dut.envelope.max_curent: unknown field" in msg
    assert "dut.envelope.max_current: required field is missing" in msg


def test_wrong_type_names_field(tmp_path):
    msg = _error(_write(tmp_path, GOOD.replace("watchdog_s: 5", "watchdog_s: soon")))
    assert "safety.watchdog_s" in msg


def test_missing_dut_channel_role(tmp_path):
    msg = _error(_write(tmp_path, GOOD.replace("dut_main: 1", "aux: 2")))
    assert "dut_main" in msg


def test_yaml_syntax_error_gives_line(tmp_path):
    msg = _error(_write(tmp_path, "bench:\n  name: [unclosed\n"))
    assert "line" in msg and "YAML" in msg


def test_missing_file(tmp_path):
    msg = _error(tmp_path / "nope.yaml")
    assert "not found" in msg and "nope.yaml" in msg
