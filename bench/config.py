"""The bench configuration: which instruments this station has, the DUT and its safe envelope, calibration.

One YAML file per bench (`bench/configs/twin.yaml` is the default: the digital twin, auto-started).
It is validated with pydantic when loaded; any mistake is reported as one line naming the file, the field and
what to do, before anything is connected or powered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from bench.errors import ConfigError
from bench.levels import ModelLevel

PsuDialect = Literal["keysight", "rigol"]
"""The power supplies the auto-started twin can imitate: the values of its ``--psu-dialect`` option as
docs/contracts.md specifies them. The bench reads the contract, not the twin's code; tests/twin/test_twin_dialects.py
checks the twin serves exactly these."""
DEFAULT_PSU_DIALECT: PsuDialect = "keysight"

CONFIG_DIR = Path(__file__).parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "twin.yaml"

__all__ = ["ConfigError", "LoadedConfig", "ModelLevel", "load_config"]


class _Strict(BaseModel):
    # Unknown keys are typos until proven otherwise: a misspelt `max_curent` must not silently default.
    # Every number is finite: a `.nan` or `.inf` anywhere (envelope, timeouts, RF path, calibration) is a
    # mistake, and NaN compares false with everything, so it would slip through every range check after it.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


PositiveFloat = Annotated[float, Field(gt=0)]

TIMEOUT_MAX_S = 3600.0


def _timeout(value: float) -> float:
    if not 0 < value <= TIMEOUT_MAX_S:
        raise ValueError(
            f"{value:g} s is outside (0, {TIMEOUT_MAX_S:g}] s; give the timeout in seconds (a larger one is a typo)"
        )
    return value


Timeout = Annotated[float, AfterValidator(_timeout)]
"""A timeout or period in seconds: positive, finite, at most an hour."""


class BusVoltage(_Strict):
    min: PositiveFloat
    nominal: PositiveFloat
    max: PositiveFloat

    @model_validator(mode="after")
    def _ordered(self) -> BusVoltage:
        if not self.min <= self.nominal <= self.max:
            raise ValueError(f"need min <= nominal <= max, got {self.min} / {self.nominal} / {self.max} V")
        return self


class RfEnvelope(_Strict):
    """The radio's RF limits at its antenna port."""

    max_tx_power_dbm: float = Field(description="highest power the transmitter can deliver (its own maximum setting)")
    max_rx_input_dbm: float = Field(
        description="highest level the receiver may be driven with; the generator is capped at this plus the "
        "uplink path loss"
    )


class Envelope(_Strict):
    """What the DUT may be driven with. Nothing outside it is ever sent to an instrument."""

    bus_voltage: BusVoltage
    max_current: PositiveFloat = Field(description="current limit of the DUT supply, A")
    max_inrush_current: PositiveFloat = Field(description="highest current the DUT may draw at power-on, A")
    ovp_margin: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.2, description="OVP level above the envelope maximum, V"
    )
    ocp_delay_s: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.05,
        description="how long the supply may sit in current limit before OCP trips (covers inrush)",
    )
    rf: RfEnvelope | None = Field(default=None, description="the radio's RF limits (needed by the RF front end)")

    @property
    def ovp_level(self) -> float:
        return self.bus_voltage.max + self.ovp_margin


class Dut(_Strict):
    name: str = "OTS-SAT"
    part_number: str
    model_level: ModelLevel
    serial: str
    envelope: Envelope


class InstrumentConfig(_Strict):
    driver: str = Field(description="driver name, e.g. keysight-e36312a")
    resource: str = Field(description="VISA resource string, or twin:<endpoint> for the auto-started twin")
    timeout_s: Timeout = 2.0
    channels: dict[str, int] = Field(default_factory=dict, description="role -> channel number")


class CanConfig(_Strict):
    """The CAN adapter reaching the satellite's bus (CSP over CAN)."""

    driver: str = Field(
        description="socketcand (a daemon on a CAN gateway), slcan (a Lawicel adapter), or any python-can "
        "interface name: socketcan, pcan, kvaser, gs_usb, vector, virtual, ... (instruments/registry.py)"
    )
    resource: str = Field(
        default="",
        description="socketcand: host:port; slcan: a pyserial URL or device (socket://host:port, /dev/ttyACM0); "
        "twin:can_socketcand / twin:can_slcan for the auto-started twin; unused by other python-can interfaces",
    )
    channel: str | None = Field(
        default=None,
        description="the CAN interface (socketcand/socketcan: e.g. can0; pcan: PCAN_USBBUS1); twin: its own",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="extra python-can Bus arguments, passed through unchanged (e.g. fd: true)"
    )
    bitrate: Literal[10_000, 20_000, 50_000, 100_000, 125_000, 250_000, 500_000, 750_000, 1_000_000] = 1_000_000
    csp_version: Literal[1, 2] = 1
    cfp_version: Literal[1, 2] = 1
    egse_address: Annotated[int, Field(ge=0, le=0x3FFF)] = 10
    crc32: bool = Field(default=True, description="append a CSP CRC32 to the packets the bench sends")
    timeout_s: Timeout = Field(default=3.0, description="connect / handshake timeout")
    acceptance_timeout_s: Timeout = 2.0
    completion_timeout_s: Timeout = 5.0
    service_timeout_s: Timeout = 1.0

    @model_validator(mode="after")
    def _versions(self) -> CanConfig:
        if self.driver in ("socketcand", "slcan") and not self.resource:
            raise ValueError(f"resource: the {self.driver} driver needs a resource (host:port or a serial URL)")
        if self.cfp_version != self.csp_version:
            v = self.cfp_version
            raise ValueError(f"CFP v{v} carries CSP v{v} headers; set csp_version and cfp_version alike")
        if self.csp_version == 1 and self.egse_address > 31:
            raise ValueError(f"egse_address {self.egse_address} does not fit CSP v1 (0..31)")
        return self


class I2cConfig(_Strict):
    """The I2C adapter reaching the EPS beneath the flight software."""

    driver: str = Field(description="usb-iss (a Devantech USB-ISS on a serial port) or smbus2 (Linux i2c-dev)")
    resource: str = Field(
        description="usb-iss: a pyserial URL or device (socket://host:port, /dev/ttyACM0); smbus2: a bus number or "
        "/dev/i2c-N; twin:i2c (TCP) or twin:i2c.pty (the pseudo-terminal) for the auto-started twin"
    )
    timeout_s: Timeout = 0.5
    eps_address: Annotated[int, Field(ge=0x01, le=0x77)] = 0x02
    temperature_address: Annotated[int, Field(ge=0x01, le=0x77)] = 0x48


class ConsoleConfig(_Strict):
    """The OBC's debug UART."""

    driver: str = Field(default="serial", description="serial: a UART through pyserial (the only console driver)")
    resource: str = Field(description="a pyserial URL or device; twin:console (TCP) or twin:console.pty")
    baudrate: Annotated[int, Field(gt=0)] = 115200
    prompt: str = "obc> "


class RfPath(_Strict):
    """The cabled RF path between the DUT antenna port and the analyzer / generator, as last calibrated."""

    downlink_loss_db: Annotated[float, Field(ge=0, le=120)] = Field(
        description="DUT antenna port -> analyzer input (attenuator, splitter, cables), dB"
    )
    uplink_loss_db: Annotated[float, Field(ge=0, le=160)] = Field(
        description="generator output -> DUT antenna port, dB"
    )
    analyzer_max_input_dbm: float = Field(
        default=30.0, description="the analyzer input's damage level (R&S FSV/FSW: +30 dBm)"
    )
    analyzer_margin_db: Annotated[float, Field(ge=0, le=40)] = Field(
        default=10.0, description="how far below its damage level the analyzer input must stay"
    )
    certificate: str | None = Field(default=None, description="path calibration record")
    due: dt.date | None = None


class Instruments(_Strict):
    """The bench's instruments by role. A role is one field here: a typo is an error, not a missing instrument."""

    psu: InstrumentConfig | None = None
    can: CanConfig | None = None
    i2c: I2cConfig | None = None
    console: ConsoleConfig | None = None
    analyzer: InstrumentConfig | None = Field(default=None, description="IQ signal analyzer (driver rs-fsv)")
    generator: InstrumentConfig | None = Field(default=None, description="vector signal generator (driver rs-smbv)")
    rf_path: RfPath | None = Field(default=None, description="the RF path to the DUT antenna port")

    def get(self, role: str) -> InstrumentConfig | None:
        value = getattr(self, role, None)
        return value if isinstance(value, InstrumentConfig) else None

    def __getitem__(self, role: str) -> InstrumentConfig:
        value = self.get(role)
        if value is None:
            raise KeyError(role)
        return value


class TwinConfig(_Strict):
    autostart: bool = False
    psu_dialect: PsuDialect = DEFAULT_PSU_DIALECT
    seed: int = 0
    startup_timeout_s: Timeout = 20.0
    defects: list[str] = Field(
        default_factory=list,
        description="seeded defects the auto-started twin carries (`python -m twin --defect NAME`; names: "
        "test_plans/defects.yaml, the twin's control `help`); for `bench defects` — never on a real bench",
    )


class Safety(_Strict):
    watchdog_s: Annotated[float, Field(ge=1, le=3600)] = 5.0
    require_watchdog: bool = Field(
        default=True,
        description="refuse to power the DUT from a supply without an I/O watchdog (a killed bench PC "
        "would leave the DUT powered)",
    )
    heartbeat_s: Timeout = 1.0
    stable_current_timeout_s: Timeout = 5.0

    @model_validator(mode="after")
    def _heartbeat_within_watchdog(self) -> Safety:
        if self.heartbeat_s >= self.watchdog_s:
            raise ValueError(
                f"heartbeat_s {self.heartbeat_s:g} s is not shorter than watchdog_s {self.watchdog_s:g} s: the "
                "supply's watchdog would switch the DUT off between two heartbeats; make heartbeat_s smaller"
            )
        return self


class CalibrationRecord(_Strict):
    certificate: str
    due: dt.date
    uncertainty: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict, description="expanded uncertainty (k=2) by units, e.g. {V: 0.005, A: 0.002}"
    )


class BenchInfo(_Strict):
    name: str = Field(description="the bench this config drives; one session at a time may hold it")
    location: str = ""
    operator: str | None = None
    reservation: str | None = Field(
        default=None,
        description="where the bench's lease and emergency-stop interlock live: a PostgreSQL URL shared by the "
        "lab's bench PCs, or unset for this PC's file system ($BENCH_DB is used when it is a PostgreSQL URL)",
    )


class BenchConfig(_Strict):
    bench: BenchInfo
    twin: TwinConfig = TwinConfig()
    instruments: Instruments
    icd: str = Field(
        default="bench/icd/ots-sat.yaml",
        description="the satellite's ICD; a relative path is looked up next to this file, then in the project",
    )
    dut: Dut
    safety: Safety = Safety()
    calibration: dict[str, CalibrationRecord] = Field(
        default_factory=dict, description="calibration records keyed by instrument serial (*IDN? field 3)"
    )
    live: bool = Field(
        default=False,
        description="serve the live bench view (a web page on 127.0.0.1) beside every run, as `bench run --live`",
    )
    answers: dict[str, bool | float | str] = Field(
        default_factory=dict,
        description="operator prompts this bench answers by its construction, prompt text → answer (the twin's "
        "cables are always connected); a campaign's answers and --answers override them",
    )

    @model_validator(mode="after")
    def _has_dut_supply(self) -> BenchConfig:
        psu = self.instruments.get("psu")
        if psu is None:
            raise ValueError("instruments: a bench needs a 'psu' entry (the supply that powers the DUT)")
        if "dut_main" not in psu.channels:
            raise ValueError("instruments.psu.channels: name the channel feeding the DUT as 'dut_main: <n>'")
        rf_roles = [r for r in ("analyzer", "generator") if getattr(self.instruments, r) is not None]
        if rf_roles and self.instruments.rf_path is None:
            raise ValueError(
                f"instruments.rf_path: the {' and '.join(rf_roles)} need the calibrated path to the DUT antenna "
                "port (downlink_loss_db, uplink_loss_db)"
            )
        if rf_roles and self.dut.envelope.rf is None:
            raise ValueError(
                "dut.envelope.rf: the RF front end needs the radio's limits (max_tx_power_dbm, max_rx_input_dbm)"
            )
        return self


class LoadedConfig(BaseModel):
    """A validated config plus where it came from (for the as-run record)."""

    model_config = ConfigDict(frozen=True)
    path: Path
    sha256: str
    config: BenchConfig


def field_key(part: int | str) -> str:
    """One key of a field path as written in an error line: quoted when it is empty, has blanks or control
    characters (a key like "a\nb" must not break the one-line message), cut short when very long."""
    text = str(part)
    if text and text.isprintable() and not any(c.isspace() for c in text) and len(text) <= 60:
        return text
    return repr(text if len(text) <= 60 else text[:60] + "…")


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(field_key(p) for p in loc) or "(top level)"


def shown_value(value: object) -> str:
    """A bad input as the YAML author wrote it, short enough for a one-line message (`.nan`, `1e+30`, 'soon')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        return text.removesuffix(".0")  # 300.0 read from `300`: shown as written
    if isinstance(value, int):
        digits = str(abs(value))
        if len(digits) > 24:
            return f"{'-' if value < 0 else ''}{digits[:6]}… ({len(digits)}-digit integer)"
        return str(value)
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:40] + "…"
        return repr(text)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def describe_error(err: Mapping[str, Any], unknown_field_hint: str) -> str:
    """What is wrong with one input, from a pydantic error: its message plus the bad value, in words."""
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"unknown field (typo?); remove it or {unknown_field_hint}"
    if kind == "missing":
        return "required field is missing"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if "input" not in err:
        return msg
    value = err["input"]
    if kind == "finite_number":
        return f"{shown_value(value)} is not a finite number; give a finite value"
    if kind in ("value_error", "assertion_error"):
        return msg  # our own validators name the value in their message
    return f"{msg}, got {shown_value(value)}"


def _describe(err: dict[str, Any]) -> str:
    return describe_error(err, "check the spelling against docs/configuration.md")


def parse_yaml(path: Path, what: str) -> Any:
    """Read a YAML file, turning I/O and syntax errors into one-line ConfigErrors."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found; pass an existing file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: line {line}: byte {exc.object[exc.start]:#04x} is not UTF-8; save the {what} as UTF-8"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(one_line(f"{path}:{where}: {problem}; fix the YAML syntax")) from None
    except (ValueError, OverflowError) as exc:  # a scalar YAML reads but Python cannot hold: 2026-13-45, ...
        raise ConfigError(one_line(f"{path}: {exc}; fix the value")) from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to read; flatten the YAML") from None


_LINE_BREAKS = str.maketrans({c: repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})


def one_line(text: str) -> str:
    """``text`` with its line breaks escaped: a key or value from the file must not split a problem's line."""
    return text.translate(_LINE_BREAKS)


def validation_message(path: Path, exc: ValidationError) -> str:
    """One line per problem: file, field path, what is wrong."""
    return "\n".join(one_line(f"{path}: {_field_path(e['loc'])}: {_describe(dict(e))}") for e in exc.errors())


def check_drivers(path: Path, config: BenchConfig) -> None:
    """Every `driver:` must name an entry of its role in the one driver table (instruments.registry)."""
    from instruments.registry import ROLES, UnknownDriver, check_driver

    for role in ROLES:
        section = getattr(config.instruments, role)
        if section is None:
            continue
        try:
            check_driver(role, section.driver)
        except UnknownDriver as exc:
            known = ", ".join(exc.known)
            raise ConfigError(
                f"{path}: instruments.{role}.driver: unknown driver {exc.driver!r}; known: {known}"
            ) from None


ModelT = TypeVar("ModelT", bound=BaseModel)


def load_model(path: Path, model: type[ModelT], what: str, keys: str) -> ModelT:
    """The YAML file at `path` validated as `model` (a `what`, whose top-level `keys` the message lists);
    ConfigError with one line naming the file and the field otherwise."""
    raw = parse_yaml(path, what)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a {what} is a YAML mapping ({keys}, ...)")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(validation_message(path, exc)) from None


def load_config(path: Path | str | None = None) -> LoadedConfig:
    """Load and validate a bench config (default: the twin). Raises ConfigError with a one-line reason."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    config = load_model(path, BenchConfig, "bench config", "bench:, instruments:, dut:")
    check_drivers(path, config)
    return LoadedConfig(path=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest(), config=config)
