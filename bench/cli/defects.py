"""`bench defects`: mutation testing of the test plans — prove every plan fails on the satellite it must reject.

For each catalogued defect (test_plans/defects.yaml; or ``--defect NAME``…, or ``--subset ci``) a pytest process
runs the plans of the defect's subsystem plus the tests the catalogue names (``--all-plans``: every plan) against
a twin of its own carrying that defect (the bench config's ``twin.defects``). A clean baseline on a twin without
defects runs first; ``--workers`` processes run at a time (default 2: a twin run mostly waits).

What it leaves, in ``<out>/<run-id>/``: ``defects.json`` (the record: reports/defects.py), ``defects.html`` (the
detection matrix), ``manifest.sha256`` (`bench verify`), ``configs/<defect>.yaml`` (the bench config each twin
ran with), ``logs/<defect>.log`` (each pytest's output) and ``runs/<run-id>-<defect>/`` (each pytest run's own
run directory: journal, report). The matrix is imported into the results database (table ``defect_matrix``)
for trending and for the VCRM's "seeded defects caught / catalogued" column. Exit status 0 when every catalogued
detection held and the baseline passed, 1 otherwise, 2 for a usage or configuration error.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml

from bench.defects import DEFAULT_CATALOGUE, DefectJob, LoadedCatalogue, load_catalogue, plan_jobs, select
from bench.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from reports.defects import Baseline, Cell, DefectResult, DefectRun

__all__ = ["check_defect_catalogue", "register", "run_defects"]

JOB_TIMEOUT_S = 20 * 60.0  # one pytest process; a hung run must not hold the whole defect run


def _twin_defect_names(startup_timeout_s: float) -> set[str]:
    """The defects the twin knows, from its control endpoint's ``help`` (a twin of our own, briefly)."""
    from bench.twin_launcher import TwinProcess, twin_control

    with TwinProcess(startup_timeout_s=startup_timeout_s) as twin:
        reply = twin_control(twin.endpoints, cmd="help")
    defects = reply.get("defects")
    return set(defects) if isinstance(defects, dict) else set()


def _job_config(source: Path, icd: Path, defect: str | None, dest: Path) -> Path:
    """The bench config a job's twin runs with: the given one, its ICD made absolute, ``twin.defects`` set."""
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    raw["icd"] = str(icd.resolve())
    raw.setdefault("twin", {})["defects"] = [defect] if defect else []
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(
        f"# bench defects: {source} with the twin carrying {defect or 'no defect (clean baseline)'}\n"
        + yaml.safe_dump(raw, sort_keys=False),
        encoding="utf-8",
    )
    return dest


def _run_job(job: DefectJob, run_dir: Path, run_id: str, config: Path, extra: list[str]) -> tuple[int, Path, float]:
    """One pytest process for ``job``: (exit code, its run directory, seconds)."""
    child_id = f"{run_id}-{job.label}"
    log = run_dir / "logs" / f"{job.label}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "pytest", *job.targets,
        f"--bench-config={config}", f"--out={run_dir / 'runs'}", f"--run-id={child_id}",
        "-p", "no:cacheprovider", "-q", "--no-header", "-p", "no:randomly", *extra,
    ]  # fmt: skip
    env = dict(os.environ)
    env["CI"] = "1"  # no live progress line in a log file
    env["BENCH_DB"] = f"sqlite:///{(run_dir / 'runs' / 'results.sqlite').resolve()}"  # not the trend database
    env.pop("PYTEST_ADDOPTS", None)
    started = time.monotonic()
    with log.open("wb") as out:
        try:
            code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=JOB_TIMEOUT_S).returncode
        except subprocess.TimeoutExpired:
            code = -1
    return code, run_dir / "runs" / child_id, time.monotonic() - started


def _tests_of(child_dir: Path) -> list[tuple[str, str, str]] | None:
    """(test id, outcome, message) of each test of a pytest run, from its journal; None without one."""
    from reports.run_record import JournalError, read_journal

    journal = child_dir / "journal.jsonl"
    if not journal.is_file():
        return None
    try:
        record = read_journal(journal)
    except JournalError:
        return None
    return [(t.test_id, t.outcome, t.message) for t in record.tests]


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:])


def run_defects(
    loaded: LoadedCatalogue,
    names: list[str],
    *,
    config: Path,
    icd: Path,
    out: Path,
    workers: int,
    all_plans: bool,
    selection: str,
    pytest_args: list[str],
    known: set[str] | None,
    with_baseline: bool = True,
    progress: Callable[[str], None] = lambda line: None,
) -> tuple[DefectRun, Path]:
    """Run the baseline and every selected defect; the defect run's record and its directory."""
    from bench.asrun import new_run_id
    from reports.defects import Baseline, Cell, DefectResult, DefectRun

    run_id = new_run_id()
    run_dir = out / run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    started_at = datetime.now(UTC)
    started = time.monotonic()
    jobs = [j for j in plan_jobs(loaded, names, all_plans=all_plans) if with_baseline or j.defect is not None]
    refused = {name for name in names if known is not None and name not in known}

    def execute(job: DefectJob) -> tuple[DefectJob, int, Path, float]:
        if job.defect in refused:
            return job, -2, run_dir, 0.0
        cfg = _job_config(config, icd, job.defect, run_dir / "configs" / f"{job.label}.yaml")
        code, child, seconds = _run_job(job, run_dir, run_id, cfg, pytest_args)
        progress(f"{job.label}: pytest exit {code} after {seconds:.0f} s")
        return job, code, child, seconds

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        done = list(pool.map(execute, jobs))

    baseline: Baseline | None = None
    results: list[DefectResult] = []
    cells: list[Cell] = []
    for job, code, child, _ in done:
        tests = _tests_of(child) if code != -2 else None
        if job.defect is None:
            if tests is None:
                baseline = Baseline(False, 0, (f"no run: {_log_tail(run_dir / 'logs' / 'baseline.log')}",), str(child))
            else:
                bad = tuple(
                    f"{tid} ({outcome}): {message}" for tid, outcome, message in tests if outcome in ("failed", "error")
                )
                baseline = Baseline(not bad and code == 0, len(tests), bad, str(child))
            continue
        entry = job.entry
        assert entry is not None
        note = ""
        if code == -2:
            note = "the twin does not know this defect (its control `help` does not list it)"
        elif tests is None:
            note = f"no run (pytest exit {code}): {_log_tail(run_dir / 'logs' / f'{job.label}.log')}"
        elif code == -1:
            note = f"killed after {JOB_TIMEOUT_S:.0f} s"
        results.append(
            DefectResult(
                job.defect, entry.subsystem, tuple(entry.requirements), entry.description, tuple(entry.caught_by),
                str(child) if tests is not None else "", note,
            )
        )  # fmt: skip
        seen = set()
        for tid, outcome, message in tests or []:
            seen.add(tid)
            cells.append(Cell(job.defect, tid, tid in entry.caught_by, outcome, message))
        for tid in entry.caught_by:
            if tid not in seen and tests is not None:
                cells.append(Cell(job.defect, tid, True, "not run", "the test did not run (not collected?)"))
    run = DefectRun(
        run_id=run_id,
        started=started_at.isoformat(),
        duration_s=round(time.monotonic() - started, 1),
        catalogue=str(loaded.path),
        selection=selection + (" --all-plans" if all_plans else ""),
        baseline=baseline,
        defects=tuple(sorted(results, key=lambda r: (r.subsystem, r.defect))),
        cells=tuple(cells),
        workers=workers,
    )
    return run, run_dir


def _print_matrix(console: Console, run: DefectRun) -> None:
    from rich.table import Table

    verdicts = run.verdicts()
    table = Table(title=f"Seeded defects: {run.run_id}", show_lines=False)
    for column in ("defect", "subsystem", "requirements", "verdict", "caught by (test failed)", "missed / errored"):
        table.add_column(column, overflow="fold")
    for d in run.defects:
        mine = [c for c in run.cells if c.defect == d.defect]
        caught = [c.test_id.rsplit("/", 1)[-1] for c in mine if c.status == "caught"]
        bad = [f"{c.status}: {c.test_id.rsplit('/', 1)[-1]}" for c in mine if c.status in ("missed", "error")]
        verdict = verdicts[d.defect]
        style = "green" if verdict == "caught" else "bold red"
        table.add_row(
            d.defect,
            d.subsystem,
            " ".join(d.requirements),
            f"[{style}]{verdict}[/]",
            "\n".join(caught) or "—",
            "\n".join(bad) or d.note or "",
        )
    console.print(table)
    if run.baseline is not None:
        b = run.baseline
        if b.passed:
            console.print(f"[green]baseline[/]: {b.tests} test(s) passed on the clean twin", highlight=False)
        else:
            console.print("[bold red]baseline FAILED[/] on the clean twin:", highlight=False)
            for line in b.failed:
                console.print(f"  {line[:300]}", highlight=False)


class _NodeIds:
    def __init__(self) -> None:
        self.ids: list[str] = []

    def pytest_collection_finish(self, session: object) -> None:
        self.ids = [str(getattr(item, "nodeid", "")) for item in getattr(session, "items", ())]


def _collected_node_ids(plans: str = "test_plans") -> list[str] | None:
    """The node ids pytest collects under ``plans`` (collection only, quietly, in this process); None if it cannot."""
    import contextlib
    import io

    import pytest

    plugin = _NodeIds()
    args = [plans, "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:junitxml", "-p", "no:allure_pytest"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = pytest.main(args, plugins=[plugin])
    return plugin.ids if code == pytest.ExitCode.OK else None


def check_defect_catalogue(console: Console, catalogue: Path, requirements: Path) -> bool:
    """`bench check`'s part for test_plans/defects.yaml: requirement IDs and test node ids; False on a problem."""
    from bench.defects import check_catalogue

    if not catalogue.exists():
        console.print(f"[yellow]note:[/] no defect catalogue at {catalogue}", highlight=False)
        return True
    try:
        loaded = load_catalogue(catalogue)
        problems = check_catalogue(loaded, requirements, _collected_node_ids())
    except ConfigError as exc:
        problems = str(exc).splitlines()
    for line in problems:
        console.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True)
    if not problems:
        console.print(
            f"[green]ok[/]: {catalogue} ({len(loaded.defects)} seeded defects; requirement IDs and test node ids "
            "checked — defect names are checked against the twin's list at run time, by `bench defects`)",
            highlight=False,
        )
    return not problems


def register(app: typer.Typer) -> None:
    @app.command("defects")
    def defects(
        defect: Annotated[
            list[str] | None, typer.Option("--defect", help="a catalogued defect to run (repeatable) [default: all]")
        ] = None,
        subset: Annotated[str | None, typer.Option(help="a named selection of the catalogue (e.g. ci)")] = None,
        all_plans: Annotated[bool, typer.Option("--all-plans", help="run every plan on each defect")] = False,
        workers: Annotated[int, typer.Option(min=1, max=8, help="pytest processes (twins) at a time")] = 2,
        catalogue: Annotated[Path, typer.Option(help="defect catalogue")] = DEFAULT_CATALOGUE,
        bench_config: Annotated[
            Path | None, typer.Option("--bench-config", "-c", help="a bench config with an auto-started twin")
        ] = None,
        out: Annotated[Path, typer.Option(help="folder receiving the defect run's directory")] = Path("runs"),
        baseline: Annotated[bool, typer.Option(help="run the clean baseline first")] = True,
    ) -> None:
        """Seed each catalogued defect into a twin of its own and check the test plans catch it (docs/defects.md)."""
        from rich.console import Console

        from bench.config import load_config
        from bench.icd import icd_path
        from bench.twin_launcher import TwinError
        from reports.db import DatabaseError, import_defect_run, open_db, run_db_url
        from reports.defects import render_html, write_record
        from reports.manifest import seal

        console = Console(stderr=True)
        out_console = Console(soft_wrap=True)
        if defect and subset:
            console.print("[bold red]error:[/] give --defect or --subset, not both", highlight=False)
            raise typer.Exit(2)
        try:
            loaded = load_catalogue(catalogue)
            names = select(loaded, defect or (), subset)
            cfg = load_config(bench_config)
        except ConfigError as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        if not cfg.config.twin.autostart:
            console.print(
                f"[bold red]error:[/] {cfg.path}: twin.autostart: seeded defects live in the twin; give a bench "
                "config with an auto-started twin (the default, bench/configs/twin.yaml)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(2)
        try:
            known = _twin_defect_names(cfg.config.twin.startup_timeout_s)
        except TwinError as exc:
            console.print(f"[bold red]error:[/] cannot ask the twin for its defects: {exc}", highlight=False)
            raise typer.Exit(2) from None
        unknown = [n for n in names if n not in known]
        for name in unknown:
            console.print(
                f"[yellow]warning:[/] {loaded.path}: defects.{name}: the twin does not know it", highlight=False
            )
        selection = f"--defect {' '.join(defect)}" if defect else (f"subset {subset}" if subset else "all")
        console.print(
            f"bench defects: {len(names)} defect(s) + baseline, {workers} at a time ({selection})", highlight=False
        )
        run, run_dir = run_defects(
            loaded,
            names,
            config=cfg.path,
            icd=icd_path(cfg.path, cfg.config.icd),
            out=out,
            workers=workers,
            all_plans=all_plans,
            selection=selection,
            pytest_args=[],
            known=known,
            with_baseline=baseline,
            progress=lambda line: console.print(f"  {line}", highlight=False),
        )
        write_record(run_dir, run)
        (run_dir / "defects.html").write_text(render_html(run), encoding="utf-8")
        seal(run_dir, by="bench defects", reason="defect run finished")  # `bench verify RUN_DIR` checks it
        _print_matrix(out_console, run)
        try:
            engine = open_db(run_db_url(run_dir))
            try:
                rows = import_defect_run(engine, run)
            finally:
                engine.dispose()
            db_note = f"{rows} rows in the results database"
        except DatabaseError as exc:
            db_note = f"not in the results database: {exc}"
        caught = sum(1 for v in run.verdicts().values() if v == "caught")
        out_console.print(
            f"{caught}/{len(run.defects)} defects caught as catalogued in {run.duration_s:.0f} s; "
            f"{len(run.errors)} test(s) errored; {db_note}; matrix: {run_dir / 'defects.html'}",
            highlight=False,
        )
        raise typer.Exit(0 if run.ok else 1)
