"""The side channels wired into the twin process: one satellite state seen through CAN, I2C and the debug UART.

One twin process for the module (started with ``--ports auto --endpoints-file``); the DUT is powered through raw
pyvisa SCPI on the PSU endpoint. Tests run in file order and leave the DUT powered with every fault cleared.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from twin_side_harness import HK_FORMAT, Console, Egse, RawIss
from twin_support import TwinUnderTest, wait_for
from usb_iss import UsbIss

FIRMWARE = "v1.4.2"  # the ICD's CMP ident revision (docs/icd.md); the console must print the same
GND_WDT_S = 48 * 3600
# eps_hk_t field indices after struct.unpack(HK_FORMAT)
VBATT, CURSYS, CUROUT, OUTPUT, LATCHUP = 3, 8, slice(10, 16), slice(16, 24), slice(40, 46)
WDT_GND, COUNTER_BOOT, TEMPS = 47, 54, slice(55, 61)


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwinUnderTest]:
    process = TwinUnderTest(Path(tmp_path_factory.mktemp("twin_side")))
    yield process
    process.kill()


@pytest.fixture
def iss(twin: TwinUnderTest) -> Iterator[RawIss]:
    client = RawIss(twin.endpoints["i2c"]["url"])
    yield client
    client.close()


@pytest.fixture
def console(twin: TwinUnderTest) -> Iterator[Console]:
    client = Console(twin.endpoints["console"]["url"])
    yield client
    client.close()


@pytest.fixture
def egse(twin: TwinUnderTest) -> Iterator[Egse]:
    bus = Egse(twin.endpoints["can_socketcand"])
    yield bus
    bus.close()


@pytest.fixture
def powered(twin: TwinUnderTest) -> TwinUnderTest:
    if not all(n["alive"] for n in twin.state()["satellite"]["nodes"].values()):
        twin.power_on()
    return twin


def test_endpoint_records_and_startup_lines(twin: TwinUnderTest) -> None:
    for name, kind in (("i2c", "usb-iss"), ("console", "uart")):
        record = twin.endpoints[name]
        assert record["kind"] == kind
        assert record["host"] == "127.0.0.1" and isinstance(record["port"], int)
        assert record["url"] == record["address"] == f"socket://127.0.0.1:{record['port']}"
        assert record["pty"].startswith("/dev/pts/") and os.path.exists(record["pty"])
        line = next(x for x in twin.stdout.splitlines() if x.startswith(f"{name} "))
        assert record["url"] in line and f"pty {record['pty']}" in line


def test_unpowered_satellite_nacks_and_console_is_dark(twin: TwinUnderTest, iss: RawIss) -> None:
    assert iss.transact(b"\x5a\x01", 3)[0] == 0x07  # the adapter itself is on USB power
    assert not iss.present(0x02) and not iss.present(0x48)
    state = twin.state()
    assert state["console"]["powered"] is False
    assert state["i2c"]["devices"]["eps"]["present"] is False


def test_console_boot_log_shows_the_cmp_firmware_revision(twin: TwinUnderTest, console: Console, egse: Egse) -> None:
    twin.power_on()
    text = console.await_text("boot complete")
    revision = egse.firmware_revision()
    assert revision == FIRMWARE
    assert f"OTS-SAT OBC firmware {revision} " in text
    assert "csp: address 1" in text and "8/8 self-tests passed" in text
    console.await_text("obc> ")
    console.send("mode")
    console.await_text("mode NOMINAL")
    assert twin.state()["satellite"]["nodes"]["OBC"]["mode"] == "NOMINAL"


def test_pypi_usb_iss_client_on_the_pty(powered: TwinUnderTest) -> None:
    client = UsbIss()
    client.open(powered.endpoints["i2c"]["pty"])
    try:
        assert client.read_module_id() == 7
        client.setup_i2c(clock_khz=100)
        client.i2c.write_ad0(0x02, [0x01, 0x5A])  # P31u PING 0x5A
        assert client.i2c.read_ad0(0x02, 3) == [0x01, 0x00, 0x5A]
    finally:
        client.close()


def test_eps_housekeeping_over_i2c_is_the_psu_and_can_state(powered: TwinUnderTest, iss: RawIss, egse: Egse) -> None:
    hk = iss.housekeeping()
    volts = float(powered.psu.query("MEAS:VOLT? (@1)"))
    amps = powered.current()
    assert hk[VBATT] == pytest.approx(volts * 1000, abs=30)
    assert hk[CURSYS] == pytest.approx(amps * 1000, abs=40)
    can_hk = egse.eps_hk()
    assert can_hk["VBUS"] == pytest.approx(hk[VBATT] / 1000, abs=0.02)
    assert can_hk["IBUS"] == pytest.approx(hk[CURSYS] / 1000, abs=0.02)
    # P31u channels = the ICD's SET_OUTPUT enum: OBC, ADCS, COMMS, PAYLOAD, HEATER; 5..7 not connected.
    assert list(hk[OUTPUT]) == [1, 0, 1, 0, 0, 0, 0, 0]
    assert [can_hk[f"OUT_{c}"] for c in ("OBC", "ADCS", "COMMS", "PAYLOAD", "HEATER")] == [1, 0, 1, 0, 0]
    assert hk[CUROUT][0] == pytest.approx(can_hk["I_OBC"] * 1000, abs=15)
    assert list(hk[LATCHUP]) == [0] * 6
    nodes = powered.state()["satellite"]["nodes"]
    assert hk[COUNTER_BOOT] == nodes["EPS"]["boot_count"]
    assert set(hk[TEMPS]) == {round(can_hk["TBAT"])}
    # The TMP100 reads the same battery/EPS-board temperature as EPS.TBAT (which adds ±0.05 °C ADC noise).
    assert iss.temperature() == pytest.approx(can_hk["TBAT"], abs=0.3)


def test_payload_output_switched_over_i2c(powered: TwinUnderTest, iss: RawIss, egse: Egse) -> None:
    before = powered.current()
    assert iss.eps(b"\x0a\x03\x01\x00\x00", 2) == b"\x0a\x00"  # SET_SINGLE_OUTPUT ch 3 (PAYLOAD) on, no delay
    after = wait_for(lambda: (c := powered.current()) > before + 0.5 and c, 2.0, "the PSU current step")
    assert after - before == pytest.approx(3.5 / 3.8, abs=0.1)
    can_hk = egse.eps_hk()
    assert can_hk["OUT_PAYLOAD"] == 1 and can_hk["I_PAYLOAD"] == pytest.approx(0.92, abs=0.05)
    hk = iss.housekeeping()
    assert hk[OUTPUT][3] == 1 and hk[CUROUT][3] == pytest.approx(921, abs=20)

    # Same refusals as EPS.SET_OUTPUT over CAN: OBC (ch 0) stays on; the P31u answers status 0xFE.
    assert iss.eps(b"\x0a\x00\x00\x00\x00", 2) == b"\x0a\xfe"
    assert iss.eps(b"\x09\x08", 2) == b"\x09\xfe"  # a mask without OBC and COMMS
    assert iss.housekeeping()[OUTPUT][0] == 1
    # SET_OUTPUT with OBC + COMMS only: PAYLOAD off again.
    assert iss.eps(b"\x09\x05", 2) == b"\x09\x00"
    wait_for(lambda: powered.current() < before + 0.1, 2.0, "the PSU current to drop back")
    assert egse.eps_hk()["OUT_PAYLOAD"] == 0


def test_delayed_single_output(powered: TwinUnderTest, iss: RawIss) -> None:
    commanded = time.monotonic()
    assert iss.eps(b"\x0a\x04\x01\x00\x01", 2) == b"\x0a\x00"  # HEATER (ch 4) on in 1 s
    early = iss.housekeeping()[OUTPUT][4]
    if time.monotonic() - commanded < 1.0:  # read within the delay (unless this test was descheduled)
        assert early == 0
    wait_for(lambda: iss.housekeeping()[OUTPUT][4] == 1, 3.0, "the delayed HEATER output")
    assert time.monotonic() - commanded >= 1.0  # not before its delay
    assert powered.state()["dut"]["loads"]["heaters"] is True
    assert iss.eps(b"\x0a\x04\x00\x00\x00", 2) == b"\x0a\x00"
    assert powered.state()["dut"]["loads"]["heaters"] is False


def test_ground_watchdog_reset_is_visible(powered: TwinUnderTest, iss: RawIss) -> None:
    wait_for(lambda: iss.housekeeping()[WDT_GND] < GND_WDT_S, 3.0, "the ground watchdog to count down")
    kicked = time.monotonic()
    assert iss.eps(b"\x10\x78", 2) == b"\x10\x00"
    left = iss.housekeeping()[WDT_GND]
    # Restarted at the reset: full (whole seconds, rounded up) less at most the time since — GND_WDT_S itself
    # unless this test was descheduled for a second or more.
    assert GND_WDT_S - (time.monotonic() - kicked) <= left <= GND_WDT_S
    assert iss.eps(b"\x10\x77", 2) == b"\x10\xfe"  # wrong magic


def test_i2c_nack_fault(powered: TwinUnderTest, iss: RawIss) -> None:
    assert iss.present(0x48)
    reply = powered.control({"cmd": "fault", "name": "i2c_nack", "address": 0x48, "on": True})
    assert reply["ok"], reply
    assert not iss.present(0x48) and iss.present(0x02)
    assert powered.state()["i2c"]["nacking"] == [0x48]
    assert powered.control({"cmd": "fault", "name": "i2c_nack", "address": 0x48, "on": False})["ok"]
    assert iss.present(0x48)
    assert not powered.control({"cmd": "fault", "name": "i2c_nack", "address": 300, "on": True})["ok"]


def test_i2c_unplug_and_replug(powered: TwinUnderTest) -> None:
    old = powered.endpoints["i2c"]
    iss = RawIss(old["url"])
    try:
        assert iss.present(0x02)
        assert powered.control({"cmd": "fault", "name": "i2c_unplug"})["ok"]
        with pytest.raises((serial.SerialException, AssertionError, OSError)):
            iss.transact(b"\x5a\x01", 3)
        assert powered.state()["i2c"]["plugged"] is False
    finally:
        iss.close()
    reply = powered.control({"cmd": "fault", "name": "i2c_replug"})
    assert reply["ok"] and reply["plugged"], reply
    # The file, not the table read at start: that one matched only when the kernel happened to hand out the
    # same pty number again (another job opening a pty in between made this wait time out).
    record = wait_for(lambda: (r := powered.published_endpoints()["i2c"])["pty"] == reply["pty"] and r, 2.0,
                      "the new pty in the endpoints file")  # fmt: skip
    assert record["url"] == old["url"]
    client = UsbIss()
    client.open(record["pty"])
    try:
        assert client.read_module_id() == 7
    finally:
        client.close()
    again = RawIss(record["url"])
    try:
        assert again.present(0x02)
    finally:
        again.close()


def test_selftest_fail_and_can_side_reboot_reprint_the_boot_log(
    powered: TwinUnderTest, console: Console, egse: Egse
) -> None:
    boots = powered.state()["satellite"]["nodes"]["OBC"]["boot_count"]
    reply = powered.control({"cmd": "fault", "name": "selftest_fail", "subsystem": "ADCS", "on": True})
    assert reply["ok"], reply
    console.clear()
    egse.reboot()  # CSP reboot port of the OBC, over the bus
    text = console.await_text("boot complete")
    assert f"OTS-SAT OBC firmware {FIRMWARE} " in text
    assert "selftest ADCS     FAIL" in text and "WARNING: ADCS failed its self-test" in text
    assert "7/8 self-tests passed" in text
    wait_for(lambda: powered.state()["satellite"]["nodes"]["OBC"]["boot_count"] == boots + 1, 3.0, "the OBC boot")
    assert powered.state()["satellite"]["nodes"]["OBC"]["reset_cause"] == "command"
    assert powered.control({"cmd": "fault", "name": "selftest_fail", "subsystem": "ADCS", "on": False})["ok"]
    wait_for(lambda: powered.state()["satellite"]["nodes"]["OBC"]["alive"], 3.0, "the OBC to run again")


def test_shell_reboot_reboots_the_obc_node_and_prints_one_boot_log(powered: TwinUnderTest, console: Console) -> None:
    before = powered.state()
    obc_boots, console_boots = before["satellite"]["nodes"]["OBC"]["boot_count"], before["console"]["boots"]
    console.send("")
    console.await_text("obc> ")
    console.clear()
    console.send("reboot")
    console.await_text("boot complete")
    wait_for(
        lambda: (n := powered.state()["satellite"]["nodes"]["OBC"])["boot_count"] == obc_boots + 1 and n["alive"],
        3.0,
        "the OBC node to reboot",
    )
    assert powered.state()["console"]["boots"] == console_boots + 1  # not a second boot log when the node resets
    console.send("uptime")
    console.await_text("uptime ")


def test_console_silent_fault(powered: TwinUnderTest, console: Console) -> None:
    assert powered.control({"cmd": "fault", "name": "console_silent", "on": True})["ok"]
    assert powered.state()["console"]["silent"] is True
    console.clear()
    console.send("version")
    deadline = time.monotonic() + 0.3  # a negative check needs a window
    while time.monotonic() < deadline:
        console.pump()
    assert console.received == b""
    assert powered.control({"cmd": "fault", "name": "console_silent", "on": False})["ok"]
    console.send("version")
    console.await_text(f"firmware {FIRMWARE}")


def test_console_garbage_fault(powered: TwinUnderTest, console: Console) -> None:
    console.clear()
    assert powered.control({"cmd": "fault", "name": "console_garbage", "on": True})["ok"]
    wait_for(lambda: console.pump() or console.received, 2.0, "line noise")
    with pytest.raises(UnicodeDecodeError):
        bytes(console.received).decode("utf-8")
    console.send("version")
    console.await_text(f"firmware {FIRMWARE}")  # the text itself still arrives
    assert powered.control({"cmd": "fault", "name": "console_garbage", "on": False})["ok"]
    assert powered.state()["console"]["garbage"] is False


def test_power_cycle_darkens_and_reboots_both_channels(powered: TwinUnderTest, iss: RawIss, console: Console) -> None:
    boots = powered.state()["console"]["boots"]
    powered.power_off()
    assert not iss.present(0x02) and not iss.present(0x48)
    assert powered.state()["console"]["powered"] is False
    console.clear()
    powered.power_on()
    console.await_text("boot complete")
    assert powered.state()["console"]["boots"] == boots + 1
    assert (
        iss.present(0x02)
        and iss.housekeeping()[COUNTER_BOOT] == powered.state()["satellite"]["nodes"]["EPS"]["boot_count"]
    )
    assert struct.calcsize(HK_FORMAT) == 131
