"""The defect catalogue's checks (bench/defects.py) and the detection matrix's logic (reports/defects.py,
reports/db.py): pure data, no twin."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.defects import DEFAULT_CATALOGUE, check_catalogue, load_catalogue, plan_jobs, select
from bench.errors import ConfigError
from reports.db import import_defect_run, latest_defect_run, open_db
from reports.defects import (
    Baseline,
    Cell,
    DefectResult,
    DefectRun,
    coverage,
    latest_run,
    read_record,
    render_html,
    write_record,
)

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "test_plans/requirements.yaml"

ENTRY = """\
schema: 1
subsets: {{ci: [EPS_X]}}
defects:
  EPS_X:
    subsystem: EPS
    description: something wrong
    requirements: [{req}]
    caught_by: ["{test}"]
"""


def _write(
    tmp_path: Path, req: str = "OTS-EPS-110", test: str = "test_plans/eps/test_eps_power.py::test_power_on_inrush"
) -> Path:
    path = tmp_path / "defects.yaml"
    path.write_text(ENTRY.format(req=req, test=test))
    return path


def test_the_project_catalogue_checks_clean() -> None:
    loaded = load_catalogue(ROOT / DEFAULT_CATALOGUE)
    assert check_catalogue(loaded, REQUIREMENTS) == []


def test_unknown_requirement_and_missing_test_are_one_line_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    loaded = load_catalogue(_write(tmp_path, req="OTS-EPS-999", test="test_plans/eps/test_eps_power.py::test_nope"))
    problems = check_catalogue(loaded, REQUIREMENTS)
    assert problems == [
        f"{tmp_path / 'defects.yaml'}: defects.EPS_X.requirements: OTS-EPS-999 is not in {REQUIREMENTS}",
        f"{tmp_path / 'defects.yaml'}: defects.EPS_X.caught_by: no test test_plans/eps/test_eps_power.py::test_nope",
    ]
    # With the collected node ids, a parametrised id is checked exactly.
    collected = ["test_plans/eps/test_eps_power.py::test_power_on_inrush"]
    loaded = load_catalogue(_write(tmp_path, test="test_plans/eps/test_eps_power.py::test_power_on_inrush[x]"))
    assert len(check_catalogue(loaded, REQUIREMENTS, collected)) == 1


def test_a_malformed_catalogue_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "defects.yaml"
    path.write_text("schema: 1\ndefects:\n  EPS_X:\n    subsystem: FOO\n    description: x\n"
                    "    requirements: [OTS-EPS-110]\n    caught_by: [test_plans/eps/t.py::test_a]\n")  # fmt: skip
    with pytest.raises(ConfigError, match=r"defects\.yaml: defects\.EPS_X\.subsystem"):
        load_catalogue(path)
    path.write_text(ENTRY.format(req="OTS-EPS-110", test="t::x").replace("[EPS_X]", "[EPS_Y]"))
    with pytest.raises(ConfigError, match="defects"):
        load_catalogue(path)


def test_selection_and_jobs(tmp_path: Path) -> None:
    loaded = load_catalogue(ROOT / DEFAULT_CATALOGUE)
    assert select(loaded, subset="ci") == loaded.catalogue.subsets["ci"]
    with pytest.raises(ConfigError, match="no subset 'nightly'"):
        select(loaded, subset="nightly")
    with pytest.raises(ConfigError, match="'EPS_NOPE' is not catalogued"):
        select(loaded, ["EPS_NOPE"])
    jobs = plan_jobs(loaded, ["EPS_OUTPUT_REVERSED", "OBC_BOOTS_SAFE"])
    assert jobs[0].defect is None  # the clean baseline first
    by_name = {j.defect: j for j in jobs}
    # its subsystem's plans, plus a named test of another subsystem
    assert by_name["EPS_OUTPUT_REVERSED"].targets == (
        "test_plans/eps",
        "test_plans/adcs/test_adcs_control.py::test_wheel_spin_up",
    )
    assert set(jobs[0].targets) == {"test_plans/eps", "test_plans/adcs/test_adcs_control.py::test_wheel_spin_up",
                                    "test_plans/obc"}  # fmt: skip
    assert all(j.targets == ("test_plans",) for j in plan_jobs(loaded, ["OBC_BOOTS_SAFE"], all_plans=True))


def _run(
    outcomes: dict[str, str],
    *,
    baseline_ok: bool = True,
    run_id: str = "R1",
    started: str = "2026-12-05T05:00:00+00:00",
) -> DefectRun:
    expected = ("t::a",)
    return DefectRun(
        run_id=run_id,
        started=started,
        duration_s=12.0,
        catalogue="test_plans/defects.yaml",
        selection="all",
        baseline=Baseline(baseline_ok, 3, () if baseline_ok else ("t::a (failed): no",)),
        defects=(
            DefectResult("D1", "EPS", ("OTS-EPS-110",), "one", expected),
            DefectResult("D2", "EPS", ("OTS-EPS-110", "OTS-EPS-111"), "two", expected),
        ),
        cells=tuple(
            Cell(d, t, t in expected, o, f"{d} {o}")
            for (d, t), o in {
                ("D1", "t::a"): "failed",
                ("D1", "t::b"): "passed",
                **{("D2", k): v for k, v in outcomes.items()},
            }.items()
        ),
    )


def test_cell_status_and_verdicts() -> None:
    run = _run({"t::a": "failed", "t::b": "error"})
    assert [c.status for c in run.cells] == ["caught", "passed", "caught", "error"]
    assert run.verdicts() == {"D1": "caught", "D2": "caught"} and run.ok
    assert [c.test_id for c in run.errors] == ["t::b"]  # a crash is reported, not counted as a catch
    missed = _run({"t::a": "passed"})
    assert missed.verdicts()["D2"] == "missed" and not missed.ok
    assert [d.defect for d in missed.missed] == ["D2"]
    assert coverage(missed) == {"OTS-EPS-110": (1, 2), "OTS-EPS-111": (0, 1)}
    not_run = _run({"t::b": "failed"})  # the expected test did not run at all: not a catch
    assert not_run.verdicts()["D2"] == "missed"
    assert not _run({"t::a": "failed"}, baseline_ok=False).ok  # a failing baseline fails the defect run


def test_record_round_trip_html_and_latest(tmp_path: Path) -> None:
    old, new = (
        _run({"t::a": "failed"}, run_id="R1"),
        _run({"t::a": "passed"}, run_id="R2", started="2026-12-06T00:00:00+00:00"),
    )
    for run in (old, new):
        (tmp_path / run.run_id).mkdir()
        write_record(tmp_path / run.run_id, run)
    assert read_record(tmp_path / "R1" / "defects.json") == old
    assert latest_run(tmp_path) == new
    page = render_html(new)
    assert "1 of 2 seeded defects caught" in page and "NOT OK" in page and "D2" in page
    with pytest.raises(ValueError, match="not a defect run record"):
        (tmp_path / "x.json").write_text("{}")
        read_record(tmp_path / "x.json")


def test_results_database_keeps_the_matrix(tmp_path: Path) -> None:
    engine = open_db(f"sqlite:///{tmp_path / 'results.sqlite'}")
    try:
        assert latest_defect_run(engine) is None
        import_defect_run(engine, _run({"t::a": "failed"}, run_id="R1"))
        newer = _run({"t::a": "passed", "t::b": "error"}, run_id="R2", started="2026-12-06T00:00:00+00:00")
        assert import_defect_run(engine, newer) == 4
        assert import_defect_run(engine, newer) == 4  # idempotent: a re-import replaces the run
        back = latest_defect_run(engine)
    finally:
        engine.dispose()
    assert back is not None and back.run_id == "R2"
    assert back.verdicts() == newer.verdicts() and coverage(back) == coverage(newer)
    assert {(c.defect, c.test_id, c.status) for c in back.cells} == {
        (c.defect, c.test_id, c.status) for c in newer.cells
    }
