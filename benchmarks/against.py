"""Run a benchmark on this tree and on an earlier commit, alternately, in the same invocation.

    python benchmarks/against.py REV [--rounds 2] -- bench_results.py --clock cpu
    python benchmarks/against.py HEAD~1 -- bench_foundation.py measure

The commit ``REV`` is exported (``git archive``) into a temporary folder; then, ``--rounds`` times, the
benchmark script is run from that folder (its own copy of the script, against its own code) and from this
tree, one after the other, each with ``PYTHONPATH`` pointing at its tree (so a pytest run inside the benchmark
loads that tree's plugin). On a machine shared with other jobs, absolute times move from minute to minute;
the two trees measured back to back are what can be compared. Every output is printed as it is, labelled.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def export(rev: str, target: Path) -> None:
    archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=ROOT, capture_output=True, check=True)
    tar = target / "tree.tar"
    tar.write_bytes(archive.stdout)
    with tarfile.open(tar) as t:
        t.extractall(target, filter="data")
    tar.unlink()


def run(tree: Path, script: str, args: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / script), *args], cwd=tree, env=env, capture_output=True, text=True
    )
    return proc.stdout + (f"\n[exit status {proc.returncode}]\n{proc.stderr[-3000:]}" if proc.returncode else "")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], usage="%(prog)s REV [--rounds N] -- SCRIPT [ARGS]"
    )
    parser.add_argument("rev", help="the earlier commit (e.g. HEAD~3, a hash)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two trees (default 2)")
    argv = sys.argv[1:]
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        parser.error("give the benchmark after --, e.g. -- bench_results.py")
    at = argv.index("--")
    args = parser.parse_args(argv[:at])
    command = argv[at + 1 :]
    script, script_args = command[0], command[1:]
    rev = subprocess.run(["git", "rev-parse", "--short", args.rev], cwd=ROOT, capture_output=True, text=True).stdout
    base = Path(tempfile.mkdtemp(prefix="bench-against-"))
    try:
        export(args.rev, base)
        for n in range(1, args.rounds + 1):
            for label, tree in ((f"before ({rev.strip()})", base), ("after (this tree)", ROOT)):
                print(f"===== round {n}: {label}: {script} {' '.join(script_args)}", flush=True)
                print(run(tree, script, script_args), flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
