"""The `bench` console script: the emergency stop first, everything else after.

`bench safe` must switch the DUT off within a second of the operator's Enter, on a loaded bench PC too. Loading
the full command line (typer, rich, pydantic) costs more than that, so the plain stop forms
(`bench safe [-c CONFIG] [--run RUN_ID] [--reason TEXT]`) go straight to :mod:`bench.cli.stop`; every other
command, `--help` and `bench safe --clear` load :mod:`bench.cli.app`, where the same stop is also documented.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["safe"]:
        from bench.cli.stop import parse_stop_args, stop

        parsed = parse_stop_args(args[1:])
        if parsed is not None:
            sys.exit(stop(*parsed))
    from bench.cli.app import app

    app(args=args, prog_name="bench")
