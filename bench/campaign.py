"""Campaigns: named, versioned definitions of what a run is for (``test_plans/campaigns/<name>.yaml``).

A campaign says which plans run (paths, a marker expression, a ``-k`` expression), at which model level,
against which bench config, whether the run stops at the first failure, and its *kind*. The kind carries the
policies, so that nobody has to remember them on a command line:

================  ===========================  ==================  ================  =======
kind              calibration enforced         strict DB import    prompts           retries
================  ===========================  ==================  ================  =======
development       no (flagged)                 no                  ask               none
nightly           no (flagged)                 no                  never (unattended) none
acceptance        yes                          yes                 ask               none
qualification     yes                          yes                 ask               none
================  ===========================  ==================  ================  =======

A campaign may set ``prompts: never`` (or ``ask``) itself, and may give scripted ``answers`` to operator
prompts, keyed by the prompt's text: a run with nobody at the bench then still goes through those steps, and the
journal says the answer came from the campaign file. Retries are never a policy: a test that needed a second
try is a finding, not a pass.

:func:`load_campaign` validates a file (pydantic) and returns it with its SHA-256, which the run journals with
the file's text; any mistake is one :class:`~bench.errors.ConfigError` line naming the file and the field.
Checks that need pytest (does a marker select anything?) live with the command that runs them (`bench check`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bench.config import CONFIG_DIR, ModelLevel, load_model
from bench.errors import ConfigError

__all__ = [
    "CAMPAIGN_DIR",
    "CAMPAIGN_KINDS",
    "Campaign",
    "CampaignKind",
    "LoadedCampaign",
    "Policies",
    "find_campaign",
    "list_campaigns",
    "load_campaign",
    "policies_for",
]

CAMPAIGN_DIR = Path("test_plans") / "campaigns"
"""Where campaigns live, relative to the project root (the folder `bench run` is started from)."""

CampaignKind = Literal["development", "nightly", "acceptance", "qualification"]
CAMPAIGN_KINDS: tuple[CampaignKind, ...] = ("development", "nightly", "acceptance", "qualification")
PromptPolicy = Literal["ask", "never"]
Answer = bool | float | str


@dataclass(frozen=True)
class Policies:
    """What a campaign's kind implies for the run."""

    calibration_enforced: bool
    """Every instrument must be in calibration, or the session refuses to start (bench/session.py)."""
    strict_db: bool
    """A run that cannot be imported into the results DB fails."""
    prompts: PromptPolicy
    """``ask``: an operator prompt waits for an answer at a terminal; ``never``: it never waits."""
    retries: int = 0
    """Always 0: no campaign re-runs a failed test."""


_POLICIES: dict[str, Policies] = {
    "development": Policies(calibration_enforced=False, strict_db=False, prompts="ask"),
    "nightly": Policies(calibration_enforced=False, strict_db=False, prompts="never"),
    "acceptance": Policies(calibration_enforced=True, strict_db=True, prompts="ask"),
    "qualification": Policies(calibration_enforced=True, strict_db=True, prompts="ask"),
}


def policies_for(kind: str) -> Policies:
    """The policies of a campaign kind; an unknown kind (a free-form ``--campaign`` name) is a development run."""
    return _POLICIES.get(kind, _POLICIES["development"])


class Campaign(BaseModel):
    """One campaign file, validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")
    issue: int | str
    purpose: str = Field(min_length=1)
    kind: CampaignKind
    model_level: ModelLevel
    plans: tuple[str, ...] = Field(min_length=1)
    """Test plan files or folders, relative to the project root."""
    markers: str | None = None
    """A pytest ``-m`` expression the selected tests must match."""
    keyword: str | None = None
    """A pytest ``-k`` expression the selected tests must match."""
    stop_on_first_fail: bool = False
    bench_config: str | None = None
    """A config name from bench/configs (``twin``) or a path; none: the default (the auto-started twin)."""
    prompts: PromptPolicy | None = None
    """Overrides the kind's prompt policy."""
    answers: dict[str, Answer] = Field(default_factory=dict)
    """Scripted answers to operator prompts, keyed by the prompt's text."""

    @field_validator("plans")
    @classmethod
    def _plain_paths(cls, plans: tuple[str, ...]) -> tuple[str, ...]:
        for plan in plans:
            if not plan.strip() or Path(plan.split("::")[0]).is_absolute():
                raise ValueError(f"plan {plan!r} must be a path relative to the project root (test_plans/...)")
        return plans

    @property
    def policies(self) -> Policies:
        base = policies_for(self.kind)
        if self.prompts is None or self.prompts == base.prompts:
            return base
        return Policies(base.calibration_enforced, base.strict_db, self.prompts)

    def bench_config_path(self) -> Path | None:
        """The bench config the campaign expects (a bare name is one of bench/configs)."""
        if self.bench_config is None:
            return None
        if "/" not in self.bench_config and not self.bench_config.endswith((".yaml", ".yml")):
            return CONFIG_DIR / f"{self.bench_config}.yaml"
        return Path(self.bench_config)


@dataclass(frozen=True)
class LoadedCampaign:
    """A validated campaign with the file it came from, its text and the text's SHA-256 (for the journal)."""

    path: Path
    sha256: str
    text: str
    campaign: Campaign

    def journal_fields(self) -> dict[str, object]:
        """The ``campaign`` journal record's fields: who it is, what it is for, and the definition verbatim."""
        c = self.campaign
        return {
            "id": c.id,
            "issue": str(c.issue),
            "campaign_kind": c.kind,
            "purpose": c.purpose,
            "path": str(self.path),
            "sha256": self.sha256,
            "definition": self.text,
        }


def load_campaign(path: Path | str) -> LoadedCampaign:
    """Load and validate one campaign file. Raises ConfigError: one line per problem, naming file and field."""
    path = Path(path)
    campaign = load_model(path, Campaign, "campaign file", "id:, issue:, purpose:, kind:, plans:")
    if campaign.id != path.stem:
        raise ConfigError(f"{path}: id: {campaign.id!r} differs from the file name; name the file {campaign.id}.yaml")
    data = path.read_bytes()
    return LoadedCampaign(path, hashlib.sha256(data).hexdigest(), data.decode("utf-8"), campaign)


def list_campaigns(directory: Path = CAMPAIGN_DIR) -> list[Path]:
    """The campaign files in ``directory``, by name."""
    return sorted(directory.glob("*.yaml")) if directory.is_dir() else []


def find_campaign(name: str, directory: Path = CAMPAIGN_DIR) -> Path | None:
    """The file of the campaign called ``name`` (its id), or None when there is none."""
    path = directory / f"{name}.yaml"
    return path if "/" not in name and path.is_file() else None
