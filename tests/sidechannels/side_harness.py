"""Run the twin's side-channel components (USB-ISS + EPS, OBC console) in a background event loop thread.

The clients under test are the real bench drivers (blocking, in the test thread); the twin components run on
their own asyncio loop exactly as in the twin process. Synchronisation is by awaited predicates with timeouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from loop_support import FakeClock, LoopThread

from twin.console import ObcConsole
from twin.eps_i2c import EPS_I2C_ADDRESS, TMP100_ADDRESS, EpsHousekeepingState, EpsI2CDevice, Tmp100Device
from twin.usbiss import UsbIssEmulator

T = TypeVar("T")


@dataclass
class SatState:
    """What the lead's twin will supply from the power model / EPS node; here a plain mutable stand-in."""

    eps: EpsHousekeepingState = field(
        default_factory=lambda: EpsHousekeepingState(
            vbatt_mv=7812,
            cursys_ma=431,
            vboost_mv=(4100, 4050, 0),
            curin_ma=(120, 95, 0),
            cursun_ma=215,
            curout_ma=(180, 0, 40, 75, 0, 0),
            outputs=(True, False, True, True, False, False, False, False),
            latchups=(0, 1, 0, 0, 2, 0),
            counter_boot=17,
            temps_c=(21, 22, -5, 30, 18, 19),
            batt_mode=3,
            ppt_mode=1,
        )
    )
    board_temp_c: float = 23.4375
    set_output_calls: list[int] = field(default_factory=list)

    def set_output(self, mask: int) -> None:
        self.set_output_calls.append(mask)
        self.eps.outputs = tuple(bool(mask >> i & 1) for i in range(8))


class I2CTwin:
    """USB-ISS emulator with the EPS at 0x02 and a TMP100 at 0x48, started on a pty and a free TCP port."""

    def __init__(self, loop: LoopThread) -> None:
        self.loop = loop
        self.state = SatState()
        self.clock = FakeClock()
        self.eps = EpsI2CDevice(
            housekeeping=lambda: self.state.eps, on_set_output=self.state.set_output, clock=self.clock
        )
        self.tmp = Tmp100Device(temperature_c=lambda: self.state.board_temp_c)
        self.iss = UsbIssEmulator(resync_gap_s=0.2)
        self.iss.attach(EPS_I2C_ADDRESS, self.eps)
        self.iss.attach(TMP100_ADDRESS, self.tmp)
        loop.run(self.iss.start("127.0.0.1", 0))
        self.url = self.iss.url
        pty = self.iss.pty_path
        assert pty is not None
        self.pty_path = pty

    def close(self) -> None:
        self.loop.run(self.iss.stop())


class ConsoleTwin:
    """The OBC console emulator on a pty and a free TCP port."""

    def __init__(self, loop: LoopThread, **options: Any) -> None:
        self.loop = loop
        self.failing: set[str] = set()
        self.mode = "SAFE"
        self.reboots = 0

        def set_mode(name: str) -> bool:
            if name not in ("SAFE", "NOMINAL", "PAYLOAD"):
                return False
            self.mode = name
            return True

        def on_reboot() -> None:
            self.reboots += 1

        options.setdefault("failing_subsystems", lambda: self.failing)
        self.console = ObcConsole(
            housekeeping=lambda: {"vbatt_mv": 7812, "obc_temp_c": 23.5, "mode": self.mode},
            get_mode=lambda: self.mode,
            set_mode=set_mode,
            on_reboot=on_reboot,
            **options,
        )
        loop.run(self.console.start("127.0.0.1", 0))
        self.url = self.console.url
        pty = self.console.pty_path
        assert pty is not None
        self.pty_path = pty

    def close(self) -> None:
        self.loop.run(self.console.stop())
