"""The bench configuration: which instruments this station has, the DUT and its safe envelope, calibration.

One YAML file per bench (`bench/configs/twin.yaml` is the default: the digital twin, auto-started).
It is validated with pydantic when loaded; any mistake is reported as one line naming the file, the field and
what to do, before anything is connected or powered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bench.errors import ConfigError

CONFIG_DIR = Path(__file__).parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "twin.yaml"

__all__ = ["ConfigError", "LoadedConfig", "ModelLevel", "load_config"]


class ModelLevel(StrEnum):
    EM = "EM"
    QM = "QM"
    FM = "FM"
    PFM = "PFM"


class _Strict(BaseModel):
    # Unknown keys are typos until proven otherwise: a misspelt `max_curent` must not silently default.
    model_config = ConfigDict(extra="forbid", frozen=True)


PositiveFloat = Annotated[float, Field(gt=0)]


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
    timeout_s: PositiveFloat = 2.0
    channels: dict[str, int] = Field(default_factory=dict, description="role -> channel number")


class CanConfig(_Strict):
    """The CAN adapter reaching the satellite's bus (CSP over CAN)."""

    driver: Literal["socketcand", "slcan"] = Field(description="socketcand daemon, or an slcan (Lawicel) adapter")
    resource: str = Field(
        description="socketcand: host:port; slcan: a pyserial URL or device (socket://host:port, /dev/ttyACM0); "
        "or twin:can_socketcand / twin:can_slcan for the auto-started twin"
    )
    channel: str | None = Field(default=None, description="socketcand interface name (e.g. can0); twin: its own")
    bitrate: Literal[10_000, 20_000, 50_000, 100_000, 125_000, 250_000, 500_000, 750_000, 1_000_000] = 1_000_000
    csp_version: Literal[1, 2] = 1
    cfp_version: Literal[1, 2] = 1
    egse_address: Annotated[int, Field(ge=0, le=0x3FFF)] = 10
    crc32: bool = Field(default=True, description="append a CSP CRC32 to the packets the bench sends")
    timeout_s: PositiveFloat = Field(default=3.0, description="connect / handshake timeout")
    acceptance_timeout_s: PositiveFloat = 2.0
    completion_timeout_s: PositiveFloat = 5.0
    service_timeout_s: PositiveFloat = 1.0

    @model_validator(mode="after")
    def _versions(self) -> CanConfig:
        if self.cfp_version != self.csp_version:
            v = self.cfp_version
            raise ValueError(f"CFP v{v} carries CSP v{v} headers; set csp_version and cfp_version alike")
        if self.csp_version == 1 and self.egse_address > 31:
            raise ValueError(f"egse_address {self.egse_address} does not fit CSP v1 (0..31)")
        return self


class I2cConfig(_Strict):
    """The I2C adapter reaching the EPS beneath the flight software."""

    driver: Literal["usb-iss", "smbus2"] = Field(description="Devantech USB-ISS over a serial port, or Linux i2c-dev")
    resource: str = Field(
        description="usb-iss: a pyserial URL or device (socket://host:port, /dev/ttyACM0); smbus2: a bus number or "
        "/dev/i2c-N; twin:i2c (TCP) or twin:i2c.pty (the pseudo-terminal) for the auto-started twin"
    )
    timeout_s: PositiveFloat = 0.5
    eps_address: Annotated[int, Field(ge=0x01, le=0x77)] = 0x02
    temperature_address: Annotated[int, Field(ge=0x01, le=0x77)] = 0x48


class ConsoleConfig(_Strict):
    """The OBC's debug UART."""

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
    psu_dialect: Literal["keysight", "rigol"] = "keysight"
    seed: int = 0
    startup_timeout_s: PositiveFloat = 20.0


class Safety(_Strict):
    watchdog_s: Annotated[float, Field(ge=1, le=3600)] = 5.0
    require_watchdog: bool = Field(
        default=True,
        description="refuse to power the DUT from a supply without an I/O watchdog (a killed bench PC "
        "would leave the DUT powered)",
    )
    heartbeat_s: PositiveFloat = 1.0
    stable_current_timeout_s: PositiveFloat = 5.0


class CalibrationRecord(_Strict):
    certificate: str
    due: dt.date
    uncertainty: dict[str, float] = Field(
        default_factory=dict, description="expanded uncertainty (k=2) by units, e.g. {V: 0.005, A: 0.002}"
    )


class BenchInfo(_Strict):
    name: str
    location: str = ""
    operator: str | None = None


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


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _describe(err: dict[str, Any]) -> str:
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field (typo?); remove it or check the spelling against docs/configuration.md"
    elif err["type"] == "missing":
        msg = "required field is missing"
    return msg


def parse_yaml(path: Path, what: str) -> Any:
    """Read a YAML file, turning I/O and syntax errors into one-line ConfigErrors."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found; pass an existing file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{where}: {problem}; fix the YAML syntax") from None


def validation_message(path: Path, exc: ValidationError) -> str:
    """One line per problem: file, field path, what is wrong."""
    return "\n".join(f"{path}: {_field_path(e['loc'])}: {_describe(dict(e))}" for e in exc.errors())


def load_config(path: Path | str | None = None) -> LoadedConfig:
    """Load and validate a bench config (default: the twin). Raises ConfigError with a one-line reason."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    raw = parse_yaml(path, "bench config")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a bench config is a YAML mapping (bench:, instruments:, dut:, ...)")
    try:
        config = BenchConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(validation_message(path, exc)) from None
    return LoadedConfig(path=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest(), config=config)
