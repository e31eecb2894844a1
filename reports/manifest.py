"""Tamper evidence for a run directory: a SHA-256 manifest of every file in it.

Written last, when the run's raw data and reports are complete, in the `sha256sum` format so it can also be
checked without this software (`cd <run-dir> && sha256sum -c manifest.sha256`). `verify_manifest` reports
every file that was modified, removed or added since.

Each sealing appends a line to ``seals.jsonl`` (what sealed it, when, why), which the manifest then covers:
a run sealed at its end says so; a report rebuilt later (`bench report`) is re-sealed only if nothing but the
rebuilt report files changed since the last seal — re-sealing never launders a modified journal — and a killed
run, which was never sealed, can be sealed once its report has been rebuilt.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

MANIFEST = "manifest.sha256"
SEALS = "seals.jsonl"


class ManifestError(ValueError):
    """The manifest itself is missing or unreadable."""


@dataclass(frozen=True)
class Verification:
    checked: int
    modified: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not (self.modified or self.missing or self.added)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(run_dir: Path) -> list[str]:
    return sorted(
        p.relative_to(run_dir).as_posix()
        for p in run_dir.rglob("*")
        if p.is_file() and not p.is_symlink() and p.name != MANIFEST
    )


def write_manifest(run_dir: Path) -> Path:
    lines = [f"{_digest(run_dir / rel)}  {rel}" for rel in _files(run_dir)]
    path = run_dir / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path


def verify_manifest(run_dir: Path) -> Verification:
    path = run_dir / MANIFEST
    try:
        text = path.read_text()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the manifest ({exc.strerror}); was the run finished?") from None
    recorded: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64:
            raise ManifestError(f"{path}:{number}: not a '<sha256>  <file>' line")
        recorded[rel] = digest
    present = set(_files(run_dir))
    modified = [rel for rel in sorted(recorded) if rel in present and _digest(run_dir / rel) != recorded[rel]]
    missing = [rel for rel in sorted(recorded) if rel not in present]
    added = sorted(present - recorded.keys())
    return Verification(len(recorded), modified, missing, added)


def seal(run_dir: Path, by: str, reason: str) -> Path:
    """Record who sealed the run and why (``seals.jsonl``), then write the manifest over everything."""
    entry = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "by": by, "reason": reason}
    with (run_dir / SEALS).open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
    return write_manifest(run_dir)


def reseal(run_dir: Path, rebuilt: Iterable[str], by: str) -> str:
    """Seal again after `rebuilt` files (the report) were regenerated; returns what was done, in words.

    Refused (ManifestError) when anything else changed since the last seal: the evidence no longer matches
    what was sealed, and a new seal would hide that."""
    if not (run_dir / MANIFEST).exists():
        seal(run_dir, by, "first seal: the run ended without sealing (killed?); report rebuilt from its journal")
        return "sealed for the first time (the run had ended without a manifest)"
    result = verify_manifest(run_dir)
    allowed = set(rebuilt) | {SEALS}
    changed = sorted({*result.modified, *result.missing, *result.added} - allowed)
    if changed:
        raise ManifestError(
            f"{run_dir}: {', '.join(changed)} changed since the run was sealed; not re-sealing — "
            "`bench verify` shows the differences"
        )
    seal(run_dir, by, f"report rebuilt ({', '.join(sorted(rebuilt))})")
    return "re-sealed: the manifest records the rebuild"
