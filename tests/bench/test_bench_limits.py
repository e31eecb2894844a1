"""The limits file: per-level bounds, requirement tracing, clear errors."""

from pathlib import Path

import pytest

from bench.config import ConfigError, ModelLevel
from bench.limits import load_limits

PROJECT = Path(__file__).resolve().parents[2]


def test_project_limits_load_for_every_level():
    for level in ModelLevel:
        table = load_limits(PROJECT / "test_plans" / "limits.yaml", level)
        assert "EPS.IDLE_CURRENT" in table
        assert table["EPS.IDLE_CURRENT"].requirements == ("OTS-EPS-020",)


def test_level_overrides_all():
    path = PROJECT / "test_plans" / "limits.yaml"
    assert load_limits(path, ModelLevel.EM)["EPS.IDLE_CURRENT"].low == 0.35
    assert load_limits(path, ModelLevel.FM)["EPS.IDLE_CURRENT"].low == 0.40


def test_unknown_limit_says_where_to_add_it():
    table = load_limits(PROJECT / "test_plans" / "limits.yaml", ModelLevel.EM)
    with pytest.raises(ConfigError, match=r"limits\.EPS\.NOPE: no limit for 'EPS\.NOPE' at model level EM"):
        table["EPS.NOPE"]


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ("units: A\n    requirements: [EPS-1]\n    all: {high: 1}", "requirements.0"),
        ("units: A\n    requirements: [OTS-EPS-001]\n    all: {low: 2, high: 1}", "all"),
        ("units: A\n    requirements: [OTS-EPS-001]\n    all: {hgh: 1}", "all.hgh"),
        ("requirements: [OTS-EPS-001]\n    all: {high: 1}", "units"),
    ],
)
def test_bad_entries_name_the_field(tmp_path, entry, field):
    path = tmp_path / "limits.yaml"
    path.write_text(f"schema: 1\nlimits:\n  EPS.X:\n    {entry}\n")
    with pytest.raises(ConfigError) as info:
        load_limits(path, ModelLevel.EM)
    assert f"limits.EPS.X.{field}" in str(info.value)
    assert str(path) in str(info.value)
