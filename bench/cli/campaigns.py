"""`bench campaigns` (one line each) and the campaign checks of `bench check`; `bench run NAME` resolves here.

A campaign is checked without contacting an instrument: the file validates (bench/campaign.py), every plan
path exists, the bench config it expects loads, the limits file has its model level, and its marker and ``-k``
expressions select at least one test (``pytest --collect-only``, in this process). Every problem is one line
naming the file and the field.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bench.campaign import CAMPAIGN_DIR, LoadedCampaign, find_campaign, list_campaigns, load_campaign
from bench.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["campaign_named", "check_campaign", "register"]


def campaign_named(name: str) -> LoadedCampaign | None:
    """The campaign ``name`` (test_plans/campaigns/NAME.yaml), or the campaign file ``name`` (….yaml); None when
    ``name`` is a test plan."""
    if name.endswith((".yaml", ".yml")):
        return load_campaign(name)
    if Path(name.split("::")[0]).exists():
        return None
    path = find_campaign(name)
    return load_campaign(path) if path is not None else None


class _Collected:
    def __init__(self) -> None:
        self.count = 0

    def pytest_collection_finish(self, session: object) -> None:
        self.count = len(getattr(session, "items", ()))


def _selected(plans: tuple[str, ...], option: str, expression: str) -> int:
    """How many tests of ``plans`` an ``-m``/``-k`` expression selects (collection only, quietly)."""
    import pytest

    collected = _Collected()
    args = [
        *plans,
        "--collect-only",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:junitxml",
        "-p",
        "no:allure_pytest",
        option,
        expression,
    ]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = pytest.main(args, plugins=[collected])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        return -1
    return collected.count


def check_campaign(loaded: LoadedCampaign, limits: Path) -> list[str]:
    """Every problem of one campaign, one line each (empty: it is ready to run)."""
    from bench.config import load_config
    from bench.limits import load_limits

    c, path = loaded.campaign, loaded.path
    problems = [f"{path}: plans: {plan!r} not found" for plan in c.plans if not Path(plan.split("::")[0]).exists()]
    try:
        load_config(c.bench_config_path())
    except ConfigError as exc:
        problems.append(f"{path}: bench_config: {str(exc).splitlines()[0]}")
    try:
        load_limits(limits, c.model_level)
    except ConfigError as exc:
        problems.append(f"{path}: model_level: {str(exc).splitlines()[0]}")
    if problems:
        return problems  # the selection is only worth collecting for plans that exist
    for field, option, expression in (("markers", "-m", c.markers), ("keyword", "-k", c.keyword)):
        if expression:
            n = _selected(c.plans, option, expression)
            if n <= 0:
                what = "is not a valid expression" if n < 0 else "selects no test"
                problems.append(f"{path}: {field}: {expression!r} {what} in {', '.join(c.plans)}")
    return problems


def check_all(console: Console, limits: Path, directory: Path = CAMPAIGN_DIR) -> bool:
    """`bench check`'s campaign part: a line per campaign; False when any has a problem."""
    ok = True
    for path in list_campaigns(directory):
        try:
            loaded = load_campaign(path)
        except ConfigError as exc:
            problems = str(exc).splitlines()
        else:
            problems = check_campaign(loaded, limits)
        for line in problems:
            console.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True)
        if problems:
            ok = False
        else:
            c = loaded.campaign
            console.print(f"[green]ok[/]: {path} ({c.kind}, {c.model_level.value})", highlight=False)
    return ok


def register(app: typer.Typer) -> None:
    @app.command("campaigns")
    def campaigns() -> None:
        """List the campaigns (test_plans/campaigns/*.yaml), one line each: name, kind, level, plans, purpose."""
        from rich.console import Console

        out = Console(soft_wrap=True, highlight=False)
        paths = list_campaigns()
        if not paths:
            out.print(f"no campaigns in {CAMPAIGN_DIR}/ (run from the project root)")
        for path in paths:
            try:
                c = load_campaign(path).campaign
            except ConfigError as exc:
                out.print(f"{path.stem:<18} [red]invalid[/]: {str(exc).splitlines()[0]}")
                continue
            selection = " ".join(c.plans)
            if c.markers:
                selection += f" -m {c.markers!r}"
            if c.keyword:
                selection += f" -k {c.keyword!r}"
            stop = ", stop on first fail" if c.stop_on_first_fail else ""
            out.print(
                f"{c.id:<18} {c.kind:<13} {c.model_level.value:<3} prompts {c.policies.prompts:<5} {selection}{stop} "
                f"— {c.purpose}"
            )
