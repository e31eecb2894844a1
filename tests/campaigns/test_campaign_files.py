"""Campaigns as files: the shipped ones are valid, a wrong one is one line naming file and field, `bench run NAME`
applies the campaign (level, selection, kind) and the run's journal and report carry the file and its hash."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.campaign import CAMPAIGN_KINDS, list_campaigns, load_campaign, policies_for
from bench.errors import ConfigError

PROJECT = Path(__file__).resolve().parents[2]
CAMPAIGNS = PROJECT / "test_plans" / "campaigns"


def bench(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def write_campaign(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"id: {name}\nissue: 1\npurpose: a test of the campaign checks\n{body}")
    return path


def test_the_shipped_campaigns_load_and_cover_every_kind():
    names = {p.stem for p in list_campaigns(CAMPAIGNS)}
    assert {"nightly", "acceptance-em", "qualification-qm", "development"} <= names
    kinds = {load_campaign(p).campaign.kind for p in list_campaigns(CAMPAIGNS)}
    assert kinds == set(CAMPAIGN_KINDS)


def test_the_kind_carries_the_policies():
    assert policies_for("qualification").calibration_enforced and policies_for("qualification").strict_db
    assert policies_for("acceptance").calibration_enforced and policies_for("acceptance").strict_db
    assert policies_for("nightly").prompts == "never" and not policies_for("nightly").strict_db
    assert policies_for("development").prompts == "ask"
    assert all(policies_for(k).retries == 0 for k in CAMPAIGN_KINDS)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("kind: nightly\nmodel_level: XM\nplans: [test_plans]\n", "model_level"),
        ("kind: weekly\nmodel_level: EM\nplans: [test_plans]\n", "kind"),
        ("kind: nightly\nmodel_level: EM\nplans: []\n", "plans"),
        ("kind: nightly\nmodel_level: EM\nplans: [test_plans]\nstop_on_first_fial: true\n", "stop_on_first_fial"),
        ("kind: nightly\nmodel_level: EM\nplans: [test_plans]\nprompts: sometimes\n", "prompts"),
    ],
)
def test_a_wrong_campaign_is_one_line_naming_file_and_field(tmp_path, body, field):
    path = write_campaign(tmp_path, "broken", body)
    with pytest.raises(ConfigError) as err:
        load_campaign(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {field}")


def test_a_campaign_id_must_match_its_file_name(tmp_path):
    path = tmp_path / "nightly.yaml"
    path.write_text("id: weekly\nissue: 1\npurpose: x\nkind: nightly\nmodel_level: EM\nplans: [test_plans]\n")
    with pytest.raises(ConfigError, match=r"nightly\.yaml: id: 'weekly' differs from the file name"):
        load_campaign(path)


def test_bench_campaigns_lists_one_line_each():
    proc = bench("campaigns")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(list_campaigns(CAMPAIGNS))
    nightly = next(line for line in lines if line.startswith("nightly "))
    assert "nightly" in nightly and "EM" in nightly and "prompts never" in nightly


def test_bench_check_names_file_and_field_of_each_problem(tmp_path):
    unknown_plan = write_campaign(tmp_path, "no-plan", "kind: nightly\nmodel_level: EM\nplans: [test_plans/nope]\n")
    no_tests = write_campaign(
        tmp_path, "no-tests", "kind: nightly\nmodel_level: EM\nplans: [test_plans/eps]\nmarkers: no_such_marker\n"
    )
    empty_k = write_campaign(
        tmp_path, "empty-k", "kind: nightly\nmodel_level: EM\nplans: [test_plans/eps]\nkeyword: zzz_nothing\n"
    )
    bad_level = write_campaign(tmp_path, "bad-level", "kind: nightly\nmodel_level: XM\nplans: [test_plans]\n")
    good = write_campaign(tmp_path, "good", "kind: development\nmodel_level: EM\nplans: [test_plans/eps]\n")
    proc = bench("check", "--campaigns", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 4, proc.stderr
    expected = {unknown_plan: "plans", no_tests: "markers", empty_k: "keyword", bad_level: "model_level"}
    for path, field in expected.items():
        assert any(f"{path}: {field}:" in line for line in errors), (path, field, proc.stderr)
    assert f"ok: {good}" in proc.stderr


def test_a_campaign_kind_given_again_must_agree():
    proc = bench("run", "nightly", "--campaign", "qualification", "--out", "/tmp/never-created")
    assert proc.returncode == 2
    assert "nightly.yaml: kind: the campaign is a nightly campaign; drop --campaign qualification" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bench_run_applies_the_campaign_and_journals_it(tmp_path):
    """The campaign's level, -k selection and kind reach the run; the file and its hash are in the journal and on
    the report's cover."""
    path = write_campaign(
        tmp_path,
        "eps-quick",
        "kind: nightly\nmodel_level: QM\nplans: [test_plans/eps/test_eps_power.py]\nkeyword: idle_current\n",
    )
    out = tmp_path / "runs"
    proc = bench("run", str(path), f"--out={out}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    journal = next(out.glob("*/journal.jsonl"))
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    start = next(r for r in records if r["kind"] == "run_start")
    assert start["campaign"] == "nightly" and start["model_level"] == "QM"
    campaign = next(r for r in records if r["kind"] == "campaign")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert campaign["id"] == "eps-quick" and campaign["sha256"] == sha
    assert campaign["definition"] == path.read_text()
    tests = [r["test_id"] for r in records if r["kind"] == "test_start"]
    assert tests == ["test_plans/eps/test_eps_power.py::test_idle_current_and_bus_voltage"]
    cover = (journal.parent / "report.html").read_text()
    assert f"SHA-256 {sha}" in cover and "eps-quick issue 1 (nightly)" in cover
