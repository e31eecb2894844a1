"""The twin's own UHF physical layer (twin/uhf_modem.py), cross-tested against the bench's and Dire Wolf."""

from __future__ import annotations

import re
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from bench.dsp import hdlc, modem
from bench.dsp.ax25 import build_ui_frame
from bench.dsp.spectrum import occupied_bandwidth, welch_psd
from twin import uhf_modem as um


def _frames() -> list[bytes]:
    info = [f"OTS-SAT beacon {i} ~\xff".encode("latin-1") for i in range(3)]
    return [um.ax25_ui_frame("CQ", "OTSSAT", x, src_ssid=1) for x in info]


# ------------------------------------------------------------------------------------------- AX.25 / FCS


def test_crc16_x25_check_value() -> None:
    assert um.crc16_x25(b"123456789") == 0x906E
    assert um.crc16_x25(b"") == 0x0000


def test_ui_frame_round_trip_and_matches_bench_encoding() -> None:
    frame = um.ax25_ui_frame("CQ", "OTSSAT", b"hello\x00\xff", dest_ssid=3, src_ssid=11)
    assert frame == build_ui_frame("CQ", "OTSSAT", b"hello\x00\xff", dest_ssid=3, source_ssid=11)
    assert frame[6] == 0xE0 | (3 << 1) and frame[13] == 0x61 | (11 << 1)  # command: dest C=1, src C=0, E on src
    assert frame[14:16] == b"\x03\xf0"
    assert um.parse_ax25_ui(frame) == um.UiFrame("CQ", 3, "OTSSAT", 11, b"hello\x00\xff")


def test_parse_rejects_bad_fcs_and_non_ui() -> None:
    frame = um.ax25_ui_frame("CQ", "OTSSAT", b"payload")
    for bit in (0, 60, 8 * len(frame) - 1):
        damaged = bytearray(frame)
        damaged[bit // 8] ^= 1 << (bit % 8)
        assert um.parse_ax25_ui(bytes(damaged)) is None
    body = bytearray(frame[:-2])
    body[14] = 0x00  # an I frame, not UI
    fcs = um.crc16_x25(bytes(body))
    assert um.parse_ax25_ui(bytes(body) + fcs.to_bytes(2, "little")) is None
    with pytest.raises(ValueError):
        um.ax25_ui_frame("cq", "OTSSAT", b"")


def test_line_bits_equal_bench_bit_layer() -> None:
    # The bench puts an opening flag after its preamble: 15 + 1 = the twin's 16.
    frames = _frames()
    ours = um.line_bits(frames)
    assert ours.dtype == np.uint8
    np.testing.assert_array_equal(ours, modem.line_bits(frames, preamble_flags=15))
    assert um.burst_duration_s(len(ours)) == pytest.approx(len(ours) / 9600.0)


# ------------------------------------------------------------------------------------ modem cross-tests


@pytest.mark.parametrize("fs", [48000.0, 96000.0, 50000.0])
def test_twin_modulator_decoded_by_bench(fs: float) -> None:
    frames = _frames()
    iq = um.modulate(um.line_bits(frames), fs)
    assert iq.dtype == np.complex64
    assert np.allclose(np.abs(iq), 1.0, atol=1e-5)
    iq = modem.add_awgn(modem.frequency_shift(iq, fs, 1200.0), fs, snr_db=20.0, rng=7)
    report = modem.decode(iq, fs)
    assert [f.data for f in report.frames] == frames
    assert report.freq_error_hz == pytest.approx(1200.0, abs=30.0)
    assert um.demodulate_frames(iq, fs) == frames  # and the twin's own receiver


@pytest.mark.parametrize("fs", [48000.0, 96000.0])
@pytest.mark.parametrize("offset_hz", [-2000.0, 0.0, 1500.0])
def test_bench_modulator_decoded_by_twin(fs: float, offset_hz: float) -> None:
    frames = _frames()
    iq = modem.modulate_frames(frames, fs, freq_offset_hz=offset_hz) * np.exp(1j * 2.1)
    assert um.demodulate_frames(iq, fs) == frames
    # Silence around the burst, as in an ARB file.
    padded = np.concatenate((np.zeros(1000, np.complex64), iq, np.zeros(777, np.complex64)))
    assert um.demodulate_frames(padded, fs) == frames


def test_demodulator_rejects_corrupted_frame() -> None:
    fs = 48000.0
    frames = _frames()
    bits = um.line_bits(frames)
    # Flip one line bit in the middle of the second frame: the descrambler spreads it to three errors.
    bits[len(bits) // 2] ^= 1
    got = um.demodulate_frames(um.modulate(bits, fs), fs)
    assert got == [frames[0], frames[2]]
    assert um.demodulate_frames(np.zeros(4800, np.complex64), fs) == []


# ------------------------------------------------------------------------------------------ waveform


def test_phase_consistency_deviation_and_bandwidth() -> None:
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2, 9600).astype(np.uint8)
    fs = 96000.0
    iq = um.modulate(bits, fs)
    assert len(iq) == 96000
    t = np.arange(len(iq)) / fs
    phase = um.gmsk_phase_at(bits, t)
    err = np.angle(iq * np.exp(-1j * phase))
    assert np.max(np.abs(err)) < 1e-5
    # Non-integer grid with an offset: same trajectory; held constant outside the burst.
    t2 = 0.37e-5 + np.arange(5000) / 50000.0
    dense = np.arange(int(0.11 * 2e6)) / 2e6
    reference = np.interp(t2, dense, um.gmsk_phase_at(bits, dense))
    np.testing.assert_allclose(um.gmsk_phase_at(bits, t2), reference, atol=5e-4)
    iq50 = um.modulate(bits[:480], 50000.0)
    assert len(iq50) == 2500
    err50 = np.angle(iq50 * np.exp(-1j * um.gmsk_phase_at(bits[:480], np.arange(2500) / 50000.0)))
    assert np.max(np.abs(err50)) < 1e-5
    ends = um.gmsk_phase_at(bits, np.array([-1.0, 0.0, 1.0, 2.0]))
    assert ends[0] == ends[1] == 0.0 and ends[2] == ends[3]
    # Instantaneous frequency within +-2400 Hz; a run of 1s reaches +2400 Hz (h = 0.5).
    freq = np.diff(phase) * fs / (2 * np.pi)
    assert np.max(np.abs(freq)) <= 2400.0 * 1.005
    assert np.max(freq) > 2390.0 and np.min(freq) < -2390.0
    # Total phase = pi/2 x (ones - zeros), less the Gaussian tails of the first and last bit cut at the ends.
    n1 = int(bits.sum())
    end = um.gmsk_phase_at(bits, np.array([um.burst_duration_s(len(bits))]))[0]
    assert end == pytest.approx(np.pi / 2 * (2 * n1 - len(bits)), abs=0.4)
    # 99 % occupied bandwidth of GMSK BT 0.5 is ~1.04 x bit rate.
    obw = occupied_bandwidth(welch_psd(iq, fs, nperseg=4096)).bandwidth_hz
    assert 9000.0 < obw < 11000.0, obw


def test_bt_narrows_spectrum() -> None:
    bits = np.random.default_rng(4).integers(0, 2, 4800).astype(np.uint8)
    fs = 96000.0
    wide = occupied_bandwidth(welch_psd(um.modulate(bits, fs, bt=1.0), fs)).bandwidth_hz
    narrow = occupied_bandwidth(welch_psd(um.modulate(bits, fs, bt=0.3), fs)).bandwidth_hz
    assert narrow < wide - 500.0


def test_descrambler_self_synchronises() -> None:
    frames = _frames()
    line = um.line_bits(frames)
    payload = hdlc.nrzi_decode(hdlc.descramble(line))
    assert [c.data for c in hdlc.find_frames(payload)] == frames


# ----------------------------------------------------------------------------------------- Dire Wolf


@pytest.mark.skipif(shutil.which("atest") is None, reason="Dire Wolf not installed")
def test_direwolf_decodes_twin_modulator(tmp_path: Path) -> None:
    fs = 48000.0
    frames = [um.ax25_ui_frame("CQ", "OTSSAT", f"twin beacon {i}".encode(), src_ssid=1) for i in range(4)]
    iq = um.modulate(um.line_bits(frames, preamble_flags=32), fs)
    carrier = np.ones(int(fs / 4), dtype=np.complex64)
    iq = np.concatenate((carrier, iq, carrier))
    audio = np.angle(iq[1:] * np.conj(iq[:-1]))
    pcm = (audio / np.max(np.abs(audio)) * 0.5 * 32767).astype("<i2")
    wav = tmp_path / "twin.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(fs))
        w.writeframes(pcm.tobytes())
    out = subprocess.run(["atest", "-B", "9600", str(wav)], capture_output=True, text=True, timeout=60, check=False)
    assert re.search(r"^4 packets decoded", out.stdout, re.MULTILINE), out.stdout + out.stderr
    for i in range(4):
        assert f"OTSSAT-1>CQ:twin beacon {i}" in out.stdout
