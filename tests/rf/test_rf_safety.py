"""RF safety: nothing dangerous is ever sent, and the generator's RF is off on every exit.

* the front end refuses a level above the DUT receiver's maximum input before anything reaches the generator;
* the generator driver refuses a level above its own ceiling before sending;
* a path that would let the transmitter overload the analyzer stops before any capture;
* a config with RF instruments but no calibrated path does not load;
* a bench run that fails, or is ended by SIGTERM, leaves the generator's RF off (real bench subprocess
  against a standalone twin, checked by querying the twin's generator afterwards).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rf_rig import TwinControl

from bench.config import CONFIG_DIR, load_config
from bench.envelope import EnvelopeViolation
from bench.errors import ConfigError
from bench.icd import icd_path, load_icd
from bench.rf import PathWouldOverload, RfFrontEnd, check_analyzer_path
from bench.session import BenchSession
from bench.twin_launcher import TwinProcess
from bench.waiting import await_true
from instruments.errors import InstrumentRejected, SettingOutOfRange
from instruments.vsg import SignalGenerator

PROJECT = Path(__file__).resolve().parents[2]
LIMITS = PROJECT / "test_plans" / "limits.yaml"
MARK_LEVEL_DBM = -77.7  # a level no code path of the bench would set by itself


class Twin:
    def __init__(self, twin: TwinProcess) -> None:
        self.twin = twin
        self.resources = {name: str(twin.endpoints[name]["resource"]) for name in ("psu", "vsa", "vsg")}
        self.control = TwinControl(twin.endpoints)

    def rf_state(self) -> dict[str, Any]:
        return self.control.rf()

    def generator_rf_on(self) -> bool:
        """``OUTP?`` on a connection of our own (a generator has no watchdog to feed)."""
        with SignalGenerator(self.resources["vsg"], max_level_dbm=-200.0, timeout_s=5.0) as gen:
            return gen.rf_on()


@pytest.fixture(scope="module")
def twin() -> Iterator[Twin]:
    with TwinProcess(ports="auto") as process:
        yield Twin(process)


def write_config(twin: Twin, path: Path, edit=None) -> Path:
    """The standalone-twin config pointed at this twin's ports; ``edit(raw)`` may change the parsed YAML."""
    raw = yaml.safe_load((CONFIG_DIR / "twin-standalone.yaml").read_text())
    for role, name in (("psu", "psu"), ("analyzer", "vsa"), ("generator", "vsg")):
        raw["instruments"][role]["resource"] = twin.resources[name]
    raw["safety"] = {"watchdog_s": 2, "heartbeat_s": 0.2}
    if edit is not None:
        edit(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture
def session(twin: Twin, tmp_path: Path) -> Iterator[BenchSession]:
    s = BenchSession.open(load_config(write_config(twin, tmp_path / "bench.yaml")), None, None, install_signals=False)
    try:
        yield s
    finally:
        s.close("test end")


def front_end(session: BenchSession) -> RfFrontEnd:
    radio = load_icd(icd_path(session.config_path, session.loaded.config.icd)).radio
    front = session.rf_front_end(radio)
    assert front is not None
    return front


# -- generator levels ---------------------------------------------------------------------------------------


def test_front_end_refuses_a_level_above_the_receiver_maximum_and_sends_nothing(twin, session):
    rf = front_end(session)
    gen = session._driver("generator")
    assert gen is not None
    gen.set_level(MARK_LEVEL_DBM)
    await_true(
        lambda: (twin.rf_state()["generator"] or {}).get("level_dbm") == MARK_LEVEL_DBM,
        timeout_s=5,
        what="the twin's generator at the mark level",
    )
    max_rx = rf.envelope.max_rx_input_dbm
    with pytest.raises(EnvelopeViolation, match=r"dut\.envelope\.rf\.max_rx_input_dbm.*nothing sent"):
        rf.generator_level_for(max_rx + 0.1)
    with pytest.raises(EnvelopeViolation, match="refused"):
        rf.uplink_frames([rf.ui_frame(b"too loud")], max_rx + 10.0)
    assert rf.generator_level_for(max_rx) == pytest.approx(max_rx + rf.path.uplink_loss_db)  # the edge is legal
    # Nothing reached the generator: its level is the mark, its RF off, and the twin saw no overdrive.
    assert gen.level() == MARK_LEVEL_DBM
    assert not gen.rf_on()
    state = twin.rf_state()
    assert state["generator"]["level_dbm"] == MARK_LEVEL_DBM
    assert state["rx_overdriven"] == 0


def test_generator_driver_refuses_above_its_ceiling_before_sending(twin, session):
    gen = session._driver("generator")
    assert gen is not None
    cfg = session.loaded.config
    assert cfg.dut.envelope.rf is not None and cfg.instruments.rf_path is not None
    ceiling = cfg.dut.envelope.rf.max_rx_input_dbm + cfg.instruments.rf_path.uplink_loss_db
    assert gen.max_level_dbm == pytest.approx(ceiling)
    gen.set_level(MARK_LEVEL_DBM)
    with pytest.raises(SettingOutOfRange, match="above the configured maximum"):
        gen.set_level(ceiling + 1.0)
    with pytest.raises(SettingOutOfRange):
        gen.set_level(float("nan"))
    assert gen.level() == MARK_LEVEL_DBM
    assert twin.rf_state()["generator"]["level_dbm"] == MARK_LEVEL_DBM
    with pytest.raises(SettingOutOfRange):
        gen.set_level(ceiling + 0.001)
    assert gen.level() == MARK_LEVEL_DBM


# -- analyzer path ------------------------------------------------------------------------------------------


class RecordingAnalyzer:
    """Stands in front of the analyzer driver and records every attribute the front end touches."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.touched: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.touched.append(name)
        return getattr(self._real, name)


def test_attenuator_missing_from_the_config_stops_before_any_capture(twin, tmp_path):
    def missing_attenuator(raw: dict) -> None:
        raw["instruments"]["rf_path"]["downlink_loss_db"] = 6.0

    loaded = load_config(write_config(twin, tmp_path / "no-attenuator.yaml", missing_attenuator))
    session = BenchSession.open(loaded, None, None, install_signals=False)
    try:
        analyzer = session._driver("analyzer")
        assert analyzer is not None
        analyzer.reset()  # the capture memory is empty after *RST: a capture would fill it
        spy = RecordingAnalyzer(analyzer)
        cfg = loaded.config
        assert cfg.instruments.rf_path is not None and cfg.dut.envelope.rf is not None
        with pytest.raises(PathWouldOverload) as err:
            check_analyzer_path(cfg.instruments.rf_path, cfg.dut.envelope.rf, loaded.path)
        message = str(err.value)
        assert "instruments.rf_path.downlink_loss_db" in message and "attenuator missing" in message, message
        assert "27 dBm" in message and "Nothing was captured" in message, message
        assert isinstance(err.value, EnvelopeViolation)
        with pytest.raises(PathWouldOverload):
            RfFrontEnd(spy, None, cfg.instruments.rf_path, cfg.dut.envelope.rf,  # type: ignore[arg-type]
                       load_icd(icd_path(loaded.path, cfg.icd)).radio, loaded.path)  # fmt: skip
        assert spy.touched == []
        # The analyzer agrees: still at its reset centre frequency, idle, and no capture in its memory.
        assert analyzer.centre_frequency() != pytest.approx(437.5e6)
        assert not analyzer.measuring()
        with pytest.raises(InstrumentRejected, match="Settings conflict"):  # it holds no record to give
            analyzer.scpi.write("TRAC:IQ:DATA:MEM?")
    finally:
        session.close("test end")


def test_config_with_rf_instruments_but_no_path_does_not_load(twin, tmp_path):
    def no_path(raw: dict) -> None:
        del raw["instruments"]["rf_path"]

    path = write_config(twin, tmp_path / "no-path.yaml", no_path)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "\n" not in message.strip(), message
    assert "instruments.rf_path" in message and str(path) in message, message


# -- generator RF off on every exit ---------------------------------------------------------------------------

PLAN = textwrap.dedent(
    '''
    """Switch the generator's RF on (a weak CW carrier), then end the way MODE says."""
    import os
    from pathlib import Path

    from bench.waiting import await_true


    def test_hold_generator_on(rf):
        rf.cw_on(rf.envelope.max_rx_input_dbm - 40.0)
        assert rf.generator_rf_on
        Path(os.environ["MARKER"]).write_text("on")
        if os.environ["MODE"] == "fail":
            assert False, "deliberate failure with the generator on"
        await_true(lambda: False, timeout_s=300, what="the end of the world", interval_s=0.05)
    '''
)


def start_bench(twin: Twin, tmp_path: Path, mode: str) -> subprocess.Popen[str]:
    plan = tmp_path / "test_generator_plan.py"
    plan.write_text(PLAN)
    config = write_config(twin, tmp_path / "bench.yaml")
    env = {**os.environ, "MODE": mode, "MARKER": str(tmp_path / "generator-on")}
    argv = [sys.executable, "-m", "pytest", str(plan), "-q", "-p", "no:cacheprovider", "--bench-config", str(config)]
    argv += ["--out", str(tmp_path / "runs"), "--limits", str(LIMITS), "--rootdir", str(tmp_path)]
    return subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def safe_state_reasons(tmp_path: Path) -> list[str]:
    [journal] = [p for p in (tmp_path / "runs").glob("*/journal.jsonl") if p.parent.name != "latest"]
    records = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    return [r["reason"] for r in records if r["kind"] == "safe_state"]


def test_failed_run_leaves_generator_rf_off(twin, tmp_path):
    proc = start_bench(twin, tmp_path, "fail")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    assert "deliberate failure with the generator on" in out, out
    assert (tmp_path / "generator-on").exists(), out
    assert not twin.generator_rf_on()
    assert "session end" in safe_state_reasons(tmp_path)


def test_sigterm_leaves_generator_rf_off(twin, tmp_path):
    proc = start_bench(twin, tmp_path, "hang")
    try:
        await_true(
            lambda: (tmp_path / "generator-on").exists() or proc.poll() is not None,
            timeout_s=30,
            what="the plan to switch the generator on",
        )
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert twin.generator_rf_on(), "the plan said RF is on but the twin's generator is off"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 2, out  # pytest: interrupted
    assert not twin.generator_rf_on()
    assert "SIGTERM" in safe_state_reasons(tmp_path)
