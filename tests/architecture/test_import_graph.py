"""The project's modules import one another without a circle.

The graph is grimp's (the library behind import-linter) over the packages bench, fixtures, instruments, reports
and twin: every ``import`` statement of a module, wherever it stands — at the top, inside a function (the lazy
imports that keep collection fast), and under ``if TYPE_CHECKING:``. Type-only imports count: a module whose
annotations name another's classes depends on it as much as one that calls it (``typing.get_type_hints`` imports
it), and the circle the twin used to have (``twin.world`` ↔ ``twin.nodes.satellite`` ↔ ``twin.nodes.base``) ran
through ``TYPE_CHECKING`` imports only — a graph without them would not have seen it.

A circle is reported as the shortest loop through each tangle, every step with the importing line.
"""

from __future__ import annotations

import itertools
import textwrap
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import grimp
import pytest

PACKAGES = ("bench", "fixtures", "instruments", "reports", "twin")


def build_graph(*packages: str) -> grimp.ImportGraph:
    # No cache: grimp's cache trusts file modification times, and a stale graph would hide a new circle.
    return grimp.build_graph(
        *packages, include_external_packages=False, exclude_type_checking_imports=False, cache_dir=None
    )


def tangles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with a circle in them (Tarjan, iterative), each sorted, in module order."""
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            module, next_edge = work.pop()
            if next_edge == 0:
                index[module] = low[module] = len(index)
                stack.append(module)
                on_stack.add(module)
            targets = edges[module]
            while next_edge < len(targets):
                target = targets[next_edge]
                next_edge += 1
                if target not in index:
                    work.append((module, next_edge))
                    work.append((target, 0))
                    break
                if target in on_stack:
                    low[module] = min(low[module], index[target])
            else:
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1 or module in edges[module]:
                        found.append(sorted(component))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
    return sorted(found)


def shortest_cycle(graph: grimp.ImportGraph, component: Iterable[str]) -> list[str]:
    """The shortest loop from the component's first module back to itself, inside the component."""
    members = set(component)
    start = min(members)
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        module = queue.popleft()
        for target in sorted(graph.find_modules_directly_imported_by(module) & members):
            if target == start:
                path = [module]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if target not in previous:
                previous[target] = module
                queue.append(target)
    raise AssertionError(f"no loop through {start} in {sorted(members)}")  # not a strongly connected component


def describe(graph: grimp.ImportGraph, cycle: list[str]) -> str:
    steps = []
    for importer, imported in itertools.pairwise(cycle):
        details = graph.get_import_details(importer=importer, imported=imported)
        where = "; ".join(f"line {d['line_number']}: {d['line_contents'].strip()}" for d in details)
        steps.append(f"  {importer} -> {imported}   ({where})")
    return " -> ".join(cycle) + "\n" + "\n".join(steps)


def circles(graph: grimp.ImportGraph) -> list[str]:
    """One report per tangle: its shortest loop, step by step, and every module caught in it."""
    return [
        describe(graph, shortest_cycle(graph, component)) + f"\n  (tangle of {len(component)}: {', '.join(component)})"
        for component in tangles(graph)
    ]


def test_no_import_circle_in_the_project() -> None:
    graph = build_graph(*PACKAGES)
    assert {p for p in PACKAGES if p in graph.modules} == set(PACKAGES)
    found = circles(graph)
    if found:
        pytest.fail("import circle(s) between modules:\n" + "\n".join(found), pytrace=False)


# --- the check itself: it finds a circle however it is closed -------------------------------------------------


def _package(root: Path, name: str, modules: dict[str, str]) -> None:
    (root / name).mkdir()
    (root / name / "__init__.py").write_text("")
    for module, source in modules.items():
        (root / name / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.mark.parametrize(
    "closing_import",
    [
        "from circle_pkg import a\n",
        "def later():\n    from circle_pkg import a\n    return a\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from circle_pkg.a import A\n",
    ],
    ids=["top-level", "inside-a-function", "type-checking-only"],
)
def test_a_planted_circle_is_found_and_shown(
    closing_import: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _package(tmp_path, "circle_pkg", {"a": "from circle_pkg import b\nclass A: ...\n", "b": "import circle_pkg.c\n",
                                      "c": closing_import, "d": "from circle_pkg import a\n"})  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = build_graph("circle_pkg")
    assert tangles(graph) == [["circle_pkg.a", "circle_pkg.b", "circle_pkg.c"]]  # d only hangs off the circle
    (report,) = circles(graph)
    assert report.startswith("circle_pkg.a -> circle_pkg.b -> circle_pkg.c -> circle_pkg.a\n")
    assert "circle_pkg.c -> circle_pkg.a" in report and "line " in report


def test_a_graph_without_circle_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _package(tmp_path, "chain_pkg", {"a": "from chain_pkg import b\n", "b": "import chain_pkg.c\n", "c": "X = 1\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert circles(build_graph("chain_pkg")) == []
