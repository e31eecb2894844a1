"""What the PSU dialects share: how a refusal of the supply becomes a SCPI error code."""

from __future__ import annotations

from typing import Final

from twin.psu import PsuError, Reason
from twin.scpi import DATA_OUT_OF_RANGE, DATA_STALE, SETTINGS_CONFLICT, TRIGGER_IGNORED, ScpiError

__all__ = ["ERROR_CODES", "scpi_error_for"]

ERROR_CODES: Final[dict[Reason, int]] = {
    Reason.OUT_OF_RANGE: DATA_OUT_OF_RANGE,
    Reason.CONFLICT: SETTINGS_CONFLICT,
    Reason.NO_DATA: DATA_STALE,
    Reason.TRIGGER_IGNORED: TRIGGER_IGNORED,
}


def scpi_error_for(exc: Exception) -> ScpiError | None:
    """The interpreter's translation hook: a supply refusal → its SCPI error; anything else is a bug."""
    if isinstance(exc, PsuError):
        return ScpiError(ERROR_CODES[exc.reason], str(exc))
    return None
