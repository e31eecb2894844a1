"""The limits file: every measurement's bounds per model level, traced to requirements.

```yaml
schema: 1
marginal_fraction: 0.05          # default for every limit
limits:
  EPS.IDLE_CURRENT:
    description: Main bus current with OBC and EPS idle
    units: A
    requirements: [OTS-EPS-020]
    all: {low: 0.3, high: 0.7}     # every model level ...
    FM:  {low: 0.35, high: 0.65}   # ... unless the level has its own bounds
masks:                           # spectral masks: (offset from the carrier in Hz, highest level in dBc)
  COMMS.EMISSION_MASK:
    requirements: [OTS-COM-012]
    points: [[12500, -40], [25000, -50]]
```

Every number is finite: a one-sided limit leaves the other bound out (`.inf` is refused, `.nan` would pass every
value). A bad entry is refused at load in one line naming the file, the limit, the level and the value
(`test_plans/limits.yaml: limits.EPS.IDLE_CURRENT.FM.low: .nan is not a number; give a finite bound`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bench.config import ConfigError, ModelLevel, parse_yaml, shown_value, validation_message
from bench.measurement import Limit


class _Bounds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    low: float | None = None
    high: float | None = None

    @field_validator("low", "high")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        # NaN compares false with everything: a `.nan` bound would pass every value. An infinite bound is a
        # one-sided limit written the wrong way (and no JSON number); the format says: leave the bound out.
        if value is not None and math.isnan(value):
            raise ValueError(f"{shown_value(value)} is not a number; give a finite bound")
        if value is not None and math.isinf(value):
            raise ValueError(f"{shown_value(value)} is not a bound; for a one-sided limit leave this bound out")
        return value

    @model_validator(mode="after")
    def _sane(self) -> _Bounds:
        if self.low is None and self.high is None:
            raise ValueError("give low and/or high")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low {self.low:g} is above high {self.high:g}; swap or correct the bounds")
        return self


class _LimitEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)
    description: str = ""
    units: str
    requirements: list[Annotated[str, Field(pattern=r"^OTS-[A-Z0-9]+-\d{3}$")]] = Field(min_length=1)
    marginal_fraction: Annotated[float, Field(ge=0, lt=0.5)] | None = None
    all: _Bounds | None = None
    EM: _Bounds | None = None
    QM: _Bounds | None = None
    FM: _Bounds | None = None
    PFM: _Bounds | None = None


class _MaskEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    description: str = ""
    requirements: list[Annotated[str, Field(pattern=r"^OTS-[A-Z0-9]+-\d{3}$")]] = Field(min_length=1)
    points: list[tuple[Annotated[float, Field(gt=0)], float]] = Field(min_length=1)

    @model_validator(mode="after")
    def _ascending(self) -> _MaskEntry:
        offsets = [p[0] for p in self.points]
        if offsets != sorted(set(offsets)):
            raise ValueError("points: offsets must be strictly ascending")
        return self


@dataclass(frozen=True)
class SpectralMask:
    """Breakpoints (offset Hz, max dBc) applied symmetrically about the carrier (bench.dsp.spectrum.mask_check)."""

    name: str
    points: tuple[tuple[float, float], ...]
    requirements: tuple[str, ...]
    description: str = ""


class _LimitsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    schema_: int = Field(alias="schema")
    marginal_fraction: Annotated[float, Field(ge=0, lt=0.5)] = 0.05
    limits: dict[Annotated[str, Field(pattern=r"^[A-Z0-9_]+(\.[A-Z0-9_]+)+$")], _LimitEntry]
    masks: dict[Annotated[str, Field(pattern=r"^[A-Z0-9_]+(\.[A-Z0-9_]+)+$")], _MaskEntry] = Field(default_factory=dict)


class LimitsTable:
    """Limits resolved for one model level."""

    def __init__(
        self,
        path: Path,
        model_level: ModelLevel,
        limits: dict[str, Limit],
        masks: dict[str, SpectralMask] | None = None,
    ) -> None:
        self.path = path
        self.model_level = model_level
        self._limits = limits
        self._masks = masks or {}

    def mask(self, name: str) -> SpectralMask:
        try:
            return self._masks[name]
        except KeyError:
            raise ConfigError(
                f"{self.path}: masks.{name}: no spectral mask '{name}'; add it (points, requirements) under masks:"
            ) from None

    def __getitem__(self, name: str) -> Limit:
        try:
            return self._limits[name]
        except KeyError:
            raise ConfigError(
                f"{self.path}: limits.{name}: no limit for '{name}' at model level "
                f"{self.model_level.value}; add it (with units and requirements) to the limits file"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._limits

    def __len__(self) -> int:
        return len(self._limits)

    def names(self) -> list[str]:
        return sorted(self._limits)


def load_limits(path: Path, model_level: ModelLevel) -> LimitsTable:
    raw = parse_yaml(path, "limits file")
    try:
        parsed = _LimitsFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(validation_message(path, exc)) from None
    if parsed.schema_ != 1:
        raise ConfigError(f"{path}: schema: version {parsed.schema_} is not supported; this bench reads 1")
    table: dict[str, Limit] = {}
    for name, entry in parsed.limits.items():
        bounds = getattr(entry, model_level.value) or entry.all
        if bounds is None:
            continue  # not applicable at this level; measuring it reports the missing limit clearly
        table[name] = Limit(
            name=name,
            units=entry.units,
            low=bounds.low,
            high=bounds.high,
            requirements=tuple(entry.requirements),
            description=entry.description,
            marginal_fraction=(
                entry.marginal_fraction if entry.marginal_fraction is not None else parsed.marginal_fraction
            ),
        )
    masks = {
        name: SpectralMask(name, tuple(entry.points), tuple(entry.requirements), entry.description)
        for name, entry in parsed.masks.items()
    }
    return LimitsTable(path, model_level, table, masks)
