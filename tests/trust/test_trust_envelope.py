"""An envelope no plan can bypass: no public path from a fixture to a driver, and protection that a plan can
tighten but never loosen (restored to the envelope's after the test)."""

from __future__ import annotations

import inspect
import textwrap
import typing
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import can
import pytest
import pyvisa
from safety_rig import TwinHandle, bench_config_for, start_bench

from bench.config import CONFIG_DIR, load_config
from bench.dut_power import DutPower
from bench.envelope import EnvelopeViolation, GuardedSupply
from bench.icd import icd_path, load_icd
from bench.satellite import open_satellite
from bench.session import BenchSession
from bench.twin_launcher import TwinProcess
from instruments.i2c import P31uClient
from instruments.power import PowerSupply
from instruments.psu_base import ScpiPowerSupply
from instruments.scpi import ScpiDriver, ScpiInstrument
from instruments.vsa import SignalAnalyzer
from instruments.vsg import SignalGenerator

# What can drive the DUT outside its envelope: supply and RF drivers, their SCPI transport, pyvisa itself, and
# the session that holds them all.
UNGUARDED: tuple[type, ...] = (
    ScpiPowerSupply,
    ScpiDriver,
    ScpiInstrument,
    SignalAnalyzer,
    SignalGenerator,
    pyvisa.resources.Resource,
    pyvisa.ResourceManager,
    can.BusABC,
    BenchSession,
)


def _unguarded(value: object) -> bool:
    return isinstance(value, UNGUARDED) or (
        isinstance(value, PowerSupply) and not isinstance(value, GuardedSupply)  # the protocol, structurally
    )


def _annotation_names(func: Any) -> str:
    try:
        return str(typing.get_type_hints(func).get("return", ""))
    except Exception:  # an annotation that does not resolve at run time: its text is still checked
        return str(inspect.signature(func).return_annotation)


FORBIDDEN_RETURN = ("PowerSupply", "ScpiDriver", "ScpiInstrument", "SignalAnalyzer", "SignalGenerator", "BusABC")


def walk(root: object, name: str, depth: int = 4) -> list[str]:
    """Every public attribute path from `root` (properties evaluated) that reaches an unguarded driver, and every
    public method whose return annotation names one."""
    found: list[str] = []
    seen: set[int] = set()

    def visit(obj: object, path: str, level: int) -> None:
        if id(obj) in seen or isinstance(obj, str | bytes | int | float | bool | type(None) | ModuleType | type):
            return
        seen.add(id(obj))
        if _unguarded(obj):
            found.append(path)
            return
        if level == 0:
            return
        if isinstance(obj, dict):
            for key, value in list(obj.items())[:50]:
                visit(value, f"{path}[{key!r}]", level - 1)
            return
        if isinstance(obj, list | tuple | set | frozenset):
            for i, value in enumerate(list(obj)[:50]):
                visit(value, f"{path}[{i}]", level - 1)
            return
        for attr in dir(obj):
            if attr.startswith("_"):
                continue
            static = inspect.getattr_static(obj, attr, None)
            if callable(static) and not isinstance(static, property):  # a method: what it says it returns
                annotation = _annotation_names(getattr(obj, attr, None))
                if any(word in annotation for word in FORBIDDEN_RETURN):
                    found.append(f"{path}.{attr}() -> {annotation}")
                continue
            try:
                value = getattr(obj, attr)
            except Exception:  # a property that needs a state the object is not in
                continue
            if callable(value) and not _unguarded(value):
                continue
            visit(value, f"{path}.{attr}", level - 1)

    visit(root, name, depth)
    return found


@pytest.fixture(scope="module")
def session() -> Iterator[BenchSession]:
    s = BenchSession.open(load_config(CONFIG_DIR / "twin.yaml"), None, None, install_signals=False)
    try:
        yield s
    finally:
        s.close("module end")


def test_no_fixture_hands_out_an_unguarded_driver(session):
    """What the fixtures psu, dut_power, rf, satellite, i2c, eps_i2c and console give a plan, walked."""
    loaded = session.loaded
    cfg = loaded.config
    radio = load_icd(icd_path(loaded.path, cfg.icd)).radio
    rf = session.rf_front_end(radio)
    sat = open_satellite(loaded, session.can_adapter())
    console = session.open_console(None)
    try:
        handed_out = {
            "psu": session.psu,
            "dut_power": DutPower(session.psu, cfg.dut.envelope, cfg.safety),
            "rf": rf,
            "satellite": sat,
            "i2c": session.i2c_bus(),
            "eps_i2c": P31uClient(session.i2c_bus(), address=0x02),
            "console": console,
        }
        leaks = [path for name, obj in handed_out.items() for path in walk(obj, name)]
        assert leaks == [], f"public paths to a driver: {leaks}"
        assert not hasattr(session.psu, "raw")
    finally:
        console.close()
        sat.close()


def test_the_walk_finds_a_driver_when_one_is_exposed(session):
    """The walk itself can fail: an object that exposes the supply driver is caught."""

    class Leaky:
        def __init__(self, supply: object) -> None:
            self.supply = supply

    leaked = session._driver("psu")  # private access: this is the test of the test
    assert walk(Leaky(leaked), "leaky") == ["leaky.supply"]


@pytest.fixture
def guard(session) -> Iterator[GuardedSupply]:
    yield session.psu
    session.after_test()


def _ovp(session: BenchSession) -> float:
    return float(session._driver("psu").scpi.query("VOLT:PROT? (@1)"))


def test_ovp_can_be_tightened_never_loosened_and_is_restored_after_the_test(session, guard):
    envelope = session.loaded.config.dut.envelope
    assert _ovp(session) == pytest.approx(envelope.ovp_level)
    with pytest.raises(EnvelopeViolation) as err:
        guard.set_ovp(1, envelope.ovp_level + 0.25)
    assert "dut.envelope.ovp_margin" in str(err.value) and "nothing was sent" in str(err.value)
    assert _ovp(session) == pytest.approx(envelope.ovp_level)  # refused before a byte was sent
    guard.set_ovp(1, envelope.bus_voltage.max + 0.05)  # tightening is the plan's right
    assert _ovp(session) == pytest.approx(envelope.bus_voltage.max + 0.05)
    session.after_test()
    assert _ovp(session) == pytest.approx(envelope.ovp_level)  # the next test starts from the envelope again


def test_ocp_stays_armed_and_its_delay_cannot_grow(session, guard):
    envelope = session.loaded.config.dut.envelope
    with pytest.raises(EnvelopeViolation, match="OCP stays armed"):
        guard.set_ocp(1, False, 0.0)
    with pytest.raises(EnvelopeViolation, match=r"dut\.envelope\.ocp_delay_s"):
        guard.set_ocp(1, True, envelope.ocp_delay_s * 2)
    guard.set_ocp(1, True, envelope.ocp_delay_s / 2)
    assert guard.tightened


def test_a_voltage_outside_the_envelope_is_refused_before_sending(session, guard):
    before = float(session._driver("psu").scpi.query("VOLT? (@1)"))
    with pytest.raises(EnvelopeViolation, match=r"dut\.envelope\.bus_voltage"):
        guard.set_voltage(1, 4.65)
    assert float(session._driver("psu").scpi.query("VOLT? (@1)")) == before


PLAN = textwrap.dedent(
    '''
    """A careless plan: it reaches for the raw supply to loosen OVP."""


    def test_loosen_ovp(psu):
        psu.raw.set_ovp(1, 9.0)
    '''
)


@pytest.fixture(scope="module")
def standalone_twin() -> Iterator[TwinHandle]:
    with TwinProcess(ports="auto") as twin:
        yield TwinHandle(twin)


def test_a_plan_cannot_reach_the_raw_supply(standalone_twin, tmp_path):
    plan = tmp_path / "test_careless_plan.py"
    plan.write_text(PLAN)
    proc = start_bench(plan, bench_config_for(standalone_twin, tmp_path), tmp_path, "pass")
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 1, output
    assert "AttributeError" in output and "'raw'" in output, output
    assert standalone_twin.channel_state(1)["ovp_level"] == pytest.approx(4.4)  # as the envelope armed it
