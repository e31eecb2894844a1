"""The cabled RF path between the COMMS radio and the bench's analyzer and generator (docs/rf.md).

Physical picture (what a lab wires up, and what `bench/configs/twin.yaml` declares as its calibrated path)::

    COMMS antenna port ── 40 dB / 50 W attenuator ── cable ─┬─ analyzer RF input
                                                            └─ generator RF output   (resistive splitter)

Downlink: every `Burst` the radio keyed is synthesised at the capture's centre frequency and sample rate
(GMSK phase from the twin's own modem, a 1 ms PA ramp, the carrier offset), scaled by its power minus the path
loss, plus the analyzer's noise floor (thermal noise + a noise figure that grows with the input attenuation
the reference level implies). A peak above the reference level + 6 dB clips the ADC and sets the overload flag.
IQ is in volts into 50 Ω: P[dBm] = 10·log10(mean|x|² / 50 Ω) + 30.

Uplink: the generator's waveform is demodulated once (the twin's own demodulator); each of its frames reaches
the receiver at its time in the playout and is decoded with probability 1 − FER, where FER follows from the
level at the antenna port (generator level − path loss), the receiver's noise figure and any interferer:
noncoherent FSK, BER = ½·exp(−Eb/N0 / 2), FER = 1 − (1 − BER)^bits. A frame lost to noise is counted as
rejected (bad FCS) in the radio's housekeeping.

Faults (control endpoint): ``rf_cable_disconnected`` (on), ``rf_tx_off`` (on: the PA keys nothing),
``rf_off_frequency`` (on: the carrier moves 6 kHz), ``rf_interferer`` (on: a CW carrier 3 kHz into the channel),
``rf_attenuator_missing`` (on: the 40 dB attenuator is left out of the path, so the analyzer sees every burst
40 dB hotter than the calibration says and overloads; its state is in ``state.rf``, not in ``state.faults``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from twin import uhf_modem
from twin.nodes.comms import Burst, CommsNode
from twin.rf_instruments import CaptureRequest, Emission
from twin.world import Fault, World

__all__ = ["RfLink"]

_log = logging.getLogger(__name__)

PATH_LOSS_DB: Final = 40.8  # attenuator 40.0 + splitter arm and cables 0.8: the same both ways
DISCONNECTED_LOSS_DB: Final = 70.0  # an open SMA still leaks a little
ATTENUATOR_DB: Final = 40.0  # the power attenuator's share of the path loss
ANALYZER_NF_DB: Final = 11.0  # noise figure at 0 dB input attenuation
RECEIVER_NF_DB: Final = 6.0
RX_DAMAGE_DBM: Final = -10.0  # above this the receiver's LNA would be damaged (the bench envelope says -20)
RECEIVER_BANDWIDTH_HZ: Final = 12_000.0  # the receiver's IF filter: a carrier further off is not heard
RAMP_S: Final = 0.001
CLIP_ABOVE_REF_DB: Final = 6.0
OFF_FREQUENCY_HZ: Final = 6_000.0
INTERFERER_OFFSET_HZ: Final = 3_000.0
INTERFERER_DBM: Final = -60.0  # picked up at the splitter (analyzer side); the DUT hears it through the attenuator
POLL_S: Final = 0.005
_DBM_TO_V2: Final = 50.0 * 1e-3  # |x|² of 1 mW into 50 Ω


def _v2(dbm: float) -> float:
    return float(_DBM_TO_V2 * 10.0 ** (dbm / 10.0))


def _db_sum(*dbm: float) -> float:
    return 10.0 * math.log10(sum(10.0 ** (p / 10.0) for p in dbm))


@dataclass
class _Playout:
    """One playout of the generator's waveform as the receiver hears it."""

    frames: list[bytes]
    frame_bits: list[int]
    start: float
    duration_s: float
    repeat: bool
    delivered: int = 0  # frames handed to the radio so far (across repeats)


class RfLink:
    """Couples the analyzer and generator services to the COMMS radio through the modelled path.

    Built by the app from the world and the satellite's COMMS node; the analyzer service takes it as its IQ
    source, the generator service hands it every change of what it radiates (`on_emission`).
    """

    def __init__(self, world: World, comms: CommsNode) -> None:
        self.world = world
        self.clock = world.clock
        self.comms = comms
        self.radio = comms.radio
        self.path_loss_db = PATH_LOSS_DB
        self.disconnected = False
        self.attenuator_missing = False
        self.interferer = False
        self.rx_overdriven = 0  # generator level above what a receiver survives (the bench must never do it)
        self._rng = world.rng("rf.link")
        self._emission: Emission | None = None
        self._playout: _Playout | None = None
        # The last waveform and its frames: the generator hands the same array for every playout of a waveform,
        # and holding it keeps the identity check valid.
        self._waveform_cache: tuple[npt.NDArray[np.int16], float, list[bytes]] | None = None
        self.comms.uplink_poll = self.deliver
        world.tickers.append(lambda: self.deliver(self.clock()))
        world.state["rf"] = self.state
        self._register_faults()

    # -- path ----------------------------------------------------------------------------------------------

    @property
    def loss_db(self) -> float:
        missing = ATTENUATOR_DB if self.attenuator_missing else 0.0
        return self.path_loss_db - missing + (DISCONNECTED_LOSS_DB if self.disconnected else 0.0)

    def _interferer_hz(self) -> float:
        return self.radio.frequency_hz + INTERFERER_OFFSET_HZ

    # -- downlink: the analyzer's IQ source ----------------------------------------------------------------

    async def capture(self, request: CaptureRequest) -> tuple[npt.NDArray[np.complex64], bool]:
        duration = request.n_samples / request.sample_rate
        if request.trigger == "IFP":
            armed = self.clock()
            burst = await self._await_trigger(armed, request)
            t0 = burst.start + request.trigger_offset_s
        else:
            t0 = self.clock() + request.trigger_offset_s
        # The record is of the future as much as of the past: wait until the world has lived through it.
        while self.clock() < t0 + duration:
            await asyncio.sleep(min(POLL_S * 4, max(0.0, t0 + duration - self.clock())))
        return self.synthesise(request, t0)

    async def _await_trigger(self, armed: float, request: CaptureRequest) -> Burst:
        while True:
            for burst in self.comms.bursts:
                level = burst.power_dbm - self.loss_db
                in_band = abs(burst.frequency_hz - request.centre_hz) < request.sample_rate / 2
                if burst.start >= armed and in_band and level >= request.trigger_level_dbm:
                    return burst
            await asyncio.sleep(POLL_S)

    def synthesise(self, request: CaptureRequest, t0: float) -> tuple[npt.NDArray[np.complex64], bool]:
        n, fs, fc = request.n_samples, request.sample_rate, request.centre_hz
        t_rel = np.arange(n, dtype=np.float64) / fs
        x = np.zeros(n, dtype=np.complex128)
        for burst in list(self.comms.bursts):
            offset = burst.frequency_hz - fc
            if burst.end <= t0 or burst.start >= t0 + n / fs or abs(offset) > 0.45 * fs:
                continue  # outside the record, or removed by the analyzer's anti-alias filter
            tb = t_rel + (t0 - burst.start)
            on = (tb >= 0.0) & (tb < burst.duration_s)
            tb_on = tb[on]
            ramp = np.clip(np.minimum(tb_on, burst.duration_s - tb_on) / RAMP_S, 0.0, 1.0)
            envelope = 0.5 - 0.5 * np.cos(np.pi * ramp)
            modulation = uhf_modem.gmsk_phase_at(burst.bits, tb_on) * burst.deviation_scale
            phase = modulation + 2.0 * np.pi * offset * (t_rel[on] + t0)
            amplitude = math.sqrt(_v2(burst.power_dbm - self.loss_db))
            x[on] += amplitude * envelope * np.exp(1j * phase)
        if self.interferer:
            offset = self._interferer_hz() - fc
            if abs(offset) < 0.45 * fs:
                x += math.sqrt(_v2(INTERFERER_DBM)) * np.exp(2j * np.pi * offset * (t_rel + t0))
        attenuation = float(np.clip(5.0 * round((request.ref_level_dbm + 10.0) / 5.0), 0.0, 70.0))
        noise_dbm = -174.0 + ANALYZER_NF_DB + attenuation + 10.0 * math.log10(fs)
        sigma = math.sqrt(_v2(noise_dbm) / 2.0)
        x += self._rng.normal(0.0, sigma, n) + 1j * self._rng.normal(0.0, sigma, n)
        full_scale = math.sqrt(_v2(request.ref_level_dbm + CLIP_ABOVE_REF_DB))
        magnitude = np.abs(x)
        overload = bool(np.any(magnitude > full_scale))
        if overload:
            x = np.where(magnitude > full_scale, x / np.maximum(magnitude, 1e-30) * full_scale, x)
        return x.astype(np.complex64), overload

    # -- uplink: what the generator radiates reaches the receiver -------------------------------------------

    def on_emission(self, emission: Emission) -> None:
        self.deliver(self.clock())
        self._emission = emission
        if emission.iq is None or emission.started_at is None or not emission.rf_on:
            self._playout = None
            return
        if self._playout is not None and self._playout.start == emission.started_at:
            return  # a level or frequency change during the same playout
        frames = self._frames_of(emission.iq, emission.clock_hz)
        duration = len(emission.iq) / emission.clock_hz
        bits = [len(f) * 8 + 16 for f in frames]
        self._playout = _Playout(frames, bits, emission.started_at, duration, emission.repeat)
        level = emission.level_dbm - self.loss_db
        if level > RX_DAMAGE_DBM:
            self.rx_overdriven += 1
            _log.warning("generator drives %.1f dBm into the receiver: above its %g dBm maximum", level, RX_DAMAGE_DBM)

    def _frames_of(self, iq: npt.NDArray[np.int16], clock_hz: float) -> list[bytes]:
        cache = self._waveform_cache
        if cache is None or cache[0] is not iq or cache[1] != clock_hz:
            samples = iq[:, 0].astype(np.float32) + 1j * iq[:, 1].astype(np.float32)
            cache = self._waveform_cache = (iq, clock_hz, uhf_modem.demodulate_frames(samples, clock_hz))
        return cache[2]

    def frame_error_rate(self, level_dbm: float, bits: int) -> float:
        deaf_db = self.comms.host.defects.value("COMMS_RX_DEAF_6DB") or 0.0  # a seeded defect (twin/defects.py)
        noise = -174.0 + RECEIVER_NF_DB + deaf_db + 10.0 * math.log10(self.radio.bit_rate)
        interference = [INTERFERER_DBM - self.loss_db] if self.interferer else []
        ebn0 = 10.0 ** ((level_dbm - _db_sum(noise, *interference)) / 10.0)
        ber = 0.5 * math.exp(-ebn0 / 2.0)
        return 1.0 - (1.0 - ber) ** bits

    def deliver(self, now: float) -> None:
        """Hand the radio every uplink frame whose end has been played by ``now``."""
        play, emission = self._playout, self._emission
        if play is None or emission is None or not play.frames:
            return
        per = play.duration_s / len(play.frames)
        due = int((now - play.start) / per)
        if not play.repeat:
            due = min(due, len(play.frames))
        if due <= play.delivered:
            return
        level = emission.level_dbm - self.loss_db
        tuned = self.radio.frequency_hz + self.comms.frequency_error_hz  # the receiver shares the radio's TCXO
        heard = abs(emission.freq_hz - tuned) < RECEIVER_BANDWIDTH_HZ / 2
        for k in range(play.delivered, due):
            index = k % len(play.frames)
            fer = self.frame_error_rate(level, play.frame_bits[index]) if heard else 1.0
            if self._rng.random() >= fer:
                self.comms.receive_uplink(play.frames[index])
            elif heard and level > -128.0:
                self.comms.receive_uplink(None)  # flags found, FCS wrong: counted as rejected
        play.delivered = due

    # -- control endpoint -----------------------------------------------------------------------------------

    def state(self) -> dict[str, object]:
        last = self.comms.bursts[-1] if self.comms.bursts else None
        return {
            "path_loss_db": self.loss_db,
            "disconnected": self.disconnected,
            "attenuator_missing": self.attenuator_missing,
            "interferer": self.interferer,
            "tx_off": self.comms.pa_failed,
            "off_frequency": self.comms.extra_offset_hz != 0.0,
            "carrier_hz": self.comms.carrier_hz(),
            "rx_overdriven": self.rx_overdriven,
            "bursts": len(self.comms.bursts),
            "last_beacon": last.info.decode("ascii") if last is not None else None,
            "generator": None if (e := self._emission) is None else {"freq_hz": e.freq_hz, "level_dbm": e.level_dbm},
        }

    def _register_faults(self) -> None:
        comms = self.comms

        def toggle(name: str, description: str, setter: Callable[[bool], None], getter: Callable[[], bool]) -> None:
            def apply(on: bool) -> dict[str, object]:
                setter(on)
                return {}

            self.world.faults[name] = Fault(name, description, apply, active=getter)

        def set_disconnected(on: bool) -> None:
            self.disconnected = on

        def set_tx_off(on: bool) -> None:
            comms.pa_failed = on

        def set_off_frequency(on: bool) -> None:
            comms.extra_offset_hz = OFF_FREQUENCY_HZ if on else 0.0

        def set_interferer(on: bool) -> None:
            self.interferer = on

        toggle("rf_cable_disconnected", "on: the RF cable at the DUT antenna port is pulled", set_disconnected,
               lambda: self.disconnected)  # fmt: skip
        toggle("rf_tx_off", "on: the UHF power amplifier keys nothing (beacons still counted)", set_tx_off,
               lambda: comms.pa_failed)  # fmt: skip
        toggle("rf_off_frequency", f"on: the UHF carrier is {OFF_FREQUENCY_HZ:g} Hz off", set_off_frequency,
               lambda: comms.extra_offset_hz != 0.0)  # fmt: skip
        toggle("rf_interferer", f"on: a CW interferer {INTERFERER_OFFSET_HZ:g} Hz into the channel", set_interferer,
               lambda: self.interferer)  # fmt: skip

        def set_attenuator_missing(request: dict[str, object]) -> dict[str, object]:
            on = request.get("on")
            if not isinstance(on, bool):
                raise ValueError("'on' must be a bool")
            self.attenuator_missing = on
            return {"on": on}

        # Its state is `state.rf.attenuator_missing` (an `apply_request` fault: not listed in `state.faults`).
        self.world.faults["rf_attenuator_missing"] = Fault(
            "rf_attenuator_missing",
            f"on: the {ATTENUATOR_DB:g} dB attenuator is left out of the RF path (the analyzer overloads)",
            lambda on: {},
            apply_request=set_attenuator_missing,
        )
