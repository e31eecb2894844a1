"""The power monitor's pure logic: limit checking with the time of the first violation, CSV, windows, and the
sampler thread over a fake read-only supply (start, stop on every path, failed readings as gaps)."""

from __future__ import annotations

import csv
import io
import math
import threading

import pytest

from bench.measurement import Limit
from bench.power_monitor import (
    MonitoredLimit,
    PowerMonitor,
    PowerSample,
    PowerTrace,
    check_limit,
    csv_header,
)
from bench.waiting import await_true

T0 = 1_800_000_000.0


def trace_of(amps: list[float], volts: float = 3.8, dt: float = 0.05) -> PowerTrace:
    samples = tuple(PowerSample(T0 + k * dt, (volts,), (a,)) for k, a in enumerate(amps))
    return PowerTrace(("dut_main",), (1,), T0, samples)


CEILING = MonitoredLimit(Limit("EPS.BUS_CURRENT_MAX", "A", high=1.0, requirements=("OTS-EPS-010",)))


def test_first_violation_names_value_bound_and_time() -> None:
    amps = [0.5] * 47 + [1.23, 1.5, 0.5]
    violation = check_limit(trace_of(amps), CEILING)
    assert violation is not None
    assert violation.value == 1.23 and violation.count == 2
    assert violation.t_rel == pytest.approx(2.35)
    assert violation.message() == (
        "bus current 1.23 A > 1 A at t+2.35 s (EPS.BUS_CURRENT_MAX on dut_main, OTS-EPS-010; 2 samples outside)"
    )


def test_within_the_ceiling_and_gaps_are_no_violation() -> None:
    assert check_limit(trace_of([0.5, math.nan, 0.99, 1.0]), CEILING) is None


def test_voltage_ceiling() -> None:
    lim = MonitoredLimit(Limit("X.V", "V", high=4.0, requirements=("OTS-EPS-021",)))
    violation = check_limit(trace_of([0.5, 0.5], volts=4.1), lim)
    assert violation is not None and violation.message().startswith("bus voltage 4.1 V > 4 V at t+0.00 s")


def test_a_floor_or_other_units_are_refused() -> None:
    with pytest.raises(ValueError, match="must be a ceiling"):
        MonitoredLimit(Limit("EPS.IDLE_CURRENT", "A", low=0.35, high=0.65))
    with pytest.raises(ValueError, match="must be in A"):
        MonitoredLimit(Limit("COMMS.TX_POWER", "dBm", high=31.0))


def test_unmonitored_role_is_named() -> None:
    with pytest.raises(KeyError, match="'dut_aux' is not monitored"):
        check_limit(trace_of([0.5]), MonitoredLimit(CEILING.limit, "dut_aux"))


def test_csv_has_epoch_time_relative_time_and_v_i_per_channel() -> None:
    trace = PowerTrace(("dut_main", "dut_aux"), (1, 2), T0, (PowerSample(T0 + 0.5, (3.8, 5.0), (0.5, math.nan)),))
    rows = list(csv.reader(io.StringIO(trace.to_csv())))
    assert rows[0] == csv_header(("dut_main", "dut_aux"), (1, 2))
    assert rows[0] == ["time", "t_s", "dut_main_ch1_V", "dut_main_ch1_A", "dut_aux_ch2_V", "dut_aux_ch2_A"]
    assert rows[1] == [f"{T0 + 0.5:.6f}", "0.500000", "3.8", "0.5", "5", "nan"]


def test_window_peak_summary_and_plot_series() -> None:
    trace = trace_of([0.5, 1.5, 0.7, math.nan])
    assert trace.window(T0 + 0.04, T0 + 0.11).currents("dut_main") == (1.5, 0.7)
    assert trace.peak_current("dut_main") == (1.5, T0 + 0.05)
    [summary] = trace.summary()
    assert (summary.i_min, summary.i_max, summary.i_mean) == (0.5, 1.5, pytest.approx(0.9))
    assert trace.rate_hz == pytest.approx(20.0)
    series = trace.current_series([CEILING])
    assert [s.style for s in series] == ["line", "limit"] and series[1].y == (1.0,)


class FakeReader:
    """Only the read half of a supply: the monitor can call nothing else."""

    def __init__(self, fail_every: int = 0) -> None:
        self.calls = 0
        self.fail_every = fail_every
        self.lock = threading.Lock()

    def measure_voltage(self, ch: int) -> float:
        return 3.8

    def measure_current(self, ch: int) -> float:
        with self.lock:
            self.calls += 1
            if self.fail_every and self.calls % self.fail_every == 0:
                raise OSError("link hiccup")
            return 0.5


def test_sampler_writes_csv_in_batches_and_stops(tmp_path) -> None:
    path = tmp_path / "power.csv"
    monitor = PowerMonitor(FakeReader(fail_every=3), {"dut_main": 1}, rate_hz=200, csv_path=path, batch_s=0.01)
    monitor.start()
    try:
        monitor.await_sample_after(monitor.t0, timeout_s=5)
        # a batch reaches the disk while sampling runs: a killed run keeps it
        await_true(lambda: len(path.read_text().splitlines()) > 2, timeout_s=5, what="a flushed CSV batch")
    finally:
        trace = monitor.stop()
    assert not monitor.running
    assert monitor.stop().samples == trace.samples  # idempotent; nothing sampled after stop
    rows = path.read_text().splitlines()
    assert len(rows) == 1 + len(trace.samples)
    amps = trace.currents("dut_main")
    assert trace.errors == sum(1 for a in amps if math.isnan(a)) and trace.errors >= 1


def test_sampler_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="positive number of Hz"):
        PowerMonitor(FakeReader(), {"dut_main": 1}, rate_hz=0)
    with pytest.raises(ValueError, match="no channel"):
        PowerMonitor(FakeReader(), {})
