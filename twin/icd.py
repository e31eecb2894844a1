"""The twin's reading of the ICD (``bench/icd/ots-sat.yaml``, explained in ``docs/icd.md``).

The ICD is data both sides implement; the twin has its own loader so it shares no code with the bench. Values on
the wire are big-endian; ``engineering = raw * scale + offset``. Every number it reads is checked first: finite,
ranges ordered, and every range bound, enum value and parameter default one the wire type can carry (a ``.nan``
maximum would make the twin accept any argument); a bad one is a ValueError naming the file, the YAML path and
the value.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

__all__ = [
    "DEFAULT_ICD",
    "Command",
    "Event",
    "Field",
    "HkStructure",
    "Icd",
    "IcdNode",
    "Parameter",
    "load_icd",
]

DEFAULT_ICD: Final = Path(__file__).resolve().parent.parent / "bench" / "icd" / "ots-sat.yaml"

_FORMATS: Final = {"u8": "B", "u16": "H", "u32": "I", "i8": "b", "i16": "h", "i32": "i", "f32": "f", "bool": "?"}
_INT_RANGES: Final = {
    "u8": (0, 0xFF),
    "u16": (0, 0xFFFF),
    "u32": (0, 0xFFFFFFFF),
    "i8": (-0x80, 0x7F),
    "i16": (-0x8000, 0x7FFF),
    "i32": (-0x80000000, 0x7FFFFFFF),
    "bool": (0, 1),
}
_F32_MAX: Final = 3.4028234663852886e38


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    units: str = ""
    scale: float = 1.0
    offset: float = 0.0
    min: float | None = None
    max: float | None = None
    enum: dict[str, int] = field(default_factory=dict)
    description: str = ""

    @property
    def size(self) -> int:
        return struct.calcsize(">" + _FORMATS[self.type])

    def raw_of(self, value: float | bool) -> int | float | bool:
        """Engineering value → raw wire value, clamped to what the type can carry (sensors saturate)."""
        if self.type == "bool":
            return bool(value)
        raw = (float(value) - self.offset) / self.scale
        if self.type == "f32":
            return raw
        low, high = _INT_RANGES[self.type]
        return max(low, min(high, round(raw)))

    def pack(self, value: float | bool) -> bytes:
        return struct.pack(">" + _FORMATS[self.type], self.raw_of(value))

    def unpack(self, raw: bytes) -> int | float | bool:
        (value,) = struct.unpack(">" + _FORMATS[self.type], raw[: self.size])
        return value  # type: ignore[no-any-return]

    def in_range(self, value: float) -> bool:
        if self.type in _INT_RANGES:
            low, high = _INT_RANGES[self.type]
            if not low <= value <= high:
                return False
        if self.enum and int(value) not in self.enum.values():
            return False
        if self.min is not None and value < self.min:
            return False
        return not (self.max is not None and value > self.max)


@dataclass(frozen=True)
class HkStructure:
    sid: int
    name: str
    period_s: float
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Command:
    name: str
    function_id: int
    description: str
    args: tuple[Field, ...]

    @property
    def args_size(self) -> int:
        return sum(a.size for a in self.args)

    def unpack_args(self, raw: bytes) -> dict[str, int | float | bool]:
        values: dict[str, int | float | bool] = {}
        offset = 0
        for arg in self.args:
            values[arg.name] = arg.unpack(raw[offset:])
            offset += arg.size
        return values


@dataclass(frozen=True)
class Event:
    name: str
    id: int
    severity: str
    data: tuple[Field, ...]
    description: str = ""

    @property
    def subtype(self) -> int:
        return {"info": 1, "low": 2, "medium": 3, "high": 4}[self.severity]


@dataclass(frozen=True)
class Parameter:
    name: str
    id: int
    type: str
    units: str
    min: float | None
    max: float | None
    default: float
    description: str = ""

    @property
    def field(self) -> Field:
        return Field(self.name, self.type, self.units, min=self.min, max=self.max)


@dataclass(frozen=True)
class IcdNode:
    name: str
    address: int
    apid: int
    description: str
    housekeeping: tuple[HkStructure, ...]
    commands: tuple[Command, ...]
    events: tuple[Event, ...]
    parameters: tuple[Parameter, ...]
    ports: tuple[tuple[str, int], ...] = ()  # application services: (name, CSP port)

    def port(self, service: str) -> int | None:
        return next((p for name, p in self.ports if name == service), None)

    def event(self, name: str) -> Event:
        return next(e for e in self.events if e.name == name)

    def hk(self, sid: int) -> HkStructure | None:
        return next((s for s in self.housekeeping if s.sid == sid), None)


@dataclass(frozen=True)
class Radio:
    """The COMMS node's UHF radio: frequency, AX.25 addresses and what the beacon carries."""

    frequency_hz: float
    bit_rate: float
    callsign: str
    ssid: int
    beacon_destination: str
    beacon_prefix: str
    beacon_fields: tuple[str, ...]


@dataclass(frozen=True)
class Icd:
    mission: str
    csp_version: int
    cfp_version: int
    egse_address: int
    pus_port: int
    nodes: dict[str, IcdNode]
    radio: Radio


def _field(entry: dict[str, Any]) -> Field:
    return Field(
        name=str(entry["name"]),
        type=str(entry["type"]),
        units=str(entry.get("units", "")),
        scale=float(entry.get("scale", 1.0)),
        offset=float(entry.get("offset", 0.0)),
        min=entry.get("min"),
        max=entry.get("max"),
        enum={str(k): int(v) for k, v in (entry.get("enum") or {}).items()},
        description=str(entry.get("description", "")),
    )


def _shown(value: object) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    return repr(value).removesuffix(".0") if isinstance(value, float) else repr(value)


def _number(where: str, value: object) -> float:
    """A finite number from the ICD, or ValueError naming where it is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: {_shown(value)} is not a number; give a finite number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{where}: {_shown(value)} is not a finite number; give a finite number")
    return number


def _wire_problem(type_: str, scale: float, offset: float, value: float) -> str | None:
    """Why an engineering value cannot travel as ``type_`` (raw = (value - offset) / scale), or None."""
    raw = (value - offset) / scale
    if type_ == "f32":
        return None if math.isfinite(raw) and abs(raw) <= _F32_MAX else "f32 (|raw| <= 3.4028235e+38)"
    low, high = _INT_RANGES[type_]
    if math.isfinite(raw) and low <= round(raw) <= high:
        return None
    if scale == 1.0 and offset == 0.0:
        return f"{type_} ({low}..{high})"
    a, b = sorted((low * scale + offset, high * scale + offset))
    return f"{type_} (raw {low}..{high}, i.e. {a:g}..{b:g} at scale {scale:g}, offset {offset:g})"


def _check_values(where: str, entry: dict[str, Any], *, scaled: bool = True, default: bool = False) -> None:
    """min/max (and a parameter's default) finite, ordered and inside the wire type; scale, offset, enum too."""
    type_ = entry.get("type")
    if type_ not in _FORMATS:
        raise ValueError(f"{where}.type: unknown type {type_!r} (known: {', '.join(_FORMATS)})")
    scale = _number(f"{where}.scale", entry.get("scale", 1.0)) if scaled else 1.0
    offset = _number(f"{where}.offset", entry.get("offset", 0.0)) if scaled else 0.0
    if scale == 0:
        raise ValueError(f"{where}.scale: 0 would make every value the offset; give the LSB weight")
    bounds: dict[str, float] = {}
    keys = ("min", "max", "default") if default else ("min", "max")
    for key in keys:
        if entry.get(key) is None:
            continue
        value = _number(f"{where}.{key}", entry[key])
        why = _wire_problem(type_, scale, offset, value)
        if why is not None:
            raise ValueError(f"{where}.{key}: {_shown(entry[key])} does not fit in {why}; give a value it can carry")
        bounds[key] = value
    low, high = bounds.get("min"), bounds.get("max")
    if low is not None and high is not None and low > high:
        raise ValueError(f"{where}.min: {low:g} is above max {high:g}; swap or correct them")
    if "default" in bounds and not (
        (low is None or bounds["default"] >= low) and (high is None or bounds["default"] <= high)
    ):
        lo_text = "" if low is None else f"{low:g}"
        hi_text = "" if high is None else f"{high:g}"
        raise ValueError(f"{where}.default: {_shown(entry['default'])} is outside min..max ({lo_text}..{hi_text})")
    enum = entry.get("enum") or {}
    if enum and (not isinstance(enum, dict) or type_ in ("f32", "bool")):
        raise ValueError(f"{where}.enum: an enum is a mapping name: number of an integer type, not {type_}")
    for name, number in enum.items():
        lo, hi = _INT_RANGES[type_]
        if isinstance(number, bool) or not isinstance(number, int) or not lo <= number <= hi:
            raise ValueError(
                f"{where}.enum.{name}: {_shown(number)} does not fit in {type_} ({lo}..{hi}); "
                "renumber it or widen the type"
            )


def _check_numbers(path: Path, doc: dict[str, Any]) -> None:
    """Every number of the ICD, before anything is built from it (ValueError: file, YAML path, value)."""
    items = {"housekeeping": "fields", "commands": "args", "events": "data"}
    try:
        for section, key in items.items():
            for node, entries in (doc.get(section) or {}).items():
                for i, entry in enumerate(entries or []):
                    period = entry.get("period_s") if section == "housekeeping" else None
                    if period is not None and _number(f"{section}.{node}[{i}].period_s", period) <= 0:
                        raise ValueError(f"{section}.{node}[{i}].period_s: {_shown(period)} is not positive")
                    for j, field_entry in enumerate(entry.get(key) or []):
                        _check_values(f"{section}.{node}[{i}].{key}[{j}]", field_entry)
        for node, entries in (doc.get("parameters") or {}).items():
            for i, entry in enumerate(entries or []):
                _check_values(f"parameters.{node}[{i}]", entry, scaled=False, default=True)
        radio = doc.get("radio") or {}
        for key in ("frequency_hz", "bit_rate"):
            if key in radio and _number(f"radio.{key}", radio[key]) <= 0:
                raise ValueError(f"radio.{key}: {radio[key]!r} is not positive")
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def load_icd(path: Path = DEFAULT_ICD) -> Icd:
    doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    if doc.get("schema") != 1:
        raise ValueError(f"{path}: unsupported ICD schema {doc.get('schema')!r}")
    _check_numbers(path, doc)

    def section(key: str, node: str) -> list[dict[str, Any]]:
        return list((doc.get(key) or {}).get(node) or [])

    nodes: dict[str, IcdNode] = {}
    for name, entry in doc["nodes"].items():
        nodes[name] = IcdNode(
            name=name,
            address=int(entry["address"]),
            apid=int(entry["apid"]),
            description=str(entry.get("description", "")),
            ports=tuple((str(k), int(v)) for k, v in (entry.get("ports") or {}).items()),
            housekeeping=tuple(
                HkStructure(int(s["sid"]), str(s["name"]), float(s["period_s"]), tuple(map(_field, s["fields"])))
                for s in section("housekeeping", name)
            ),
            commands=tuple(
                Command(
                    str(c["name"]),
                    int(c["function_id"]),
                    str(c.get("description", "")),
                    tuple(map(_field, c.get("args") or [])),
                )
                for c in section("commands", name)
            ),
            events=tuple(
                Event(
                    str(e["name"]),
                    int(e["id"]),
                    str(e["severity"]),
                    tuple(map(_field, e.get("data") or [])),
                    str(e.get("description", "")),
                )
                for e in section("events", name)
            ),
            parameters=tuple(
                Parameter(
                    str(p["name"]),
                    int(p["id"]),
                    str(p["type"]),
                    str(p.get("units", "")),
                    p.get("min"),
                    p.get("max"),
                    float(p["default"]),
                    str(p.get("description", "")),
                )
                for p in section("parameters", name)
            ),
        )
    csp = doc.get("csp") or {}
    radio = doc["radio"]
    return Icd(
        mission=str(doc.get("mission", "")),
        csp_version=int(csp.get("version", 1)),
        cfp_version=int(csp.get("cfp", 1)),
        egse_address=int(doc["egse_address"]),
        pus_port=int(doc["pus_port"]),
        nodes=nodes,
        radio=Radio(
            frequency_hz=float(radio["frequency_hz"]),
            bit_rate=float(radio["bit_rate"]),
            callsign=str(radio["callsign"]),
            ssid=int(radio["ssid"]),
            beacon_destination=str(radio["beacon_destination"]),
            beacon_prefix=str(radio["beacon_prefix"]),
            beacon_fields=tuple(str(f) for f in radio["beacon_fields"]),
        ),
    )
