"""The power-supply drivers against the digital twin (a subprocess serving real SCPI over TCP).

Both dialects run the same behaviour tests; capabilities only one model has are tested on it, and the
other is checked to refuse them. Faults (silent instrument, dropped link) are injected through the twin's
control endpoint, exactly as a flaky LAN or a hung instrument would present them to the drivers.
"""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import pyvisa

from bench.twin_launcher import TwinProcess
from bench.waiting import await_value
from instruments.errors import (
    ConnectionLost,
    InstrumentRejected,
    InstrumentTimeout,
    InstrumentUnreachable,
    NotSupported,
    SettingOutOfRange,
)
from instruments.power import PowerSupply
from instruments.psu_base import ScpiPowerSupply
from instruments.registry import open_power_supply

DRIVERS = {"keysight": "keysight-e36312a", "rigol": "rigol-dp832"}
EXPECTED_IDENTITY = {"keysight": ("Keysight Technologies", "E36312A"), "rigol": ("RIGOL TECHNOLOGIES", "DP832")}
# A command each dialect accepts syntactically but must reject as out of range (the driver would refuse it).
OUT_OF_RANGE = {"keysight": "VOLT 9,(@1)", "rigol": ":SOUR3:VOLT 9"}
TIMEOUT_S = 0.5


class Twin:
    def __init__(self, dialect: str, process: TwinProcess) -> None:
        self.dialect = dialect
        self.driver = DRIVERS[dialect]
        self.endpoints = process.endpoints
        self.resource = str(process.endpoints["psu"]["resource"])

    def control(self, **message: Any) -> dict[str, Any]:
        endpoint = self.endpoints["control"]
        with socket.create_connection((endpoint["host"], endpoint["port"]), timeout=5) as sock:
            sock.sendall(json.dumps(message).encode() + b"\n")
            reply: dict[str, Any] = json.loads(sock.makefile().readline())
        assert reply.get("ok"), reply
        return reply

    def open(self, timeout_s: float = TIMEOUT_S) -> ScpiPowerSupply:
        psu = open_power_supply(self.driver, self.resource, timeout_s)
        assert isinstance(psu, ScpiPowerSupply)
        return psu


@pytest.fixture(scope="module", params=["keysight", "rigol"])
def twin(request: pytest.FixtureRequest) -> Iterator[Twin]:
    with TwinProcess(psu_dialect=request.param, ports="auto") as process:
        yield Twin(request.param, process)


@pytest.fixture(scope="module")
def keysight_twin() -> Iterator[Twin]:
    with TwinProcess(psu_dialect="keysight", ports="auto") as process:
        yield Twin("keysight", process)


def _open_reset(twin: Twin) -> Iterator[ScpiPowerSupply]:
    psu = twin.open()
    psu.reset()
    yield psu
    twin.control(cmd="fault", name="psu_silent", on=False)
    psu.all_outputs_off()
    psu.disarm_watchdog()
    psu.close()


@pytest.fixture
def psu(twin: Twin) -> Iterator[ScpiPowerSupply]:
    yield from _open_reset(twin)


@pytest.fixture
def keysight(keysight_twin: Twin) -> Iterator[ScpiPowerSupply]:
    yield from _open_reset(keysight_twin)


def power_dut(psu: PowerSupply, volts: float = 3.8, amps: float = 3.0) -> None:
    psu.set_voltage(1, volts)
    psu.set_current_limit(1, amps)
    psu.set_output(1, True)


def test_identity(twin: Twin, psu: ScpiPowerSupply) -> None:
    ident = psu.identity()
    assert (ident.maker, ident.model) == EXPECTED_IDENTITY[twin.dialect]
    assert ident.serial and ident.firmware
    assert isinstance(psu, PowerSupply)


def test_set_read_back_and_measure(psu: ScpiPowerSupply) -> None:
    power_dut(psu)
    assert psu.voltage_setpoint(1) == pytest.approx(3.8)
    assert psu.current_limit(1) == pytest.approx(3.0)
    assert psu.output(1) is True
    volts = await_value(lambda: psu.measure_voltage(1), lambda v: abs(v - 3.8) < 0.05, timeout_s=2, what="3.8 V")
    assert volts == pytest.approx(3.8, abs=0.05)
    amps = await_value(lambda: psu.measure_current(1), lambda a: 0.2 < a < 1.0, timeout_s=2, what="DUT idle")
    assert 0.2 < amps < 1.0  # the booted satellite draws ~0.5 A
    psu.set_voltage(2, 5.0)
    psu.set_output(2, True)
    assert psu.measure_voltage(2) == pytest.approx(5.0, abs=0.05)
    assert psu.measure_current(2) == pytest.approx(0.0, abs=0.01)  # nothing is connected to CH2


def test_refusal_before_sending_leaves_the_instrument_unchanged(psu: ScpiPowerSupply) -> None:
    psu.set_voltage(1, 3.8)
    too_high = psu.channels[1].max_voltage + 0.5
    with pytest.raises(SettingOutOfRange):
        psu.set_voltage(1, too_high)
    with pytest.raises(SettingOutOfRange):
        psu.set_current_limit(4, 0.1)
    assert psu.voltage_setpoint(1) == pytest.approx(3.8)
    assert psu.scpi.drain_errors() == ()


def test_instrument_error_is_rejected_naming_the_command(twin: Twin, psu: ScpiPowerSupply) -> None:
    command = OUT_OF_RANGE[twin.dialect]
    with pytest.raises(InstrumentRejected) as info:
        psu.scpi.write(command)  # straight to the transport: the driver itself would refuse it
    assert info.value.code == -222 and info.value.command == command
    assert f"'{command}'" in str(info.value) and twin.resource in str(info.value)
    with pytest.raises(InstrumentRejected, match="-113") as unknown:
        psu.scpi.write("FOO:BAR 1")
    assert unknown.value.command == "FOO:BAR 1"
    psu.heartbeat()  # the queue was drained: the link is usable


def test_silent_instrument_times_out_with_a_clear_message_then_recovers(twin: Twin, psu: ScpiPowerSupply) -> None:
    twin.control(cmd="fault", name="psu_silent", on=True)
    with pytest.raises(InstrumentTimeout) as info:
        psu.measure_current(1)
    command = "MEAS:CURR? (@1)" if twin.dialect == "keysight" else ":MEAS:CURR? CH1"
    assert str(info.value) == (
        f"no reply within {TIMEOUT_S:g} s to '{command}' from {twin.resource}"
        " — is the instrument hung or the link down?"
    )
    twin.control(cmd="fault", name="psu_silent", on=False)
    psu.heartbeat()  # a fresh connection: no late reply can be misread


def test_dropped_connection_is_lost_then_recovers(twin: Twin, psu: ScpiPowerSupply) -> None:
    psu.heartbeat()
    twin.control(cmd="fault", name="psu_drop")
    with pytest.raises(ConnectionLost) as info:
        psu.measure_voltage(1)
    assert twin.resource in str(info.value)
    assert psu.measure_voltage(1) == pytest.approx(0.0, abs=0.05)  # reconnected


def test_closed_port_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    resource = f"TCPIP0::127.0.0.1::{port}::SOCKET"
    with pytest.raises(InstrumentUnreachable) as info:
        open_power_supply("keysight-e36312a", resource, TIMEOUT_S)
    assert resource in str(info.value)
    assert "check the instrument is powered and the resource string in the bench config" in str(info.value)


def test_ocp_trip_is_read_back_and_cleared(psu: ScpiPowerSupply) -> None:
    psu.set_ocp(1, True, 0.0)
    power_dut(psu, amps=0.3)  # the booting satellite wants more than 0.3 A: current limit, then OCP
    state = await_value(lambda: psu.protection(1), lambda s: s.ocp_tripped, timeout_s=3, what="OCP trip")
    assert not state.ovp_tripped and not state.watchdog_tripped
    assert psu.measure_current(1) == pytest.approx(0.0, abs=0.01)
    psu.set_output(1, False)  # remove the cause first: a cleared Keysight goes back to its programmed state
    psu.clear_protection(1)
    assert psu.protection(1).ocp_tripped is False


def test_all_outputs_off_switches_every_channel_and_verifies(psu: ScpiPowerSupply) -> None:
    power_dut(psu)
    for channel in (2, 3):
        psu.set_voltage(channel, 1.0)
        psu.set_output(channel, True)
    psu.all_outputs_off()
    assert [psu.output(channel) for channel in psu.channels] == [False, False, False]
    assert psu.measure_voltage(2) == pytest.approx(0.0, abs=0.05)


def test_all_outputs_off_survives_a_dropped_connection(twin: Twin, psu: ScpiPowerSupply) -> None:
    power_dut(psu)
    twin.control(cmd="fault", name="psu_drop")
    psu.all_outputs_off()  # the first attempt meets the dead link, the retry runs on a fresh one
    assert psu.output(1) is False


def test_all_outputs_off_on_a_hung_instrument_raises(twin: Twin, psu: ScpiPowerSupply) -> None:
    twin.control(cmd="fault", name="psu_silent", on=True)
    with pytest.raises(InstrumentTimeout):
        psu.all_outputs_off()


# -- the Keysight's watchdog and digitizer (the Rigol has neither: see the last test) ----------------------


def test_watchdog_switches_outputs_off_when_the_bench_goes_quiet(keysight: ScpiPowerSupply) -> None:
    power_dut(keysight)
    keysight.arm_watchdog(1)
    await_value(lambda: keysight.measure_voltage(1), lambda v: v > 3.7, timeout_s=2, what="output up")
    time.sleep(1.5)  # the stimulus *is* silence: any exchange would feed the watchdog
    state = keysight.protection(1)
    assert state.watchdog_tripped is True
    assert keysight.measure_voltage(1) == pytest.approx(0.0, abs=0.05)
    keysight.disarm_watchdog()
    keysight.clear_protection(1)
    assert keysight.protection(1).watchdog_tripped is False


def test_heartbeat_keeps_the_watchdog_fed(keysight: ScpiPowerSupply) -> None:
    power_dut(keysight)
    keysight.arm_watchdog(1)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(0.25):
            keysight.heartbeat()

    thread = threading.Thread(target=beat)
    thread.start()
    try:
        time.sleep(1.5)  # longer than the watchdog delay, with only the heartbeat talking
    finally:
        stop.set()
        thread.join()
    assert keysight.protection(1).watchdog_tripped is False
    assert keysight.measure_voltage(1) == pytest.approx(3.8, abs=0.05)


def test_capture_current_shows_the_inrush_peak(keysight: ScpiPowerSupply) -> None:
    keysight.set_voltage(1, 3.8)
    keysight.set_current_limit(1, 3.0)
    time.sleep(0.05)  # the bus capacitance (τ = 3 ms) must be discharged for a full inrush
    # 10,000 × 20 µs = 200 ms: the output-on command (one exchange after the trigger) may reach the twin late on
    # a loaded machine; the inrush must still fall inside the record.
    trace = keysight.capture_current(1, 10_000, 20e-6, lambda: keysight.set_output(1, True))
    assert len(trace.current) == 10_000 and trace.interval_s == 20e-6
    assert 2.4 < trace.peak < 3.0  # V / 1.4 Ω ≈ 2.7 A, sampled every 20 µs
    assert trace.current[0] == pytest.approx(0.0, abs=0.05)  # the trigger came before the output went on
    assert trace.current[-1] < 1.0  # settled well below the peak by the end of the record


def test_capabilities_a_model_lacks_are_refused_without_side_effects(psu: ScpiPowerSupply) -> None:
    caps = psu.capabilities
    if caps.io_watchdog:
        psu.arm_watchdog(60)
        psu.disarm_watchdog()
    else:
        with pytest.raises(NotSupported, match="I/O watchdog"):
            psu.arm_watchdog(60)
    if caps.digitizer:
        trace = psu.capture_current(1, 10, 1e-3, lambda: None)
        assert len(trace.current) == 10
    else:
        with pytest.raises(NotSupported, match="digitizer"):
            psu.capture_current(1, 10, 1e-3, lambda: psu.set_output(1, True))
        assert psu.output(1) is False  # start() was never called


@pytest.mark.slow
def test_query_through_the_driver_costs_at_most_1_2x_a_bare_pyvisa_query(keysight_twin: Twin) -> None:
    psu = keysight_twin.open(2.0)
    bare = pyvisa.ResourceManager("@py").open_resource(
        keysight_twin.resource, read_termination="\n", write_termination="\n"
    )
    assert isinstance(bare, pyvisa.resources.MessageBasedResource)
    try:

        def batch(fn: Any, n: int = 20) -> float:
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            return (time.perf_counter() - t0) / n

        via_driver, via_bare = [], []
        for _ in range(60):  # interleaved so that load changes on the machine hit both alike
            via_bare.append(batch(lambda: float(bare.query("MEAS:VOLT? (@1)"))))
            via_driver.append(batch(lambda: psu.measure_voltage(1)))
        ratio = min(statistics.median(via_driver) / statistics.median(via_bare), min(via_driver) / min(via_bare))
        assert ratio <= 1.2, f"driver {min(via_driver) * 1e6:.0f} µs vs bare {min(via_bare) * 1e6:.0f} µs"
    finally:
        bare.close()
        psu.close()
