"""The side channels of the satellite, coupled to the same simulated state the CAN nodes report.

Two services of the twin process (``SERVICES`` in `twin.app`), each built by the app from the `World` and the
part of the satellite it is wired to (the `Satellite` for the I2C bus, the OBC node for its debug UART):

``i2c`` — `I2cService`
    The Devantech USB-ISS adapter (`twin.usbiss`) on TCP (fixed port 29540) and on a pty, with the satellite's
    I2C bus behind it: the GomSpace P31u-style EPS at 0x02 (`twin.eps_i2c.EpsI2CDevice`) and a TMP100 at 0x48.
    Both are views of the CAN-side state, never copies:

    * EPS housekeeping (``eps_hk_t``): ``vbatt`` = main bus voltage (mV) and ``cursys`` = bus current (mA) from the
      power model (what ``EPS.VBUS`` / ``EPS.IBUS`` report, without their ADC noise); ``output[0..4]`` and
      ``curout[0..4]`` the EPS node's outputs and output currents, ``latchup[0..4]`` its latch-up counters (P31u
      channel = the ICD's ``SET_OUTPUT`` channel enum, see `P31U_CHANNELS`); ``counter_boot`` the EPS node's boot
      count; every ``temp`` the EPS node's battery temperature in whole °C; ``boot_cause`` the EPS node's reset
      cause (0 power-on, 1 brownout, 2 watchdog, 3 command); ``batt_mode`` 3 normal, 2 safe below
      ``EPS.UV_WARN_THRESHOLD``. Solar inputs read 0 (no array on the bench).
    * SET_OUTPUT / SET_SINGLE_OUTPUT switch the EPS node's outputs through `EpsNode.switch_output`, the code path of
      ``EPS.SET_OUTPUT`` over CAN (power model load, PSU current, ``EPS.OUTPUT_CHANGED`` event). The same refusals:
      OBC (ch 0) and COMMS (ch 1… see `P31U_CHANNELS`) cannot be switched off, channels 5..7 are not connected;
      a refused command answers status ``0xFE`` and changes nothing. A SET_SINGLE_OUTPUT delay > 0 s is honoured.
    * REBOOT (0x04 + magic) reboots the EPS node (it NACKs during its 0.55 s reboot); HARD_RESET (0x14) and an
      expired ground watchdog reboot every node. RESET_WDT (0x10 0x78) restarts the ground watchdog, which
      ``wdt_gnd_time_left`` shows.
    * Power: 0x02 acknowledges only while the EPS node runs (satellite powered and booted, not rebooting); the
      TMP100 while the main bus is powered (EPS power-good). Unpowered, both NACK like absent devices.
    * The TMP100 reads the EPS node's true battery temperature — the value behind ``EPS.TBAT`` on CAN.

``console`` — `ConsoleService`
    The OBC debug UART (`twin.console.ObcConsole`) on TCP (fixed port 29541) and on a pty. ``power_on`` at every
    power-good of the power model (a new boot count), ``power_off`` whenever the bus is unpowered (output off,
    brownout); a reboot of the OBC node with the bus powered (CSP reboot port, OBC.REBOOT TC, the control
    endpoint's reboot) prints the boot log again. The shell's ``reboot`` reboots the OBC node too (the console
    already prints its own boot log then). Firmware version and build are the OBC's CMP ident revision and date
    (`twin.nodes.base.FIRMWARE`); ``hk``, ``mode``, ``mode set`` and ``uptime`` use the OBC node.

Faults (control endpoint): ``i2c_unplug``, ``i2c_replug``, ``i2c_nack`` (address, on), ``console_silent`` (on),
``console_garbage`` (on), ``selftest_fail`` (subsystem, on). ``{"cmd": "state"}`` shows ``i2c`` and ``console``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from twin.console import DEFAULT_CONSOLE_PORT, SUBSYSTEMS, ObcConsole
from twin.eps_i2c import (
    CMD_SET_OUTPUT,
    CMD_SET_SINGLE_OUTPUT,
    EPS_I2C_ADDRESS,
    STATUS_INVALID,
    TMP100_ADDRESS,
    EpsHousekeepingState,
    EpsI2CDevice,
    Tmp100Device,
)
from twin.nodes.base import FIRMWARE, FIRMWARE_DATE, FIRMWARE_TIME
from twin.nodes.eps import CHANNELS, EpsNode
from twin.nodes.obc import MODES, RESET_CAUSES, ObcNode
from twin.nodes.satellite import Satellite
from twin.usbiss import DEFAULT_USBISS_PORT, I2CDevice, UsbIssEmulator
from twin.world import Fault, World

__all__ = [
    "DEFAULT_CONSOLE_PORT",
    "DEFAULT_USBISS_PORT",
    "P31U_CHANNELS",
    "ConsoleService",
    "I2cService",
]

_log = logging.getLogger(__name__)

# P31u output channel → EPS output: the same numbers as the ICD's EPS.SET_OUTPUT channel enum. P31u channels 5..7
# (the sixth 3V3 output and the two BP4 switches) are not connected on OTS-SAT.
P31U_CHANNELS: Final[tuple[str, ...]] = CHANNELS
_P31U_OUTPUTS: Final = 8
_P31U_MONITORED: Final = 6  # curout[] and latchup[] cover channels 0..5
_PROTECTED: Final = frozenset(i for i, name in enumerate(P31U_CHANNELS) if name not in EpsNode.SWITCHABLE)
_SUBSYSTEM_ALIASES: Final = {"COMMS": "UHF"}


def _bool(request: dict[str, object], key: str = "on") -> bool:
    value = request.get(key)
    if not isinstance(value, bool):
        raise ValueError(f"'{key}' must be a bool")
    return value


# ------------------------------------------------------------------------------------------------------ I2C


class _SatelliteBus(UsbIssEmulator):
    """The USB-ISS with the satellite's bus behind it: a device acknowledges only while it has power."""

    def __init__(self, powered: dict[int, Callable[[], bool]]) -> None:
        super().__init__()
        self._powered_checks = powered

    def _present(self, address: int) -> I2CDevice | None:
        check = self._powered_checks.get(address)
        if check is not None and not check():
            return None
        return super()._present(address)

    def answers(self, address: int) -> bool:
        """Would ``address`` acknowledge now (attached, powered, not NACK-faulted)?"""
        return self._i2c_ready() and self._present(address) is not None

    @property
    def nacking(self) -> list[int]:
        return sorted(self._nacking)


@dataclass
class _P31u(EpsI2CDevice):
    """The P31u device with OTS-SAT's protections: a command that would switch a protected output off, or an
    unconnected output on, is refused (status 0xFE) before it reaches the EPS."""

    def _handle(self, cmd: int, args: bytes) -> tuple[int, bytes]:
        if cmd == CMD_SET_OUTPUT and len(args) == 1:
            mask = args[0]
            if any(not mask & (1 << ch) for ch in _PROTECTED) or mask >> len(P31U_CHANNELS):
                return STATUS_INVALID, b""
        if cmd == CMD_SET_SINGLE_OUTPUT and len(args) == 4 and args[0] <= 7 and args[1] <= 1:
            channel, on = args[0], bool(args[1])
            if (channel in _PROTECTED and not on) or (channel >= len(P31U_CHANNELS) and on):
                return STATUS_INVALID, b""
        return super()._handle(cmd, args)


@dataclass
class _Scheduled:
    due: float
    channel: int
    on: bool


class I2cService:
    name = "i2c"
    kind = "usb-iss"
    visa = False
    description = "Devantech USB-ISS I2C adapter (EPS P31u at 0x02, TMP100 at 0x48)"

    def __init__(self, world: World, satellite: Satellite, *, republish: Callable[[], None]) -> None:
        """``republish``: called when the endpoint record changed while running (a re-plugged USB-ISS has a new
        pty), so that the app rewrites the endpoints file."""
        self.world = world
        self.sat = satellite
        self.eps = satellite.node("EPS", EpsNode)
        self._republish = republish
        self._scheduled: list[_Scheduled] = []
        self.device = _P31u(
            housekeeping=self._housekeeping,
            on_set_output=self._set_output,
            on_set_single_output=self._set_single_output,
            on_reboot=self._eps_reboot,
            on_hard_reset=self._reboot_all,
            on_gnd_wdt_expire=self._reboot_all,
            clock=world.clock,
        )
        self.tmp100 = Tmp100Device(temperature_c=self.eps.battery_temp_c)
        self.iss = _SatelliteBus({EPS_I2C_ADDRESS: lambda: self.eps.alive, TMP100_ADDRESS: lambda: world.dut.powered})
        self.iss.attach(EPS_I2C_ADDRESS, self.device)
        self.iss.attach(TMP100_ADDRESS, self.tmp100)
        world.tickers.append(self.tick)
        world.state["i2c"] = self.state
        self._register_faults()

    # -- Service --

    async def start(self, host: str, port: int) -> int:
        await self.iss.start(host, port, pty=True)
        return int(self.iss.endpoints()["i2c"]["port"])

    async def stop(self) -> None:
        await self.iss.stop()

    @property
    def extra(self) -> dict[str, object]:
        return {"url": self.iss.url, "pty": self.iss.pty_path}

    # -- coupling --

    def _housekeeping(self) -> EpsHousekeepingState:
        self.world.tick()  # bring the power model to now: the reply is what the EPS measures at this instant
        eps = self.eps
        v, i = eps.bus()
        v_eff = max(v, 2.5)
        outputs = [eps.output_on(ch) for ch in P31U_CHANNELS]
        if self.world.defects.active("EPS_I2C_OUTPUTS_SWAPPED"):
            outputs[0], outputs[1] = outputs[1], outputs[0]  # OBC and ADCS crossed in the I2C firmware's table
        currents = [round(eps.output_power_w(ch) / v_eff * 1000) for ch in P31U_CHANNELS]
        latchups = [eps.latchups[ch] for ch in P31U_CHANNELS]
        temp = round(eps.battery_temp_c())
        uv = float(eps.param("UV_WARN_THRESHOLD")) if eps.alive else 0.0
        pad = _P31U_MONITORED - len(P31U_CHANNELS)
        return EpsHousekeepingState(
            vbatt_mv=round(v * 1000),
            cursys_ma=round(i * 1000),
            vboost_mv=(0, 0, 0),
            curin_ma=(0, 0, 0),
            cursun_ma=0,
            curout_ma=currents + [0] * pad,
            outputs=outputs + [False] * (_P31U_OUTPUTS - len(outputs)),
            latchups=latchups + [0] * pad,
            counter_boot=eps.boot_count,
            temps_c=(temp,) * 6,
            boot_cause=RESET_CAUSES.get(eps.reset_cause, 0),
            batt_mode=3 if v >= uv else 2,
        )

    def _switch(self, channel: int, on: bool) -> None:
        if channel < len(P31U_CHANNELS):
            failure = self.eps.switch_output(P31U_CHANNELS[channel], on)
            if failure is not None:
                _log.info("I2C: EPS refused output %s %s", P31U_CHANNELS[channel], "on" if on else "off")

    def _set_output(self, mask: int) -> None:
        for channel in range(len(P31U_CHANNELS)):
            if channel not in _PROTECTED:
                self._switch(channel, bool(mask & (1 << channel)))

    def _set_single_output(self, channel: int, on: bool, delay_s: int) -> None:
        if delay_s > 0:
            self._scheduled.append(_Scheduled(self.world.clock() + delay_s, channel, on))
        else:
            self._switch(channel, on)

    def _eps_reboot(self) -> None:
        self._scheduled.clear()
        self.eps.request_reboot()

    def _reboot_all(self) -> None:
        self._scheduled.clear()
        for node in self.sat.nodes.values():
            node.request_reboot()

    def tick(self) -> None:
        if not self.eps.alive:
            self._scheduled.clear()  # the EPS's timers live in RAM
            return
        t = self.world.clock()
        for item in [s for s in self._scheduled if t >= s.due]:
            self._scheduled.remove(item)
            self._switch(item.channel, item.on)

    # -- control endpoint --

    def state(self) -> dict[str, object]:
        iss = self.iss
        return {
            "plugged": not iss.unplugged,
            "url": iss.url if not iss.unplugged else None,
            "pty": iss.pty_path,
            "mode": iss.mode,
            "nacking": iss.nacking,
            "devices": {
                "eps": {"address": EPS_I2C_ADDRESS, "present": iss.answers(EPS_I2C_ADDRESS)},
                "tmp100": {"address": TMP100_ADDRESS, "present": iss.answers(TMP100_ADDRESS)},
            },
            "eps_commands": self.device.commands,
            "wdt_gnd_time_left_s": self.device.wdt_gnd_time_left,
            "stats": dict(iss.stats),
        }

    def _register_faults(self) -> None:
        def unplug(request: dict[str, object]) -> dict[str, object]:
            if self.iss.unplugged:
                raise ValueError("the USB-ISS is already unplugged")
            self.iss.unplug()
            return {"plugged": False}

        async def replug(request: dict[str, object]) -> dict[str, object]:
            await self.iss.replug()
            self._republish()
            return {"plugged": True, "url": self.iss.url, "pty": self.iss.pty_path}

        def nack(request: dict[str, object]) -> dict[str, object]:
            address = request.get("address")
            if isinstance(address, bool) or not isinstance(address, int) or not 0 <= address <= 0x7F:
                raise ValueError("'address' must be a 7-bit I2C address (0..127)")
            on = _bool(request)
            self.iss.set_nack(address, on)
            return {"address": address, "on": on}

        faults = self.world.faults
        faults["i2c_unplug"] = Fault(
            "i2c_unplug", "USB-ISS cable pulled: its pty and TCP connections vanish", lambda on: {},
            apply_request=unplug,
        )  # fmt: skip
        faults["i2c_replug"] = Fault(
            "i2c_replug", "USB-ISS plugged back: same TCP port, a new pty (endpoints file rewritten)", lambda on: {},
            apply_async=replug,
        )  # fmt: skip
        faults["i2c_nack"] = Fault(
            "i2c_nack", "address (7-bit), on: that I2C address stops acknowledging", lambda on: {}, apply_request=nack
        )


# -------------------------------------------------------------------------------------------------- console


@dataclass
class _ConsoleCoupling:
    seen_power_boot: int = -1
    obc_alive: bool = False
    shell_reboot: bool = False
    boot_cause: str = "power_on"
    failing: set[str] = field(default_factory=set)


class ConsoleService:
    name = "console"
    kind = "uart"
    visa = False
    description = "OTS-SAT OBC debug UART, 115200 8N1 (boot log, maintenance shell)"

    def __init__(self, world: World, obc: ObcNode) -> None:
        self.world = world
        self.obc = obc
        self._c = _ConsoleCoupling()
        self._firmware = FIRMWARE.removeprefix("v")
        self.console = ObcConsole(
            firmware_version=FIRMWARE.removeprefix("v"),
            build=f"{FIRMWARE_DATE} {FIRMWARE_TIME}",
            csp_address=obc.address,
            failing_subsystems=lambda: set(self._c.failing),
            housekeeping=self._housekeeping,
            get_mode=self._mode,
            set_mode=self._set_mode,
            on_reboot=self._shell_reboot,
            uptime=self.obc.uptime,
            seed=world.options.seed,
        )
        world.tickers.append(self.tick)
        world.state["console"] = self.state
        self._register_faults()

    # -- Service --

    async def start(self, host: str, port: int) -> int:
        await self.console.start(host, port, pty=True)
        return int(self.console.endpoints()["console"]["port"])

    async def stop(self) -> None:
        await self.console.stop()

    @property
    def extra(self) -> dict[str, object]:
        return {"url": self.console.url, "pty": self.console.pty_path, "baudrate": 115200}

    # -- coupling --

    def tick(self) -> None:
        """Runs after the satellite's ticker: power and reboots of the OBC node drive the console."""
        dut, c, console = self.world.dut, self._c, self.console
        defects = self.world.defects  # the console's seeded defects take effect at its next boot log
        console.firmware_version = "1.4.1" if defects.active("OBC_CONSOLE_FW_MISMATCH") else self._firmware
        console.omitted_selftests = {"RTC"} if defects.active("OBC_SELFTEST_LINE_MISSING") else set()
        if not dut.powered:
            if console.powered:
                console.power_off()
            c.obc_alive = c.shell_reboot = False
            return
        if dut.boot_count != c.seen_power_boot or not console.powered:
            c.seen_power_boot = dut.boot_count
            c.boot_cause = dut.reset_cause or "power_on"
            c.obc_alive = c.shell_reboot = False
            console.power_off()
            console.power_on()
            return
        if c.obc_alive and not self.obc.alive:  # the OBC's processor reset with the bus powered: a reboot
            if c.shell_reboot:
                c.shell_reboot = False  # the shell's reboot already restarted the boot log
            else:
                c.boot_cause = "command"
                console.power_off()
                console.power_on()
        c.obc_alive = self.obc.alive

    def _shell_reboot(self) -> None:
        if self.obc.alive:
            self._c.shell_reboot = True
            self._c.boot_cause = "command"
            self.obc.request_reboot()

    def _mode(self) -> str:
        if self.obc.alive:
            return self.obc.mode_name()
        # Still booting: the mode the flight software is about to start in (ObcNode.reset).
        return MODES[0] if self._c.boot_cause in ("brownout", "watchdog") else MODES[1]

    def _set_mode(self, name: str) -> bool:
        wanted = next((number for number, mode in MODES.items() if mode == name.upper()), None)
        return wanted is not None and self.obc.alive and self.obc.set_mode(wanted)

    def _housekeeping(self) -> dict[str, object]:
        if not self.obc.alive:
            return {"mode": self._mode()}
        values = self.obc.hk_values(1)
        return {
            "uptime_s": values["UPTIME"],
            "mode": self.obc.mode_name(),
            "boot_count": values["BOOT_COUNT"],
            "reset_cause": self.obc.reset_cause,
            "cpu_load_pct": round(float(values["CPU_LOAD"]), 1),
            "free_mem_b": values["FREE_MEM"],
            "obt_s": values["OBT"],
            "bus_voltage_v": round(self.world.dut.bus_voltage, 3),
        }

    # -- control endpoint --

    def state(self) -> dict[str, object]:
        console = self.console
        return {
            "powered": console.powered,
            "booted": console.booted,
            "boots": console.boots,
            "silent": console.silent,
            "garbage": console.garbage,
            "failing_subsystems": sorted(self._c.failing),
            "firmware": console.firmware_version,
            "url": console.url,
            "pty": console.pty_path,
        }

    def _register_faults(self) -> None:
        console = self.console

        def silent(request: dict[str, object]) -> dict[str, object]:
            console.silent = _bool(request)
            return {"on": console.silent}

        def garbage(request: dict[str, object]) -> dict[str, object]:
            console.garbage = _bool(request)
            if console.garbage:
                console.inject_garbage()  # the line glitches at once, not only at the next output
            return {"on": console.garbage}

        def selftest(request: dict[str, object]) -> dict[str, object]:
            name = str(request.get("subsystem", "")).upper()
            name = _SUBSYSTEM_ALIASES.get(name, name)
            if name not in SUBSYSTEMS:
                raise ValueError(f"'subsystem' must be one of {', '.join(SUBSYSTEMS)} (or COMMS for UHF)")
            on = _bool(request)
            if on:
                self._c.failing.add(name)
            else:
                self._c.failing.discard(name)
            return {"subsystem": name, "on": on, "failing": sorted(self._c.failing)}

        faults = self.world.faults
        # Status in state()["console"] (silent, garbage), like the satellite's node faults.
        faults["console_silent"] = Fault(
            "console_silent", "on: the OBC debug UART prints and answers nothing", lambda on: {},
            apply_request=silent,
        )  # fmt: skip
        faults["console_garbage"] = Fault(
            "console_garbage", "on: line noise (invalid UTF-8) mixed into the debug UART output", lambda on: {},
            apply_request=garbage,
        )  # fmt: skip
        faults["selftest_fail"] = Fault(
            "selftest_fail", f"subsystem ({'|'.join(SUBSYSTEMS)}), on: fails its self-test at the next OBC boot",
            lambda on: {}, apply_request=selftest,
        )  # fmt: skip
