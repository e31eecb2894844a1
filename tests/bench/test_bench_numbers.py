"""Every number validated (issue "Trust", point 7): limits, envelope, ICD ranges and config timeouts are finite,
ordered and inside their wire type, and a bad one is refused at load in one line naming the file, the field and
the bad value. A measured value that is not a finite number fails, and the journal stays strict JSON."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.config import CONFIG_DIR, ConfigError, ModelLevel, load_config
from bench.icd import PACKAGE_ICD, IcdError, load_icd
from bench.journal import Journal, encode_measurement
from bench.limits import load_limits
from bench.measurement import Limit, Measurement, Verdict
from fixtures.recording import MeasurementRecorder
from reports.run_record import read_journal
from twin.icd import load_icd as twin_load_icd

PROJECT = Path(__file__).resolve().parents[2]
CONFIG = (CONFIG_DIR / "twin.yaml").read_text()
ICD = PACKAGE_ICD.read_text()
LIMITS = PROJECT / "test_plans" / "limits.yaml"


def _strict(line: str) -> Any:
    """json.loads that refuses NaN, Infinity and -Infinity (Python's json accepts them by default)."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(line, parse_constant=refuse)


def _edited(text: str, old: str, new: str) -> str:
    assert text.count(old) >= 1, f"the shipped file no longer has {old!r}"
    return text.replace(old, new, 1)


# --- bench config ---------------------------------------------------------------------------------------------


def _config_error(tmp_path: Path, old: str, new: str) -> tuple[str, Path]:
    path = tmp_path / "bench.yaml"
    path.write_text(_edited(CONFIG, old, new))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value), path


@pytest.mark.parametrize(
    ("old", "new", "field", "shown"),
    [
        ("max_current: 3.0", "max_current: .nan", "dut.envelope.max_current", ".nan"),
        ("max: 4.2}", "max: .inf}", "dut.envelope.bus_voltage.max", ".inf"),
        ("ocp_delay_s: 0.05", "ocp_delay_s: .nan", "dut.envelope.ocp_delay_s", ".nan"),
        ("max_tx_power_dbm: 33.0", "max_tx_power_dbm: -.inf", "dut.envelope.rf.max_tx_power_dbm", "-.inf"),
        ("downlink_loss_db: 40.8", "downlink_loss_db: .nan", "instruments.rf_path.downlink_loss_db", ".nan"),
        (
            "analyzer_max_input_dbm: 30.0",
            "analyzer_max_input_dbm: .inf",
            "instruments.rf_path.analyzer_max_input_dbm",
            ".inf",
        ),
        ("{V: 0.0035,", "{V: .nan,", "calibration.MY61000123.uncertainty.V", ".nan"),
        ("watchdog_s: 5", "watchdog_s: .nan", "safety.watchdog_s", ".nan"),
        (
            "cfp_version: 1\n",
            "cfp_version: 1\n    acceptance_timeout_s: .inf\n",
            "instruments.can.acceptance_timeout_s",
            ".inf",
        ),
    ],
)
def test_config_numbers_are_finite(tmp_path, old, new, field, shown):
    msg, path = _config_error(tmp_path, old, new)
    assert msg == f"{path}: {field}: {shown} is not a finite number; give a finite value"


@pytest.mark.parametrize(
    ("old", "new", "field", "shown"),
    [
        ("timeout_s: 2.0", "timeout_s: 1.0e+9", "instruments.psu.timeout_s", "1e+09"),
        ("timeout_s: 2.0", "timeout_s: 0", "instruments.psu.timeout_s", "0"),
        ("timeout_s: 2.0", "timeout_s: -2", "instruments.psu.timeout_s", "-2"),
        (
            "psu_dialect: keysight",
            "psu_dialect: keysight\n  startup_timeout_s: 86400",
            "twin.startup_timeout_s",
            "86400",
        ),
        (
            "cfp_version: 1\n",
            "cfp_version: 1\n    completion_timeout_s: 5000\n",
            "instruments.can.completion_timeout_s",
            "5000",
        ),
        (
            "watchdog_s: 5",
            "watchdog_s: 5\n  stable_current_timeout_s: 1.0e+6",
            "safety.stable_current_timeout_s",
            "1e+06",
        ),
    ],
)
def test_config_timeouts_are_positive_and_at_most_an_hour(tmp_path, old, new, field, shown):
    msg, path = _config_error(tmp_path, old, new)
    assert msg == (
        f"{path}: {field}: {shown} s is outside (0, 3600] s; give the timeout in seconds (a larger one is a typo)"
    )


def test_config_heartbeat_is_shorter_than_the_watchdog(tmp_path):
    msg, path = _config_error(tmp_path, "watchdog_s: 5", "watchdog_s: 5\n  heartbeat_s: 5")
    assert msg == (
        f"{path}: safety: heartbeat_s 5 s is not shorter than watchdog_s 5 s: the supply's watchdog would switch "
        "the DUT off between two heartbeats; make heartbeat_s smaller"
    )


def test_config_uncertainty_is_not_negative(tmp_path):
    msg, path = _config_error(tmp_path, "{V: 0.0035,", "{V: -0.0035,")
    assert (
        msg == f"{path}: calibration.MY61000123.uncertainty.V: Input should be greater than or equal to 0, got -0.0035"
    )


def test_config_type_errors_show_the_bad_value(tmp_path):
    msg, path = _config_error(tmp_path, "watchdog_s: 5", "watchdog_s: soon")
    assert msg == (
        f"{path}: safety.watchdog_s: Input should be a valid number, unable to parse string as a number, got 'soon'"
    )


def test_config_huge_integer_is_shown_short(tmp_path):
    msg, path = _config_error(tmp_path, "max_current: 3.0", "max_current: 1" + "0" * 400)
    assert msg == f"{path}: dut.envelope.max_current: Input should be a valid number, got 100000… (401-digit integer)"


def test_config_that_is_not_utf8_is_refused_in_one_line(tmp_path):
    path = tmp_path / "bench.yaml"
    path.write_bytes(CONFIG.replace("name: twin-bench", "name: twin-b\xfcnch").encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: line 5: byte 0xfc is not UTF-8; save the bench config as UTF-8"


def test_config_impossible_date_is_refused_in_one_line(tmp_path):
    msg, path = _config_error(tmp_path, "due: 2099-12-31", "due: 2099-13-31")
    assert msg == f"{path}: month must be in 1..12; fix the value"


# --- limits file ----------------------------------------------------------------------------------------------

LIMIT = """schema: 1
marginal_fraction: {fraction}
limits:
  EPS.X:
    units: A
    requirements: [OTS-EPS-001]
    all: {{low: 0.3, high: 0.7}}
    FM: {{low: {low}, high: {high}}}
    marginal_fraction: {own_fraction}
masks:
  COMMS.MASK:
    requirements: [OTS-COM-012]
    points: [[12500, -40], [25000, {point}]]
"""


def _limits_error(tmp_path: Path, **values: str) -> tuple[str, Path]:
    fields = {"fraction": "0.05", "low": "0.35", "high": "0.65", "own_fraction": "0.1", "point": "-50", **values}
    path = tmp_path / "limits.yaml"
    path.write_text(LIMIT.format(**fields))
    with pytest.raises(ConfigError) as info:
        load_limits(path, ModelLevel.FM)
    return str(info.value), path


def test_limits_template_loads(tmp_path):
    path = tmp_path / "limits.yaml"
    path.write_text(LIMIT.format(fraction="0.05", low="0.35", high="0.65", own_fraction="0.1", point="-50"))
    limit = load_limits(path, ModelLevel.FM)["EPS.X"]
    assert (limit.low, limit.high, limit.marginal_fraction) == (0.35, 0.65, 0.1)


def test_nan_limit_is_refused_at_load(tmp_path):
    msg, path = _limits_error(tmp_path, low=".nan")
    assert msg == f"{path}: limits.EPS.X.FM.low: .nan is not a number; give a finite bound"


@pytest.mark.parametrize(("key", "shown"), [("high", ".inf"), ("low", "-.inf")])
def test_infinite_limit_says_to_leave_the_bound_out(tmp_path, key, shown):
    msg, path = _limits_error(tmp_path, **{key: shown})
    assert msg == f"{path}: limits.EPS.X.FM.{key}: {shown} is not a bound; for a one-sided limit leave this bound out"


def test_limit_bounds_are_ordered(tmp_path):
    msg, path = _limits_error(tmp_path, low="0.7", high="0.6")
    assert msg == f"{path}: limits.EPS.X.FM: low 0.7 is above high 0.6; swap or correct the bounds"


def test_marginal_fraction_is_finite(tmp_path):
    msg, path = _limits_error(tmp_path, fraction=".nan")
    assert msg == f"{path}: marginal_fraction: .nan is not a finite number; give a finite value"
    msg, path = _limits_error(tmp_path, own_fraction=".inf")
    assert msg == f"{path}: limits.EPS.X.marginal_fraction: .inf is not a finite number; give a finite value"


def test_mask_points_are_finite(tmp_path):
    msg, path = _limits_error(tmp_path, point="-.inf")
    assert msg == f"{path}: masks.COMMS.MASK.points.1.1: -.inf is not a finite number; give a finite value"


def test_limit_in_code_refuses_a_non_finite_bound():
    with pytest.raises(ValueError, match=r"limit X\.Y: bound nan is not a finite number; leave it out"):
        Limit("X.Y", "V", low=math.nan, high=1.0)
    with pytest.raises(ValueError, match=r"limit X\.Y: bound inf is not a finite number"):
        Limit("X.Y", "V", high=math.inf)


# --- ICD (bench loader) ---------------------------------------------------------------------------------------

TX_POWER = "{name: dbm, type: u8, min: 20, max: 33"


def _icd_error(tmp_path: Path, old: str, new: str) -> tuple[str, Path]:
    path = tmp_path / "icd.yaml"
    path.write_text(_edited(ICD, old, new))
    with pytest.raises(IcdError) as info:
        load_icd(path)
    return str(info.value), path


def test_shipped_icd_loads_in_both_loaders():
    assert load_icd().command("COMMS.SET_TX_POWER").definition.args[0].max == 33
    assert twin_load_icd().nodes["COMMS"].commands[1].args[0].max == 33


def test_icd_range_outside_its_wire_type_is_refused(tmp_path):
    msg, path = _icd_error(tmp_path, TX_POWER, "{name: dbm, type: u8, min: 0, max: 300")
    assert msg == (
        f"{path}: commands.COMMS[1].args[0].max: 300 does not fit in u8 (0..255) ('dbm'); "
        "give a range the type can carry, or a wider type"
    )


def test_icd_range_below_an_unsigned_type_is_refused(tmp_path):
    msg, path = _icd_error(tmp_path, TX_POWER, "{name: dbm, type: u8, min: -1, max: 33")
    assert msg == (
        f"{path}: commands.COMMS[1].args[0].min: -1 does not fit in u8 (0..255) ('dbm'); "
        "give a range the type can carry, or a wider type"
    )


def test_icd_range_is_checked_after_scale_and_offset(tmp_path):
    msg, path = _icd_error(
        tmp_path,
        "{name: rpm, type: i16, min: -6000, max: 6000",
        "{name: rpm, type: i16, scale: 0.1, min: -6000, max: 6000",
    )
    assert msg == (
        f"{path}: commands.ADCS[1].args[1].min: -6000 does not fit in i16 (raw -32768..32767, i.e. -3276.8..3276.7 rpm "
        "at scale 0.1, offset 0) ('rpm'); give a range the type can carry, or a wider type"
    )
    msg, path = _icd_error(
        tmp_path,
        "{name: TX_POWER, type: u8, units: dBm, scale: 1",
        "{name: TX_POWER, type: u8, units: dBm, scale: 1, offset: -40, max: 250",
    )
    assert msg == (
        f"{path}: housekeeping.COMMS[0].fields[2].max: 250 does not fit in u8 (raw 0..255, i.e. -40..215 dBm at "
        "scale 1, offset -40) ('TX_POWER'); give a range the type can carry, or a wider type"
    )


def test_icd_f32_range_is_inside_float32(tmp_path):
    msg, path = _icd_error(tmp_path, "min: 3.0, max: 4.0, default: 3.4", "min: 3.0, max: 1.0e+39, default: 3.4")
    assert msg == (
        f"{path}: parameters.EPS[0].max: 1e+39 does not fit in f32 (|raw| <= 3.4028235e+38) ('UV_WARN_THRESHOLD'); "
        "give a range the type can carry, or a wider type"
    )


def test_icd_default_too_large_for_any_float_is_refused_in_one_line(tmp_path):
    """Found by the loader fuzz: a 400-digit integer default raised OverflowError out of the loader."""
    huge = "1" + "0" * 400
    msg, path = _icd_error(tmp_path, "min: 3.0, max: 4.0, default: 3.4", f"min: 3.0, max: 4.0, default: {huge}")
    assert msg.startswith(f"{path}: parameters.EPS[0].default: ") and "too large for f32" in msg, msg
    assert "\n" not in msg


@pytest.mark.parametrize("bad", [".nan", ".inf", "-.inf"])
def test_icd_range_is_finite(tmp_path, bad):
    msg, path = _icd_error(tmp_path, TX_POWER, f"{{name: dbm, type: u8, min: {bad}, max: 33")
    assert msg == f"{path}: commands.COMMS[1].args[0].min: {bad} is not a finite number; give a finite value"


def test_icd_scale_is_finite(tmp_path):
    msg, path = _icd_error(
        tmp_path, "{name: VBAT, type: u16, units: V, scale: 0.001", "{name: VBAT, type: u16, units: V, scale: .nan"
    )
    assert msg == f"{path}: housekeeping.EPS[0].fields[0].scale: .nan is not a finite number; give a finite value"


def test_icd_range_is_ordered(tmp_path):
    msg, path = _icd_error(tmp_path, TX_POWER, "{name: dbm, type: u8, min: 40, max: 33")
    assert msg == f"{path}: commands.COMMS[1].args[0].min: 40 is above max 33 ('dbm'); swap or correct them"


def test_icd_enum_value_inside_its_wire_type(tmp_path):
    msg, path = _icd_error(tmp_path, "HEATER: 4}", "HEATER: 400}")
    assert (
        msg == f"{path}: commands.EPS[0].args[0].enum.HEATER: 400 does not fit in u8 (0..255); "
        "renumber it or widen the type"
    )


def test_icd_parameter_default_inside_its_range_and_type(tmp_path):
    msg, path = _icd_error(tmp_path, "min: 3.0, max: 4.0, default: 3.4", "min: 3.0, max: 4.0, default: 4.4")
    assert msg == f"{path}: parameters.EPS[0].default: 4.4 is outside min..max (3..4) of 'UV_WARN_THRESHOLD'"
    msg, path = _icd_error(tmp_path, "min: 10, max: 600, default: 60", "min: 10, max: 600, default: 60.5")
    assert msg == (
        f"{path}: parameters.OBC[0].default: 60.5 is not an integer (u16) ('WATCHDOG_TIMEOUT'); "
        "give a value the type can carry"
    )
    msg, path = _icd_error(tmp_path, "min: 10, max: 600, default: 60", "default: 70000")
    assert msg == (
        f"{path}: parameters.OBC[0].default: 70000 does not fit in u16 (0..65535) ('WATCHDOG_TIMEOUT'); "
        "give a value the type can carry"
    )


def test_icd_parameter_range_inside_its_wire_type(tmp_path):
    msg, path = _icd_error(
        tmp_path, "type: u16, units: s, min: 10, max: 600", "type: u16, units: s, min: 10, max: 70000"
    )
    assert msg == (
        f"{path}: parameters.OBC[0].max: 70000 does not fit in u16 (0..65535) ('WATCHDOG_TIMEOUT'); "
        "give a range the type can carry, or a wider type"
    )


def test_icd_other_numbers_are_finite(tmp_path):
    msg, path = _icd_error(tmp_path, "period_s: 1.0", "period_s: .nan")
    assert msg == f"{path}: housekeeping.OBC[0].period_s: .nan is not a finite number; give a finite value"
    msg, path = _icd_error(tmp_path, "frequency_hz: 437500000", "frequency_hz: .inf")
    assert msg == f"{path}: radio.frequency_hz: .inf is not a finite number; give a finite value"


# --- ICD (the twin's own loader) ------------------------------------------------------------------------------


def _twin_icd_error(tmp_path: Path, old: str, new: str) -> tuple[str, Path]:
    path = tmp_path / "icd.yaml"
    path.write_text(_edited(ICD, old, new))
    with pytest.raises(ValueError) as info:
        twin_load_icd(path)
    return str(info.value), path


def test_twin_icd_range_outside_its_wire_type_is_refused(tmp_path):
    msg, path = _twin_icd_error(tmp_path, TX_POWER, "{name: dbm, type: u8, min: 0, max: 300")
    assert msg == f"{path}: commands.COMMS[1].args[0].max: 300 does not fit in u8 (0..255); give a value it can carry"


def test_twin_icd_range_is_checked_after_scale(tmp_path):
    msg, path = _twin_icd_error(
        tmp_path,
        "{name: VBAT, type: u16, units: V, scale: 0.001",
        "{name: VBAT, type: u16, units: V, scale: 0.001, max: 70",
    )
    assert msg == (
        f"{path}: housekeeping.EPS[0].fields[0].max: 70 does not fit in u16 (raw 0..65535, i.e. 0..65.535 at scale "
        "0.001, offset 0); give a value it can carry"
    )


def test_twin_icd_range_is_finite_and_ordered(tmp_path):
    msg, path = _twin_icd_error(tmp_path, TX_POWER, "{name: dbm, type: u8, min: .nan, max: 33")
    assert msg == f"{path}: commands.COMMS[1].args[0].min: .nan is not a finite number; give a finite number"
    msg, path = _twin_icd_error(tmp_path, TX_POWER, "{name: dbm, type: u8, min: 40, max: 33")
    assert msg == f"{path}: commands.COMMS[1].args[0].min: 40 is above max 33; swap or correct them"


def test_twin_icd_enum_and_default(tmp_path):
    msg, path = _twin_icd_error(tmp_path, "HEATER: 4}", "HEATER: 400}")
    assert (
        msg == f"{path}: commands.EPS[0].args[0].enum.HEATER: 400 does not fit in u8 (0..255); "
        "renumber it or widen the type"
    )
    msg, path = _twin_icd_error(tmp_path, "min: 3.0, max: 4.0, default: 3.4", "min: 3.0, max: 4.0, default: 4.4")
    assert msg == f"{path}: parameters.EPS[0].default: 4.4 is outside min..max (3..4)"


# --- measured values that are not numbers ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(("low", "high"), [(0.3, 0.7), (0.3, None), (None, 0.7)])
def test_non_finite_value_fails_every_limit(value, low, high):
    verdict, margin, pct = Limit("X.Y", "A", low=low, high=high).judge(value)
    assert verdict is Verdict.FAIL and math.isnan(margin) and pct is None


def _measurement(value: float, margin: float, extra: dict[str, object] | None = None) -> Measurement:
    return Measurement(
        "EPS.X", value, "A", 0.3, 0.7, Verdict.FAIL, margin, None, ("OTS-EPS-020",), "t::x",
        "2026-01-01T00:00:00+00:00", "", None, extra,
    )  # fmt: skip


@pytest.mark.parametrize(("value", "text"), [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")])
def test_journal_line_of_a_non_finite_value_is_strict_json(value, text):
    record = _strict(encode_measurement(_measurement(value, math.nan, {"raw": math.inf, "ok": [1.5, math.nan]})))
    assert record["value"] == text and record["margin"] is None and record["margin_pct"] is None
    assert record["extra"] == {"raw": None, "ok": [1.5, None]}


def test_journal_records_are_strict_json(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    extra = {"a": (math.inf, 1.0), "by_key": {math.nan: 1, (1, 2): -math.inf}}
    journal.record("test_end", test_id="t::x", outcome="failed", duration=math.nan, extra=extra)
    journal.measurement(_measurement(math.nan, math.nan))
    journal.close()
    records = [_strict(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert records[0]["duration"] is None
    assert records[0]["extra"] == {"a": [None, 1.0], "by_key": {"nan": 1, "(1, 2)": None}}
    assert records[1]["value"] == "nan"


def test_nan_measurement_fails_and_both_readers_read_it(tmp_path):
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    journal.record("run_start", run_id="r1")
    journal.record("test_start", test_id="t::x", name="x")
    recorder = MeasurementRecorder("t::x", load_limits(LIMITS, ModelLevel.EM), journal)
    bad = recorder("EPS.IDLE_CURRENT", float("nan"))
    inf = recorder("EPS.INRUSH_PEAK", float("-inf"))  # a one-sided limit: -inf is below the high bound, still fails
    good = recorder("EPS.IDLE_CURRENT", 0.5)
    journal.record("test_end", test_id="t::x", outcome="failed", duration=0.1, message=recorder.failure_text())
    journal.record("run_end", exit_status=1, counts={"failed": 1})
    journal.close()
    assert (bad.verdict, inf.verdict, good.verdict) == (Verdict.FAIL, Verdict.FAIL, Verdict.PASS)
    assert recorder.failed == [bad, inf]
    text = recorder.failure_text()
    assert (
        "EPS.IDLE_CURRENT = nan A [0.35, 0.65] -> FAIL (the value is not a finite number: the instrument or the "
        "step returned nan; check its reply; OTS-EPS-020)"
    ) in text
    assert "EPS.INRUSH_PEAK = -inf A [-inf, 3.3] -> FAIL (the value is not a finite number" in text
    for line in path.read_text().splitlines():
        _strict(line)
    fast, reference = read_journal(path), read_journal(path, fast=False)
    assert fast == reference
    values = [(m.name, m.value, m.verdict, m.margin) for m in fast.tests[0].measurements]
    assert values == [
        ("EPS.IDLE_CURRENT", "nan", "fail", None),
        ("EPS.INRUSH_PEAK", "-inf", "fail", None),
        ("EPS.IDLE_CURRENT", 0.5, "pass", pytest.approx(0.15)),
    ]


NAN_PLAN = """
def test_garbage_reply(measure):
    measure("EPS.IDLE_CURRENT", float("nan"))
"""


def test_nan_measurement_fails_the_test_in_a_real_run(tmp_path):
    (tmp_path / "test_gen.py").write_text(NAN_PLAN)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # the project's addopts stay out of this run
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--limits", str(LIMITS)]
    argv += ["--out", str(tmp_path / "runs")]
    env = {k: v for k, v in os.environ.items() if k != "BENCH_DB"}  # the run's database stays in tmp_path
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "the value is not a finite number: the instrument or the step returned nan" in proc.stdout
    lines = (tmp_path / "runs" / "latest" / "journal.jsonl").read_text().splitlines()
    records = [_strict(line) for line in lines]
    [measurement] = [r for r in records if r["kind"] == "measurement"]
    assert measurement["value"] == "nan" and measurement["verdict"] == "fail" and measurement["margin"] is None
