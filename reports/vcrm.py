"""Requirements and the verification control matrix (VCRM).

The requirements file (``test_plans/requirements.yaml``, docs/requirements-and-vcrm.md) lists every
requirement the bench verifies or tracks: ID ``OTS-<SUB>-<nnn>``, text, subsystem, verification method
(T test, A analysis, I inspection, R review of design), the model levels (EM, QM, FM, PFM) it is verified at,
the evidence document for A/I/R, and an optional parent. :func:`load_requirements` reads and validates it;
every problem is one line naming the file and the path of the bad entry
(``requirements.yaml: requirements.OTS-EPS-010.method: 'X' is not one of T, A, I, R``).

The VCRM is *derived*, never written by hand: :func:`build_vcrm` takes the requirements and any number of runs
(:class:`reports.run_record.RunRecord`) and gives one row per requirement with

* the tests that cite it (``test_start.requirements`` and ``measurement.requirements``; plus, when given, the
  test functions in the plan set that cite it, see :func:`scan_plans`);
* per model level, the latest result: the newest run at that level in which a citing test was executed
  decides — ``verified`` (every citing test passed, no citing measurement failed; marginal measurements
  pass and are flagged), ``failed`` (a citing test failed or errored, or a citing measurement failed),
  ``incomplete`` (a citing test did not run to its end — interrupted, stopped, killed — and none failed: its
  measurements never verify anything), or ``not run``; ``n/a`` when the requirement is not verified at that
  level;
* for A/I/R requirements, the evidence reference (and ``evidence`` at each of their levels: runs do not
  verify them, even when a test happens to cite one).

and the traceability findings: **errors** — a test citing an ID that is not in the requirements file, a
test-method requirement that no test cites — and **gaps** — a test-method requirement that was not run at one
of its levels among the levels the given runs cover. :func:`check_traceability` is the same check on a bare
set of cited IDs, for use at pytest collection time.

Pure functions from data to data: nothing here talks to the bench.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, TypeAlias, cast

import yaml

if TYPE_CHECKING:  # the plugin checks traceability at collection: the run record's codec waits for a run
    from reports.run_record import RunRecord


__all__ = [
    "ID_PATTERN",
    "LEVELS",
    "METHODS",
    "DocumentRef",
    "LevelResult",
    "Requirement",
    "RequirementSet",
    "RequirementsError",
    "TraceIssue",
    "Vcrm",
    "VcrmRow",
    "build_vcrm",
    "check_traceability",
    "format_vcrm",
    "load_requirements",
    "main",
    "parse_requirements",
    "scan_plans",
]

Method: TypeAlias = Literal["T", "A", "I", "R"]
Status: TypeAlias = Literal["verified", "failed", "incomplete", "not run", "n/a", "evidence"]

METHODS: Final[Mapping[str, str]] = {"T": "test", "A": "analysis", "I": "inspection", "R": "review of design"}
LEVELS: Final[tuple[str, ...]] = ("EM", "QM", "FM", "PFM")
ID_PATTERN: Final = re.compile(r"OTS-[A-Z][A-Z0-9]{1,5}-\d{3}")


class RequirementsError(ValueError):
    """The requirements file is unreadable or breaks its schema; the message is one line."""


@dataclass(frozen=True)
class Requirement:
    req_id: str
    text: str
    subsystem: str
    method: Method
    levels: tuple[str, ...]
    evidence: str = ""
    parent: str = ""

    @property
    def method_name(self) -> str:
        return METHODS[self.method]


@dataclass(frozen=True)
class DocumentRef:
    doc_id: str = ""
    issue: str = ""
    title: str = ""

    def __str__(self) -> str:
        return " issue ".join(x for x in (self.doc_id, self.issue) if x)


@dataclass(frozen=True)
class RequirementSet:
    path: Path | None
    document: DocumentRef
    procedure: DocumentRef
    requirements: Mapping[str, Requirement]

    def __contains__(self, req_id: object) -> bool:
        return req_id in self.requirements

    def __len__(self) -> int:
        return len(self.requirements)


@dataclass(frozen=True)
class TraceIssue:
    kind: Literal["unknown", "untested", "not run at level", "level not applicable"]
    req_id: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class LevelResult:
    level: str
    status: Status
    run_id: str = ""
    time: str = ""
    marginal: bool = False
    tests: tuple[str, ...] = ()
    """The citing tests of the deciding run that failed (for ``failed``) or were executed (for ``verified``)."""


@dataclass(frozen=True)
class VcrmRow:
    requirement: Requirement
    tests: tuple[str, ...]
    """Test IDs that cite the requirement (runs and plan set), sorted."""
    results: tuple[LevelResult, ...]
    """One per level in :data:`LEVELS` order."""

    def result(self, level: str) -> LevelResult:
        for r in self.results:
            if r.level == level:
                return r
        raise KeyError(level)


@dataclass(frozen=True)
class Vcrm:
    document: DocumentRef
    rows: tuple[VcrmRow, ...]
    errors: tuple[TraceIssue, ...]
    gaps: tuple[TraceIssue, ...]
    levels_run: tuple[str, ...]
    """Model levels covered by the given runs, in :data:`LEVELS` order."""
    runs: tuple[str, ...]
    """Run IDs considered, oldest first."""
    unknown_cited: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Unknown requirement ID → test IDs that cite it."""

    def counts(self) -> dict[str, int]:
        """Rows by verification method (T, A, I, R)."""
        out: dict[str, int] = {m: 0 for m in METHODS}
        for r in self.rows:
            out[r.requirement.method] += 1
        return out


# --------------------------------------------------------------------------------------------------------
# Loading


def load_requirements(path: Path | str) -> RequirementSet:
    """Read and validate a requirements file. Raises :class:`RequirementsError` (one line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RequirementsError(f"{path}: cannot read the requirements file: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise RequirementsError(f"{path}{where}: {problem}") from exc
    return parse_requirements(data, path)


def parse_requirements(data: object, path: Path | str | None = None) -> RequirementSet:
    """Validate already-parsed YAML data (see :func:`load_requirements`)."""
    name = str(path) if path is not None else "<requirements>"

    def fail(where: str, reason: str) -> RequirementsError:
        return RequirementsError(f"{name}: {where}: {reason}" if where else f"{name}: {reason}")

    if not isinstance(data, dict):
        raise fail("", "expected a mapping with 'schema', 'document' and 'requirements'")
    top = cast(dict[str, object], data)
    if top.get("schema") != 1:
        raise fail("schema", f"expected 1, got {top.get('schema')!r}")
    document = _doc_ref(top.get("document"), "document", fail, required=True)
    procedure = _doc_ref(top.get("procedure"), "procedure", fail, required=False)
    unknown_top = sorted(set(top) - {"schema", "document", "procedure", "requirements"})
    if unknown_top:
        raise fail(unknown_top[0], "unknown key (expected schema, document, procedure, requirements)")
    reqs = top.get("requirements")
    if not isinstance(reqs, dict) or not reqs:
        raise fail("requirements", "expected a non-empty mapping of requirement ID to requirement")
    out: dict[str, Requirement] = {}
    for key, entry in cast(dict[object, object], reqs).items():
        req_id = str(key)
        where = f"requirements.{req_id}"
        if not ID_PATTERN.fullmatch(req_id):
            raise fail(where, "bad requirement ID (expected OTS-<SUB>-<nnn>, e.g. OTS-EPS-010)")
        if not isinstance(entry, dict):
            raise fail(where, "expected a mapping with text, subsystem, method, levels")
        e = cast(dict[str, object], entry)
        extra = sorted(set(e) - {"text", "subsystem", "method", "levels", "evidence", "parent"})
        if extra:
            raise fail(
                f"{where}.{extra[0]}", "unknown key (expected text, subsystem, method, levels, evidence, parent)"
            )
        text = e.get("text")
        if not isinstance(text, str) or not text.strip():
            raise fail(f"{where}.text", "missing or empty")
        subsystem = e.get("subsystem")
        if not isinstance(subsystem, str) or not subsystem.strip():
            raise fail(f"{where}.subsystem", "missing or empty")
        method = e.get("method")
        if method not in METHODS:
            raise fail(f"{where}.method", f"{method!r} is not one of {', '.join(METHODS)}")
        levels = e.get("levels")
        if isinstance(levels, str):
            levels = [levels]
        if not isinstance(levels, list) or not levels:
            raise fail(f"{where}.levels", f"expected a non-empty list of {', '.join(LEVELS)}")
        for level in levels:
            if level not in LEVELS:
                raise fail(f"{where}.levels", f"{level!r} is not one of {', '.join(LEVELS)}")
        evidence = e.get("evidence", "")
        if evidence is None:
            evidence = ""
        if not isinstance(evidence, str):
            raise fail(f"{where}.evidence", "expected a document reference (text)")
        if method != "T" and not evidence.strip():
            raise fail(f"{where}.evidence", f"required for method {method} ({METHODS[str(method)]})")
        parent = e.get("parent", "") or ""
        if not isinstance(parent, str) or (parent and not ID_PATTERN.fullmatch(parent)):
            raise fail(f"{where}.parent", f"{parent!r} is not a requirement ID")
        out[req_id] = Requirement(
            req_id=req_id,
            text=" ".join(text.split()),
            subsystem=subsystem.strip(),
            method=cast(Method, method),
            levels=tuple(lv for lv in LEVELS if lv in levels),
            evidence=evidence.strip(),
            parent=parent,
        )
    for req in out.values():
        if req.parent and req.parent not in out:
            raise fail(f"requirements.{req.req_id}.parent", f"{req.parent} is not in this file")
    return RequirementSet(
        path=Path(path) if path is not None else None, document=document, procedure=procedure, requirements=out
    )


def _doc_ref(value: object, key: str, fail: Callable[[str, str], RequirementsError], *, required: bool) -> DocumentRef:
    if value is None and not required:
        return DocumentRef()
    if not isinstance(value, dict):
        raise fail(key, "expected a mapping with 'id' and 'issue'")
    v = cast(dict[str, object], value)
    doc_id, issue, title = v.get("id"), v.get("issue"), v.get("title", "")
    if not isinstance(doc_id, str) or not doc_id:
        raise fail(f"{key}.id", "missing or not text")
    if isinstance(issue, int | float) and not isinstance(issue, bool):
        issue = str(issue)
    if not isinstance(issue, str) or not issue:
        raise fail(f"{key}.issue", 'missing or not text (quote it: issue: "1.0")')
    return DocumentRef(doc_id, issue, str(title or ""))


# --------------------------------------------------------------------------------------------------------
# Traceability checks


def check_traceability(
    requirements: RequirementSet,
    cited_ids: Iterable[str] | Mapping[str, Iterable[str]],
    *,
    complete: bool = False,
) -> list[TraceIssue]:
    """Errors in the citations of a plan set, one line each.

    ``cited_ids``: the requirement IDs the collected tests cite, or a mapping ID → citing test IDs (the
    messages then name the tests). Always reports IDs that are not in the requirements file. With
    ``complete=True`` (the whole plan set was collected, not a ``-k`` selection) also reports test-method
    requirements that no test cites.
    """
    cited: dict[str, tuple[str, ...]] = (
        {k: tuple(sorted(set(v))) for k, v in cited_ids.items()}
        if isinstance(cited_ids, Mapping)
        else dict.fromkeys(cited_ids, ())
    )
    where = f" ({requirements.path})" if requirements.path else ""
    issues: list[TraceIssue] = []
    for req_id in sorted(cited):
        if req_id not in requirements:
            by = f" cited by {', '.join(cited[req_id])}" if cited[req_id] else " cited by a test"
            issues.append(TraceIssue("unknown", req_id, f"{req_id}{by} is not in the requirements file{where}"))
    if complete:
        for req in requirements.requirements.values():
            if req.method == "T" and req.req_id not in cited:
                issues.append(
                    TraceIssue("untested", req.req_id, f"{req.req_id} (method T) is cited by no test in the plan set")
                )
    return issues


def scan_plans(plans_dir: Path | str) -> dict[str, set[str]]:
    """Requirement ID → test IDs (``path::function``) of the plans under ``plans_dir`` that cite it.

    Reads the source (no import, no pytest): ``@pytest.mark.requirement(...)`` on a test function or class, and a
    module-level ``pytestmark`` holding ``pytest.mark.requirement(...)``. Paths are relative to the parent of
    ``plans_dir`` (``test_plans/eps/test_eps_power.py::test_power_on_inrush``).
    """
    plans_dir = Path(plans_dir)
    out: dict[str, set[str]] = {}
    for file in sorted(plans_dir.rglob("test_*.py")):
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        rel = file.relative_to(plans_dir.parent).as_posix()
        module_ids: list[str] = []
        for node in tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in targets) and node.value is not None:
                    module_ids += _marker_ids(node.value)
        for test_id, ids in _tests_in(tree.body, rel):
            for req_id in (*module_ids, *ids):
                out.setdefault(req_id, set()).add(test_id)
    return out


def _tests_in(body: Sequence[ast.stmt], prefix: str, inherited: Sequence[str] = ()) -> Iterable[tuple[str, list[str]]]:
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            ids = list(inherited)
            for d in node.decorator_list:
                ids += _marker_ids(d)
            yield f"{prefix}::{node.name}", ids
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            ids = list(inherited)
            for d in node.decorator_list:
                ids += _marker_ids(d)
            yield from _tests_in(node.body, f"{prefix}::{node.name}", ids)


def _marker_ids(node: ast.AST) -> list[str]:
    """IDs in every ``*.requirement(...)`` call inside ``node``."""
    ids: list[str] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "requirement":
            for arg in sub.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    ids.append(arg.value)
    return ids


# --------------------------------------------------------------------------------------------------------
# The matrix


@dataclass
class _Seen:
    failed: list[str] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)
    marginal: bool = False


def build_vcrm(
    requirements: RequirementSet,
    runs: Sequence[RunRecord],
    *,
    plan_citations: Mapping[str, Iterable[str]] | None = None,
) -> Vcrm:
    """The VCRM of ``requirements`` over ``runs`` (any order; the newest run at a level wins).

    ``plan_citations`` (requirement ID → test IDs, e.g. from :func:`scan_plans`) is the plan set: when given,
    "a T requirement with no test" means no test in the plan set cites it, and plan tests that cite an unknown
    ID are errors even if they did not run; without it, the runs are the plan set.
    """
    ordered = sorted(enumerate(runs), key=lambda ir: (_run_time(ir[1]), ir[0]))
    cited: dict[str, set[str]] = {}
    # per level: req → (run_id, time, _Seen) of the newest run in which a citing test executed
    latest: dict[str, dict[str, tuple[str, str, _Seen]]] = {}
    levels_run: set[str] = set()
    run_ids: list[str] = []
    for _, run in ordered:
        level = _run_level(run)
        run_id = run.run.run_id if run.run else run.path.parent.name
        run_ids.append(run_id)
        if level:
            levels_run.add(level)
        seen: dict[str, _Seen] = {}
        for t in run.tests:
            ids: set[str] = set(t.requirements)
            for m in t.measurements:
                ids.update(m.requirements)
            for req_id in ids:
                cited.setdefault(req_id, set()).add(t.test_id)
            if t.outcome == "skipped":
                continue
            for req_id in ids:
                s = seen.setdefault(req_id, _Seen())
                s.executed.append(t.test_id)
                if t.outcome in ("failed", "error") and req_id in t.requirements:
                    s.failed.append(t.test_id)
                if t.outcome == "interrupted":
                    s.interrupted.append(t.test_id)
            for m in t.measurements:
                for req_id in m.requirements:
                    s = seen[req_id]
                    if m.verdict == "fail" and t.test_id not in s.failed:
                        s.failed.append(t.test_id)
                    elif m.verdict == "marginal":
                        s.marginal = True
        if level:
            per_level = latest.setdefault(level, {})
            time = run.run.time if run.run else ""
            for req_id, s in seen.items():
                per_level[req_id] = (run_id, time, s)

    plan: dict[str, set[str]] = {k: set(v) for k, v in (plan_citations or {}).items()}
    all_cited: dict[str, set[str]] = {k: set(v) for k, v in cited.items()}
    for k, v in plan.items():
        all_cited.setdefault(k, set()).update(v)

    errors: list[TraceIssue] = []
    unknown = {k: tuple(sorted(v)) for k, v in sorted(all_cited.items()) if k not in requirements}
    errors += check_traceability(requirements, unknown)
    test_set = plan if plan_citations is not None else cited
    where = "the plan set" if plan_citations is not None else "the runs"
    for req in requirements.requirements.values():
        if req.method == "T" and not test_set.get(req.req_id):
            errors.append(TraceIssue("untested", req.req_id, f"{req.req_id} (method T) is cited by no test in {where}"))

    levels_seen = tuple(lv for lv in LEVELS if lv in levels_run)
    gaps: list[TraceIssue] = []
    rows: list[VcrmRow] = []
    for req in requirements.requirements.values():
        results: list[LevelResult] = []
        for level in LEVELS:
            if level not in req.levels:
                entry = latest.get(level, {}).get(req.req_id)
                if entry is not None and req.method == "T":
                    gaps.append(
                        TraceIssue(
                            "level not applicable",
                            req.req_id,
                            f"{req.req_id} was tested at {level} (run {entry[0]}) but is not verified at that level",
                        )
                    )
                results.append(LevelResult(level, "n/a"))
                continue
            entry = latest.get(level, {}).get(req.req_id)
            if req.method != "T":
                results.append(LevelResult(level, "evidence"))
                continue
            if entry is None:
                results.append(LevelResult(level, "not run"))
                continue
            run_id, time, s = entry
            if s.failed:
                results.append(LevelResult(level, "failed", run_id, time, s.marginal, tuple(sorted(set(s.failed)))))
            elif s.interrupted:  # never verified from a test that was cut short
                cut = tuple(sorted(set(s.interrupted)))
                results.append(LevelResult(level, "incomplete", run_id, time, s.marginal, cut))
            else:
                results.append(LevelResult(level, "verified", run_id, time, s.marginal, tuple(sorted(set(s.executed)))))
        if req.method == "T" and test_set.get(req.req_id):  # (an untested one is already an error)
            missing = [r.level for r in results if r.status == "not run" and r.level in levels_seen]
            if missing:
                gaps.append(
                    TraceIssue("not run at level", req.req_id, f"{req.req_id} was not run at {', '.join(missing)}")
                )
        rows.append(VcrmRow(req, tuple(sorted(all_cited.get(req.req_id, ()))), tuple(results)))
    rows.sort(key=lambda r: _sort_key(r.requirement.req_id))
    return Vcrm(
        document=requirements.document,
        rows=tuple(rows),
        errors=tuple(errors),
        gaps=tuple(gaps),
        levels_run=levels_seen,
        runs=tuple(run_ids),
        unknown_cited=unknown,
    )


_SUBSYSTEM_ORDER: Final = ("SYS", "EPS", "GSE", "OBC", "ADCS", "PL", "COM")


def _sort_key(req_id: str) -> tuple[int, str, str]:
    _, sub, num = req_id.split("-", 2)
    rank = _SUBSYSTEM_ORDER.index(sub) if sub in _SUBSYSTEM_ORDER else len(_SUBSYSTEM_ORDER)
    return rank, sub, num


def _run_level(run: RunRecord) -> str:
    if run.run is None:
        return ""
    return run.run.model_level or run.run.dut.model_level


def _run_time(run: RunRecord) -> float:
    from reports.run_record import parse_time

    t = parse_time(run.run.time) if run.run else None
    return t.timestamp() if t is not None else float("-inf")


# --------------------------------------------------------------------------------------------------------
# Command line: the VCRM of a campaign (every run under a folder), as text


def format_vcrm(vcrm: Vcrm) -> str:
    """A plain-text VCRM: one line per requirement (ID, method, result per level, tests or evidence), then
    the errors and gaps."""
    short = {"verified": "ok", "failed": "FAIL", "incomplete": "INC", "not run": "-", "n/a": "n/a", "evidence": "ev"}
    lines = [
        f"VCRM of {vcrm.document} over {len(vcrm.runs)} run(s); levels run: {', '.join(vcrm.levels_run) or 'none'}"
    ]
    lines.append(f"{'requirement':<14} M  " + " ".join(f"{lv:<5}" for lv in LEVELS) + " tests / evidence")
    for row in vcrm.rows:
        req = row.requirement
        cells = " ".join(f"{short[r.status] + ('*' if r.marginal else ''):<5}" for r in row.results)
        what = req.evidence if req.method != "T" else ", ".join(row.tests) or "NO TEST"
        lines.append(f"{req.req_id:<14} {req.method}  {cells} {what}")
    lines.append(
        "(ok verified, * marginal, FAIL failed, INC interrupted, - not run, n/a not at that level, "
        "ev closed by evidence)"
    )
    lines += [f"error: {e}" for e in vcrm.errors]
    lines += [f"gap: {g}" for g in vcrm.gaps]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m reports.vcrm RUNS_DIR [--requirements FILE] [--plans DIR]``: the VCRM over every run under
    RUNS_DIR (each ``*/journal.jsonl``). Exit status 1 when there are traceability errors, 2 on a bad file."""
    import argparse
    import sys

    from reports.run_record import JournalError, read_journal

    parser = argparse.ArgumentParser(prog="python -m reports.vcrm", description=main.__doc__)
    parser.add_argument("runs_dir", type=Path)
    parser.add_argument("--requirements", type=Path, default=Path("test_plans/requirements.yaml"))
    parser.add_argument("--plans", type=Path, default=None, help="plan set (default: the requirements' folder)")
    args = parser.parse_args(argv)
    try:
        reqs = load_requirements(args.requirements)
    except RequirementsError as exc:
        print(exc, file=sys.stderr)
        return 2
    runs = []
    for journal in sorted(args.runs_dir.glob("*/journal.jsonl")):
        if journal.parent.is_symlink():  # runs/latest
            continue
        try:
            runs.append(read_journal(journal))
        except JournalError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
    plans = args.plans or args.requirements.parent
    vcrm = build_vcrm(reqs, runs, plan_citations=scan_plans(plans))
    print(format_vcrm(vcrm))
    return 1 if vcrm.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
