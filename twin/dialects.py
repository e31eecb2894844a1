"""The names of the twin's power-supply SCPI dialects: the one place they are spelled.

A dialect name picks the instrument the twin's supply imitates (``python -m twin --psu-dialect``, the bench
config's ``twin.psu_dialect``). The implementations live in ``twin/dialect_<name>.py`` and are tabled in
``twin.psu_service.PSU_DIALECTS``; this module holds only the vocabulary. The bench does not import it: its
config schema spells the same names from docs/contracts.md (``bench.config.PsuDialect``), and
tests/twin/test_twin_dialects.py checks the two agree.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

PsuDialect = Literal["keysight", "rigol"]
"""A power-supply dialect of the twin; a new dialect is one name here and one line in ``PSU_DIALECTS``."""

PSU_DIALECT_NAMES: Final[tuple[PsuDialect, ...]] = get_args(PsuDialect)
DEFAULT_PSU_DIALECT: Final[PsuDialect] = "keysight"

__all__ = ["DEFAULT_PSU_DIALECT", "PSU_DIALECT_NAMES", "PsuDialect"]
