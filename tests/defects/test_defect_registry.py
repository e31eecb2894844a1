"""The seeded defects of the twin (twin/defects.py) and their catalogue (test_plans/defects.yaml) agree, and the
twin selects them the way it says: command line, control endpoint, bench config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.config import load_config
from bench.defects import DEFAULT_CATALOGUE, load_catalogue
from twin.control import ControlService
from twin.defects import DEFECTS, Defects
from twin.world import Options, World

ROOT = Path(__file__).resolve().parents[2]


def test_every_twin_defect_is_catalogued_with_its_subsystem() -> None:
    catalogue = load_catalogue(ROOT / DEFAULT_CATALOGUE)
    assert set(catalogue.defects) == set(DEFECTS)
    for name, entry in catalogue.defects.items():
        assert entry.subsystem == DEFECTS[name].subsystem, name


def test_at_least_25_defects_each_with_a_test_that_must_catch_it() -> None:
    catalogue = load_catalogue(ROOT / DEFAULT_CATALOGUE)
    assert len(catalogue.defects) >= 25
    assert all(entry.caught_by for entry in catalogue.defects.values())


def test_an_unknown_defect_name_is_refused_not_ignored() -> None:
    with pytest.raises(KeyError, match="unknown defect 'EPS_TYPO'"):
        Defects(["EPS_TYPO"])
    defects = Defects(["EPS_BUS_V_TM_5PCT"])
    with pytest.raises(KeyError):
        defects.active("EPS_TYPO")  # a hook with a typo fails loudly instead of never firing
    assert defects.value("EPS_BUS_V_TM_5PCT") == pytest.approx(1.05)
    assert defects.value("EPS_UVLO_LOW") is None


def test_twin_command_line_refuses_an_unknown_defect() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "twin", "--defect", "NOT_A_DEFECT"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "unknown --defect NOT_A_DEFECT" in result.stderr


def test_control_endpoint_lists_and_switches_defects() -> None:
    world = World(Options(defects=("EPS_UVLO_LOW",)))
    control = ControlService(world)
    listed = control.handle_line(json.dumps({"cmd": "help"}))["defects"]
    assert isinstance(listed, dict) and set(listed) == set(DEFECTS)
    assert listed["EPS_UVLO_LOW"]["active"] is True
    assert world.dut.uvlo_falling_v == pytest.approx(2.90)  # the power model's defect is its number

    reply = control.handle_line(json.dumps({"cmd": "defect", "name": "EPS_UVLO_LOW", "on": False}))
    assert reply["ok"] and reply["defects"] == []
    assert world.dut.uvlo_falling_v == pytest.approx(3.10)
    refused = control.handle_line(json.dumps({"cmd": "defect", "name": "NOPE", "on": True}))
    assert not refused["ok"] and "unknown defect 'NOPE'" in str(refused["error"])
    assert control.handle_line(json.dumps({"cmd": "state"}))["defects"] == []


def test_bench_config_carries_defects_to_the_twin(tmp_path: Path) -> None:
    source = (ROOT / "bench/configs/twin.yaml").read_text()
    config = tmp_path / "twin.yaml"
    config.write_text(source.replace("  seed: 0\n", "  seed: 0\n  defects: [COMMS_RX_DEAF_6DB]\n", 1))
    assert load_config(config).config.twin.defects == ["COMMS_RX_DEAF_6DB"]
