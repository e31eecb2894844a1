"""`bench safe` without the full command line: plain arguments, plain lines on stderr, the stop in
:mod:`bench.stop`. Imported by the console script's entry before anything heavier (see `bench/cli/entry.py`)."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["parse_stop_args", "stop"]

_OPTIONS = {"-c": "config", "--bench-config": "config", "--run": "run", "--reason": "reason"}


def parse_stop_args(args: list[str]) -> tuple[Path | None, str | None, str] | None:
    """(config, run id, reason) of `bench safe [-c CONFIG] [--run RUN_ID] [--reason TEXT]`; None for anything
    else (`--help`, `--clear`, `--bench`, a typo), which the full command line parses and explains."""
    values: dict[str, str] = {}
    rest = iter(args)
    for arg in rest:
        key, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if key not in _OPTIONS or _OPTIONS[key] in values:
            return None
        if not eq:
            following = next(rest, None)
            if following is None or following.startswith("-"):
                return None
            value = following
        values[_OPTIONS[key]] = value
    config = values.get("config")
    return (Path(config) if config else None), values.get("run"), values.get("reason", "")


def _say(kind: str, text: str) -> None:
    prefix = {"interlock": "interlock set: ", "safe": "safe: ", "NOT SAFE": "NOT SAFE: "}.get(kind, "")
    print(prefix + text, file=sys.stderr, flush=True)


def stop(config: Path | None, run: str | None, reason: str) -> int:
    """The emergency stop; its exit status: 0 all safe, 1 an instrument NOT SAFE or the stop refused, 2 a config
    that cannot be read."""
    from bench.reservation import ReservationError
    from bench.stop import StopRefused, emergency_stop, read_stop_config

    try:
        plan = read_stop_config(config) if config is not None else None
        if plan is not None and plan.name is None and not plan.targets:
            raise StopRefused(
                f"{config}: no bench name or instrument in it; run `bench safe` without -c to stop every bench "
                "this PC holds"
            )
    except StopRefused as exc:
        _say("error", f"error: {exc}")
        return 2
    for warning in plan.warnings if plan else ():
        _say("warning", f"warning: {warning}")
    try:
        return 0 if emergency_stop(plan, run, reason, _say) else 1
    except (StopRefused, ReservationError) as exc:
        _say("error", f"error: {exc}")
        return 1
