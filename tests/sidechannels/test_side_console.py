"""The bench console driver against the twin's OBC debug UART: boot log, shell, faults — over the pty and TCP."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from loop_support import LoopThread, wait_until
from side_harness import ConsoleTwin

from instruments.console import Console, ConsoleLost, ConsoleTimeout

BOOT_TIMEOUT_S = 5.0

Opener = Callable[..., Console]


@pytest.fixture(params=["pty", "socket"])
def open_console(request: pytest.FixtureRequest, console_twin: ConsoleTwin) -> Iterator[Opener]:
    """The same driver on either transport: only the URL differs (a config change)."""
    url = console_twin.pty_path if request.param == "pty" else console_twin.url
    consoles: list[Console] = []

    def make(log_path: Path | None = None) -> Console:
        console = Console(url, log_path=log_path)
        consoles.append(console)
        if request.param == "socket":
            # The TCP client must be registered before power-on, or it misses the start of the boot log.
            wait_until(lambda: console_twin.loop.call(lambda: len(console_twin.console._clients)) >= 1,
                       what="console TCP client registered")  # fmt: skip
        return console

    yield make
    for console in consoles:
        console.close()


def power_on(twin: ConsoleTwin) -> None:
    twin.loop.call(twin.console.power_on)


def test_boot_log_and_version(open_console: Opener, console_twin: ConsoleTwin, tmp_path: Path) -> None:
    log_path = tmp_path / "console.log"
    console = open_console(log_path=log_path)
    power_on(console_twin)
    started = time.monotonic()
    version = console.expect(r"OTS-SAT OBC firmware v(\S+) \(build ([^)]+)\)", BOOT_TIMEOUT_S)
    assert version.group(1) == console_twin.console.firmware_version == "1.4.2"
    console.expect(r"csp: address 1\b", BOOT_TIMEOUT_S)
    console.expect(r"8/8 self-tests passed", BOOT_TIMEOUT_S)
    console.expect(r"boot complete in [0-9.]+ s", BOOT_TIMEOUT_S)
    console.expect(r"obc> ", BOOT_TIMEOUT_S)
    assert time.monotonic() - started < 2.0
    assert not [line for line in console.lines if "WARNING" in line]
    assert console.garbage_count == 0
    logged = log_path.read_text(encoding="utf-8").splitlines()
    assert any(" RX " in line and "OTS-SAT OBC firmware v1.4.2" in line for line in logged)
    assert logged[0][:4].isdigit() and logged[0][23] == "Z"  # ISO-8601 UTC timestamp on each line


def test_failed_self_test_gives_a_warning(open_console: Opener, console_twin: ConsoleTwin) -> None:
    console_twin.failing = {"ADCS"}
    console = open_console()
    power_on(console_twin)
    console.expect(r"selftest ADCS\s+FAIL", BOOT_TIMEOUT_S)
    warning = console.expect(r"WARNING: (\w+) failed its self-test", BOOT_TIMEOUT_S)
    assert warning.group(1) == "ADCS"
    console.expect(r"7/8 self-tests passed", BOOT_TIMEOUT_S)
    console.expect(r"obc> ", BOOT_TIMEOUT_S)
    assert [line for line in console.lines if "PASS" in line and "EPS" in line]


def test_shell_commands(open_console: Opener, console_twin: ConsoleTwin) -> None:
    console = open_console()
    power_on(console_twin)
    console.expect(r"obc> ", BOOT_TIMEOUT_S)
    assert "mode set <name>" in console.command("help")
    assert console.command("version") == "OTS-SAT OBC firmware v1.4.2 (build 2026-03-02 a1b2c3d)"
    assert console.command("uptime").startswith("uptime ")
    hk = console.command("hk")
    assert "vbatt_mv = 7812" in hk.splitlines()
    assert console.command("mode get") == "mode SAFE"
    assert console.command("mode set nominal") == "mode NOMINAL"
    assert console_twin.mode == "NOMINAL"
    assert console.command("mode set warp") == "mode WARP refused"
    assert console.command("frobnicate").startswith("unknown command 'frobnicate'")
    console.send_line("reboot")
    console.expect(r"rebooting", BOOT_TIMEOUT_S)
    console.expect(r"boot complete", BOOT_TIMEOUT_S)
    console.expect(r"obc> ", BOOT_TIMEOUT_S)
    assert console_twin.reboots == 1


def test_garbage_is_counted_and_decoding_continues(open_console: Opener, console_twin: ConsoleTwin) -> None:
    console = open_console()
    console_twin.loop.call(console_twin.console.apply_fault, "garbage")
    power_on(console_twin)
    console.expect(r"OTS-SAT OBC firmware v1\.4\.2", BOOT_TIMEOUT_S)
    console.expect(r"boot complete", BOOT_TIMEOUT_S)
    console.expect(r"obc> ", BOOT_TIMEOUT_S)
    assert console.garbage_count > 0
    before = console.garbage_count
    console_twin.loop.call(console_twin.console.inject_garbage, 16)
    wait_until(lambda: console.garbage_count >= before + 16, what="16 more undecodable bytes counted")
    assert "OTS-SAT OBC firmware v1.4.2" in console.command("version")


def test_silent_console_times_out_with_context(open_console: Opener, console_twin: ConsoleTwin) -> None:
    console = open_console()
    console_twin.loop.call(console_twin.console.apply_fault, "silent")
    power_on(console_twin)
    with pytest.raises(ConsoleTimeout, match=r"boot complete") as error:
        console.expect(r"boot complete", 0.5)
    assert error.value.last_lines == []
    assert "nothing received" in str(error.value)


def test_timeout_names_the_last_lines_seen(open_console: Opener, console_twin: ConsoleTwin) -> None:
    console = open_console()
    power_on(console_twin)
    console.expect(r"obc> ", BOOT_TIMEOUT_S)
    with pytest.raises(ConsoleTimeout) as error:
        console.expect(r"launch sequence armed", 0.2)
    assert error.value.pattern == "launch sequence armed"
    assert error.value.last_lines[-1] == "obc> "
    assert any("boot complete" in line for line in error.value.last_lines)
    assert "boot complete" in str(error.value)


@pytest.mark.parametrize("transport", ["pty", "socket"])
def test_console_lost_when_the_port_goes_away(
    console_twin: ConsoleTwin, loop_thread: LoopThread, transport: str
) -> None:
    console = Console(console_twin.pty_path if transport == "pty" else console_twin.url)
    try:
        if transport == "socket":
            wait_until(lambda: loop_thread.call(lambda: len(console_twin.console._clients)) >= 1, what="client")
        console_twin.close()
        with pytest.raises(ConsoleLost):
            console.expect(r"obc> ", BOOT_TIMEOUT_S)
        assert console.lost
    finally:
        console.close()
