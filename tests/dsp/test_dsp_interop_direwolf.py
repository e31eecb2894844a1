"""Interoperability with Dire Wolf, an ordinary amateur packet decoder (skipped when it is not installed).

Dire Wolf works on the FM receiver's audio: for 9600 bit/s G3RUH that is the demodulated baseband, the
instantaneous frequency. So our IQ is turned into "audio" with an FM discriminator for ``atest``, and
Dire Wolf's ``gen_packets`` audio is FM-modulated into IQ for our decoder. Both directions exercise the
whole bit layer against an independent implementation: scrambler polynomial and order, NRZI, bit stuffing,
flags, AX.25 addresses and the FCS. (Checked with Dire Wolf 1.6, Debian package ``direwolf``.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from bench.dsp import modem
from bench.dsp.ax25 import build_ui_frame

FS = 48000.0

pytestmark = pytest.mark.skipif(
    shutil.which("atest") is None or shutil.which("gen_packets") is None, reason="Dire Wolf not installed"
)


def write_wav(path: Path, audio: np.ndarray) -> None:
    pcm = (audio / np.max(np.abs(audio)) * 0.5 * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(FS))
        w.writeframes(pcm.tobytes())


def test_direwolf_decodes_our_modulator(tmp_path: Path) -> None:
    frames = [
        build_ui_frame("CQ", "OTSSAT", f"OTS-SAT beacon {i} ~\xff".encode("latin-1"), source_ssid=1) for i in range(5)
    ]
    frames.append(build_ui_frame("CQ", "OTSSAT", b"v1 style", source_ssid=2, command=None))
    iq = modem.modulate_frames(frames, FS, gap_flags=8, preamble_flags=64)
    carrier = np.ones(int(FS / 2), dtype=np.complex64)  # unmodulated carrier before and after, as on air
    iq = np.concatenate((carrier, iq, carrier))
    write_wav(tmp_path / "ours.wav", np.angle(iq[1:] * np.conj(iq[:-1])))
    out = subprocess.run(
        ["atest", "-B", "9600", str(tmp_path / "ours.wav")], capture_output=True, text=True, timeout=60, check=False
    ).stdout
    assert re.search(r"^6 packets decoded", out, re.MULTILINE), out
    assert "OTSSAT-1>CQ:OTS-SAT beacon 4" in out and "OTSSAT-2>CQ:v1 style" in out


def test_we_decode_direwolf(tmp_path: Path) -> None:
    (tmp_path / "packets.txt").write_text("OTSSAT-1>CQ:hello from direwolf one\nOTSSAT-3>CQ:two ~ packet\n")
    subprocess.run(
        [
            "gen_packets",
            "-B",
            "9600",
            "-r",
            str(int(FS)),
            "-o",
            str(tmp_path / "dw.wav"),
            str(tmp_path / "packets.txt"),
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    with wave.open(str(tmp_path / "dw.wav")) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    freq = 2400.0 * audio / np.max(np.abs(audio))  # the audio is the frequency: FM-modulate it
    iq = np.exp(2j * np.pi * np.cumsum(freq) / FS).astype(np.complex64)
    iq = modem.frequency_shift(
        np.concatenate((np.ones(4800, np.complex64), iq, np.ones(4800, np.complex64))), FS, 1000.0
    )
    report = modem.decode(modem.add_awgn(iq, FS, ebn0_db=20.0, rng=1), FS)
    got = [(str(f.frame.source), str(f.frame.dest), f.frame.info) for f in report.frames]
    assert got == [("OTSSAT-1", "CQ", b"hello from direwolf one\n"), ("OTSSAT-3", "CQ", b"two ~ packet\n")]
    assert report.freq_error_hz == pytest.approx(1000.0, abs=20.0)
