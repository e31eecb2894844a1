"""Calibration status of an instrument, matched by the serial number it reports itself (*IDN?)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from bench.config import CalibrationRecord


class CalStatus(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    MISSING = "missing"
    NOT_REQUIRED = "n/a"  # an adapter or console: it carries the link and measures nothing


@dataclass(frozen=True, slots=True)
class CalibrationState:
    serial: str
    status: CalStatus
    certificate: str | None = None
    due: dt.date | None = None
    uncertainty: dict[str, float] = field(default_factory=dict)

    def as_record(self) -> dict[str, object]:
        return {
            "serial": self.serial,
            "status": self.status.value,
            "certificate": self.certificate,
            "due": self.due.isoformat() if self.due else None,
            "uncertainty": self.uncertainty,
        }


def calibration_of(serial: str, records: dict[str, CalibrationRecord], today: dt.date) -> CalibrationState:
    rec = records.get(serial)
    if rec is None:
        return CalibrationState(serial, CalStatus.MISSING)
    status = CalStatus.VALID if rec.due >= today else CalStatus.EXPIRED
    return CalibrationState(serial, status, rec.certificate, rec.due, dict(rec.uncertainty))
