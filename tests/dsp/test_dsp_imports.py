"""bench.dsp stays a leaf: numpy at import, scipy only inside functions, nothing from the rest of the bench."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

DSP = Path(__file__).resolve().parents[2] / "bench" / "dsp"
ALLOWED_TOP = {"numpy", "scipy", "bench"}


def test_importing_bench_dsp_does_not_import_scipy() -> None:
    code = (
        "import sys; import bench.dsp.modem, bench.dsp.spectrum, bench.dsp.ber; "
        "sys.exit(1 if any(m == 'scipy' or m.startswith('scipy.') for m in sys.modules) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_only_numpy_scipy_stdlib_and_itself() -> None:
    for path in DSP.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in ALLOWED_TOP, f"{path.name} imports {name}"
                if top == "bench":
                    assert name.startswith("bench.dsp"), f"{path.name} imports {name}"
