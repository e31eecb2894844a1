"""The EPS on the twin's I2C bus (GomSpace NanoPower P31u style, address 0x02) and a temperature sensor (0x48).

P31u command set (reference/protocols.md §5.4; multi-byte fields big-endian)
    A transaction is an I2C write ``[cmd, args…]`` followed by an I2C read ``[cmd echo, status, payload…]``;
    status 0 = OK, ``STATUS_INVALID`` (0xFE) = unknown command, bad argument or wrong magic byte.

    ====================  ==========================  ==================================================
    command               write                       reply payload / effect
    ====================  ==========================  ==================================================
    PING 0x01             ``01 v``                    ``v`` (``01`` when no value is given)
    REBOOT 0x04           ``04 80 07 80 07``          no reply; ``on_reboot()``
    GET_HOUSEKEEPING 0x08 ``08`` or ``08 00``         ``eps_hk_t`` (P31u-8, 131 bytes, layout below)
    SET_OUTPUT 0x09       ``09 mask``                 ``on_set_output(mask)``
    SET_SINGLE_OUTPUT 0x0A ``0A ch val delay(u16 s)`` ``on_set_single_output(ch, val, delay)``
    RESET_COUNTERS 0x0F   ``0F 42``                   boot and WDT counters to 0
    RESET_WDT 0x10        ``10 78``                   ground watchdog restarts its 48 h countdown
    HARD_RESET 0x14       ``14``                      ``on_hard_reset()``
    ====================  ==========================  ==================================================

    Any command the EPS understands also kicks the I2C watchdog (``wdt_i2c_time_left``), as on the P31u.

``eps_hk_t`` byte layout (`HK_FORMAT`, offsets in bytes after the 2-byte echo/status header)
    0 ``u16 vboost[3]`` mV · 6 ``u16 vbatt`` mV · 8 ``u16 curin[3]`` mA · 14 ``u16 cursun`` mA ·
    16 ``u16 cursys`` mA · 18 ``u16 reserved1`` · 20 ``u16 curout[6]`` mA · 32 ``u8 output[8]`` ·
    40 ``u16 output_on_delta[8]`` s · 56 ``u16 output_off_delta[8]`` s · 72 ``u16 latchup[6]`` ·
    84 ``u32 wdt_i2c_time_left`` s · 88 ``u32 wdt_gnd_time_left`` s · 92 ``u8 wdt_csp_pings_left[2]`` ·
    94 ``u32 counter_wdt_i2c`` · 98 ``u32 counter_wdt_gnd`` · 102 ``u32 counter_wdt_csp[2]`` ·
    110 ``u32 counter_boot`` · 114 ``i16 temp[6]`` °C (T1..T4, BP4a, BP4b) · 126 ``u8 boot_cause`` ·
    127 ``u8 batt_mode`` · 128 ``u8 ppt_mode`` · 129 ``u16 reserved2`` — 131 bytes.

    The whole struct is one read (133 bytes with the header). A real USB-ISS caps one read at about 60 bytes, so on
    real hardware behind a USB-ISS the subtype reads of the P31u would be needed; the twin's adapter does not cap.

Where the numbers come from
    `EpsI2CDevice` owns only what the EPS firmware itself keeps: the I2C and ground watchdogs and their counters,
    and the zero point of the boot counter (RESET_COUNTERS). Everything physical (voltages, currents, outputs,
    latch-ups, boot count, temperatures) comes from the ``housekeeping`` provider, which the twin wires to the same
    power model / EPS node state that CAN reports, so I2C and CAN always agree.

Temperature sensor (`Tmp100Device`, TMP100/LM75-style pointer registers)
    Write ``[ptr]`` selects a register, ``[ptr, data…]`` writes it; a read returns the selected register.
    0x00 temperature (read-only, 12-bit two's complement left-justified in 16 bits, 0.0625 °C/LSB), 0x01
    configuration (1 byte), 0x02 T_LOW, 0x03 T_HIGH (same format as temperature).
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "EPS_I2C_ADDRESS",
    "GND_WDT_PERIOD_S",
    "HK_FORMAT",
    "HK_SIZE",
    "TMP100_ADDRESS",
    "EpsHousekeepingState",
    "EpsI2CDevice",
    "Tmp100Device",
    "encode_housekeeping",
]

EPS_I2C_ADDRESS = 0x02
TMP100_ADDRESS = 0x48

CMD_PING = 0x01
CMD_REBOOT = 0x04
CMD_GET_HOUSEKEEPING = 0x08
CMD_SET_OUTPUT = 0x09
CMD_SET_SINGLE_OUTPUT = 0x0A
CMD_RESET_COUNTERS = 0x0F
CMD_RESET_WDT = 0x10
CMD_HARD_RESET = 0x14

STATUS_OK = 0x00
STATUS_INVALID = 0xFE  # GomSpace error codes are negative int8; -2 stands for "invalid argument" here

MAGIC_RESET_COUNTERS = 0x42
MAGIC_RESET_WDT = 0x78
REBOOT_MAGIC = bytes([0x80, 0x07, 0x80, 0x07])

GND_WDT_PERIOD_S = 48 * 3600
I2C_WDT_PERIOD_S = 600  # configurable on the P31u (config1); the default of the twin

HK_FORMAT = ">3HH3HHHH6H8B8H8H6HII2BII2II6hBBBH"
HK_SIZE = struct.calcsize(HK_FORMAT)
assert HK_SIZE == 131


@dataclass
class EpsHousekeepingState:
    """The physical EPS state the twin supplies (units as on the wire: mV, mA, s, °C)."""

    vbatt_mv: int = 7400
    cursys_ma: int = 250
    vboost_mv: Sequence[int] = (0, 0, 0)
    curin_ma: Sequence[int] = (0, 0, 0)
    cursun_ma: int = 0
    curout_ma: Sequence[int] = (0, 0, 0, 0, 0, 0)
    outputs: Sequence[bool] = (False,) * 8  # channel 0..7 (P31u: 3×5V, 3×3V3, 2 reserved)
    output_on_delta_s: Sequence[int] = (0,) * 8
    output_off_delta_s: Sequence[int] = (0,) * 8
    latchups: Sequence[int] = (0, 0, 0, 0, 0, 0)
    counter_boot: int = 1
    temps_c: Sequence[int] = (20, 20, 20, 20, 20, 20)  # T1..T4, BP4a, BP4b
    boot_cause: int = 0
    batt_mode: int = 3  # 0 init, 1 critical, 2 safe, 3 normal, 4 full
    ppt_mode: int = 1  # 1 MPPT, 2 fixed
    wdt_csp_pings_left: Sequence[int] = (10, 10)
    counter_wdt_csp: Sequence[int] = (0, 0)


def _fixed(values: Sequence[int], n: int, what: str) -> list[int]:
    if len(values) != n:
        raise ValueError(f"EPS housekeeping {what}: {n} values expected, got {len(values)}")
    return list(values)


def _u16(value: int) -> int:
    return max(0, min(0xFFFF, int(value)))


def encode_housekeeping(
    state: EpsHousekeepingState,
    *,
    wdt_i2c_time_left: int,
    wdt_gnd_time_left: int,
    counter_wdt_i2c: int,
    counter_wdt_gnd: int,
    counter_boot: int,
) -> bytes:
    """Pack one ``eps_hk_t`` (big-endian, layout in the module doc); values saturate at their field's range."""
    return struct.pack(
        HK_FORMAT,
        *[_u16(v) for v in _fixed(state.vboost_mv, 3, "vboost")],
        _u16(state.vbatt_mv),
        *[_u16(v) for v in _fixed(state.curin_ma, 3, "curin")],
        _u16(state.cursun_ma),
        _u16(state.cursys_ma),
        0,
        *[_u16(v) for v in _fixed(state.curout_ma, 6, "curout")],
        *[1 if on else 0 for on in _fixed([bool(o) for o in state.outputs], 8, "outputs")],
        *[_u16(v) for v in _fixed(state.output_on_delta_s, 8, "output_on_delta")],
        *[_u16(v) for v in _fixed(state.output_off_delta_s, 8, "output_off_delta")],
        *[_u16(v) for v in _fixed(state.latchups, 6, "latchup")],
        max(0, wdt_i2c_time_left),
        max(0, wdt_gnd_time_left),
        *[max(0, min(255, v)) for v in _fixed(state.wdt_csp_pings_left, 2, "wdt_csp_pings_left")],
        counter_wdt_i2c,
        counter_wdt_gnd,
        *_fixed(state.counter_wdt_csp, 2, "counter_wdt_csp"),
        max(0, counter_boot),
        *[max(-32768, min(32767, int(v))) for v in _fixed(state.temps_c, 6, "temp")],
        state.boot_cause & 0xFF,
        state.batt_mode & 0xFF,
        state.ppt_mode & 0xFF,
        0,
    )


@dataclass
class _Watchdog:
    period_s: float
    clock: Callable[[], float]
    last_kick: float = 0.0
    expiries: int = 0
    on_expire: Callable[[], None] | None = None

    def kick(self) -> None:
        self.last_kick = self.clock()

    def time_left(self) -> int:
        """Seconds left; an expiry found here is counted (the EPS would have power-cycled) and restarts the timer."""
        elapsed = self.clock() - self.last_kick
        if elapsed >= self.period_s:
            periods = int(elapsed // self.period_s)
            self.expiries += periods
            self.last_kick += periods * self.period_s
            elapsed -= periods * self.period_s
            if self.on_expire is not None:
                self.on_expire()
        return max(0, math.ceil(self.period_s - elapsed))


@dataclass
class EpsI2CDevice:
    """The P31u-style EPS as an I2C device (see the module doc for the commands and layout).

    Callbacks (all run on the twin's event loop): ``housekeeping() -> EpsHousekeepingState``;
    ``on_set_output(mask)``; ``on_set_single_output(channel, on, delay_s)`` (when absent, the mask is computed from
    the provider's outputs and sent to ``on_set_output``); ``on_reboot()``, ``on_hard_reset()``,
    ``on_gnd_wdt_expire()`` (the ground watchdog ran out: the real EPS power-cycles the satellite).
    ``clock`` is monotonic seconds (tests pass a fake one to move time).
    """

    housekeeping: Callable[[], EpsHousekeepingState] = EpsHousekeepingState
    on_set_output: Callable[[int], None] | None = None
    on_set_single_output: Callable[[int, bool, int], None] | None = None
    on_reboot: Callable[[], None] | None = None
    on_hard_reset: Callable[[], None] | None = None
    on_gnd_wdt_expire: Callable[[], None] | None = None
    clock: Callable[[], float] = time.monotonic
    gnd_wdt_period_s: float = GND_WDT_PERIOD_S
    i2c_wdt_period_s: float = I2C_WDT_PERIOD_S
    _reply: bytes = field(default=b"", init=False, repr=False)
    _boot_zero: int = field(default=0, init=False, repr=False)
    _gnd: _Watchdog = field(init=False, repr=False)
    _i2c: _Watchdog = field(init=False, repr=False)
    commands: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._gnd = _Watchdog(self.gnd_wdt_period_s, self.clock, self.clock(), on_expire=self.on_gnd_wdt_expire)
        self._i2c = _Watchdog(self.i2c_wdt_period_s, self.clock, self.clock())

    # I2CDevice

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.commands += 1
        cmd, args = data[0], data[1:]
        status, payload = self._handle(cmd, args)
        if status == STATUS_OK:
            self._i2c.kick()
        self._reply = b"" if cmd in (CMD_REBOOT, CMD_HARD_RESET) else bytes([cmd, status]) + payload

    def read(self, n: int) -> bytes:
        # Each read transfer returns the reply from its start; with no reply pending the bus reads high.
        return (self._reply + b"\xff" * n)[:n]

    # state the EPS firmware keeps

    @property
    def wdt_gnd_time_left(self) -> int:
        return self._gnd.time_left()

    @property
    def counter_wdt_gnd(self) -> int:
        self._gnd.time_left()  # counts an expiry that happened since the last look
        return self._gnd.expiries

    def _handle(self, cmd: int, args: bytes) -> tuple[int, bytes]:
        if cmd == CMD_PING:
            return STATUS_OK, args[:1] or b"\x01"
        if cmd == CMD_GET_HOUSEKEEPING:
            if args[:1] not in (b"", b"\x00"):
                return STATUS_INVALID, b""
            return STATUS_OK, self._housekeeping_bytes()
        if cmd == CMD_SET_OUTPUT:
            if len(args) != 1:
                return STATUS_INVALID, b""
            if self.on_set_output is not None:
                self.on_set_output(args[0])
            return STATUS_OK, b""
        if cmd == CMD_SET_SINGLE_OUTPUT:
            if len(args) != 4 or args[0] > 7 or args[1] > 1:
                return STATUS_INVALID, b""
            channel, on, delay = args[0], bool(args[1]), struct.unpack(">h", args[2:4])[0]
            if self.on_set_single_output is not None:
                self.on_set_single_output(channel, on, delay)
            elif self.on_set_output is not None:
                mask = sum(1 << i for i, o in enumerate(self.housekeeping().outputs) if o)
                mask = mask | (1 << channel) if on else mask & ~(1 << channel)
                self.on_set_output(mask)
            return STATUS_OK, b""
        if cmd == CMD_RESET_COUNTERS:
            if args != bytes([MAGIC_RESET_COUNTERS]):
                return STATUS_INVALID, b""
            self._boot_zero = self.housekeeping().counter_boot
            self._gnd.expiries = 0
            self._i2c.expiries = 0
            return STATUS_OK, b""
        if cmd == CMD_RESET_WDT:
            if args != bytes([MAGIC_RESET_WDT]):
                return STATUS_INVALID, b""
            self._gnd.kick()
            return STATUS_OK, b""
        if cmd == CMD_REBOOT:
            if args == REBOOT_MAGIC and self.on_reboot is not None:
                self.on_reboot()
            return STATUS_OK, b""
        if cmd == CMD_HARD_RESET:
            if self.on_hard_reset is not None:
                self.on_hard_reset()
            return STATUS_OK, b""
        return STATUS_INVALID, b""

    def _housekeeping_bytes(self) -> bytes:
        state = self.housekeeping()
        if state.counter_boot < self._boot_zero:  # the provider's own counter restarted: so does our zero point
            self._boot_zero = 0
        return encode_housekeeping(
            state,
            wdt_i2c_time_left=self._i2c.time_left(),
            wdt_gnd_time_left=self._gnd.time_left(),
            counter_wdt_i2c=self._i2c.expiries,
            counter_wdt_gnd=self._gnd.expiries,
            counter_boot=state.counter_boot - self._boot_zero,
        )


@dataclass
class Tmp100Device:
    """A TMP100/LM75-style temperature sensor; ``temperature_c()`` supplies the reading (°C)."""

    temperature_c: Callable[[], float] = lambda: 20.0
    config: int = 0x00
    t_low_c: float = 75.0
    t_high_c: float = 80.0
    _pointer: int = field(default=0, init=False)

    @staticmethod
    def encode(celsius: float) -> bytes:
        """12-bit two's complement, left-justified: 0.0625 °C per LSB, clamped to the sensor's -128..127.9375 °C."""
        counts = max(-2048, min(2047, round(celsius / 0.0625)))
        return struct.pack(">h", counts << 4)

    @staticmethod
    def decode(raw: bytes) -> float:
        counts: int = struct.unpack(">h", raw[:2])[0] >> 4
        return counts * 0.0625

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._pointer = data[0] & 0x03
        value = data[1:]
        if not value:
            return
        if self._pointer == 0x01:
            self.config = value[0]
        elif self._pointer in (0x02, 0x03) and len(value) >= 2:
            setattr(self, "t_low_c" if self._pointer == 0x02 else "t_high_c", self.decode(value[:2]))

    def read(self, n: int) -> bytes:
        if self._pointer == 0x00:
            register = self.encode(self.temperature_c())
        elif self._pointer == 0x01:
            register = bytes([self.config])
        else:
            register = self.encode(self.t_low_c if self._pointer == 0x02 else self.t_high_c)
        # Reads past the register repeat it (the pointer does not auto-increment on these parts).
        return (register * (n // len(register) + 1))[:n]
