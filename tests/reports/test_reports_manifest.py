"""Tamper evidence: the manifest seals a run directory; any change to it is reported."""

import subprocess
import sys

import pytest

from reports.manifest import ManifestError, verify_manifest, write_manifest


@pytest.fixture
def run_dir(tmp_path):
    (tmp_path / "journal.jsonl").write_text('{"kind":"run_start"}\n')
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "t.log").write_text("log\n")
    write_manifest(tmp_path)
    return tmp_path


def test_intact_run_verifies(run_dir):
    result = verify_manifest(run_dir)
    assert result.intact and result.checked == 2


def test_modified_missing_added_are_reported(run_dir):
    (run_dir / "journal.jsonl").write_text('{"kind":"run_start","forged":1}\n')
    (run_dir / "logs" / "t.log").unlink()
    (run_dir / "extra.txt").write_text("x")
    result = verify_manifest(run_dir)
    assert result.modified == ["journal.jsonl"]
    assert result.missing == ["logs/t.log"]
    assert result.added == ["extra.txt"]


def test_manifest_is_sha256sum_compatible(run_dir):
    proc = subprocess.run(["sha256sum", "-c", "manifest.sha256"], cwd=run_dir, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_bench_verify_cli_detects_a_modified_file(run_dir):
    ok = subprocess.run([sys.executable, "-m", "bench.cli", "verify", str(run_dir)], capture_output=True, text=True)
    assert ok.returncode == 0 and "intact" in ok.stderr
    (run_dir / "journal.jsonl").write_text("tampered\n")
    bad = subprocess.run([sys.executable, "-m", "bench.cli", "verify", str(run_dir)], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "MODIFIED journal.jsonl" in bad.stderr


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(ManifestError, match="cannot read the manifest"):
        verify_manifest(tmp_path)
