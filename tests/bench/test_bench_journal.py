"""The journal survives the bench process dying: every record is on the OS's side the moment it is taken."""

import json
import os
import signal
import subprocess
import sys
import textwrap

from bench.journal import Journal
from bench.measurement import Measurement, Verdict


def _m(i: int) -> Measurement:
    return Measurement(
        f"EPS.X{i}", 0.5, "A", 0.3, 0.7, Verdict.PASS, 0.2, 50.0, ("OTS-EPS-020",), "t::x", "2026-01-01T00:00:00"
    )


def test_records_readable_before_close(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.record("run_start", run_id="r1")
    journal.measurement(_m(1))
    lines = (tmp_path / "journal.jsonl").read_text().splitlines()  # another reader, journal still open
    assert [json.loads(line)["kind"] for line in lines] == ["run_start", "measurement"]
    assert json.loads(lines[1])["requirements"] == ["OTS-EPS-020"]
    journal.close()
    journal.record("late", x=1)  # after close: ignored, never raises from a teardown path
    assert len((tmp_path / "journal.jsonl").read_text().splitlines()) == 2


def test_sigkilled_writer_keeps_every_record(tmp_path):
    path = tmp_path / "journal.jsonl"
    script = textwrap.dedent(
        f"""
        import os, signal
        from bench.journal import Journal
        from pathlib import Path
        j = Journal(Path({str(path)!r}))
        for i in range(500):
            j.record("measurement", name=f"M{{i}}", value=i)
        print("written", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == -signal.SIGKILL and "written" in proc.stdout
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["value"] for r in records] == list(range(500))
    assert os.path.getsize(path) > 0
