"""`bench`: the command line of the OTS-SAT test bench.

bench run                 run the test plans against the bench in the config (default: the twin)
bench twin                serve the digital twin in the foreground on its fixed ports
bench safe                put a bench in safe state (all outputs off) from another terminal
bench report RUN_DIR      rebuild a run's report from its journal (also for killed runs)
bench check               validate a bench config and the limits file without touching hardware
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bench.cli_results import register as register_results_commands
from bench.config import ConfigError, ModelLevel, load_config
from bench.limits import load_limits
from bench.twin_launcher import running_twins
from instruments.errors import InstrumentError
from instruments.registry import open_power_supply

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


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    plans: Annotated[list[str] | None, typer.Argument(help="test plan files or folders [default: test_plans]")] = None,
    bench_config: ConfigOpt = None,
    model_level: Annotated[ModelLevel | None, typer.Option(help="model level of the DUT (selects limits)")] = None,
    dut_serial: Annotated[str | None, typer.Option(help="serial number of the unit under test")] = None,
    out: Annotated[Path, typer.Option(help="folder receiving run directories")] = Path("runs"),
    campaign: Annotated[str, typer.Option(help="campaign: development, qualification, acceptance, nightly")] = (
        "development"
    ),
    operator: Annotated[str | None, typer.Option(help="test conductor [default: $USER]")] = None,
    keyword: Annotated[str | None, typer.Option("-k", help="only tests matching this pytest expression")] = None,
) -> None:
    """Run test plans against the bench and write <out>/<run-id>/ (journal, report.html, junit.xml, allure-results).

    Extra arguments after `--` go to pytest unchanged.
    """
    import pytest  # imported here: the other commands must start fast

    targets = plans or ["test_plans"]
    for target in targets:
        if not Path(target.split("::")[0]).exists():
            raise _fail(f"test plan '{target}' not found; run from the project root or give the path to the plans")
    args = [*targets, "--out", str(out), "--campaign", campaign, "-p", "no:cacheprovider"]
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
    args += list(ctx.args)
    latest = out / "latest"
    before = latest.resolve() if latest.exists() else None
    code = int(pytest.main(args))
    if latest.exists() and latest.resolve() != before:  # this run got as far as opening its journal
        _print_run_summary(latest)
    raise typer.Exit(code)


def _print_run_summary(run_dir: Path) -> None:
    """The operator's view at the end of a run: one line per test, the verdict, where the evidence is."""
    from rich.table import Table

    from reports.journal import JournalError, read_journal

    journal = run_dir / "journal.jsonl"
    if not journal.exists():
        return
    try:
        record = read_journal(journal)
    except JournalError as exc:
        console.print(f"[red]journal unreadable:[/] {exc}")
        return
    table = Table(title=f"run {record.run.run_id if record.run else run_dir.name}", title_justify="left")
    for column in ("test", "outcome", "pass", "marginal", "fail"):
        table.add_column(column, justify="left" if column in ("test", "outcome") else "right")
    colours = {"passed": "green", "failed": "red", "error": "red", "skipped": "yellow"}
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
    verdict = str(record.verdict).upper()
    colour = {"PASS": "green", "FAIL": "red"}.get(verdict, "yellow")
    console.print(f"verdict: [bold {colour}]{verdict}[/]   report: {run_dir.resolve() / 'report.html'}")


@app.command()
def twin(
    psu_dialect: Annotated[str, typer.Option(help="power supply dialect: keysight or rigol")] = "keysight",
    ports: Annotated[str, typer.Option(help="fixed (documented ports) or auto (free ports)")] = "fixed",
    seed: Annotated[int, typer.Option(help="seed of the twin's noise")] = 0,
    log_level: Annotated[str, typer.Option(help="twin log level")] = "INFO",
) -> None:
    """Serve the OTS-SAT digital twin in the foreground (Ctrl-C stops it); prints every endpoint it serves."""
    argv = [sys.executable, "-m", "twin", "--ports", ports, "--psu-dialect", psu_dialect, "--seed", str(seed)]
    argv += ["--log-level", log_level]
    os.execv(sys.executable, argv)


@app.command()
def safe(bench_config: ConfigOpt = None) -> None:
    """Put a bench in safe state now: every supply output off, generator RF off. Works while a run is in progress."""
    try:
        loaded = load_config(bench_config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    instruments = loaded.config.instruments
    psu = instruments["psu"]

    def supply_off(resource: str) -> str:
        supply = open_power_supply(psu.driver, resource, psu.timeout_s)
        try:
            supply.all_outputs_off()
        finally:
            supply.close()
        return f"{psu.driver} at {resource}: all outputs off"

    actions: list[tuple[str, Callable[[str], str]]] = [(psu.resource, supply_off)]
    generator = instruments.generator
    if generator is not None:

        def generator_off(resource: str) -> str:
            from instruments.vsg import SignalGenerator

            # The ceiling only guards level settings; safe state sets none.
            with SignalGenerator(resource, max_level_dbm=-200.0, timeout_s=generator.timeout_s) as gen:
                gen.safe_state()
            return f"{generator.driver} at {resource}: RF and ARB off"

        actions.append((generator.resource, generator_off))
    failed = False
    for configured, action in actions:
        if configured.startswith("twin:"):
            name = configured.removeprefix("twin:")
            resources = [str(t["endpoints"][name]["resource"]) for t in running_twins() if name in t["endpoints"]]
            if not resources:
                console.print(f"no auto-started twin is running: nothing to make safe ({configured})")
                continue
        else:
            resources = [configured]
        for resource in resources:
            try:
                console.print(f"[green]safe[/]: {action(resource)}", highlight=False)
            except InstrumentError as exc:
                failed = True
                console.print(f"[bold red]NOT SAFE[/]: {resource}: {exc}", highlight=False)
    if failed:
        raise typer.Exit(1)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a run directory (holds journal.jsonl)")]) -> None:
    """Rebuild report.html and report.pdf of a run from its journal, also for a run that was killed."""
    from reports.journal import JournalError
    from reports.pdf import write_reports

    if not (run_dir / "journal.jsonl").exists():
        raise _fail(f"{run_dir}: no journal.jsonl here; give a run directory such as runs/latest")
    from reports.db import run_db_url

    try:
        files = write_reports(run_dir, db_url=run_db_url(run_dir))  # trends against the run's results DB
    except JournalError as exc:
        raise _fail(str(exc)) from None
    console.print(f"report: {files.html}", highlight=False)
    if files.pdf is not None:
        console.print(f"report: {files.pdf}", highlight=False)
    else:
        console.print(f"[yellow]no PDF:[/] {files.problem}", highlight=False)


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
) -> None:
    """Validate a bench config and the limits file (no instrument is contacted)."""
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


register_results_commands(app)


def main() -> None:  # pragma: no cover - console script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
