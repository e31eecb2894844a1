"""An IQ capture taken by hand — plain pyvisa, raw SCPI, none of the bench's drivers — from the twin's analyzer
decodes to the beacon the radio sent: with the bench's own DSP, and with Dire Wolf (``atest``), an ordinary
ground-station decoder (skipped when it is not installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import pyvisa
from rf_rig import rig_fixture  # noqa: F401  (the module's twin-backed bench: fixture `rig`)

from bench.dsp import modem

FS = 96_000
RECORD = 40_000  # 0.42 s: the 250 ms burst, 20 ms of pretrigger and air after it

SETUP = [
    "*RST",
    "INST:SEL IQ",
    "INIT:CONT OFF",
    "FREQ:CENT 437.5e6",
    f"TRAC:IQ:SRAT {FS}",
    f"TRAC:IQ:RLEN {RECORD}",
    "DISP:TRAC:Y:RLEV 0",
    "FORM REAL,32",
    "TRAC:IQ:DATA:FORM IQP",
    "TRIG:SOUR IFP",
    "TRIG:LEV:IFP -30",
    "TRIG:HOLD -0.02",
]


@pytest.fixture(scope="module")
def hand_iq(rig) -> Iterator[np.ndarray]:
    """One triggered beacon record, taken with raw SCPI over pyvisa-py."""
    assert rig.session.twin is not None
    resource = str(rig.session.twin.endpoints["vsa"]["resource"])
    # pyvisa's "@py" ResourceManager is shared with the bench's drivers: close our resource, never the manager.
    vsa = pyvisa.ResourceManager("@py").open_resource(
        resource, read_termination="\n", write_termination="\n", timeout=20_000
    )
    try:
        assert "FSV" in vsa.query("*IDN?")
        for command in SETUP:
            vsa.write(command)
        vsa.write("INIT:IMM")  # arms: the capture waits for the burst
        assert int(vsa.query("STAT:OPER:COND?")) & 16  # measuring: armed and waiting for its trigger
        rig.key_beacon()()  # the radio beacons now
        assert vsa.query("*OPC?").strip() == "1"  # returns once the record is complete
        assert int(vsa.query("SYST:ERR?").split(",")[0]) == 0
        data = vsa.query_binary_values("TRAC:IQ:DATA:MEM?", datatype="f", container=np.array)
    finally:
        vsa.close()
    assert data.size == 2 * RECORD
    yield (data[0::2] + 1j * data[1::2]).astype(np.complex64)


def test_hand_capture_decodes_to_the_beacon(rig, hand_iq):
    report = modem.decode(hand_iq, FS, bit_rate=rig.rf.radio.bit_rate)
    frames = [f for f in report.frames if str(f.frame.source) == "OTSSAT-1"]
    assert frames, f"no frame from OTSSAT-1 ({report.bad_fcs} with a bad FCS)"
    info = frames[0].info
    assert info.startswith(b"OTS-SAT"), info
    assert info.decode("ascii") == rig.control.rf()["last_beacon"]  # exactly what the radio keyed
    assert abs(report.freq_error_hz) < 2000.0


@pytest.mark.skipif(shutil.which("atest") is None, reason="Dire Wolf not installed")
def test_direwolf_decodes_the_hand_capture(hand_iq, tmp_path: Path):
    audio = np.angle(hand_iq[1:] * np.conj(hand_iq[:-1]))  # FM discriminator: the receiver's audio
    pcm = (audio / np.max(np.abs(audio)) * 0.5 * 32767).astype("<i2")
    wav = tmp_path / "beacon.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(FS)
        w.writeframes(pcm.tobytes())
    out = subprocess.run(["atest", "-B", "9600", str(wav)], capture_output=True, text=True, timeout=60).stdout
    assert re.search(r"^[1-9]\d* packets? decoded", out, re.MULTILINE), out
    assert re.search(r"OTSSAT-1>[A-Z0-9-]+:OTS-SAT ", out), out
