"""The RF front end: the analyzer and generator seen from the DUT's antenna port (docs/rf.md).

Test plans get an `RfFrontEnd`, never the raw drivers. It works in levels *at the antenna port*: the calibrated
path losses of the bench config are added to what the analyzer measures and to what the generator is set to.

Safety, checked before anything is sent:
* the DUT transmitter's maximum power, less the downlink loss, must stay ``analyzer_margin_db`` below the
  analyzer input's damage level — otherwise no capture at all (an attenuator missing from the config, or from
  the bench, would burn the input): `PathWouldOverload`;
* the generator can never be set above the receiver's maximum input plus the uplink loss (`EnvelopeViolation`;
  the generator driver enforces the same ceiling a second time);
* the analyzer's reference level is set from the transmitter's maximum, so no legal burst overloads it, and an
  overload that happens anyway fails the measurement (`AnalyzerOverload`) rather than giving a wrong number.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from bench import emergency
from bench.dsp import modem
from bench.dsp.ax25 import build_ui_frame
from bench.dsp.burst import BurstSpan, find_bursts, power_dbm
from bench.dsp.lazy import np
from bench.errors import EnvelopeViolation
from bench.plotdata import PlotSeries
from instruments.errors import CaptureTimeout

if TYPE_CHECKING:  # a test plan imports this module: its collection must not load pydantic or pyvisa
    import numpy.typing as npt

    from bench.config import RfEnvelope, RfPath
    from bench.dsp.spectrum import Psd
    from bench.icd import RadioDef
    from bench.limits import SpectralMask
    from instruments.vsa import IqCapture, SignalAnalyzer
    from instruments.vsg import SignalGenerator

__all__ = [
    "AnalyzerOverload",
    "BeaconFormatError",
    "NoRfSignal",
    "PathWouldOverload",
    "RfCapture",
    "RfFrontEnd",
    "check_analyzer_path",
    "parse_beacon",
    "spectrum_series",
]

log = logging.getLogger(__name__)

REF_LEVEL_HEADROOM_DB: Final = 3.0
DEFAULT_SAMPLE_RATE: Final = 96_000.0
WAVEFORM_NAME: Final = "bench_uplink"
UPLINK_PREAMBLE_FLAGS: Final = 24
GROUND_CALLSIGN: Final = "OTSGS"  # the bench plays the ground station


class PathWouldOverload(EnvelopeViolation):
    """The configured path would let the DUT's maximum power overload the analyzer input; nothing was captured."""


class AnalyzerOverload(RuntimeError):
    """The analyzer reported an RF overload during a capture: its samples are clipped and not evidence."""


class NoRfSignal(RuntimeError):
    """No burst reached the analyzer: transmitter off, off frequency, or the RF path open."""


@dataclass(frozen=True)
class RfCapture:
    """One IQ record and what the path adds to reach the DUT's antenna port."""

    iq: IqCapture
    downlink_loss_db: float
    nominal_hz: float

    @property
    def samples(self) -> npt.NDArray[np.complex64]:
        return self.iq.samples

    @property
    def fs(self) -> float:
        return self.iq.sample_rate

    @property
    def offset_hz(self) -> float:
        """Where the radio's nominal carrier sits in this record (relative to its centre)."""
        return self.nominal_hz - self.iq.centre_hz

    def bursts(self, threshold_db: float = 10.0) -> list[BurstSpan]:
        return find_bursts(self.samples, self.fs, threshold_db=threshold_db)

    def burst(self) -> BurstSpan:
        spans = self.bursts()
        if not spans:
            raise NoRfSignal("the capture holds no burst")
        return max(spans, key=lambda s: s.stop - s.start)

    def steady(self, span: BurstSpan | None = None) -> npt.NDArray[np.complex64]:
        s = span or self.burst()
        return self.samples[s.steady_start : s.steady_stop]

    def port_power_dbm(self, span: BurstSpan | None = None) -> float:
        """Mean power of the burst's steady part at the DUT antenna port."""
        return power_dbm(self.steady(span)) + self.downlink_loss_db


class BeaconFormatError(ValueError):
    """A beacon whose information field does not follow the ICD's radio.beacon_* layout."""


def parse_beacon(info: bytes, radio: RadioDef) -> dict[str, float]:
    """``<prefix> MNEMONIC=value …`` → {mnemonic: value}; every ICD beacon field must be there, once."""
    try:
        prefix, *pairs = info.decode("ascii").split()
    except (UnicodeDecodeError, ValueError):
        raise BeaconFormatError(f"beacon is not ASCII text: {info[:40]!r}") from None
    if prefix != radio.beacon_prefix:
        raise BeaconFormatError(f"beacon starts with {prefix!r}, not the ICD's {radio.beacon_prefix!r}")
    values: dict[str, float] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        try:
            if not sep or name in values:
                raise ValueError
            values[name] = float(text)
        except ValueError:
            raise BeaconFormatError(f"beacon field {pair!r} is not MNEMONIC=number (or is repeated)") from None
    missing = [m for m in radio.beacon_fields if m not in values]
    if missing:
        raise BeaconFormatError(f"beacon lacks {', '.join(missing)} (ICD radio.beacon_fields)")
    return values


def spectrum_series(psd: Psd, mask: SpectralMask, port_offset_db: float, carrier_hz: float = 0.0) -> list[PlotSeries]:
    """The PSD in dBm/Hz at the antenna port (x in kHz) and the mask drawn from its peak, both sides."""
    level = psd.db() + 10.0 * math.log10(1e3 / 50.0) + port_offset_db  # V²/Hz into 50 Ω → dBm/Hz
    peak = float(level.max())
    edges = [p[0] for p in mask.points] + [float(np.max(np.abs(psd.freqs_hz)))]
    xs: list[float] = []
    ys: list[float] = []
    for side in (-1.0, 1.0):
        steps = [
            (side * start, side * stop, peak + dbc) for (start, dbc), stop in zip(mask.points, edges[1:], strict=True)
        ]
        for a, b, y in steps if side > 0 else steps[::-1]:
            first, second = (a, b) if side > 0 else (b, a)
            xs += [(carrier_hz + first) / 1e3, (carrier_hz + second) / 1e3]
            ys += [y, y]
        xs.append(math.nan)
        ys.append(math.nan)
    return [
        PlotSeries("PSD at the antenna port", (psd.freqs_hz / 1e3).tolist(), level.tolist()),
        PlotSeries(f"mask {mask.name} ({', '.join(mask.requirements)})", xs[:-1], ys[:-1], style="limit"),
    ]


def check_analyzer_path(path: RfPath, envelope: RfEnvelope, config_path: Path | str) -> float:
    """The highest level the analyzer can see; raises `PathWouldOverload` if it is too close to damage."""
    worst = envelope.max_tx_power_dbm - path.downlink_loss_db
    allowed = path.analyzer_max_input_dbm - path.analyzer_margin_db
    if worst > allowed:
        raise PathWouldOverload(
            f"{config_path}: instruments.rf_path.downlink_loss_db: the transmitter's {envelope.max_tx_power_dbm:g} dBm "
            f"less {path.downlink_loss_db:g} dB would reach the analyzer at {worst:g} dBm, above its "
            f"{path.analyzer_max_input_dbm:g} dBm damage level less the {path.analyzer_margin_db:g} dB margin; "
            "is the attenuator missing (from the bench or from the config)? Nothing was captured"
        )
    return worst


class RfFrontEnd:
    """Analyzer + generator + path calibration, in levels at the DUT antenna port."""

    def __init__(
        self,
        analyzer: SignalAnalyzer,
        generator: SignalGenerator | None,
        path: RfPath,
        envelope: RfEnvelope,
        radio: RadioDef,
        config_path: Path | str,
    ) -> None:
        self._analyzer = analyzer  # private: plans get levels at the antenna port, never the drivers
        self._gen = generator
        self.path = path
        self.envelope = envelope
        self.radio = radio
        self.config_path = str(config_path)
        self.max_analyzer_input_dbm = check_analyzer_path(path, envelope, config_path)
        self.ref_level_dbm = self.max_analyzer_input_dbm + REF_LEVEL_HEADROOM_DB
        self._configured: tuple[float, float] | None = None

    # -- downlink ------------------------------------------------------------------------------------------

    def _configure(self, sample_rate: float, n: int, pretrigger_s: float, trigger: bool, level_dbm: float) -> None:
        a = self._analyzer
        if self._configured is None:
            a.reset()
            a.set_centre_frequency(self.radio.frequency_hz)
            a.set_reference_level(self.ref_level_dbm)
        if self._configured != (sample_rate, n):
            a.set_sample_rate(sample_rate)
            a.set_record_length(n)
            self._configured = (sample_rate, n)
        a.set_trigger("IFP" if trigger else "IMM", level_dbm=level_dbm, offset_s=-pretrigger_s if trigger else 0.0)

    def capture(
        self,
        duration_s: float,
        *,
        sample_rate: float = DEFAULT_SAMPLE_RATE,
        trigger: bool = True,
        pretrigger_s: float = 0.02,
        trigger_level_at_port_dbm: float = 0.0,
        timeout_s: float = 40.0,
        after_arming: Callable[[], object] | None = None,
    ) -> RfCapture:
        """A record of ``duration_s``; with ``trigger`` it starts ``pretrigger_s`` before the next burst that
        reaches ``trigger_level_at_port_dbm`` at the antenna port within ``timeout_s``. ``after_arming`` runs
        once the analyzer waits (e.g. the telecommand that makes the radio transmit). No burst → `NoRfSignal`."""
        n = max(1, round(duration_s * sample_rate))
        level = trigger_level_at_port_dbm - self.path.downlink_loss_db
        self._configure(sample_rate, n, pretrigger_s, trigger, level)
        try:
            self._analyzer.start_capture()
            if after_arming is not None:
                after_arming()
            self._analyzer.wait_capture(timeout_s + duration_s)  # the trigger may come last: then the record
        except CaptureTimeout as exc:
            raise NoRfSignal(
                f"no burst above {trigger_level_at_port_dbm:g} dBm at the antenna port within {timeout_s:g} s "
                f"({exc}); is the transmitter keyed, on {self.radio.frequency_hz / 1e6:.4f} MHz, and the RF "
                "cable connected?"
            ) from None
        iq = self._analyzer.fetch_capture()
        if iq.overload:
            raise AnalyzerOverload(
                f"{self._analyzer.resource}: RF overload during the capture at reference level {iq.ref_level_dbm:g} "
                "dBm: the signal is stronger than the path calibration says — check instruments.rf_path"
            )
        return RfCapture(iq, self.path.downlink_loss_db, self.radio.frequency_hz)

    def decode(self, capture: RfCapture, span: BurstSpan | None = None) -> modem.DecodeReport:
        """Demodulate and deframe a burst (or the whole record) with the bench's own DSP."""
        samples = capture.samples if span is None else capture.samples[span.start : span.stop]
        shifted = modem.frequency_shift(samples, capture.fs, -capture.offset_hz)
        return modem.decode(shifted, capture.fs, bit_rate=self.radio.bit_rate)

    # -- uplink --------------------------------------------------------------------------------------------

    def generator_level_for(self, level_at_port_dbm: float) -> float:
        """The generator setting that puts ``level_at_port_dbm`` on the antenna port; refused above the
        receiver's maximum input."""
        if level_at_port_dbm > self.envelope.max_rx_input_dbm:
            raise EnvelopeViolation(
                f"{self.config_path}: dut.envelope.rf.max_rx_input_dbm: {level_at_port_dbm:g} dBm at the antenna "
                f"port is above the receiver's {self.envelope.max_rx_input_dbm:g} dBm maximum; refused, nothing sent"
            )
        return level_at_port_dbm + self.path.uplink_loss_db

    def _generator(self) -> SignalGenerator:
        if self._gen is None:
            raise RuntimeError(f"{self.config_path}: instruments.generator: this bench has no signal generator")
        emergency.check()  # nothing radiates into the DUT after an operator's stop
        return self._gen

    def cw_on(self, level_at_port_dbm: float, offset_hz: float = 0.0) -> None:
        """An unmodulated carrier at the radio's frequency (+ ``offset_hz``), ``level_at_port_dbm`` at the antenna
        port (refused above the receiver's maximum input). RF off again at the test's end, or with `safe_state`."""
        generator = self._generator()
        level = self.generator_level_for(level_at_port_dbm)
        generator.set_rf(False)
        generator.set_arb(False)
        generator.set_frequency(self.radio.frequency_hz + offset_hz)
        generator.set_level(level)
        generator.set_rf(True)

    @property
    def generator_rf_on(self) -> bool:
        """Whether the generator's RF output is on (read back from the instrument)."""
        return self._gen is not None and self._gen.rf_on()

    def uplink_frames(
        self,
        frames: Sequence[bytes],
        level_at_port_dbm: float,
        *,
        sample_rate: float = DEFAULT_SAMPLE_RATE,
        timeout_s: float | None = None,
    ) -> float:
        """Play AX.25 frames (FCS included) once at ``level_at_port_dbm``; returns when the playout ended."""
        generator = self._generator()
        level = self.generator_level_for(level_at_port_dbm)
        iq = modem.modulate_frames(frames, sample_rate, bit_rate=self.radio.bit_rate,
                                   preamble_flags=UPLINK_PREAMBLE_FLAGS, gap_flags=2, postamble_flags=4)  # fmt: skip
        duration = len(iq) / sample_rate
        generator.set_rf(False)
        generator.set_frequency(self.radio.frequency_hz)
        generator.set_level(level)
        generator.upload_waveform(WAVEFORM_NAME, _scaled(iq), sample_rate)
        generator.select_waveform(WAVEFORM_NAME)
        generator.set_single_shot(True)
        generator.set_arb(True)
        generator.set_rf(True)
        started = time.monotonic()
        try:
            generator.play_once(timeout_s if timeout_s is not None else duration + 5.0)
        finally:
            generator.set_rf(False)
        log.info("uplink: %d frames at %.1f dBm (generator %.1f dBm) in %.2f s", len(frames), level_at_port_dbm,
                 level, time.monotonic() - started)  # fmt: skip
        return duration

    def uplink_packets(self, packets: Sequence[bytes], level_at_port_dbm: float) -> float:
        """CSP packets (or any payloads) as UI frames from the ground station to the radio."""
        return self.uplink_frames([self.ui_frame(p) for p in packets], level_at_port_dbm)

    def ui_frame(self, info: bytes, *, dest: str | None = None) -> bytes:
        """A UI frame from the ground station to the radio (its callsign and SSID), or to ``dest`` (SSID 0)."""
        if dest is None:
            return build_ui_frame(self.radio.callsign, GROUND_CALLSIGN, info, dest_ssid=self.radio.ssid)
        return build_ui_frame(dest, GROUND_CALLSIGN, info)

    def safe_state(self) -> None:
        if self._gen is not None:
            self._gen.safe_state()


def _scaled(iq: npt.NDArray[np.complex64]) -> npt.NDArray[np.complex64]:
    """Unit-amplitude IQ to 0.7 of full scale: the ARB's level is set by the generator, not the file."""
    return (iq * np.float32(0.7)).astype(np.complex64)
