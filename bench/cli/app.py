"""The full `bench` command line (typer): `run`, `twin`, `report`, `verify`, `check`, plus the commands of
:mod:`bench.cli.results` and :mod:`bench.cli.reservation`. The console script enters through
:mod:`bench.cli.entry`, which serves the emergency stop before this module is imported."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from typer._click.core import Context  # typer ships its own click; its Context is this one
from typer.core import TyperCommand

from bench.cli.campaigns import register as register_campaign_commands
from bench.cli.defects import register as register_defect_commands
from bench.cli.live import register as register_live_commands
from bench.cli.reservation import register as register_reservation_commands
from bench.cli.results import register as register_results_commands
from bench.cli.shell import register as register_shell_commands
from bench.config import ConfigError, ModelLevel, load_config
from bench.limits import load_limits

if TYPE_CHECKING:
    from reports.run_record import RunRecord

app = typer.Typer(
    help="OTS-SAT hardware-in-the-loop bench: run test plans, serve the twin, keep the DUT safe.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--bench-config", "-c", help="bench config YAML [default: the auto-started twin]")
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


class _RunCommand(TyperCommand):
    """`bench run PLANS... -- PYTEST_ARGS`: click would let the variadic PLANS argument swallow what follows
    `--`; the part after it is set aside before click parses, and handed to pytest unchanged."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if "--" in args:
            at = args.index("--")
            args, ctx.meta["pytest_args"] = args[:at], args[at + 1 :]
        return super().parse_args(ctx, args)


@app.command(cls=_RunCommand)
def run(
    ctx: typer.Context,
    plans: Annotated[
        list[str] | None,
        typer.Argument(help="a campaign name (bench campaigns), or test plan files or folders [default: test_plans]"),
    ] = None,
    bench_config: ConfigOpt = None,
    model_level: Annotated[ModelLevel | None, typer.Option(help="model level of the DUT (selects limits)")] = None,
    dut_serial: Annotated[str | None, typer.Option(help="serial number of the unit under test")] = None,
    out: Annotated[Path, typer.Option(help="folder receiving run directories")] = Path("runs"),
    campaign: Annotated[
        str | None, typer.Option(help="campaign kind: development, qualification, acceptance, nightly")
    ] = None,
    operator: Annotated[str | None, typer.Option(help="test conductor [default: $USER]")] = None,
    keyword: Annotated[str | None, typer.Option("-k", help="only tests matching this pytest expression")] = None,
    strict: Annotated[
        bool | None,
        typer.Option(
            "--strict/--no-strict",
            help="fail the run when it cannot be imported into the results DB [default: on for qualification "
            "and acceptance]",
        ),
    ] = None,
    parallel: Annotated[
        int,
        typer.Option(
            "--parallel",
            min=1,
            metavar="N",
            help="run the plans on N auto-started twins at once (pytest-xdist): one run, one report (twins only)",
        ),
    ] = 1,
    live: Annotated[
        bool,
        typer.Option("--live", help="serve the live bench view for the run; prints its URL [default: config `live:`]"),
    ] = False,
    live_host: Annotated[
        str | None,
        typer.Option(help="live view address, e.g. 0.0.0.0 for a lab screen (controls need the printed token)"),
    ] = None,
    live_port: Annotated[int, typer.Option(help="live view port [default: a free one]")] = 0,
) -> None:
    """Run test plans against the bench and write <out>/<run-id>/ (journal, report.html, junit.xml, allure-results).

    Arguments after `--` go to pytest unchanged, e.g. `bench run test_plans/eps -- -x -v`.
    `bench run nightly` runs the campaign test_plans/campaigns/nightly.yaml (its plans, level, policies).
    `bench run --parallel 2` runs the plans on two auto-started twins at once and still writes one run.
    """
    import pytest  # imported here: the other commands must start fast

    from bench.asrun import new_run_id
    from bench.cli.campaigns import campaign_named

    try:
        named = campaign_named(plans[0]) if plans else None
    except ConfigError as exc:
        raise _fail(str(exc).splitlines()[0]) from None
    campaign_args: list[str] = []
    if named is not None:
        kind = named.campaign.kind
        if len(plans or ()) > 1:
            raise _fail(f"{named.path}: plans: the campaign names its plans; narrow it with -k, not more paths")
        if campaign is not None and campaign != kind:
            raise _fail(f"{named.path}: kind: the campaign is a {kind} campaign; drop --campaign {campaign}")
        plans, campaign, campaign_args = list(named.campaign.plans), kind, ["--campaign-file", str(named.path)]
    campaign = campaign or "development"
    if parallel > 1:
        _refuse_parallel_on_real_instruments(bench_config or (named.campaign.bench_config_path() if named else None))
    targets = plans or ["test_plans"]
    for target in targets:
        if not Path(target.split("::")[0]).exists():
            raise _fail(f"test plan '{target}' not found; run from the project root or give the path to the plans")
    run_id = new_run_id()
    args = [*targets, "--out", str(out), "--run-id", run_id, "--campaign", campaign, "-p", "no:cacheprovider"]
    args += campaign_args
    if bench_config:
        args += ["--bench-config", str(bench_config)]
    if model_level:
        args += ["--model-level", model_level.value]
    if dut_serial:
        args += ["--dut-serial", dut_serial]
    if operator:
        args += ["--operator", operator]
    if keyword:
        args += ["-k", keyword]
    if strict is not None:
        args.append("--strict-db" if strict else "--no-strict-db")
    if parallel > 1:
        args += ["--parallel", str(parallel)]
    if live:
        args.append("--live")
    if live_host:
        args += ["--live-host", live_host]
    if live_port:
        args += ["--live-port", str(live_port)]
    passed_through = list(ctx.meta.get("pytest_args", ())) + list(ctx.args)
    if any(a == "--out" or a.startswith("--out=") for a in passed_through):  # the run's folder is bench run's own
        raise _fail("--out after '--' would split the run from its summary and progress: give it before '--'")
    args += passed_through
    finished = _RunFinished()
    from bench.cli.progress import live_progress, wanted

    run_dir = out / run_id  # this run's own directory: never `latest`, which another run may have moved
    with live_progress(run_dir) if wanted() else contextlib.nullcontext() as progress:  # on terminals only
        code = int(pytest.main(args, plugins=[finished] if progress is None else [finished, progress]))
    if finished.record is not None or (run_dir / "journal.jsonl").exists():
        _print_run_summary(run_dir, finished.record)
    raise typer.Exit(code)


def _refuse_parallel_on_real_instruments(config: Path | str | None) -> None:
    """`--parallel` runs one twin per worker: a bench of real instruments is one bench, one DUT."""
    try:
        loaded = load_config(config)
    except ConfigError as exc:
        raise _fail(str(exc).splitlines()[0]) from None
    if not loaded.config.twin.autostart:
        raise _fail(
            f"{loaded.path}: twin.autostart is off — --parallel runs one auto-started twin per worker; real "
            "instruments are one bench, one DUT: run without --parallel"
        )


class _RunFinished:
    """Catches the run record the bench plugin made the run's report and DB import from (fixtures/hooks.py),
    so the summary below is made from the same record rather than from another reading of the journal."""

    def __init__(self) -> None:
        self.record: RunRecord | None = None

    def pytest_bench_run_finished(self, run_dir: Path, record: RunRecord | None) -> None:
        self.record = record


def _print_run_summary(run_dir: Path, record: RunRecord | None = None) -> None:
    """The operator's view at the end of a run: one line per test, the verdict, where the evidence is.
    ``record``: the run's record (default: read from its journal, e.g. when the run ended before its report)."""
    from rich.table import Table

    from reports.run_record import JournalError, read_journal

    if record is None:
        try:
            record = read_journal(run_dir / "journal.jsonl")
        except JournalError as exc:
            console.print(f"[red]journal unreadable:[/] {exc}")
            return
    table = Table(title=f"run {record.run.run_id if record.run else run_dir.name}", title_justify="left")
    for column in ("test", "outcome", "pass", "marginal", "fail"):
        table.add_column(column, justify="left" if column in ("test", "outcome") else "right")
    colours = {"passed": "green", "failed": "red", "error": "red", "skipped": "yellow", "interrupted": "magenta"}
    for test in record.tests:
        verdicts = [m.verdict for m in test.measurements]
        table.add_row(
            test.name,
            f"[{colours.get(test.outcome, 'white')}]{test.outcome}[/]",
            str(verdicts.count("pass")),
            str(verdicts.count("marginal")),
            str(verdicts.count("fail")),
        )
    console.print(table)
    for test in record.tests:  # why a test was skipped, e.g. "needs an operator: <step>"
        if test.outcome == "skipped" and test.message:
            line = f"  {test.name}: {test.message.splitlines()[0][:200]}"
            console.print(line, highlight=False, markup=False, soft_wrap=True)
    verdict = str(record.verdict).upper()
    colour = {"PASS": "green", "FAIL": "red", "ABORTED": "bold red"}.get(verdict, "yellow")
    console.print(f"verdict: [bold {colour}]{verdict}[/] ({record.verdict_reason})", highlight=False)
    console.print(f"report:  {run_dir.resolve() / 'report.html'}", highlight=False)
    if record.db_import is not None and not record.db_import.ok:
        console.print(
            f"[bold yellow]WARNING:[/] the run is not in the results DB ({record.db_import.error}); "
            f"retry: {record.db_import.retry}",
            highlight=False,
        )


@app.command()
def twin(
    psu_dialect: Annotated[str, typer.Option(help="power supply dialect: keysight or rigol")] = "keysight",
    ports: Annotated[str, typer.Option(help="fixed (documented ports) or auto (free ports)")] = "fixed",
    seed: Annotated[int, typer.Option(help="seed of the twin's noise")] = 0,
    log_level: Annotated[str, typer.Option(help="twin log level")] = "INFO",
    defect: Annotated[
        list[str] | None,
        typer.Option("--defect", help="seed a defect: a satellite wrong in a known way (repeatable; docs/defects.md)"),
    ] = None,
) -> None:
    """Serve the OTS-SAT digital twin in the foreground (Ctrl-C stops it); prints every endpoint it serves."""
    argv = [sys.executable, "-m", "twin", "--ports", ports, "--psu-dialect", psu_dialect, "--seed", str(seed)]
    argv += ["--log-level", log_level, *(arg for name in defect or () for arg in ("--defect", name))]
    os.execv(sys.executable, argv)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a run directory (holds journal.jsonl)")]) -> None:
    """Rebuild report.html and report.pdf of a run from its journal, also for a run that was killed."""
    from reports.report_files import write_html_and_pdf
    from reports.run_record import JournalError

    if not (run_dir / "journal.jsonl").exists():
        raise _fail(f"{run_dir}: no journal.jsonl here; give a run directory such as runs/latest")
    from reports.db import run_db_url

    try:
        files = write_html_and_pdf(run_dir, db_url=run_db_url(run_dir))  # trends against the run's results DB
    except JournalError as exc:
        raise _fail(str(exc)) from None
    console.print(f"report: {files.html}", highlight=False)
    if files.pdf is not None:
        console.print(f"report: {files.pdf}", highlight=False)
    else:
        console.print(f"[yellow]no PDF:[/] {files.problem}", highlight=False)
    from reports.manifest import ManifestError, reseal

    rebuilt = [p.name for p in (files.html, files.pdf) if p is not None]
    try:
        console.print(f"manifest: {reseal(run_dir, rebuilt, 'bench report')}", highlight=False)
    except ManifestError as exc:
        raise _fail(str(exc), code=1) from None


@app.command()
def verify(run_dir: Annotated[Path, typer.Argument(help="a run directory (holds manifest.sha256)")]) -> None:
    """Check a run directory against its SHA-256 manifest: any modified, missing or added file is reported."""
    from reports.manifest import ManifestError, verify_manifest

    try:
        result = verify_manifest(run_dir)
    except ManifestError as exc:
        raise _fail(str(exc)) from None
    for label, files in (("MODIFIED", result.modified), ("MISSING", result.missing), ("ADDED", result.added)):
        for name in files:
            console.print(f"[bold red]{label}[/] {name}", highlight=False)
    if not result.intact:
        raise _fail(f"{run_dir}: the run's evidence does not match its manifest", code=1)
    console.print(f"[green]intact[/]: {result.checked} files match {run_dir}/manifest.sha256", highlight=False)


@app.command()
def check(
    bench_config: ConfigOpt = None,
    limits: Annotated[Path, typer.Option(help="limits file")] = Path("test_plans/limits.yaml"),
    campaigns: Annotated[Path, typer.Option(help="folder of campaign files")] = Path("test_plans/campaigns"),
    defects: Annotated[Path, typer.Option(help="seeded-defect catalogue")] = Path("test_plans/defects.yaml"),
) -> None:
    """Validate a bench config, the limits file, the campaigns and the defect catalogue (no instrument is
    contacted)."""
    from bench.icd import icd_path, load_icd

    try:
        loaded = load_config(bench_config)
        table = load_limits(limits, loaded.config.dut.model_level)
        icd = load_icd(icd_path(loaded.path, loaded.config.icd)) if loaded.config.instruments.can else None
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    dut = loaded.config.dut
    bus = dut.envelope.bus_voltage
    console.print(f"[green]ok[/]: {loaded.path} (bench '{loaded.config.bench.name}')", highlight=False)
    console.print(
        f"  DUT {dut.name} {dut.part_number} S/N {dut.serial} ({dut.model_level.value}); envelope "
        f"{bus.min:g}-{bus.max:g} V, {dut.envelope.max_current:g} A, OVP {dut.envelope.ovp_level:g} V",
        highlight=False,
    )
    console.print(f"[green]ok[/]: {limits} ({len(table)} limits at {dut.model_level.value})", highlight=False)
    if icd is not None:
        console.print(
            f"[green]ok[/]: {icd.path} (ICD {icd.mission}: {len(icd.nodes)} nodes, {len(icd.commands)} commands, "
            f"{len(icd.tm)} telemetry values, {len(icd.events)} events)",
            highlight=False,
        )
    from bench.cli.campaigns import check_all
    from bench.cli.defects import check_defect_catalogue

    campaigns_ok = check_all(console, limits, campaigns)
    defects_ok = check_defect_catalogue(console, defects, limits.parent / "requirements.yaml")
    if not (campaigns_ok and defects_ok):
        raise typer.Exit(2)


register_results_commands(app)
register_campaign_commands(app)
register_reservation_commands(app)
register_shell_commands(app)
register_defect_commands(app)
register_live_commands(app)
