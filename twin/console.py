"""The OBC's debug UART: boot log and maintenance shell, served on a pty and on TCP.

What a bench sees
    The OBC's 115200 8N1 debug UART, as a pseudo-terminal (`ObcConsole.pty_path`, what a USB-UART cable looks like)
    and as ``socket://host:port`` (`ObcConsole.url`). Output goes to every connected client; input from any of them
    reaches the shell. Lines end in CRLF, like most embedded consoles.

Power and boot
    The lead's wiring calls `power_on()` when the OBC gets power and `power_off()` when it loses it. Power-on prints
    the boot log line by line with small delays scheduled on the event loop (``line_delay_s`` per line, a longer
    pause for the self-tests): bootloader banner, firmware version and build, CSP address, a self-test line per
    subsystem (``PASS``/``FAIL``), a ``WARNING`` line for every failed one, ``boot complete``, then the prompt
    ``obc> ``. The bracketed times are the OBC's uptime as the firmware would print it (virtual: the boot takes
    ``boot_time_s`` of OBC time whatever the real delays).

Shell (a line ends with CR, LF or CRLF; characters are echoed)
    ``help`` · ``version`` · ``uptime`` · ``hk`` (one ``name = value`` line per item of the ``housekeeping``
    provider) · ``mode`` / ``mode get`` · ``mode set <name>`` (via ``set_mode``; refused if it returns False) ·
    ``reboot`` (``on_reboot`` is notified, then the OBC boots again) · anything else: ``unknown command``.

Faults (`apply_fault` or the attributes)
    ``silent``: from the next power-on the OBC prints nothing and answers nothing (a dead UART or a hung boot).
    ``garbage``: random non-UTF-8 bytes are mixed into the output (line noise, wrong baud rate); `inject_garbage`
    sends one burst now. ``clear`` removes both.

Threading
    Every method runs on the event loop the console was started in.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from twin.usbiss import PtyEndpoint, SerialPortEndpoints

__all__ = ["DEFAULT_CONSOLE_PORT", "PROMPT", "SUBSYSTEMS", "ObcConsole"]

log = logging.getLogger(__name__)

DEFAULT_CONSOLE_PORT = 29541
PROMPT = "obc> "
SUBSYSTEMS = ("FRAM", "FLASH", "RTC", "CAN", "EPS", "ADCS", "UHF", "PAYLOAD")

_SELFTEST_DETAIL = {
    "FRAM": ("32 KiB, pattern ok", "pattern mismatch at 0x0400"),
    "FLASH": ("2 images, CRC ok", "image B CRC mismatch"),
    "RTC": ("oscillator running", "oscillator stopped"),
    "CAN": ("bus 1 Mbit/s, no errors", "bus-off during self-test"),
    "EPS": ("node 2 ping 2 ms", "no reply from node 2"),
    "ADCS": ("node 3 ping 3 ms", "no reply from node 3"),
    "UHF": ("node 4 ping 2 ms", "no reply from node 4"),
    "PAYLOAD": ("node 5 ping 4 ms", "no reply from node 5"),
}


class _TcpClient(asyncio.Protocol):
    def __init__(self, console: ObcConsole) -> None:
        self._console = console
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._console._clients.add(self)

    def data_received(self, data: bytes) -> None:
        self._console._input(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._console._clients.discard(self)


class ObcConsole(SerialPortEndpoints):
    """The simulated OBC debug UART (see the module doc).

    Providers and callbacks (all called on the event loop):
    ``failing_subsystems() -> Iterable[str]`` names of subsystems whose self-test fails at this boot (or a fixed
    iterable); ``housekeeping() -> Mapping[str, object]`` for ``hk``; ``get_mode() -> str``;
    ``set_mode(name) -> bool``; ``on_reboot()`` when the shell reboots the OBC; ``uptime() -> float`` OBC uptime in
    seconds (default: time since the boot log finished).
    """

    def __init__(
        self,
        *,
        firmware_version: str = "1.4.2",
        build: str = "2026-03-02 a1b2c3d",
        csp_address: int = 1,
        failing_subsystems: Callable[[], Iterable[str]] | Iterable[str] = (),
        housekeeping: Callable[[], Mapping[str, object]] | None = None,
        get_mode: Callable[[], str] | None = None,
        set_mode: Callable[[str], bool] | None = None,
        on_reboot: Callable[[], None] | None = None,
        uptime: Callable[[], float] | None = None,
        line_delay_s: float = 0.005,
        selftest_delay_s: float = 0.02,
        seed: int = 0,
    ) -> None:
        self.firmware_version = firmware_version
        self.build = build
        self.csp_address = csp_address
        self._failing = failing_subsystems
        self._housekeeping = housekeeping
        self._get_mode = get_mode
        self._set_mode = set_mode
        self._on_reboot = on_reboot
        self._uptime = uptime
        self.line_delay_s = line_delay_s
        self.selftest_delay_s = selftest_delay_s
        self._rng = random.Random(seed)
        self._mode = "SAFE"  # used when no get_mode/set_mode is wired
        self.silent = False
        self.garbage = False
        self.powered = False
        self.booted = False
        self._boot_task: asyncio.Task[None] | None = None
        self._boot_done_at: float | None = None
        self._line = bytearray()
        self._last_cr = False
        self._pty: PtyEndpoint | None = None
        self._server: asyncio.Server | None = None
        self._address: tuple[str, int] | None = None
        self._clients: set[_TcpClient] = set()
        self.boots = 0
        self.omitted_selftests: set[str] = set()  # self-test lines the firmware forgets to print (a defect)

    # lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = DEFAULT_CONSOLE_PORT, *, pty: bool = True) -> None:
        """Serve on TCP `host:port` (0: a free port) and, unless `pty` is False, on a new pty."""
        if pty:
            self._pty = PtyEndpoint(self._input, name="obc console pty")
            self._pty.open()
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _TcpClient(self), host, port, reuse_address=True
        )
        sockname = self._server.sockets[0].getsockname()
        self._address = (sockname[0], sockname[1])
        log.info("OBC debug console on %s and socket://%s:%d", self.pty_path, *self._address)

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        self._cancel_boot()
        if self._pty is not None:
            self._pty.close()
            self._pty = None
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for client in list(self._clients):
                if client.transport is not None:
                    client.transport.abort()
            await server.wait_closed()
        await asyncio.sleep(0)  # let connection_lost callbacks run

    def endpoints(self) -> dict[str, dict[str, Any]]:
        """Endpoint record for the twin's endpoints file (contracts §1)."""
        return self._endpoint_record(
            "console", "uart", "OTS-SAT OBC debug UART (boot log, maintenance shell)", baudrate=115200
        )

    # power

    def power_on(self) -> None:
        """The OBC got power: boot (prints the boot log unless silent)."""
        if self.powered:
            return
        self.powered = True
        self._start_boot()

    def power_off(self) -> None:
        """The OBC lost power: stop whatever it was printing; the shell is gone."""
        self.powered = False
        self.booted = False
        self._cancel_boot()

    def _start_boot(self) -> None:
        self._cancel_boot()
        self.booted = False
        self._boot_task = asyncio.get_running_loop().create_task(self._boot())

    def _cancel_boot(self) -> None:
        if self._boot_task is not None and not self._boot_task.done():
            self._boot_task.cancel()
        self._boot_task = None

    # faults

    def apply_fault(self, name: str) -> None:
        """Fault hook for the control endpoint: ``silent``, ``garbage``, ``clear``."""
        if name == "silent":
            self.silent = True
        elif name == "garbage":
            self.garbage = True
        elif name == "clear":
            self.silent = self.garbage = False
        else:
            raise ValueError(f"unknown console fault {name!r} (silent, garbage, clear)")

    def inject_garbage(self, n: int = 32) -> None:
        """Send `n` bytes of line noise now (invalid UTF-8 guaranteed)."""
        self._send_raw(self._noise(n))

    def _noise(self, n: int) -> bytes:
        # 0x80-0xBF alone are continuation bytes without a lead byte: never valid UTF-8.
        return bytes(self._rng.randrange(0x80, 0xC0) for _ in range(max(1, n)))

    # output

    def _send_raw(self, data: bytes) -> None:
        if self._pty is not None:
            self._pty.write(data)
        for client in list(self._clients):
            if client.transport is not None and not client.transport.is_closing():
                client.transport.write(data)

    def _emit(self, text: str) -> None:
        self._emit_bytes(text.encode("utf-8"))

    def _emit_bytes(self, data: bytes) -> None:
        if self.silent:
            return
        if self.garbage and self._rng.random() < 0.5:
            # Noise between transmissions (the line idles, then glitches): the text itself still arrives intact.
            data = self._noise(self._rng.randrange(1, 8)) + data
        self._send_raw(data)

    def _println(self, text: str = "") -> None:
        self._emit(text + "\r\n")

    # the boot log

    def _failing_now(self) -> set[str]:
        failing = self._failing() if callable(self._failing) else self._failing
        return {name.upper() for name in failing}

    async def _boot(self) -> None:
        self.boots += 1
        failing = self._failing_now()
        t = 0.0

        async def line(text: str, dt: float = 0.004, delay: float | None = None) -> None:
            nonlocal t
            t += dt
            await asyncio.sleep(self.line_delay_s if delay is None else delay)
            self._println(f"[{t:8.3f}] {text}" if text else "")

        await asyncio.sleep(self.line_delay_s)
        self._println("")
        self._println("OTS-BOOT 2.1.0 (bootloader) - OTS-SAT 12U on-board computer")
        await line("reset cause: power-on", 0.001)
        await line("flash image A: valid, CRC32 0x5e1f03c2, booting", 0.012)
        await line(f"OTS-SAT OBC firmware v{self.firmware_version} (build {self.build})", 0.150)
        await line("cpu: Cortex-M7 @ 400 MHz, 1 MiB SRAM, FreeRTOS 10.5.1", 0.001)
        await line(f"csp: address {self.csp_address}, CAN 1 Mbit/s, routing table loaded", 0.020)
        await line("self-tests:", 0.010)
        for name in SUBSYSTEMS:
            ok, bad = _SELFTEST_DETAIL[name]
            failed = name in failing
            verdict = f"FAIL ({bad})" if failed else f"PASS ({ok})"
            if name in self.omitted_selftests:
                continue
            await line(f"  selftest {name:<8} {verdict}", 0.045, self.selftest_delay_s)
        for name in SUBSYSTEMS:
            if name in failing:
                await line(f"WARNING: {name} failed its self-test - subsystem marked DEGRADED", 0.001)
        for name in sorted(failing - set(SUBSYSTEMS)):
            await line(f"WARNING: {name} failed its self-test - subsystem marked DEGRADED", 0.001)
        summary = f"{len(SUBSYSTEMS) - len(failing & set(SUBSYSTEMS))}/{len(SUBSYSTEMS)} self-tests passed"
        await line(summary, 0.002)
        await line(f"mode: {self.mode}", 0.010)
        await line(f"boot complete in {t + 0.05:.2f} s", 0.050)
        self._boot_done_at = time.monotonic()
        self.booted = True
        self._emit(PROMPT)

    # the shell

    @property
    def mode(self) -> str:
        return self._get_mode() if self._get_mode is not None else self._mode

    def uptime_s(self) -> float:
        if self._uptime is not None:
            return self._uptime()
        return 0.0 if self._boot_done_at is None else time.monotonic() - self._boot_done_at

    def _input(self, data: bytes) -> None:
        if not self.booted or self.silent:
            return  # nobody home: bytes typed before the shell runs are lost, as on the real UART
        for byte in data:
            if byte in (0x0D, 0x0A):
                if byte == 0x0A and self._last_cr:
                    self._last_cr = False
                    continue  # CRLF: one end of line
                self._last_cr = byte == 0x0D
                self._emit("\r\n")
                command = self._line.decode("utf-8", errors="replace").strip()
                self._line.clear()
                self._run(command)
                if not self.booted:
                    return  # rebooting: the rest of the input is lost
            else:
                self._last_cr = False
                if byte in (0x08, 0x7F):
                    if self._line:
                        self._line.pop()
                        self._emit("\b \b")
                    continue
                self._line.append(byte)
                self._emit_bytes(bytes([byte]))

    def _run(self, command: str) -> None:
        words = command.split()
        if not words:
            self._emit(PROMPT)
            return
        name, args = words[0].lower(), words[1:]
        if name == "reboot":
            self._println("rebooting...")
            if self._on_reboot is not None:
                self._on_reboot()
            self._start_boot()
            return
        handler = {
            "help": self._cmd_help,
            "version": self._cmd_version,
            "uptime": self._cmd_uptime,
            "hk": self._cmd_hk,
            "mode": self._cmd_mode,
        }.get(name)
        if handler is None:
            self._println(f"unknown command '{name}' (try 'help')")
        else:
            try:
                handler(args)
            except Exception as exc:  # a broken provider must not kill the shell
                log.exception("OBC console command %r failed", command)
                self._println(f"error: {exc}")
        self._emit(PROMPT)

    def _cmd_help(self, args: list[str]) -> None:
        for text in (
            "commands:",
            "  help               this list",
            "  version            firmware version and build",
            "  uptime             time since boot",
            "  hk                 housekeeping snapshot",
            "  mode [get]         current mode",
            "  mode set <name>    change mode (SAFE, NOMINAL, ...)",
            "  reboot             restart the OBC",
        ):
            self._println(text)

    def _cmd_version(self, args: list[str]) -> None:
        self._println(f"OTS-SAT OBC firmware v{self.firmware_version} (build {self.build})")

    def _cmd_uptime(self, args: list[str]) -> None:
        self._println(f"uptime {self.uptime_s():.1f} s")

    def _cmd_hk(self, args: list[str]) -> None:
        values = self._housekeeping() if self._housekeeping is not None else {"mode": self.mode}
        for key, value in values.items():
            self._println(f"{key} = {value}")

    def _cmd_mode(self, args: list[str]) -> None:
        if not args or args == ["get"]:
            self._println(f"mode {self.mode}")
            return
        if args[0] == "set" and len(args) == 2:
            wanted = args[1].upper()
            accepted = self._set_mode(wanted) if self._set_mode is not None else True
            if not accepted:
                self._println(f"mode {wanted} refused")
                return
            if self._set_mode is None:
                self._mode = wanted
            self._println(f"mode {self.mode}")
            return
        self._println("usage: mode [get] | mode set <name>")
