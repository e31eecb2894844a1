"""The detection matrix of a defect run: which test plan caught which seeded defect (docs/defects.md).

``bench defects`` runs the test plans on twins that each carry one seeded defect (a satellite wrong in a known
way) and writes what happened as a :class:`DefectRun`: one :class:`Cell` per defect × test that ran, a verdict
per defect, and the clean baseline. This module is the record's one reader and writer and its presentation:

* :func:`write_record` / :func:`read_record`: ``<run-dir>/defects.json``, the run's record;
* :func:`latest_run` finds the newest defect run below a runs folder (the results DB has its own query,
  :func:`reports.db.latest_defect_run`);
* :func:`coverage` gives, per requirement, the seeded defects that violate it and how many were caught —
  the VCRM's "seeded defects caught / catalogued" column;
* :func:`render_html`: ``defects.html``.

A cell's status: ``caught`` (the test failed: it said the satellite is wrong), ``missed`` (the catalogue says
this test catches the defect and it passed, was skipped or did not run), ``passed`` (it passed on a defect it is
not expected to catch: fine), ``error`` (it crashed instead of giving a verdict: a plan should fail, not error),
``skipped``. A defect is ``caught`` when every detection the catalogue expects holds, else ``missed``.

Pure functions from data to data; nothing here talks to the bench.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

__all__ = [
    "RECORD_NAME",
    "Baseline",
    "Cell",
    "DefectResult",
    "DefectRun",
    "coverage",
    "latest_run",
    "read_record",
    "render_html",
    "write_record",
]

RECORD_NAME: Final = "defects.json"
CELL_STATUSES: Final = ("caught", "missed", "passed", "error", "skipped")


@dataclass(frozen=True)
class Cell:
    defect: str
    test_id: str
    expected: bool
    """The catalogue names this test as one that catches the defect."""
    outcome: str
    """The test's outcome as the journal says (passed, failed, error, skipped), or ``not run``."""
    message: str = ""

    @property
    def status(self) -> str:
        if self.outcome == "failed":
            return "caught"
        if self.outcome == "error":
            return "error"
        if self.expected:
            return "missed"
        return "skipped" if self.outcome in ("skipped", "not run") else "passed"


@dataclass(frozen=True)
class DefectResult:
    defect: str
    subsystem: str
    requirements: tuple[str, ...]
    description: str
    expected: tuple[str, ...]
    """Test ids the catalogue says catch it."""
    run_dir: str = ""
    note: str = ""
    """Why the run said nothing (the twin refused the defect, pytest could not start…), else empty."""

    def verdict(self, cells: Sequence[Cell]) -> str:
        mine = {c.test_id: c for c in cells if c.defect == self.defect}
        if self.note:
            return "error"
        return "caught" if all(t in mine and mine[t].status == "caught" for t in self.expected) else "missed"


@dataclass(frozen=True)
class Baseline:
    passed: bool
    tests: int
    failed: tuple[str, ...] = ()
    """``test id: message`` of each test that did not pass on the clean twin."""
    run_dir: str = ""


@dataclass(frozen=True)
class DefectRun:
    run_id: str
    started: str
    """ISO 8601 UTC."""
    duration_s: float
    catalogue: str
    selection: str
    """What was run: ``all``, ``subset ci``, ``--defect A B``; with ``--all-plans`` when every plan ran."""
    baseline: Baseline | None
    defects: tuple[DefectResult, ...]
    cells: tuple[Cell, ...]
    workers: int = 2
    notes: tuple[str, ...] = field(default=())

    def verdicts(self) -> dict[str, str]:
        return {d.defect: d.verdict(self.cells) for d in self.defects}

    @property
    def missed(self) -> tuple[DefectResult, ...]:
        v = self.verdicts()
        return tuple(d for d in self.defects if v[d.defect] != "caught")

    @property
    def errors(self) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.status == "error")

    @property
    def ok(self) -> bool:
        """Every catalogued detection held and the clean baseline passed."""
        return not self.missed and (self.baseline is None or self.baseline.passed)


# --------------------------------------------------------------------------------------------------------
# The record


def write_record(run_dir: Path, run: DefectRun) -> Path:
    path = Path(run_dir) / RECORD_NAME
    document = {"kind": "defect_run", "schema": 1, **asdict(run)}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_record(path: Path | str) -> DefectRun:
    """A ``defects.json``; ``ValueError`` naming the file for anything that is not one."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict) or raw.get("kind") != "defect_run":
            raise ValueError("not a defect run record (kind: defect_run)")
        base = raw.get("baseline")
        return DefectRun(
            run_id=str(raw["run_id"]),
            started=str(raw["started"]),
            duration_s=float(raw["duration_s"]),
            catalogue=str(raw["catalogue"]),
            selection=str(raw.get("selection", "")),
            baseline=None
            if base is None
            else Baseline(bool(base["passed"]), int(base["tests"]), tuple(base["failed"]), str(base["run_dir"])),
            defects=tuple(
                DefectResult(
                    str(d["defect"]),
                    str(d["subsystem"]),
                    tuple(d["requirements"]),
                    str(d["description"]),
                    tuple(d["expected"]),
                    str(d.get("run_dir", "")),
                    str(d.get("note", "")),
                )
                for d in raw["defects"]
            ),
            cells=tuple(
                Cell(str(c["defect"]), str(c["test_id"]), bool(c["expected"]), str(c["outcome"]), str(c["message"]))
                for c in raw["cells"]
            ),
            workers=int(raw.get("workers", 2)),
            notes=tuple(raw.get("notes", ())),
        )
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def latest_run(runs_root: Path | str) -> DefectRun | None:
    """The newest readable ``*/defects.json`` below ``runs_root`` (by its start time), or None."""
    found: list[DefectRun] = []
    for path in Path(runs_root).glob(f"*/{RECORD_NAME}"):
        if path.parent.is_symlink():
            continue
        try:
            found.append(read_record(path))
        except ValueError:
            continue
    return max(found, key=lambda r: r.started, default=None)


def coverage(run: DefectRun) -> dict[str, tuple[int, int]]:
    """Requirement ID → (seeded defects violating it that were caught, catalogued)."""
    verdicts = run.verdicts()
    out: dict[str, tuple[int, int]] = {}
    for d in run.defects:
        for req in d.requirements:
            caught, total = out.get(req, (0, 0))
            out[req] = (caught + (verdicts[d.defect] == "caught"), total + 1)
    return out


# --------------------------------------------------------------------------------------------------------
# defects.html

_STYLE: Final = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; vertical-align: top; }
th.test { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; font-weight: normal; }
td.caught { background: #d7f0d7; } td.missed { background: #f6c6c6; font-weight: bold; }
td.error { background: #ffe0a0; } td.passed, td.skipped { color: #999; } td.expected { outline: 2px solid #2a7; }
.mono { font-family: ui-monospace, monospace; } .bad { color: #b00; font-weight: bold; } .ok { color: #070; }
"""
_MARK: Final = {"caught": "✔", "missed": "✘", "error": "!", "passed": "·", "skipped": "s"}


def _short(test_id: str) -> str:
    return test_id.rsplit("/", 1)[-1].replace(".py::", "::")


def render_html(run: DefectRun, *, tests: Iterable[str] | None = None) -> str:
    """The detection matrix as one self-contained HTML page (defect rows × test columns)."""
    e = html.escape
    verdicts = run.verdicts()
    columns = sorted(set(tests) if tests is not None else {c.test_id for c in run.cells})
    by_key: Mapping[tuple[str, str], Cell] = {(c.defect, c.test_id): c for c in run.cells}
    caught = sum(1 for v in verdicts.values() if v == "caught")
    base = run.baseline
    if base is None:
        baseline = "<p>No clean baseline in this run.</p>"
    elif base.passed:
        baseline = f'<p class="ok">Clean baseline: {base.tests} test(s) passed on a twin without defects.</p>'
    else:
        items = "".join(f"<li class='mono'>{e(f)}</li>" for f in base.failed)
        baseline = f'<p class="bad">Clean baseline FAILED: the plans fail on a good satellite.</p><ul>{items}</ul>'
    head = "".join(f'<th class="test mono" title="{e(t)}">{e(_short(t))}</th>' for t in columns)
    rows = []
    for d in run.defects:
        cells = []
        for t in columns:
            c = by_key.get((d.defect, t))
            if c is None:
                cells.append('<td class="skipped"></td>')
                continue
            cls = c.status + (" expected" if c.expected else "")
            cells.append(f'<td class="{cls}" title="{e(c.status)}: {e(c.message[:400])}">{_MARK[c.status]}</td>')
        verdict = verdicts[d.defect]
        vcls = "ok" if verdict == "caught" else "bad"
        rows.append(
            f'<tr><td class="mono">{e(d.defect)}</td><td>{e(d.subsystem)}</td>'
            f'<td class="mono">{e(" ".join(d.requirements))}</td><td>{e(d.description)}</td>'
            f'<td class="{vcls}">{e(verdict)}{(" — " + e(d.note)) if d.note else ""}</td>{"".join(cells)}</tr>'
        )
    missed = "".join(
        f"<li><span class='mono'>{e(d.defect)}</span> ({e(', '.join(d.requirements))}): {e(d.description)}; "
        f"expected to be caught by {e(', '.join(d.expected))}</li>"
        for d in run.missed
    )
    errors = "".join(f"<li class='mono'>{e(c.defect)} × {e(c.test_id)}: {e(c.message[:300])}</li>" for c in run.errors)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Defect run {e(run.run_id)}</title><style>{_STYLE}</style></head>
<body>
<h1>Plans with teeth: detection matrix {e(run.run_id)}</h1>
<p>Started {e(run.started)}, {run.duration_s:.0f} s wall time, {run.workers} twin(s) at a time; catalogue
<span class="mono">{e(run.catalogue)}</span>; selection: {e(run.selection)}.</p>
<p><strong>{caught} of {len(run.defects)} seeded defects caught</strong> as catalogued.
{"<span class='ok'>Every catalogued detection held.</span>" if run.ok else "<span class='bad'>NOT OK.</span>"}</p>
{baseline}
<h2>Missed defects</h2>
{f"<ul>{missed}</ul>" if missed else "<p class='ok'>None.</p>"}
<h2>Tests that errored instead of failing</h2>
{f"<ul>{errors}</ul>" if errors else "<p class='ok'>None: every plan that caught a defect failed with a verdict.</p>"}
<h2>Matrix</h2>
<p>✔ caught (the test failed) · ✘ missed (catalogued as catching, but passed) · ! errored · · passed (not
expected to catch it) · framed: the catalogue's expected detections. Hover a cell for the test's message.</p>
<table><thead><tr><th>defect</th><th>subsystem</th><th>requirements</th><th>what is wrong</th><th>verdict</th>
{head}</tr></thead><tbody>
{"".join(rows)}
</tbody></table>
</body></html>
"""
