"""Tamper evidence for a run directory: a SHA-256 manifest of every file in it.

Written last, when the run's raw data and reports are complete, in the `sha256sum` format so it can also be
checked without this software (`cd <run-dir> && sha256sum -c manifest.sha256`). `verify_manifest` reports
every file that was modified, removed or added since.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = "manifest.sha256"


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
