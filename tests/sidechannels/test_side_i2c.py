"""The bench I2C driver (USB-ISS backend) and the P31u EPS client against the twin, over TCP and over the pty."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from loop_support import wait_until
from side_harness import I2CTwin

from instruments.i2c import (
    EpsReplyError,
    I2CAdapterLost,
    I2CBus,
    I2CNack,
    I2CTimeout,
    P31uClient,
    UsbIssI2C,
    open_i2c,
)
from twin.eps_i2c import GND_WDT_PERIOD_S

Opener = Callable[[], UsbIssI2C]


@pytest.fixture(params=["socket", "pty"])
def open_bus(request: pytest.FixtureRequest, i2c_twin: I2CTwin) -> Iterator[Opener]:
    """The same driver class on either transport: only the URL differs (a config change)."""
    url = i2c_twin.url if request.param == "socket" else i2c_twin.pty_path
    buses: list[UsbIssI2C] = []

    def make() -> UsbIssI2C:
        bus = UsbIssI2C(url, timeout_s=0.5)
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        bus.close()


def test_scan_finds_eps_and_temperature_sensor(open_bus: Opener) -> None:
    bus = open_bus()
    assert isinstance(bus, I2CBus)
    assert bus.firmware == 7
    assert bus.scan() == [0x02, 0x48]


def test_absent_address_nacks_with_its_name(open_bus: Opener) -> None:
    bus = open_bus()
    with pytest.raises(I2CNack, match="0x23") as write_error:
        bus.write(0x23, b"\x00")
    assert write_error.value.address == 0x23 and "write" in str(write_error.value)
    with pytest.raises(I2CNack, match=r"0x23.*read|read.*0x23"):
        bus.read(0x23, 2)


def test_nack_fault_on_a_present_device(open_bus: Opener, i2c_twin: I2CTwin) -> None:
    bus = open_bus()
    eps = P31uClient(bus)
    eps.ping()
    i2c_twin.loop.call(i2c_twin.iss.apply_fault, "nack", address=0x02)
    with pytest.raises(I2CNack, match="0x02"):
        eps.ping()
    i2c_twin.loop.call(i2c_twin.iss.apply_fault, "clear")
    eps.ping(0x33)


def test_temperature_sensor_register(open_bus: Opener, i2c_twin: I2CTwin) -> None:
    bus = open_bus()
    raw = bus.read_register(0x48, 0x00, 2)
    assert (int.from_bytes(raw, "big", signed=True) >> 4) * 0.0625 == pytest.approx(23.4375)
    i2c_twin.state.board_temp_c = -12.5
    assert (int.from_bytes(bus.read_register(0x48, 0x00, 2), "big", signed=True) >> 4) * 0.0625 == -12.5
    bus.write_register(0x48, 0x01, b"\x60")  # configuration: 12-bit resolution
    assert bus.read_register(0x48, 0x01, 1) == b"\x60"


def test_housekeeping_equals_the_provider(open_bus: Opener, i2c_twin: I2CTwin) -> None:
    hk = P31uClient(open_bus()).get_housekeeping()
    want = i2c_twin.state.eps
    assert hk.vbatt_mv == want.vbatt_mv == 7812
    assert hk.cursys_ma == want.cursys_ma
    assert hk.vboost_mv == tuple(want.vboost_mv)
    assert hk.curin_ma == tuple(want.curin_ma)
    assert hk.cursun_ma == want.cursun_ma
    assert hk.curout_ma == tuple(want.curout_ma)
    assert hk.outputs == tuple(want.outputs)
    assert hk.output_mask == 0b0000_1101
    assert hk.latchups == tuple(want.latchups)
    assert hk.counter_boot == 17
    assert hk.temps_c == (21, 22, -5, 30, 18, 19)  # a negative value proves the signed field
    assert (hk.batt_mode, hk.ppt_mode) == (3, 1)
    assert hk.wdt_gnd_time_left_s == GND_WDT_PERIOD_S
    # A changed satellite state shows at the next read: the provider is read per request, not cached.
    i2c_twin.state.eps.vbatt_mv = 6904
    assert P31uClient(open_bus()).get_housekeeping().vbatt_mv == 6904


def test_reset_wdt_restarts_the_ground_countdown(open_bus: Opener, i2c_twin: I2CTwin) -> None:
    eps = P31uClient(open_bus())
    i2c_twin.clock.t += 3600.0  # an hour without a ground contact
    assert eps.get_housekeeping().wdt_gnd_time_left_s == GND_WDT_PERIOD_S - 3600
    eps.reset_wdt()
    assert eps.get_housekeeping().wdt_gnd_time_left_s == GND_WDT_PERIOD_S
    i2c_twin.clock.t += GND_WDT_PERIOD_S + 10  # nobody kicked it for 48 h: it fires once and restarts
    hk = eps.get_housekeeping()
    assert hk.counter_wdt_gnd == 1
    assert hk.wdt_gnd_time_left_s == GND_WDT_PERIOD_S - 10


def test_reset_counters_and_outputs(open_bus: Opener, i2c_twin: I2CTwin) -> None:
    eps = P31uClient(open_bus())
    eps.reset_counters()
    assert eps.get_housekeeping().counter_boot == 0
    i2c_twin.state.eps.counter_boot += 1  # the satellite rebooted once since
    assert eps.get_housekeeping().counter_boot == 1

    eps.set_output(0b0011_0001)
    assert i2c_twin.state.set_output_calls == [0b0011_0001]
    eps.set_single_output(1, True)
    assert i2c_twin.state.set_output_calls[-1] == 0b0011_0011
    assert eps.get_housekeeping().output_mask == 0b0011_0011


def test_eps_refusal_is_a_clear_error(open_bus: Opener) -> None:
    eps = P31uClient(open_bus())
    with pytest.raises(EpsReplyError, match=r"reset_wdt.*status 0xFE"):
        eps.transfer(bytes([0x10, 0x00]), 0, "reset_wdt")  # wrong magic byte
    with pytest.raises(EpsReplyError, match="echoes command"):
        P31uClient(eps.bus, address=0x48).get_housekeeping()  # the temperature sensor is no EPS


def test_unplug_mid_session_raises_adapter_lost(open_bus: Opener, i2c_twin: I2CTwin) -> None:
    bus = open_bus()
    eps = P31uClient(bus)
    eps.ping()
    i2c_twin.loop.call(i2c_twin.iss.apply_fault, "unplug")
    started = time.monotonic()
    with pytest.raises(I2CAdapterLost, match="lost"):
        for _ in range(3):  # TCP may take the first write into its buffer; the read then sees the close
            eps.get_housekeeping()
    with pytest.raises(I2CAdapterLost):
        bus.scan()  # and it stays lost: no hang on a dead port
    assert time.monotonic() - started < 2.0


def test_backend_is_a_config_change(i2c_twin: I2CTwin) -> None:
    for resource in (i2c_twin.url, i2c_twin.pty_path):
        bus = open_i2c("usb-iss", resource)
        try:
            assert P31uClient(bus).get_housekeeping().vbatt_mv == 7812
        finally:
            bus.close()
    with pytest.raises(ValueError, match="known drivers: usb-iss, smbus2"):
        open_i2c("bus-pirate", "socket://127.0.0.1:1")


def test_line_noise_does_not_desynchronise_the_adapter(i2c_twin: I2CTwin) -> None:
    bus = UsbIssI2C(i2c_twin.url)
    try:
        bus._port.write(b"\x54\x04")  # half a command, then silence: the adapter drops it after its gap timeout
        wait_until(lambda: i2c_twin.iss.stats["partial_dropped"] >= 1, what="partial command dropped")
        bus._port.write(b"\x99\x98")  # unknown command bytes are skipped one at a time
        assert bus.scan() == [0x02, 0x48]
    finally:
        bus.close()


@pytest.fixture
def mute_server() -> Iterator[int]:
    """A TCP peer that accepts and never answers: a hung adapter."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(2)
    for conn in conns:
        conn.close()
    server.close()


def test_mute_adapter_times_out_clearly(mute_server: int) -> None:
    with pytest.raises(I2CTimeout, match=r"ISS_VERSION timed out \(0 of 3 reply bytes within 0.2 s\)"):
        UsbIssI2C(f"socket://127.0.0.1:{mute_server}", timeout_s=0.2)


def test_replug_after_unplug(i2c_twin: I2CTwin) -> None:
    i2c_twin.loop.call(i2c_twin.iss.unplug)
    with pytest.raises(I2CAdapterLost):
        UsbIssI2C(i2c_twin.url, timeout_s=0.2)
    i2c_twin.loop.run(i2c_twin.iss.replug())
    assert i2c_twin.iss.url == i2c_twin.url  # same TCP port
    pty = i2c_twin.iss.pty_path
    assert pty is not None
    for url in (i2c_twin.url, pty):
        bus = UsbIssI2C(url)
        try:
            assert bus.scan() == [0x02, 0x48]
        finally:
            bus.close()
