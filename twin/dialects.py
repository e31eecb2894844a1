"""The names of the twin's power-supply SCPI dialects: the one place they are spelled.

A dialect name picks the instrument the twin's supply imitates (``python -m twin --psu-dialect``, the bench
config's ``twin.psu_dialect``). The implementations live in ``twin/dialect_<name>.py`` and are tabled in
``twin.psu_service.PSU_DIALECTS``; this module holds only the vocabulary, with no import, so that the bench's
config schema can read it without loading any of the twin (pyproject's import-linter contracts allow exactly
``bench.config -> twin.dialects``).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

PsuDialect = Literal["keysight", "rigol"]
"""A power-supply dialect of the twin; a new dialect is one name here and one line in ``PSU_DIALECTS``."""

PSU_DIALECT_NAMES: Final[tuple[PsuDialect, ...]] = get_args(PsuDialect)
DEFAULT_PSU_DIALECT: Final[PsuDialect] = "keysight"

__all__ = ["DEFAULT_PSU_DIALECT", "PSU_DIALECT_NAMES", "PsuDialect"]
