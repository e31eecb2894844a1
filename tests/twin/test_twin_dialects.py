"""The twin's PSU dialect names are spelled once in the twin (twin/dialects.py), every name has an implementation,
and the bench config schema — which reads the contract (docs/contracts.md), not the twin — accepts exactly them."""

from __future__ import annotations

from typing import get_args

from bench.config import TwinConfig
from twin.__main__ import build_parser
from twin.dialects import DEFAULT_PSU_DIALECT, PSU_DIALECT_NAMES
from twin.psu_service import PSU_DIALECTS


def test_every_dialect_name_has_an_implementation_and_no_more() -> None:
    assert set(PSU_DIALECTS) == set(PSU_DIALECT_NAMES)


def test_the_config_schema_and_the_twin_command_line_read_the_same_names() -> None:
    assert get_args(TwinConfig.model_fields["psu_dialect"].annotation) == PSU_DIALECT_NAMES
    assert TwinConfig().psu_dialect == DEFAULT_PSU_DIALECT
    action = next(a for a in build_parser()._actions if a.dest == "psu_dialect")
    assert tuple(action.choices or ()) == PSU_DIALECT_NAMES
