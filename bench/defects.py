"""The seeded-defect catalogue (``test_plans/defects.yaml``) and what a defect run executes (docs/defects.md).

A seeded defect is a satellite wrong in a known way, served by the twin (``python -m twin --defect NAME``).
The catalogue says, per defect, which subsystem is wrong, which requirements it violates and which tests
(pytest node ids) must fail on it. ``bench defects`` (bench/cli/defects.py) runs, per defect, the plans of its
subsystem plus the tests the catalogue names, on a twin of its own carrying it.

:func:`load_catalogue` validates the file (one-line errors naming file and field, like every YAML file of the
bench); :func:`check_catalogue` checks what can be checked without a twin: requirement IDs against
``requirements.yaml`` and node ids against the tests that exist. Whether the twin knows a defect's name can
only be checked at run time (`bench defects` asks the twin's control endpoint for its list).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field

from bench.config import load_model
from bench.errors import ConfigError

__all__ = [
    "DEFAULT_CATALOGUE",
    "SUBSYSTEM_PLANS",
    "Catalogue",
    "CatalogueEntry",
    "DefectJob",
    "check_catalogue",
    "load_catalogue",
    "plan_jobs",
]

DEFAULT_CATALOGUE: Final = Path("test_plans/defects.yaml")
# The plans of a subsystem: its folder of test_plans/.
SUBSYSTEM_PLANS: Final[dict[str, str]] = {
    "EPS": "test_plans/eps",
    "ADCS": "test_plans/adcs",
    "COMMS": "test_plans/comms",
    "OBC": "test_plans/obc",
    "PAYLOAD": "test_plans/payload",
}
_NAME: Final = r"^[A-Z][A-Z0-9_]+$"
_NODE_ID: Final = r"^test_plans/[\w/]+\.py::\w+(\[[^\]]+\])?$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CatalogueEntry(_Strict):
    subsystem: Annotated[str, Field(pattern="^(" + "|".join(SUBSYSTEM_PLANS) + ")$")]
    description: Annotated[str, Field(min_length=1)]
    requirements: Annotated[list[Annotated[str, Field(pattern=r"^OTS-[A-Z][A-Z0-9]{1,5}-\d{3}$")]], Field(min_length=1)]
    caught_by: Annotated[list[Annotated[str, Field(pattern=_NODE_ID)]], Field(min_length=1)]


class Catalogue(_Strict):
    schema_: Annotated[int, Field(alias="schema", ge=1, le=1)]
    subsets: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")], list[Annotated[str, Field(pattern=_NAME)]]] = {}
    defects: dict[Annotated[str, Field(pattern=_NAME)], CatalogueEntry]


@dataclass(frozen=True)
class LoadedCatalogue:
    path: Path
    catalogue: Catalogue

    @property
    def defects(self) -> dict[str, CatalogueEntry]:
        return self.catalogue.defects


def load_catalogue(path: Path | str = DEFAULT_CATALOGUE) -> LoadedCatalogue:
    """The catalogue at ``path``, validated; ``ConfigError`` with one line naming the file and field."""
    path = Path(path)
    catalogue = load_model(path, Catalogue, "defect catalogue", "schema:, subsets:, defects:")
    for subset, names in catalogue.subsets.items():
        for name in names:
            if name not in catalogue.defects:
                raise ConfigError(f"{path}: subsets.{subset}: {name!r} is not a defect of this catalogue")
    return LoadedCatalogue(path, catalogue)


def _requirement_ids(path: Path) -> set[str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the requirements: {exc}") from None
    return set((data or {}).get("requirements") or {}) if isinstance(data, dict) else set()


def check_catalogue(loaded: LoadedCatalogue, requirements: Path, collected: Iterable[str] | None = None) -> list[str]:
    """Every problem that can be found without a twin, one line each naming file and field.

    ``collected``: the node ids pytest collects under test_plans (parametrised ids included); without it, a
    node id is checked for its file and test function only (a source scan)."""
    path = loaded.path
    known_reqs = _requirement_ids(requirements)
    known_tests = set(collected) if collected is not None else None
    problems = []
    for name, entry in loaded.defects.items():
        for req in entry.requirements:
            if req not in known_reqs:
                problems.append(f"{path}: defects.{name}.requirements: {req} is not in {requirements}")
        for node_id in entry.caught_by:
            exists = node_id in known_tests if known_tests is not None else _in_source(node_id)
            if not exists:
                problems.append(f"{path}: defects.{name}.caught_by: no test {node_id}")
    return problems


def _in_source(node_id: str) -> bool:
    file, _, test = node_id.partition("::")
    function = test.split("[", 1)[0]
    try:
        text = Path(file).read_text(encoding="utf-8")
    except OSError:
        return False
    return re.search(rf"^def {re.escape(function)}\(", text, re.MULTILINE) is not None


# --------------------------------------------------------------------------------------------------------
# What a defect run executes


@dataclass(frozen=True)
class DefectJob:
    """One pytest process on one twin: a defect (or none: the clean baseline) and the tests to run."""

    defect: str | None
    targets: tuple[str, ...]
    """Plan folders and node ids handed to pytest."""
    entry: CatalogueEntry | None = None

    @property
    def label(self) -> str:
        return self.defect or "baseline"


def select(loaded: LoadedCatalogue, names: Sequence[str] = (), subset: str | None = None) -> list[str]:
    """The defects to run: ``names`` (checked), a subset's, or every catalogued one; ConfigError otherwise."""
    if names:
        unknown = [n for n in names if n not in loaded.defects]
        if unknown:
            raise ConfigError(
                f"{loaded.path}: defects: {unknown[0]!r} is not catalogued (known: {', '.join(sorted(loaded.defects))})"
            )
        return list(dict.fromkeys(names))
    if subset is not None:
        if subset not in loaded.catalogue.subsets:
            known = ", ".join(sorted(loaded.catalogue.subsets)) or "none"
            raise ConfigError(f"{loaded.path}: subsets: no subset {subset!r} (known: {known})")
        return list(loaded.catalogue.subsets[subset])
    return list(loaded.defects)


def plan_jobs(loaded: LoadedCatalogue, names: Sequence[str], *, all_plans: bool = False) -> list[DefectJob]:
    """Per defect: its subsystem's plans plus the named tests outside them (every plan with ``all_plans``).
    The baseline (first) runs every plan any defect job runs, on a clean twin."""
    jobs = []
    for name in names:
        entry = loaded.defects[name]
        if all_plans:
            targets: list[str] = ["test_plans"]
        else:
            folder = SUBSYSTEM_PLANS[entry.subsystem]
            targets = [folder, *(t for t in entry.caught_by if not t.startswith(folder + "/"))]
        jobs.append(DefectJob(name, tuple(dict.fromkeys(targets)), entry))
    covered: list[str] = []
    for job in jobs:
        covered += job.targets
    baseline = _minimal(covered)
    # The longest first: two workers finish together when the slow COMMS jobs do not come last.
    jobs.sort(key=lambda j: 0 if any(t.startswith(SUBSYSTEM_PLANS["COMMS"]) for t in j.targets) else 1)
    return [DefectJob(None, baseline), *jobs]


def _minimal(targets: Iterable[str]) -> tuple[str, ...]:
    """Drop targets inside another target (a node id inside a folder that is run anyway)."""
    unique = list(dict.fromkeys(targets))
    out = []
    for t in unique:
        path = t.split("::")[0]
        if not any(o != t and "::" not in o and (path == o or path.startswith(o.rstrip("/") + "/")) for o in unique):
            out.append(t)
    return tuple(out)
