"""COMMS: the UHF transceiver. Beacon bursts (AX.25 with real housekeeping, a PSU current step while the PA is
keyed), transmit power by telecommand, a crystal frequency error, the uplink receiver's frame counters, and the
antenna deployment mechanism (twin/nodes/antenna.py: DEPLOY_ANTENNA, the four deployment switches in HK).

What the radio puts on the air is a list of `Burst` records (start time, keyed bits, power, carrier): the RF
world (twin/rf_link.py) turns them into the IQ the analyzer captures, and hands the frames the generator's
waveform carries to `receive_uplink` with the probability its noise model gives.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from twin import csp, uhf_modem
from twin.icd import Command
from twin.nodes.antenna import BURN_LOAD, AntennaDeployer, Deployed, ElementReleased, TimedOut
from twin.nodes.base import Deferred, Node, Reject, Value
from twin.nodes.eps import EpsNode
from twin.pus import Failure

__all__ = ["Burst", "CommsNode"]

DEFAULT_PERIOD_S: Final = 30
DEFAULT_TX_DBM: Final = 30
POSTAMBLE_FLAGS: Final = 4
MIN_PREAMBLE_FLAGS: Final = 8
CRYSTAL_SIGMA_HZ: Final = 350.0  # TCXO ±2 ppm at 437.5 MHz is ±875 Hz; this unit's error is drawn once
PA_GAIN_OFFSET_DB: Final = 0.25  # this unit's PA delivers a little more than its setting


@dataclass(frozen=True)
class Burst:
    """One keying of the transmitter: the bits it sent, when, how strong and on which carrier."""

    start: float
    bits: npt.NDArray[np.uint8]
    duration_s: float
    power_dbm: float
    frequency_hz: float
    info: bytes
    deviation_scale: float = 1.0  # 1: the GMSK h = 0.5 the modem is designed for (a seeded defect widens it)

    @property
    def end(self) -> float:
        return self.start + self.duration_s


def _format(value: Value, scale: float) -> str:
    """A beacon value with its HK field's resolution (scale 0.001 → 3 decimals)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    decimals = max(0, round(-math.log10(scale))) if scale < 1 else 0
    quantised = round(float(value) / scale) * scale
    return f"{quantised:.{decimals}f}"


class CommsNode(Node):
    def __post_init__(self) -> None:
        self._rng = self.host.rng(f"node.{self.name}")
        self.radio = self.icd.radio
        self.frequency_error_hz = float(np.clip(self._rng.normal(0.0, CRYSTAL_SIGMA_HZ), -800.0, 800.0))
        self.bursts: deque[Burst] = deque(maxlen=16)
        # Faults (control endpoint, twin/rf_link.py): a dead PA keys nothing; a pulled crystal moves the carrier.
        self.pa_failed = False
        self.extra_offset_hz = 0.0
        # The RF world delivers uplink frames due by a given time when asked (before HK is sampled).
        self.uplink_poll: Callable[[float], None] | None = None
        self._next_beacon = 0.0
        self._pa_heat = 0.0
        # The antenna is hardware: its elements outlive a reboot of this node (stowed again at power-on).
        self.antenna = AntennaDeployer.for_unit(self._burn_output, self.host.rng(f"node.{self.name}.antenna"))
        self.reset(0.0)  # RAM state, as after a boot

    def reset(self, t: float) -> None:
        # The beacon stays off after a reset until the ground (the bench) enables it: keeps PSU current
        # measurements free of TX bursts unless a test asks for them.
        self.beacon_enabled = False
        self.tx_inhibited = False  # the ground's transmit inhibit (SET_TX_INHIBIT); RAM state, as the beacon
        self.period_s = DEFAULT_PERIOD_S
        self.tx_dbm = DEFAULT_TX_DBM
        self.beacons = 0
        self.rx_frames = 0
        self.rx_rejected = 0
        self._tx_until: float | None = None
        if self.reset_cause == "command":
            self.antenna.abort()  # the firmware restarted: the burn stops, released elements stay released
        else:
            self.antenna.stow()  # power-on (or brownout): stowed again, see twin/nodes/antenna.py

    # -- antenna deployment ----------------------------------------------------------------------------------

    def _burn_output(self, on: bool) -> bool:
        eps = self.host.nodes.get("EPS")
        if isinstance(eps, EpsNode):
            return eps.switch_burn_output(on)
        return self.host.set_load(BURN_LOAD, on)

    def _antenna_tick(self, t: float) -> None:
        for outcome in self.antenna.tick(t, self.host.bus_voltage):
            if isinstance(outcome, ElementReleased):
                self.emit("ANT_ELEMENT_DEPLOYED", outcome.element, round(outcome.burn_s * 1000))
            elif isinstance(outcome, Deployed):
                self.emit("ANT_DEPLOYED", outcome.elements, round(outcome.total_s * 1000))
            elif isinstance(outcome, TimedOut):
                self.emit("ANT_DEPLOY_TIMEOUT", outcome.element, outcome.deployed)

    # -- downlink --------------------------------------------------------------------------------------------

    def carrier_hz(self) -> float:
        synthesiser_error = self.host.defects.value("COMMS_CARRIER_5KHZ") or 0.0
        return self.radio.frequency_hz + self.frequency_error_hz + self.extra_offset_hz + synthesiser_error

    def beacon_info(self) -> bytes:
        """The beacon's information field: ``<prefix> MNEMONIC=value …`` from the nodes' housekeeping now."""
        parts = [self.radio.beacon_prefix]
        cache: dict[str, dict[str, Value]] = {}
        for mnemonic in self.radio.beacon_fields:
            node_name, _, field_name = mnemonic.partition(".")
            node = self.host.nodes[node_name]
            if node_name not in cache:
                cache[node_name] = {}
                for structure in node.icd_node.housekeeping:
                    cache[node_name].update(node.hk_values(structure.sid))
            scale = next(f.scale for s in node.icd_node.housekeeping for f in s.fields if f.name == field_name)
            value = cache[node_name][field_name]
            if mnemonic == "EPS.VBAT" and self.host.defects.active("COMMS_BEACON_STALE_FIELD"):
                value = 0.0  # latched by the beacon task before the EPS answered, never refreshed
            parts.append(f"{mnemonic}={_format(value, scale)}")
        return " ".join(parts).encode("ascii")

    def _transmit_beacon(self, t: float) -> None:
        self.beacons += 1
        info = self.beacon_info()
        callsign = "OTSSAX" if self.host.defects.active("COMMS_WRONG_CALLSIGN") else self.radio.callsign
        frame = uhf_modem.ax25_ui_frame(self.radio.beacon_destination, callsign, info, src_ssid=self.radio.ssid)
        # TX_BURST_MS is the PA keying time: flags fill it ahead of the frame (AX.25 "TXDELAY").
        burst_bits = float(self.param("TX_BURST_MS")) / 1000.0 * self.radio.bit_rate
        frame_bits = len(frame) * 8 * 1.05 + POSTAMBLE_FLAGS * 8
        preamble = max(MIN_PREAMBLE_FLAGS, int((burst_bits - frame_bits) // 8))
        bits = uhf_modem.line_bits([frame], preamble_flags=preamble, postamble_flags=POSTAMBLE_FLAGS)
        duration = len(bits) / self.radio.bit_rate
        if not self.pa_failed:
            power = self.tx_dbm + PA_GAIN_OFFSET_DB + float(self._rng.normal(0.0, 0.03))
            power += self.host.defects.value("COMMS_TX_POWER_3DB_LOW") or 0.0
            deviation = self.host.defects.value("COMMS_DEVIATION_WIDE") or 1.0
            self.bursts.append(Burst(t, bits, duration, power, self.carrier_hz(), info, deviation))
        self._tx_until = t + duration
        self.host.set_load("uhf_tx", True)
        self.emit("BEACON_SENT", self.beacons)

    def tick(self, t: float) -> None:
        super().tick(t)
        if self._tx_until is not None and t >= self._tx_until:
            self._tx_until = None
            self.host.set_load("uhf_tx", False)
        inhibited = self.tx_inhibited and not self.host.defects.active("COMMS_INHIBIT_IGNORED")
        if self.beacon_enabled and not inhibited and t >= self._next_beacon and self._tx_until is None:
            self._next_beacon = t + self.period_s * (self.host.defects.value("COMMS_BEACON_PERIOD_LONG") or 1.0)
            self._transmit_beacon(t)
        self._antenna_tick(t)
        transmitting = self._tx_until is not None
        self._pa_heat += ((12.0 if transmitting else 0.0) - self._pa_heat) * 0.005 / 20.0

    # -- uplink ----------------------------------------------------------------------------------------------

    def receive_uplink(self, frame: bytes | None) -> None:
        """A frame the receiver demodulated (``None``: one it detected but could not decode, a bad FCS)."""
        if not self.alive:
            return
        parsed = uhf_modem.parse_ax25_ui(frame) if frame is not None else None
        ours = parsed is not None and (parsed.dest, parsed.dest_ssid) == (self.radio.callsign, self.radio.ssid)
        if parsed is None or not (ours or self.host.defects.active("COMMS_NO_CALLSIGN_FILTER")):
            self.rx_rejected += 1
            return
        self.rx_frames += 1
        size = csp.CspHeader.size(self.host.csp_version)
        if len(parsed.info) < size:
            return
        packet = csp.CspPacket(csp.CspHeader.unpack(parsed.info[:size], self.host.csp_version), parsed.info[size:])
        # The radio is a CSP router: its own packets are handled here, the rest go onto the CAN bus unchanged.
        if packet.header.dst == self.address:
            self.on_packet(packet)
        else:
            self.host.transmit(self, packet)

    # -- PUS -------------------------------------------------------------------------------------------------

    def hk_values(self, sid: int) -> dict[str, Value]:
        if self.uplink_poll is not None:
            self.uplink_poll(self.now())
        noise = self._rng.normal
        return {
            "BEACON_ENABLED": self.beacon_enabled,
            "BEACON_PERIOD": self.period_s,
            "TX_POWER": self.tx_dbm,
            "BEACONS_SENT": self.beacons,
            "RX_FRAMES": self.rx_frames,
            "RX_REJECTED": self.rx_rejected,
            "RSSI": -121.0 + float(noise(0.0, 1.0)),
            "PA_TEMP": 24.0 + self._pa_heat + float(noise(0.0, 0.1)),
            "TX_INHIBITED": self.tx_inhibited,
            **{f"ANT_SW_{k}": released for k, released in enumerate(self.antenna.released, start=1)},
            "ANT_BURNING": self.antenna.burning,
            "ANT_ATTEMPTS": self.antenna.attempts,
            "ANT_BURN_I": self.antenna.current_a,
        }

    def check_ready(self, command: Command, args: dict[str, Value]) -> None:
        if command.name == "DEPLOY_ANTENNA" and self.antenna.burning:
            raise Reject(Failure.NOT_READY)  # one attempt at a time
        super().check_ready(command, args)

    def execute(self, command: Command, args: dict[str, Value]) -> Failure | Deferred | None:
        if command.name == "SET_BEACON":
            enabled = bool(args["enabled"])
            if enabled and not self.beacon_enabled:
                self._next_beacon = self.now()  # first beacon at once, then every period
            self.beacon_enabled = enabled
            return None
        if command.name == "SET_TX_POWER":
            self.tx_dbm = int(args["dbm"])
            return None
        if command.name == "SET_TX_INHIBIT":
            self.tx_inhibited = bool(args["inhibited"])
            if not self.tx_inhibited:
                self._next_beacon = min(self._next_beacon, self.now())  # a beacon held back goes out now
            return None
        if command.name == "DEPLOY_ANTENNA":
            timeout_s = float(self.param("ANT_BURN_TIMEOUT_MS")) / 1000.0
            return None if self.antenna.start(self.now(), timeout_s) else Failure.EXECUTION_FAILED
        if command.name == "SET_BEACON_PERIOD":
            self.period_s = int(args["period_s"])
            self._next_beacon = min(self._next_beacon, self.now() + self.period_s)
            return None
        return Failure.EXECUTION_FAILED

    def state(self) -> dict[str, object]:
        a = self.antenna
        antenna = {
            "released": list(a.released),
            "burning": a.burning,
            "attempts": a.attempts,
            "jammed": sorted(a.jammed),
        }
        return {**super().state(), "antenna": antenna}

    def mode_name(self) -> str:
        if not self.alive:
            return "OFF"
        return "BEACON" if self.beacon_enabled else "RX"
