"""Model levels of the unit under test: EM, QM, FM, PFM (engineering, qualification, flight, proto-flight).

The level picks the limits a measurement is judged against (the limits file has a column per level). A module
of its own, with no dependency, so that the pytest plugin's ``--model-level`` choices come from this one enum
without loading the config schema (pydantic) at start-up.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = ["MODEL_LEVELS", "ModelLevel"]


class ModelLevel(StrEnum):
    EM = "EM"
    QM = "QM"
    FM = "FM"
    PFM = "PFM"


MODEL_LEVELS: Final[tuple[str, ...]] = tuple(level.value for level in ModelLevel)
"""The levels' names, in order: command-line choices."""
