"""The interface control document (ICD): what each node of OTS-SAT says and understands, as data.

One YAML file (``bench/icd/ots-sat.yaml``) describes the nodes (CSP address, PUS APID), the housekeeping
structures (S3), the functions a node performs (S8), its events (S5) and its parameters (S20). Both the twin
and the bench implement it; neither side hard-codes a field. Every item is named by a *mnemonic*
``NODE.NAME`` — ``EPS.VBAT`` (an HK field or a parameter), ``ADCS.SET_MODE`` (a command), ``EPS.LATCHUP``
(an event), ``EPS.EPS_HK`` (an HK structure).

Loading validates everything up front: a bad entry fails with one line naming the file and the path of the
entry (``bench/icd/ots-sat.yaml: housekeeping.EPS[0].fields[3].type: unknown type 'u17' …``), never at the
moment a test plan first touches it. Every number is finite, and every range (``min``/``max``), enum value
and parameter default is one the wire type can carry once converted to raw (``commands.COMMS[1].args[0].max:
300 does not fit in u8 (0..255) …``). Lookups of an unknown mnemonic list the nearest known ones.

Wire forms (all big-endian): HK report TM[3,25] = u32 SID + fields packed in order; command TC[8,1] =
u32 function ID + arguments packed in order; event TM[5,x] = u16 event ID + data fields; parameters
TM[20,2]/TC[20,3] = u16 count + (u16 ID + value)…  Engineering value = raw × scale + offset.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bench.config import describe_error, field_key, one_line, parse_yaml, shown_value
from bench.errors import ConfigError

PACKAGE_ICD = Path(__file__).parent / "icd" / "ots-sat.yaml"
PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Struct codes of the ICD's wire types, and the integer ranges they can carry.
TYPES: dict[str, str] = {"u8": "B", "u16": "H", "u32": "I", "i8": "b", "i16": "h", "i32": "i", "f32": "f", "bool": "?"}
INT_RANGES: dict[str, tuple[int, int]] = {
    "u8": (0, 0xFF),
    "u16": (0, 0xFFFF),
    "u32": (0, 0xFFFFFFFF),
    "i8": (-0x80, 0x7F),
    "i16": (-0x8000, 0x7FFF),
    "i32": (-0x80000000, 0x7FFFFFFF),
}
F32_MAX = 3.4028234663852886e38
# Keywords of Satellite.send(); a command argument may not shadow them.
RESERVED_ARG_NAMES = frozenset({"timeout_s", "check", "wait"})

Value = int | float | bool | str


class IcdError(ConfigError):
    """The ICD file is wrong (at load) — the message names the file and the entry."""


class UnknownMnemonic(KeyError):
    """A mnemonic the ICD does not define; the message lists the nearest known ones."""

    def __str__(self) -> str:  # KeyError would repr() the message, quotes and all
        return str(self.args[0])


class CommandRefused(ValueError):
    """A command the bench refuses to send: missing/unknown argument, value out of range or not in the enum."""


class DecodeError(ValueError):
    """Telemetry that does not match its ICD entry (wrong length, unknown SID/ID)."""


# --------------------------------------------------------------------------------------------------------
# The schema
# --------------------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    # Every number finite: a `.nan` min or max compares false with everything and would check nothing.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _check_type(value: str) -> str:
    if value not in TYPES:
        raise ValueError(f"unknown type {value!r} (known: {', '.join(TYPES)})")
    return value


def _problem(key: str, text: str) -> PydanticCustomError:
    """A problem with one key of the entry being validated; load_icd appends ``key`` to the entry's path."""
    return PydanticCustomError("icd_value", "{text}", {"text": text, "key": key})


def _carried(type_: str, scale: float, offset: float, units: str) -> str:
    """What a wire type carries, in raw and (when scaled) engineering units."""
    if type_ == "f32":
        return f"f32 (|raw| <= {F32_MAX:.8g})"
    lo, hi = INT_RANGES[type_]
    if scale == 1.0 and offset == 0.0:
        return f"{type_} ({lo}..{hi})"
    a, b = sorted((lo * scale + offset, hi * scale + offset))
    unit = f" {units}" if units else ""
    return f"{type_} (raw {lo}..{hi}, i.e. {a:g}..{b:g}{unit} at scale {scale:g}, offset {offset:g})"


def _off_the_wire(type_: str, scale: float, offset: float, units: str, value: float) -> str | None:
    """Why the engineering ``value`` cannot be sent as ``type_`` (raw = (value - offset) / scale), or None.
    Mirrors FieldDef.encode: integers are rounded to the nearest raw value, f32 must stay finite."""
    if type_ == "bool":
        return None if value in (0, 1) else f"{shown_value(value)} is not a bool value (0 or 1)"
    raw = (value - offset) / scale
    if type_ == "f32":
        fits = math.isfinite(raw) and abs(raw) <= F32_MAX
    else:
        lo, hi = INT_RANGES[type_]
        fits = math.isfinite(raw) and lo <= round(raw) <= hi
    if fits:
        return None
    return f"{shown_value(value)} does not fit in {_carried(type_, scale, offset, units)}"


def _check_range(
    name: str, type_: str, scale: float, offset: float, units: str, low: float | None, high: float | None
) -> None:
    """min/max ordered and each one a value the wire type can carry."""
    fix = "give a range the type can carry, or a wider type"
    for key, bound in (("min", low), ("max", high)):
        if bound is not None:
            why = _off_the_wire(type_, scale, offset, units, bound)
            if why is not None:
                raise _problem(key, f"{why} ({name!r}); {fix}")
    if low is not None and high is not None and low > high:
        raise _problem("min", f"{low:g} is above max {high:g} ({name!r}); swap or correct them")


class FieldDef(_Strict):
    """One value on the wire: an HK field, a command argument, an event datum."""

    name: str
    type: str
    units: str = ""
    scale: float = 1.0
    offset: float = 0.0
    description: str = ""
    enum: dict[str, int] | None = None
    min: float | None = None
    max: float | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return _check_type(value)

    @model_validator(mode="after")
    def _consistent(self) -> FieldDef:
        if self.scale == 0:
            raise _problem("scale", f"0 would make every value of {self.name!r} the offset; give the LSB weight")
        if self.enum is not None:
            if self.type not in INT_RANGES:
                raise _problem("enum", f"an enum needs an integer type, not {self.type} ({self.name!r})")
            lo, hi = INT_RANGES[self.type]
            for key, number in self.enum.items():
                if not lo <= number <= hi:
                    raise _problem(
                        f"enum.{key}",
                        f"{number} does not fit in {self.type} ({lo}..{hi}); renumber it or widen the type",
                    )
        _check_range(self.name, self.type, self.scale, self.offset, self.units, self.min, self.max)
        return self

    @property
    def code(self) -> str:
        return TYPES[self.type]

    @property
    def size(self) -> int:
        return struct.calcsize(">" + self.code)

    def engineering(self, raw: int | float | bool) -> Value:
        """Raw wire value → engineering value (enum fields give their name when the value is known)."""
        if self.type == "bool":
            return bool(raw)
        if self.enum is not None:
            for name, number in self.enum.items():
                if number == raw:
                    return name
            return int(raw)
        if self.scale == 1.0 and self.offset == 0.0:
            return raw
        return raw * self.scale + self.offset

    def encode(self, what: str, value: Any, *, check: bool = True) -> bytes:
        """Engineering value → wire bytes. With ``check`` the ICD's min/max/enum are enforced; the type's own
        range always is (a value that does not fit cannot be sent at all)."""
        raw: int | float | bool
        if self.type == "bool":
            if not isinstance(value, bool | int) or value not in (0, 1):
                raise CommandRefused(f"{what}: {value!r} is not a bool")
            raw = bool(value)
        elif self.enum is not None and isinstance(value, str):
            if value not in self.enum:
                raise CommandRefused(f"{what}: {value!r} is not one of {', '.join(self.enum)}")
            raw = self.enum[value]
        else:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CommandRefused(f"{what}: {value!r} is not a number")
            if check and self.enum is not None and value not in self.enum.values():
                names = ", ".join(f"{k}={v}" for k, v in self.enum.items())
                raise CommandRefused(f"{what}: {value!r} is not one of {names}")
            if check and self.min is not None and value < self.min:
                raise CommandRefused(f"{what}: {value:g} is below the minimum {self.min:g} {self.units}".rstrip())
            if check and self.max is not None and value > self.max:
                raise CommandRefused(f"{what}: {value:g} is above the maximum {self.max:g} {self.units}".rstrip())
            engineering = (value - self.offset) / self.scale
            if self.type == "f32":
                if not math.isfinite(engineering) or abs(engineering) > F32_MAX:
                    raise CommandRefused(f"{what}: {value!r} does not fit in f32")
                raw = float(engineering)
            else:
                rounded = round(engineering)
                if abs(rounded - engineering) > 1e-9 * max(1.0, abs(engineering)) and self.scale == 1.0:
                    raise CommandRefused(f"{what}: {value!r} is not an integer ({self.type})")
                lo, hi = INT_RANGES[self.type]
                if not lo <= rounded <= hi:
                    raise CommandRefused(f"{what}: {value!r} does not fit in {self.type} ({lo}..{hi})")
                raw = rounded
        return struct.pack(">" + self.code, raw)


class HkStructure(_Strict):
    sid: int = Field(ge=0, le=0xFFFFFFFF)
    name: str
    period_s: float | None = Field(default=None, gt=0)
    description: str = ""
    fields: list[FieldDef]

    @property
    def format(self) -> str:
        return ">" + "".join(f.code for f in self.fields)


class CommandDef(_Strict):
    name: str
    function_id: int = Field(ge=0, le=0xFFFFFFFF)
    description: str = ""
    args: list[FieldDef] = Field(default_factory=list)

    @field_validator("args")
    @classmethod
    def _not_reserved(cls, args: list[FieldDef]) -> list[FieldDef]:
        for arg in args:
            if arg.name in RESERVED_ARG_NAMES:
                raise ValueError(f"argument name {arg.name!r} is reserved by Satellite.send(); rename it")
        return args


class EventDef(_Strict):
    name: str
    id: int = Field(ge=0, le=0xFFFF)
    severity: Literal["info", "low", "medium", "high"]
    description: str = ""
    data: list[FieldDef] = Field(default_factory=list)


class ParameterDef(_Strict):
    name: str
    id: int = Field(ge=0, le=0xFFFF)
    type: str
    units: str = ""
    description: str = ""
    min: float | None = None
    max: float | None = None
    default: float | int | bool | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return _check_type(value)

    @model_validator(mode="after")
    def _consistent(self) -> ParameterDef:
        _check_range(self.name, self.type, 1.0, 0.0, self.units, self.min, self.max)
        if self.default is not None:
            try:
                default = float(self.default)
            except OverflowError:  # an integer no float can hold (found by the loader fuzz)
                raise _problem(
                    "default",
                    f"{shown_value(self.default)} is too large for {self.type} ({self.name!r}); "
                    "give a value the type can carry",
                ) from None
            why = _off_the_wire(self.type, 1.0, 0.0, self.units, default)
            if why is None and self.type not in ("f32", "bool") and default != round(default):
                why = f"{shown_value(self.default)} is not an integer ({self.type})"
            if why is not None:
                raise _problem("default", f"{why} ({self.name!r}); give a value the type can carry")
            if (self.min is not None and default < self.min) or (self.max is not None and default > self.max):
                lo = "" if self.min is None else f"{self.min:g}"
                hi = "" if self.max is None else f"{self.max:g}"
                raise _problem(
                    "default", f"{shown_value(self.default)} is outside min..max ({lo}..{hi}) of {self.name!r}"
                )
        return self

    def as_field(self) -> FieldDef:
        return FieldDef(name=self.name, type=self.type, units=self.units, min=self.min, max=self.max)


APP_PORTS = range(7, 32)  # libcsp binds 0..31; 0..6 are its reserved services (CMP, ping, ps, ...)


class NodeDef(_Strict):
    address: int = Field(ge=0, le=0x3FFF)
    apid: int = Field(ge=0, le=0x7FF)
    description: str = ""
    ports: dict[str, int] = Field(
        default_factory=dict, description="application services this node serves, name → CSP port (7..31)"
    )

    @field_validator("ports")
    @classmethod
    def _app_ports(cls, ports: dict[str, int]) -> dict[str, int]:
        for name, port in ports.items():
            if port not in APP_PORTS:
                raise ValueError(f"{name}: port {port} is not an application port (7..31; 0..6 are libcsp's)")
        if len(set(ports.values())) != len(ports):
            raise ValueError(f"two services on one port: {ports}")
        return ports


class CspDef(_Strict):
    version: Literal[1, 2] = 1
    cfp: Literal[1, 2] = 1

    @model_validator(mode="after")
    def _match(self) -> CspDef:
        if self.version != self.cfp:
            raise ValueError(f"CFP v{self.cfp} carries CSP v{self.cfp} headers, not v{self.version}")
        return self


class RadioDef(_Strict):
    """The COMMS node's UHF radio (docs/rf.md): frequency, AX.25 addresses, beacon content."""

    frequency_hz: float = Field(gt=0)
    bit_rate: float = Field(gt=0)
    callsign: str = Field(pattern=r"^[A-Z0-9]{1,6}$")
    ssid: int = Field(ge=0, le=15)
    beacon_destination: str = Field(pattern=r"^[A-Z0-9]{1,6}$")
    beacon_prefix: str = Field(min_length=1, pattern=r"^\S+$")
    beacon_fields: list[str] = Field(min_length=1)


class IcdModel(_Strict):
    schema_: Literal[1] = Field(alias="schema")
    mission: str
    csp: CspDef = CspDef()
    egse_address: int = Field(ge=0, le=0x3FFF)
    pus_port: int = Field(ge=0, le=63)
    nodes: dict[str, NodeDef]
    housekeeping: dict[str, list[HkStructure]] = Field(default_factory=dict)
    commands: dict[str, list[CommandDef]] = Field(default_factory=dict)
    events: dict[str, list[EventDef]] = Field(default_factory=dict)
    parameters: dict[str, list[ParameterDef]] = Field(default_factory=dict)
    radio: RadioDef

    @model_validator(mode="after")
    def _references(self) -> IcdModel:
        problems: list[str] = []
        addresses: dict[int, str] = {}
        apids: dict[int, str] = {}
        for name, node in self.nodes.items():
            if node.address in addresses:
                problems.append(f"nodes.{name}.address: {node.address} is also {addresses[node.address]}'s")
            if node.apid in apids:
                problems.append(f"nodes.{name}.apid: {node.apid:#x} is also {apids[node.apid]}'s")
            addresses[node.address] = name
            apids[node.apid] = name
            for service, port in node.ports.items():
                if port == self.pus_port:
                    problems.append(f"nodes.{name}.ports.{service}: {port} is the PUS port (pus_port)")
        if self.egse_address in addresses:
            problems.append(f"egse_address: {self.egse_address} is node {addresses[self.egse_address]}'s address")
        sections: dict[str, Mapping[str, list[Any]]] = {
            "housekeeping": self.housekeeping,
            "commands": self.commands,
            "events": self.events,
            "parameters": self.parameters,
        }
        names: dict[str, str] = {}  # mnemonic → where defined, across sections that share the TM namespace
        for section, per_node in sections.items():
            for node_name, items in per_node.items():
                if node_name not in self.nodes:
                    problems.append(f"{section}.{node_name}: unknown node (nodes: {', '.join(self.nodes)})")
                seen_ids: dict[int, str] = {}
                for i, item in enumerate(items):
                    where = f"{section}.{node_name}[{i}]"
                    number = getattr(item, "sid", None) if section == "housekeeping" else None
                    number = getattr(item, "function_id", number) if section == "commands" else number
                    number = getattr(item, "id", number) if section in ("events", "parameters") else number
                    if number is not None and number in seen_ids:
                        problems.append(f"{where}: id {number} is also {seen_ids[number]}'s")
                    if number is not None:
                        seen_ids[number] = item.name
                    mnemonics = [f"{node_name}.{item.name}"]
                    if section == "housekeeping":
                        mnemonics += [f"{node_name}.{f.name}" for f in item.fields]
                    for m in mnemonics:
                        if m in names:
                            problems.append(f"{where}: mnemonic {m} is already defined at {names[m]}")
                        names[m] = where
        for i, mnemonic in enumerate(self.radio.beacon_fields):
            node_name, _, field_name = mnemonic.partition(".")
            fields = [f.name for s in self.housekeeping.get(node_name, []) for f in s.fields]
            if field_name not in fields:
                problems.append(f"radio.beacon_fields[{i}]: {mnemonic} is not a housekeeping field")
        if problems:
            raise ValueError("; ".join(problems))
        return self


# --------------------------------------------------------------------------------------------------------
# The loaded ICD: lookups, encoding, decoding
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    address: int
    apid: int
    description: str = ""
    ports: Mapping[str, int] = dataclasses.field(default_factory=dict, hash=False)
    """Application services the node serves: name → CSP port (e.g. PAYLOAD's IMAGE)."""

    def port(self, service: str) -> int:
        try:
            return self.ports[service]
        except KeyError:
            served = ", ".join(self.ports) or "none"
            raise UnknownMnemonic(
                f"{self.name} serves no '{service}' port (the ICD's nodes.{self.name}.ports: {served})"
            ) from None


@dataclass(frozen=True, slots=True)
class TmPoint:
    """A telemetry value the bench can await: an HK field or a parameter."""

    mnemonic: str
    node: str
    field: FieldDef
    sid: int | None = None  # the HK structure carrying it; None for a parameter
    parameter_id: int | None = None


@dataclass(frozen=True, slots=True)
class Command:
    mnemonic: str
    node: Node
    definition: CommandDef

    def encode_args(self, args: Mapping[str, Any], *, check: bool = True) -> bytes:
        """Arguments → app data after the function ID; refuses missing, unknown and out-of-range ones."""
        defined = [a.name for a in self.definition.args]
        unknown = sorted(set(args) - set(defined))
        missing = [a for a in defined if a not in args]
        if unknown or missing:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if unknown:
                parts.append(f"unknown {', '.join(unknown)}")
            signature = ", ".join(defined) or "no arguments"
            raise CommandRefused(f"{self.mnemonic}: {'; '.join(parts)} (takes {signature})")
        return b"".join(a.encode(f"{self.mnemonic}.{a.name}", args[a.name], check=check) for a in self.definition.args)


@dataclass(frozen=True, slots=True)
class Hk:
    mnemonic: str
    node: Node
    structure: HkStructure


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event as the bench understood it."""

    mnemonic: str
    node: str
    event_id: int
    severity: str
    data: dict[str, Value]
    raw: bytes


class Icd:
    """A validated ICD with the indexes the link needs. Build with :func:`load_icd`."""

    def __init__(self, model: IcdModel, path: Path | None = None) -> None:
        self.model = model
        self.path = path
        self.nodes = {n: Node(n, d.address, d.apid, d.description, dict(d.ports)) for n, d in model.nodes.items()}
        self._by_address = {n.address: n for n in self.nodes.values()}
        self._by_apid = {n.apid: n for n in self.nodes.values()}
        self.commands: dict[str, Command] = {}
        self.hk: dict[str, Hk] = {}
        self._hk_by_sid: dict[tuple[str, int], Hk] = {}
        self.tm: dict[str, TmPoint] = {}
        self.events: dict[str, EventDef] = {}
        self._events_by_id: dict[tuple[str, int], tuple[str, EventDef]] = {}
        self.parameters: dict[str, tuple[str, ParameterDef]] = {}
        self._params_by_id: dict[tuple[str, int], tuple[str, ParameterDef]] = {}
        for node, cmds in model.commands.items():
            for c in cmds:
                self.commands[f"{node}.{c.name}"] = Command(f"{node}.{c.name}", self.nodes[node], c)
        for node, structures in model.housekeeping.items():
            for s in structures:
                hk = Hk(f"{node}.{s.name}", self.nodes[node], s)
                self.hk[hk.mnemonic] = hk
                self._hk_by_sid[(node, s.sid)] = hk
                for f in s.fields:
                    self.tm[f"{node}.{f.name}"] = TmPoint(f"{node}.{f.name}", node, f, sid=s.sid)
        for node, events in model.events.items():
            for e in events:
                self.events[f"{node}.{e.name}"] = e
                self._events_by_id[(node, e.id)] = (f"{node}.{e.name}", e)
        for node, params in model.parameters.items():
            for p in params:
                m = f"{node}.{p.name}"
                self.parameters[m] = (node, p)
                self._params_by_id[(node, p.id)] = (m, p)
                self.tm.setdefault(m, TmPoint(m, node, p.as_field(), parameter_id=p.id))

    # -- identity ------------------------------------------------------------------------------------
    @property
    def mission(self) -> str:
        return self.model.mission

    @property
    def egse_address(self) -> int:
        return self.model.egse_address

    @property
    def radio(self) -> RadioDef:
        return self.model.radio

    @property
    def pus_port(self) -> int:
        return self.model.pus_port

    @property
    def csp_version(self) -> int:
        return self.model.csp.version

    # -- lookups -------------------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        key = name.upper()
        if key not in self.nodes:
            raise UnknownMnemonic(_unknown("node", name, self.nodes))
        return self.nodes[key]

    def node_at(self, address: int) -> Node | None:
        return self._by_address.get(address)

    def node_of_apid(self, apid: int) -> Node | None:
        return self._by_apid.get(apid)

    def command(self, mnemonic: str) -> Command:
        try:
            return self.commands[mnemonic]
        except KeyError:
            raise UnknownMnemonic(_unknown("command", mnemonic, self.commands)) from None

    def enum(self, command: str, arg: str) -> dict[str, int]:
        """The named values of one command argument, e.g. ``enum("ADCS.SET_MODE", "mode")["NADIR"] == 3``."""
        for a in self.command(command).definition.args:
            if a.name == arg and a.enum is not None:
                return dict(a.enum)
        raise UnknownMnemonic(f"{command} has no enumerated argument {arg!r}")

    def tm_point(self, mnemonic: str) -> TmPoint:
        try:
            return self.tm[mnemonic]
        except KeyError:
            raise UnknownMnemonic(_unknown("telemetry value", mnemonic, self.tm)) from None

    def event(self, mnemonic: str) -> EventDef:
        try:
            return self.events[mnemonic]
        except KeyError:
            raise UnknownMnemonic(_unknown("event", mnemonic, self.events)) from None

    def parameter(self, mnemonic: str) -> tuple[str, ParameterDef]:
        try:
            return self.parameters[mnemonic]
        except KeyError:
            raise UnknownMnemonic(_unknown("parameter", mnemonic, self.parameters)) from None

    def structures(self, node_or_mnemonic: str) -> list[Hk]:
        """HK structures named by a node (all of them) or by ``NODE.STRUCTURE``."""
        if node_or_mnemonic in self.hk:
            return [self.hk[node_or_mnemonic]]
        if node_or_mnemonic.upper() in self.nodes:
            node = node_or_mnemonic.upper()
            return [h for h in self.hk.values() if h.node.name == node]
        raise UnknownMnemonic(_unknown("node or HK structure", node_or_mnemonic, [*self.nodes, *self.hk]))

    def hk_structure(self, node: str, sid: int) -> Hk | None:
        return self._hk_by_sid.get((node, sid))

    # -- decoding ------------------------------------------------------------------------------------
    def decode_hk(self, node: str, sid: int, data: bytes) -> dict[str, Value]:
        """The field data of a TM[3,25] (after the SID) → {mnemonic: engineering value}."""
        hk = self._hk_by_sid.get((node, sid))
        if hk is None:
            known = ", ".join(str(s) for (n, s) in self._hk_by_sid if n == node) or "none"
            raise DecodeError(f"{node} sent HK SID {sid}, which the ICD does not define (its SIDs: {known})")
        fmt = hk.structure.format
        size = struct.calcsize(fmt)
        if len(data) != size:
            raise DecodeError(f"{hk.mnemonic} (SID {sid}) has {len(data)} data bytes, the ICD defines {size}")
        raw = struct.unpack(fmt, data)
        return {f"{node}.{f.name}": f.engineering(r) for f, r in zip(hk.structure.fields, raw, strict=True)}

    def decode_event(self, node: str, event_id: int, severity: str, data: bytes) -> EventRecord:
        """TM[5,x] → an :class:`EventRecord`; an event the ICD does not know is kept under ``NODE.EVENT_0xID``."""
        found = self._events_by_id.get((node, event_id))
        if found is None:
            return EventRecord(f"{node}.EVENT_0x{event_id:04X}", node, event_id, severity, {}, data)
        mnemonic, definition = found
        fmt = ">" + "".join(f.code for f in definition.data)
        if len(data) != struct.calcsize(fmt):
            raise DecodeError(
                f"{mnemonic} (0x{event_id:04X}) has {len(data)} data bytes, the ICD defines {struct.calcsize(fmt)}"
            )
        values = {f.name: f.engineering(r) for f, r in zip(definition.data, struct.unpack(fmt, data), strict=True)}
        return EventRecord(mnemonic, node, event_id, severity, values, data)

    def parameter_sizes(self, node: str) -> dict[int, int]:
        return {pid: p.as_field().size for (n, pid), (_, p) in self._params_by_id.items() if n == node}

    def decode_parameters(self, node: str, values: Iterable[tuple[int, bytes]]) -> dict[str, Value]:
        """(ID, value bytes) pairs of a TM[20,2] → {mnemonic: value}."""
        out: dict[str, Value] = {}
        for pid, raw in values:
            found = self._params_by_id.get((node, pid))
            if found is None:
                raise DecodeError(f"{node} reported parameter 0x{pid:04X}, which the ICD does not define")
            mnemonic, p = found
            field = p.as_field()
            out[mnemonic] = field.engineering(struct.unpack(">" + field.code, raw)[0])
        return out

    def encode_parameter(self, mnemonic: str, value: Any, *, check: bool = True) -> tuple[str, int, bytes]:
        """A value for TC[20,3] → (node, parameter ID, value bytes), range-checked against the ICD."""
        node, p = self.parameter(mnemonic)
        return node, p.id, p.as_field().encode(mnemonic, value, check=check)


def _unknown(kind: str, name: str, known: Iterable[str]) -> str:
    known = list(known)
    near = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    if not near:  # same node, or same item name on another node
        head, _, tail = name.partition(".")
        near = [k for k in known if k.startswith(head + ".") or (tail and k.endswith("." + tail))][:5]
    hint = f"; did you mean {', '.join(near)}?" if near else f"; known: {', '.join(sorted(known)[:12])}"
    return f"unknown {kind} {name!r}{hint}"


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + field_key(part)
    return out or "(top level)"


def icd_path(config_path: Path, icd: str) -> Path:
    """Where the bench config's ``icd:`` points: absolute, next to the config, or in the project."""
    path = Path(icd)
    if path.is_absolute():
        return path
    for base in (config_path.parent, PROJECT_ROOT):
        if (base / path).exists():
            return base / path
    return config_path.parent / path  # does not exist: load_icd names it in its error


def load_icd(path: Path | str | None = None) -> Icd:
    """Load and validate an ICD (default: the package's OTS-SAT ICD). Raises :class:`IcdError`."""
    path = Path(path) if path is not None else PACKAGE_ICD
    try:
        raw = parse_yaml(path, "ICD")
    except ConfigError as exc:
        raise IcdError(str(exc)) from None
    if not isinstance(raw, dict):
        raise IcdError(f"{path}: an ICD is a YAML mapping (schema:, mission:, nodes:, ...)")
    try:
        model = IcdModel.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            loc = tuple(e["loc"])
            if e["type"] == "icd_value":  # our own check: its message names the value; its key extends the path
                loc = (*loc, str((e.get("ctx") or {}).get("key", "")))
                msg = str(e["msg"])
            else:
                msg = describe_error(e, "check the spelling against docs/icd.md")
            lines.append(one_line(f"{path}: {_loc(loc)}: {msg}"))
        raise IcdError("\n".join(lines)) from None
    return Icd(model, path)
