"""Layer rules that import-linter cannot see: test plans are not a package, so check their imports here."""

import ast
from pathlib import Path

PLANS = Path(__file__).resolve().parents[2] / "test_plans"
FORBIDDEN = {"instruments", "twin"}


def test_test_plans_import_nothing_from_instruments_or_twin():
    offenders = []
    for path in PLANS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert not offenders, f"test plans must use fixtures, not drivers or the twin: {offenders}"


def test_there_are_test_plans_to_check():
    assert list(PLANS.rglob("test_*.py"))
