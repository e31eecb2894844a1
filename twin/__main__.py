"""``python -m twin``: the OTS-SAT digital twin process (options: docs/contracts.md §1)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from twin.dialects import DEFAULT_PSU_DIALECT, PSU_DIALECT_NAMES

__all__ = ["build_parser", "loopback_host", "main"]

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m twin",
        description="OTS-SAT digital twin: simulated satellite and bench instruments on loopback ports.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address, loopback only (default 127.0.0.1)")
    parser.add_argument(
        "--ports",
        choices=("fixed", "auto"),
        default="fixed",
        help="fixed documented ports, or free ports chosen by the OS (default fixed)",
    )
    parser.add_argument(
        "--psu-dialect",
        choices=PSU_DIALECT_NAMES,
        default=DEFAULT_PSU_DIALECT,
        help=f"SCPI dialect of the power supply (default {DEFAULT_PSU_DIALECT})",
    )
    parser.add_argument(
        "--endpoints-file", type=Path, help="JSON endpoint table, written atomically once every server listens"
    )
    parser.add_argument("--parent-pid", type=int, help="exit when this process dies")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise generators (default 0)")
    parser.add_argument(
        "--csp-version", type=int, choices=(1, 2), help="CSP header version on the CAN bus (default: the ICD's)"
    )
    parser.add_argument("--icd", type=Path, help="ICD YAML of the satellite (default: bench/icd/ots-sat.yaml)")
    parser.add_argument("--cfp", type=int, choices=(1, 2), help="CAN fragmentation protocol (default: the ICD's)")
    parser.add_argument(
        "--defect",
        dest="defects",
        action="append",
        default=[],
        metavar="NAME",
        help="seed a defect: a satellite wrong in a known way (repeatable; names: twin/defects.py, docs/defects.md)",
    )
    parser.add_argument(
        "--log-level", type=str.upper, choices=_LOG_LEVELS, default="INFO", help="stderr log level (default INFO)"
    )
    return parser


def loopback_host(text: str) -> str | None:
    """The address to bind if ``text`` names the IPv4 loopback, else None.

    IPv4 only: the endpoints are published as VISA ``TCPIP0::<host>::<port>::SOCKET`` strings.
    """
    if text.strip().lower() == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return str(address) if address.version == 4 and address.is_loopback else None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    host = loopback_host(args.host)
    if host is None:
        reason = "the twin listens on the IPv4 loopback only (127.0.0.0/8 or localhost)"
        print(f"twin: refusing --host {args.host}: {reason}", file=sys.stderr)
        return 2
    from twin.defects import DEFECTS

    unknown = [name for name in args.defects if name not in DEFECTS]
    if unknown:
        print(f"twin: unknown --defect {unknown[0]} (known: {', '.join(sorted(DEFECTS))})", file=sys.stderr)
        return 2
    # Imported only now: a refused command line answers at once, without loading numpy and the servers.
    from twin.app import run
    from twin.world import Options

    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    options = Options(
        host=host,
        ports=args.ports,
        psu_dialect=args.psu_dialect,
        endpoints_file=args.endpoints_file,
        parent_pid=args.parent_pid,
        seed=args.seed,
        log_level=args.log_level,
        csp_version=args.csp_version,
        cfp_version=args.cfp,
        icd=args.icd,
        defects=tuple(args.defects),
    )
    try:
        return asyncio.run(run(options))
    except KeyboardInterrupt:  # a second ^C while stopping
        return 0


if __name__ == "__main__":
    sys.exit(main())
