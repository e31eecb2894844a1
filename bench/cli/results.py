"""`bench db import`, `bench trend`, `bench compare`: the results database from the command line.

bench db import [RUNS_ROOT|RUN_DIR] [--db URL]   load journals into the database (re-import replaces a run)
bench trend MEASUREMENT [--level EM] [--baseline RUN_ID] [--last N]
                                                  one measurement across runs: drift, regressions (exit 1)
bench compare RUN_A RUN_B                         differences between two runs

The database is ``--db URL``, else ``$BENCH_DB``, else ``sqlite:///runs/results.sqlite``.
Exit codes: 0 ok, 1 a regression was flagged (trend) or a journal could not be imported (db import),
2 a usage or database problem, reported as one line.

The full command line (bench/cli/app.py) registers these with :func:`register`; ``python -m bench.cli.results``
runs them standalone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

# SQLAlchemy and the report modules are imported inside the commands: registered in `bench`, this module
# must not slow down `bench run` / `bench safe` (SQLAlchemy alone takes ~0.3 s to import).

# the same as reports.trends.DEFAULT_K / DEFAULT_SPAN_PCT (a test keeps them equal)
DEFAULT_K = 3.0
DEFAULT_SPAN_PCT = 10.0

__all__ = ["app", "compare_cmd", "db_app", "register", "trend_cmd"]

console = Console(stderr=True)
out = Console()

DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="SQLAlchemy database URL [default: $BENCH_DB or sqlite:///runs/results.sqlite]"),
]

db_app = typer.Typer(help="The results database: import run journals.", no_args_is_help=True, add_completion=False)


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@db_app.command("import")
def import_cmd(
    path: Annotated[Path, typer.Argument(help="a run directory, or a folder of run directories")] = Path("runs"),
    db: DbOpt = None,
) -> None:
    """Import run journals into the results database; a run already there is replaced (killed runs too)."""
    from reports.db import DatabaseError, default_url, find_run_dirs, import_run, open_db
    from reports.run_record import JournalError

    if not path.exists():
        raise _fail(f"{path} does not exist")
    run_dirs = find_run_dirs(path)
    if not run_dirs:
        raise _fail(f"no journal.jsonl at or below {path}")
    url = db or default_url()
    try:
        engine = open_db(url)
    except DatabaseError as exc:
        raise _fail(str(exc)) from None
    failed = 0
    try:
        for run_dir in run_dirs:
            try:
                run_id = import_run(engine, run_dir)
            except JournalError as exc:
                failed += 1
                console.print(f"[red]skipped:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
                continue
            except DatabaseError as exc:
                raise _fail(str(exc)) from None
            out.print(f"imported {run_id}", highlight=False, markup=False)
    finally:
        engine.dispose()
    summary = f"{len(run_dirs) - failed} run(s) imported into {_safe_url(url)}, {failed} skipped"
    console.print(summary, highlight=False, markup=False)
    if failed:
        raise typer.Exit(1)


def _safe_url(url: str) -> str:
    # never print a password from a PostgreSQL URL (the URL was parsed once already by open_db)
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def trend_cmd(
    measurement: Annotated[str, typer.Argument(help="measurement name, e.g. EPS.IDLE_CURRENT")],
    db: DbOpt = None,
    level: Annotated[
        str | None, typer.Option("--level", help="only runs at this model level (EM, QM, FM, PFM)")
    ] = None,
    baseline: Annotated[str | None, typer.Option(help="baseline run id [default: the first run shown]")] = None,
    last: Annotated[int | None, typer.Option(help="only the last N runs", min=1)] = None,
    k: Annotated[float, typer.Option(help="flag a move of more than k × combined uncertainty")] = DEFAULT_K,
    span_pct: Annotated[float, typer.Option(help="flag a move of more than this % of the limit span")] = (
        DEFAULT_SPAN_PCT
    ),
) -> None:
    """One measurement across runs with its limits, drift, and regressions against a baseline (exit 1 if any)."""
    from sqlalchemy.exc import SQLAlchemyError

    from bench.cli.tables import drift_lines, trend_table
    from reports.db import DatabaseError, open_db
    from reports.trends import ResultsError, trend

    try:
        engine = open_db(db, create=False)
    except DatabaseError as exc:
        raise _fail(str(exc)) from None
    try:
        t = trend(engine, measurement, model_level=level, last=last, baseline=baseline, k=k, span_pct=span_pct)
    except ResultsError as exc:
        raise _fail(str(exc)) from None
    except SQLAlchemyError as exc:  # a database that went away mid-query: still one line
        raise _fail(f"query failed: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()
    headers, rows = trend_table(t)
    title = f"{t.name}" + (f" ({t.units})" if t.units else "") + (f", {level}" if level else "")
    table = Table(title=escape(title), title_justify="left")
    for h in headers:
        table.add_column(h, justify="right" if h in ("#", "value", "low", "high") else "left", overflow="fold")
    colours = {"pass": "green", "marginal": "yellow", "fail": "red"}
    for row in rows:
        # journal text may contain "[...]" (parametrised test ids): escaped so rich does not read it as markup
        cells = [escape(v) for v in row]
        cells[6] = f"[{colours.get(row[6], 'white')}]{cells[6]}[/]"
        if row[7].startswith("!") or "; !" in row[7]:
            cells[7] = f"[red]{cells[7]}[/]"
        table.add_row(*cells)
    out.print(table)
    for line in drift_lines(t):
        out.print(line, highlight=False, markup=False)
    if t.regressions:
        raise typer.Exit(1)


def compare_cmd(
    run_a: Annotated[str, typer.Argument(help="the reference run id")],
    run_b: Annotated[str, typer.Argument(help="the run compared with it")],
    db: DbOpt = None,
    changed_only: Annotated[
        bool, typer.Option("--changed-only", help="only measurements whose verdict changed or that one run lacks")
    ] = False,
) -> None:
    """Differences between two runs: measurement deltas, verdict changes, tests in one run only."""
    from sqlalchemy.exc import SQLAlchemyError

    from bench.cli.tables import comparison_table
    from reports.db import DatabaseError, open_db
    from reports.trends import ResultsError, compare

    try:
        engine = open_db(db, create=False)
    except DatabaseError as exc:
        raise _fail(str(exc)) from None
    try:
        c = compare(engine, run_a, run_b)
    except ResultsError as exc:
        raise _fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise _fail(f"query failed: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()
    headers, rows = comparison_table(c, changed_only=changed_only)
    table = Table(title=escape(f"{run_a} ({c.verdict_a}) → {run_b} ({c.verdict_b})"), title_justify="left")
    for h in headers:
        table.add_column(escape(h), justify="left" if h in ("measurement", "units", "verdict") else "right")
    for row in rows:
        cells = [escape(v) for v in row]
        if "→" in row[-1]:
            cells = [f"[bold]{v}[/]" for v in cells]
        table.add_row(*cells)
    out.print(table)
    for change in c.outcome_changes:
        out.print(f"outcome changed: {change.test_id}: {change.a} → {change.b}", highlight=False, markup=False)
    for test_id in c.tests_only_a:
        out.print(f"only in {run_a}: {test_id}", highlight=False, markup=False)
    for test_id in c.tests_only_b:
        out.print(f"only in {run_b}: {test_id}", highlight=False, markup=False)
    out.print(
        f"{len(c.measurements)} measurement(s), {len(c.verdict_changes)} verdict change(s), "
        f"{len(c.outcome_changes)} outcome change(s)",
        highlight=False,
    )


def register(target: typer.Typer) -> None:
    """Add `db import`, `trend` and `compare` to the main `bench` app."""
    target.add_typer(db_app, name="db")
    target.command("trend")(trend_cmd)
    target.command("compare")(compare_cmd)


app = typer.Typer(
    help="OTS-SAT bench results database: import journals, trends, run comparison.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
