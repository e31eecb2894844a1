"""reports.vcrm: loading the requirements file, traceability checks, and the project's own requirements file."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from reports.vcrm import (
    RequirementsError,
    check_traceability,
    load_requirements,
    parse_requirements,
    scan_plans,
)

ROOT = Path(__file__).resolve().parents[2]
PLANS = ROOT / "test_plans"
REQUIREMENTS = PLANS / "requirements.yaml"
ID_IN_TEXT = re.compile(r"\bOTS-[A-Z][A-Z0-9]{1,5}-\d{3}\b")

GOOD = """\
schema: 1
document: {id: OTS-SAT-RQ-001, issue: "1.0"}
procedure: {id: OTS-SAT-TP-001, issue: "2.1"}
requirements:
  OTS-SYS-001:
    text: The satellite shall have a launch mass of no more than 24.0 kg.
    subsystem: SYS
    method: A
    levels: [QM, FM]
    evidence: OTS-SAT-AN-010 Mass budget
  OTS-EPS-010:
    text: The EPS shall limit the main bus inrush current at power-on to 3.3 A.
    subsystem: EPS
    method: T
    levels: [EM, QM, FM, PFM]
    parent: OTS-SYS-001
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "requirements.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_file_loads(tmp_path: Path) -> None:
    reqs = load_requirements(_write(tmp_path, GOOD))
    assert len(reqs) == 2 and "OTS-EPS-010" in reqs
    assert str(reqs.document) == "OTS-SAT-RQ-001 issue 1.0"
    assert str(reqs.procedure) == "OTS-SAT-TP-001 issue 2.1"
    eps = reqs.requirements["OTS-EPS-010"]
    assert eps.method == "T" and eps.levels == ("EM", "QM", "FM", "PFM") and eps.parent == "OTS-SYS-001"
    assert reqs.requirements["OTS-SYS-001"].evidence == "OTS-SAT-AN-010 Mass budget"
    assert reqs.requirements["OTS-SYS-001"].method_name == "analysis"


@pytest.mark.parametrize(
    ("old", "new", "where", "reason"),
    [
        ("method: A", "method: X", "requirements.OTS-SYS-001.method", "'X' is not one of T, A, I, R"),
        (
            "    evidence: OTS-SAT-AN-010 Mass budget\n",
            "",
            "requirements.OTS-SYS-001.evidence",
            "required for method A",
        ),
        ("OTS-EPS-010:", "OTS-EPS-10:", "requirements.OTS-EPS-10", "bad requirement ID (expected OTS-<SUB>-<nnn>"),
        ("OTS-EPS-010:", "EPS-010:", "requirements.EPS-010", "bad requirement ID"),
        ("levels: [QM, FM]", "levels: [QM, XM]", "requirements.OTS-SYS-001.levels", "'XM' is not one of EM, QM"),
        ("levels: [QM, FM]", "levels: []", "requirements.OTS-SYS-001.levels", "expected a non-empty list"),
        ("parent: OTS-SYS-001", "parent: OTS-SYS-999", "requirements.OTS-EPS-010.parent", "not in this file"),
        ("    subsystem: EPS\n", "", "requirements.OTS-EPS-010.subsystem", "missing or empty"),
        (
            "    subsystem: EPS\n",
            "    subsystem: EPS\n    owner: me\n",
            "requirements.OTS-EPS-010.owner",
            "unknown key",
        ),
        ('issue: "1.0"', "issue:", "document.issue", "missing or not text"),
        ("schema: 1", "schema: 2", "schema", "expected 1, got 2"),
    ],
)
def test_a_bad_entry_is_one_line_naming_file_and_path(
    tmp_path: Path, old: str, new: str, where: str, reason: str
) -> None:
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(RequirementsError) as err:
        load_requirements(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {where}: "), message
    assert reason in message


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("    subsystem: SYS\n", "    subsystem: [SYS\n"))
    with pytest.raises(RequirementsError, match=rf"^{re.escape(str(path))}, line \d+: "):
        load_requirements(path)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(RequirementsError, match="cannot read the requirements file"):
        load_requirements(tmp_path / "nope.yaml")


def test_check_traceability_reports_unknown_ids_in_one_line_each(tmp_path: Path) -> None:
    reqs = load_requirements(_write(tmp_path, GOOD))
    issues = check_traceability(reqs, {"OTS-EPS-010", "OTS-EPS-999"})
    assert [i.kind for i in issues] == ["unknown"]
    assert (
        str(issues[0]) == f"OTS-EPS-999 cited by a test is not in the requirements file ({tmp_path}/requirements.yaml)"
    )

    named = check_traceability(reqs, {"OTS-XYZ-001": ["test_plans/x/test_x.py::test_a"]})
    assert "OTS-XYZ-001 cited by test_plans/x/test_x.py::test_a is not in" in str(named[0])

    assert check_traceability(reqs, {"OTS-EPS-010"}) == []
    untested = check_traceability(reqs, set(), complete=True)
    assert [(i.kind, i.req_id) for i in untested] == [("untested", "OTS-EPS-010")]  # A/I/R need no test


def test_scan_plans_reads_markers_without_importing(tmp_path: Path) -> None:
    plans = tmp_path / "test_plans" / "obc"
    plans.mkdir(parents=True)
    (plans / "test_obc_x.py").write_text(
        textwrap.dedent(
            """
            import pytest
            raise RuntimeError("never imported")
            pytestmark = [pytest.mark.subsystem("OBC"), pytest.mark.requirement("OTS-OBC-001")]

            @pytest.mark.requirement("OTS-OBC-010", "OTS-OBC-011")
            def test_ping(powered):
                pass

            def helper():
                pass

            @pytest.mark.requirement("OTS-OBC-020")
            class TestModes:
                @pytest.mark.requirement("OTS-OBC-021")
                def test_safe(self):
                    pass
            """
        )
    )
    cited = scan_plans(tmp_path / "test_plans")
    ping = "test_plans/obc/test_obc_x.py::test_ping"
    safe = "test_plans/obc/test_obc_x.py::TestModes::test_safe"
    assert cited == {
        "OTS-OBC-001": {ping, safe},
        "OTS-OBC-010": {ping},
        "OTS-OBC-011": {ping},
        "OTS-OBC-020": {safe},
        "OTS-OBC-021": {safe},
    }


def test_parse_requirements_rejects_a_non_mapping() -> None:
    with pytest.raises(RequirementsError, match=r"^<requirements>: expected a mapping"):
        parse_requirements(["a"])


# ---------------------------------------------------------------------------------------------------------
# The project's requirements file covers every plan


def test_project_requirements_file_is_valid() -> None:
    reqs = load_requirements(REQUIREMENTS)
    assert str(reqs.document).startswith("OTS-SAT-RQ-001")
    assert {r.subsystem for r in reqs.requirements.values()} >= {"SYS", "EPS", "GSE", "OBC"}
    assert {r.method for r in reqs.requirements.values()} == {"T", "A", "I", "R"}


def test_every_id_cited_by_the_plans_and_limits_is_a_requirement() -> None:
    reqs = load_requirements(REQUIREMENTS)
    cited: dict[str, set[str]] = {k: set(v) for k, v in scan_plans(PLANS).items()}
    limits = yaml.safe_load((PLANS / "limits.yaml").read_text(encoding="utf-8"))
    for name, entry in (limits.get("limits") or {}).items():
        for req_id in entry.get("requirements") or ():
            cited.setdefault(req_id, set()).add(f"limits.yaml:{name}")
    for file in PLANS.rglob("*.py"):  # docstrings and comments too: a typo there misleads the reader
        for req_id in ID_IN_TEXT.findall(file.read_text(encoding="utf-8")):
            cited.setdefault(req_id, set()).add(file.relative_to(ROOT).as_posix())
    unknown = [str(i) for i in check_traceability(reqs, cited) if i.kind == "unknown"]
    assert not unknown, "\n".join(unknown)


def test_numbers_in_texts_agree_with_limits_yaml() -> None:
    """Spot checks: the inrush, idle-current and OCP limits quoted in the texts are those of limits.yaml."""
    reqs = load_requirements(REQUIREMENTS).requirements
    limits = yaml.safe_load((PLANS / "limits.yaml").read_text(encoding="utf-8"))["limits"]
    assert f"{limits['EPS.INRUSH_PEAK']['all']['high']} A" in reqs["OTS-EPS-010"].text
    assert f"{limits['EPS.INRUSH_PEAK']['FM']['high']} A for the FM" in reqs["OTS-EPS-010"].text
    idle = limits["EPS.IDLE_CURRENT"]["all"]
    assert f"{idle['low']} A and {idle['high']} A" in reqs["OTS-EPS-020"].text
    assert f"{limits['GSE.OCP_TRIP_TIME']['all']['high']} s" in reqs["OTS-GSE-010"].text
