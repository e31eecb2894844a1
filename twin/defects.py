"""Seeded defects: a satellite that is wrong in a known way, so that a test plan can be shown to say so.

A *fault* (``twin/control.py``: ``node_silent``, ``rf_cable_disconnected``…) breaks the link or the bench around
a good satellite. A *defect* is a bad satellite: an integration error the bench exists to find — an EPS output
wired reversed, telemetry with the wrong scale, a wheel spinning the wrong way, a radio 3 dB low. Mutation
testing of the test plans: ``bench defects`` starts a twin carrying one defect and checks that the plans fail.

``DEFECTS`` is the registry: one line per defect (name → subsystem, what is wrong, the parameter its hook
reads). The node models read ``defects.active(NAME)`` (or ``defects.value(NAME)`` for the parameter) in one
place each; a name that is not in the registry raises ``KeyError`` there, so a typo cannot silently disable a
hook. Defects are chosen on the command line (``python -m twin --defect NAME``, repeatable), or switched at run
time through the control endpoint (``{"cmd": "defect", "name": NAME, "on": true}``); ``{"cmd": "help"}``
lists them. The catalogue of which test catches which defect is ``test_plans/defects.yaml`` (docs/defects.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = ["DEFECTS", "Defect", "Defects"]


@dataclass(frozen=True)
class Defect:
    name: str
    subsystem: str  # EPS | ADCS | COMMS | OBC | PAYLOAD: the node (or the console/I2C side of it) that is wrong
    description: str
    value: float = 0.0  # the defect's size, where it has one (a scale, an offset, dB, Hz…), read by its hook


DEFECTS: Final[dict[str, Defect]] = {
    d.name: d
    for d in (
        # EPS (twin/nodes/eps.py, twin/power_model.py through twin/world.py, twin/sidechannels.py for I2C)
        Defect("EPS_OUTPUT_STUCK_ON", "EPS", "HEATER output switch welded: SET_OUTPUT off completes, output stays on"),
        Defect(
            "EPS_OUTPUT_REVERSED", "EPS", "ADCS output control inverted: SET_OUTPUT on switches it off and vice versa"
        ),
        Defect("EPS_BUS_V_TM_5PCT", "EPS", "EPS.VBAT/EPS.VBUS telemetry 5 % high (ADC reference mis-set)", 1.05),
        Defect("EPS_IBUS_TM_SCALE", "EPS", "EPS.IBUS telemetry with the wrong scale (x1.25: wrong shunt value)", 1.25),
        Defect(
            "EPS_TBAT_TM_OFFSET", "EPS", "EPS.TBAT telemetry with a +5 degC offset (wrong calibration constant)", 5.0
        ),
        Defect(
            "EPS_I2C_OUTPUTS_SWAPPED",
            "EPS",
            "I2C housekeeping reports outputs OBC and ADCS swapped (disagrees with CAN)",
        ),
        Defect(
            "EPS_PROTECTED_OUTPUT_OFF",
            "EPS",
            "switching the always-on OBC/COMMS outputs off completes instead of being refused",
        ),
        Defect("EPS_UVLO_LOW", "EPS", "undervoltage lockout threshold at 2.90 V instead of 3.10 V", 2.90),
        Defect("EPS_IDLE_POWER_HIGH", "EPS", "a converter left enabled: idle draw 1.0 W above the budget", 1.0),
        # ADCS (twin/nodes/adcs.py)
        Defect("ADCS_WHEEL_REVERSED", "ADCS", "reaction wheel motor phases swapped: wheels spin the wrong way"),
        Defect(
            "ADCS_WHEEL_SLOW",
            "ADCS",
            "wheel driver current limit too low: a quarter of the commanded acceleration",
            0.25,
        ),
        Defect(
            "ADCS_MAG_XY_SWAPPED",
            "ADCS",
            "magnetometer harness X and Y swapped: the B-dot loop torques the wrong axes and the tumble stays",
        ),
        Defect(
            "ADCS_MAG_Z_INVERTED",
            "ADCS",
            "magnetometer Z axis inverted (mounted upside down): the B-dot loop spins the Z axis up",
        ),
        Defect("ADCS_MODE_NADIR_REFUSED", "ADCS", "the ADCS refuses the NADIR mode transition (execution failed)"),
        Defect("ADCS_NO_RANGE_CHECK", "ADCS", "wheel speed arguments not range-checked: 7000 rpm accepted"),
        Defect(
            "ADCS_NO_WHEEL_FAULT_EVENT",
            "ADCS",
            "a wheel command without actuator power fails silently (no WHEEL_FAULT)",
        ),
        # COMMS (twin/nodes/comms.py, twin/rf_link.py)
        Defect("COMMS_TX_POWER_3DB_LOW", "COMMS", "transmitter delivers 3 dB less than its setting", -3.0),
        Defect("COMMS_CARRIER_5KHZ", "COMMS", "transmit synthesiser 5 kHz off the assigned 437.5 MHz", 5000.0),
        Defect("COMMS_DEVIATION_WIDE", "COMMS", "modulator deviation 30 % too wide", 1.30),
        Defect(
            "COMMS_BEACON_STALE_FIELD",
            "COMMS",
            "beacon EPS.VBAT never refreshed: the value latched before the bus came up",
        ),
        Defect("COMMS_WRONG_CALLSIGN", "COMMS", "beacon sent from the wrong callsign (OTSSAX instead of OTSSAT)"),
        Defect("COMMS_RX_DEAF_6DB", "COMMS", "receiver 6 dB deaf (LNA bias wrong)", 6.0),
        Defect(
            "COMMS_INHIBIT_IGNORED", "COMMS", "the ground's transmit inhibit is acknowledged but the beacon still keys"
        ),
        Defect("COMMS_NO_CALLSIGN_FILTER", "COMMS", "uplink frames for any callsign are received (no address filter)"),
        Defect(
            "COMMS_BEACON_PERIOD_LONG",
            "COMMS",
            "beacon timer ticks 1.2 s per second setting: 36 s instead of 30 s",
            1.2,
        ),
        # OBC (twin/nodes/obc.py, twin/nodes/base.py, twin/sidechannels.py for the console)
        Defect("OBC_MODE_RETURN_REFUSED", "OBC", "the OBC refuses the SAFE -> NOMINAL transition"),
        Defect("OBC_BOOTS_SAFE", "OBC", "after a clean power-on the OBC starts in SAFE instead of NOMINAL"),
        Defect("OBC_BOOT_NOT_COUNTED", "OBC", "a commanded reboot does not increment the boot counter"),
        Defect("OBC_UPTIME_NOT_RESET", "OBC", "uptime carries on through a commanded reboot"),
        Defect("OBC_SELFTEST_LINE_MISSING", "OBC", "the boot log omits the RTC self-test line (summary still 8/8)"),
        Defect("OBC_PUS_WRONG_SUBTYPE", "OBC", "the OBC answers the PUS are-you-alive TC[17,1] with TM[17,3]"),
        Defect(
            "OBC_CONSOLE_FW_MISMATCH",
            "OBC",
            "the console banner prints firmware 1.4.1 while CSP ident says the flashed one",
        ),
        # PAYLOAD (twin/nodes/payload.py)
        Defect("PAYLOAD_CAPTURE_WHEN_OFF", "PAYLOAD", "a capture with the imager off completes (an empty image)"),
        Defect(
            "PAYLOAD_WRONG_FAIL_REASON",
            "PAYLOAD",
            "CAPTURE_FAILED gives reason 2 (power lost) for an imager that was off",
        ),
        Defect("PAYLOAD_CAPTURE_NOT_COUNTED", "PAYLOAD", "a completed capture does not increment PAYLOAD.CAPTURES"),
        Defect(
            "PAYLOAD_IMAGE_CRC_BAD",
            "PAYLOAD",
            "one bit of every image flipped on its way to flash, after the imager took its CRC",
        ),
        Defect("PAYLOAD_SLOW_READOUT", "PAYLOAD", "sensor readout takes 0.6 s instead of 0.05 s", 0.6),
    )
}


class Defects:
    """The defects the twin carries now (``--defect``, or switched through the control endpoint)."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._on: set[str] = set()
        for name in names:
            self.set(name, True)

    @staticmethod
    def _known(name: str) -> Defect:
        defect = DEFECTS.get(name)
        if defect is None:
            raise KeyError(f"unknown defect {name!r} (known: {', '.join(sorted(DEFECTS))})")
        return defect

    def set(self, name: str, on: bool) -> None:
        self._known(name)
        if on:
            self._on.add(name)
        else:
            self._on.discard(name)

    def active(self, name: str) -> bool:
        self._known(name)
        return name in self._on

    def value(self, name: str) -> float | None:
        """The defect's parameter if it is active, else None."""
        return self._known(name).value if self.active(name) else None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._on))
