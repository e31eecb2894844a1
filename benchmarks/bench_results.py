"""Benchmark: journal → results database import (target ≥ 100 000 measurements/s on SQLite).

    .venv/bin/python benchmarks/bench_results.py [--measurements 100000] [--tests 500] [--clock wall|cpu]

Writes a synthetic journal (docs/contracts.md §4) with the requested number of measurements into a
temporary folder, then times, each on a fresh database:

* ``json.loads``— ``json.loads`` of every line and nothing else: the floor of any stdlib reader (baseline);
* ``reference`` — ``read_journal(fast=False)``: the plain record-by-record reader (baseline, the reader
                  before the measurement fast path);
* ``parse``     — ``read_journal`` alone: what every import pays (JSON decoding + records);
* ``raw``       — the parsed measurements through stdlib ``sqlite3`` ``executemany`` (no SQLAlchemy, no
                  parse): what the database itself costs;
* ``import``    — ``reports.db.import_run`` end to end: parse + rows + inserts, one transaction;
* ``re-import`` — the same run again, which first deletes the previous copy (idempotent import);

and prints measurements/s for each, the end-to-end ratio to the target, the parse against the two
baselines measured in this same process, and the database stage alone (import − parse), so a slow import
shows whether the time goes into parsing, row building or SQLite.
Exit status 1 when the end-to-end import misses the target.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reports.db import import_run, open_db
from reports.run_record import RunRecord, read_journal

TARGET = 100_000.0


def write_journal(run_dir: Path, n_measurements: int, n_tests: int) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    per_test = max(1, n_measurements // n_tests)
    lines = [
        json.dumps(
            {
                "kind": "run_start",
                "run_id": "bench-results-run",
                "time": "2026-11-25T18:00:00+00:00",
                "campaign": "nightly",
                "model_level": "EM",
                "operator": "bench",
                "host": "bench-01",
                "git_revision": "abc1234",
                "software_version": "0.1.0",
                "bench_config": "bench/configs/twin.yaml",
                "config_hash": "sha256:00",
                "dut": {"name": "OTS-SAT EM", "model_level": "EM", "serial": "EM-001", "envelope": {}},
                "argv": ["bench", "run"],
            }
        )
    ]
    written = 0
    t = 0
    while written < n_measurements:
        test_id = f"test_plans/eps/test_eps.py::test_{t:05d}"
        lines.append(json.dumps({"kind": "test_start", "test_id": test_id, "name": f"test_{t:05d}",
                                 "time": "2026-11-25T18:00:01+00:00", "requirements": ["OTS-EPS-020"],
                                 "subsystem": "EPS", "doc": ""}))  # fmt: skip
        for k in range(min(per_test, n_measurements - written)):
            value = 0.5 + 0.0001 * k
            lines.append(
                json.dumps(
                    {
                        "kind": "measurement",
                        "test_id": test_id,
                        "name": f"EPS.M{k:04d}",
                        "value": value,
                        "units": "A",
                        "low": 0.35,
                        "high": 0.65,
                        "verdict": "pass",
                        "margin": 0.65 - value,
                        "margin_pct": 100 * (0.65 - value) / 0.3,
                        "requirements": ["OTS-EPS-020"],
                        "time": "2026-11-25T18:00:01.123456+00:00",
                        "uncertainty": 0.0025,
                    }
                )
            )
            written += 1
        lines.append(json.dumps({"kind": "test_end", "test_id": test_id, "time": "2026-11-25T18:00:02+00:00",
                                 "outcome": "passed", "duration": 1.0, "message": ""}))  # fmt: skip
        t += 1
    lines.append(json.dumps({"kind": "run_end", "time": "2026-11-25T18:10:00+00:00", "exit_status": 0,
                             "counts": {"passed": t}}))  # fmt: skip
    journal = run_dir / "journal.jsonl"
    journal.write_text("\n".join(lines) + "\n")
    return journal


def raw_sqlite(record: RunRecord, db_path: Path) -> None:
    """The parsed run's measurements through stdlib sqlite3 executemany: the database's own cost."""
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute(
        "CREATE TABLE m (run_pk INTEGER, seq INTEGER, test_seq INTEGER, test_id TEXT, name TEXT, value REAL, "
        "value_text TEXT, units TEXT, low REAL, high REAL, verdict TEXT, margin REAL, margin_pct REAL, "
        "uncertainty REAL, requirements TEXT, time TEXT, description TEXT, PRIMARY KEY (run_pk, seq))"
    )
    rows = []
    for test_seq, t in enumerate(record.tests):
        for m in t.measurements:
            value = m.value if isinstance(m.value, float) else None
            reqs = " ".join(m.requirements)
            rows.append((1, len(rows), test_seq, m.test_id, m.name, value, None, m.units, m.low, m.high, m.verdict,
                         m.margin, m.margin_pct, m.uncertainty, reqs, m.time, m.description))  # fmt: skip
    with con:
        con.executemany("INSERT INTO m VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.close()


def timed(fn: Callable[[], object], repeat: int, clock: Callable[[], float] = time.perf_counter) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measurements", type=int, default=100_000)
    parser.add_argument("--tests", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="best of N")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed time (the default); cpu: this process's CPU time, steadier on a shared, busy machine",
    )
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    n = args.measurements
    with tempfile.TemporaryDirectory(prefix="bench-results-") as tmp:
        root = Path(tmp)
        journal = write_journal(root / "run", n, args.tests)
        size_mb = journal.stat().st_size / 1e6
        counter = iter(range(1_000_000))

        def fresh_db() -> str:
            return f"sqlite:///{root / f'db{next(counter)}.sqlite'}"

        def loads_only() -> None:
            for line in journal.read_bytes().split(b"\n"):
                if line.strip():
                    json.loads(line)

        floor = timed(loads_only, args.repeat, clock)
        reference = timed(lambda: read_journal(journal, fast=False), args.repeat, clock)
        parse = timed(lambda: read_journal(journal), args.repeat, clock)
        record = read_journal(journal)
        raw = timed(lambda: raw_sqlite(record, root / f"raw{next(counter)}.sqlite"), args.repeat, clock)

        def one_import() -> None:
            engine = open_db(fresh_db())
            import_run(engine, journal.parent)
            engine.dispose()

        imp = timed(one_import, args.repeat, clock)
        engine = open_db(fresh_db())
        import_run(engine, journal.parent)
        reimp = timed(lambda: import_run(engine, journal.parent), args.repeat, clock)
        engine.dispose()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"journal: {n} measurements in {args.tests} tests, {size_mb:.1f} MB; best of {args.repeat}, "
          f"{args.clock} clock; {os.cpu_count()} CPUs, load average {load:.2f}")  # fmt: skip
    db_stage = max(imp - parse, 1e-9)
    rows = (
        ("json.loads of every line", floor),
        ("read_journal(fast=False)", reference),
        ("parse: read_journal only", parse),
        ("raw sqlite3 executemany only", raw),
        ("import_run, end to end", imp),
        ("  of which database stage", db_stage),
        ("re-import (replaces the run)", reimp),
    )
    for label, seconds in rows:
        print(f"  {label:<30} {seconds * 1e3:8.1f} ms  {n / seconds:>10,.0f} measurements/s")
    ratio = (n / imp) / TARGET
    print(f"import end to end: {n / imp:,.0f} measurements/s = {ratio:.2f} × the {TARGET:,.0f}/s target "
          f"({'met' if ratio >= 1 else 'NOT met'}); read_journal is {parse / imp:.0%} of it")  # fmt: skip
    print(f"read_journal: {reference / parse:.2f} × faster than the reference reader (fast=False), "
          f"{parse / floor:.2f} × the time of json.loads alone")  # fmt: skip
    print(f"database stage alone (import − parse): {n / db_stage:,.0f} measurements/s = "
          f"{n / db_stage / TARGET:.2f} × target; raw sqlite3 is {raw / db_stage:.0%} of it")  # fmt: skip
    return 0 if ratio >= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
