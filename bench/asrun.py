"""The as-run context of a run: who, where, which software, which config — recorded once at run start."""

from __future__ import annotations

import datetime as dt
import getpass
import os
import platform
import secrets
import subprocess
from importlib import metadata
from pathlib import Path


def new_run_id(now: dt.datetime | None = None) -> str:
    """Sortable and unique enough for parallel runs on one bench: UTC time plus 4 random hex digits."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def git_revision(where: Path) -> str:
    """Commit of the bench software, with '+dirty' when the tree has local changes; 'unknown' outside git."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5
        )
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def software_version() -> str:
    try:
        return metadata.version("ots-bench")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def operator_name(configured: str | None) -> str:
    if configured:
        return configured
    try:
        return os.environ.get("BENCH_OPERATOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def host_name() -> str:
    return platform.node() or "unknown"
