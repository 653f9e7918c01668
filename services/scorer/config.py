"""Scorer settings: environment (`LIMR_*`) or CLI flags, validated once at start-up."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from limr.curation.bounds import Bounds
from limr.curation.policy import PublishPolicy
from limr.events.correct import CorrectRule, parse_correct

DEFAULT_POLICIES = (PublishPolicy(name="{run}-lim-0.6", strategy="lim", threshold=0.6),)


class ScorerSettings(BaseSettings):
    """Configuration of `limr serve scorer`. Every field can be set as `LIMR_<FIELD>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="LIMR_", extra="ignore", frozen=True)

    # Object store to watch (path, file://, s3://bucket/prefix); the S3 endpoint/keys come from LIMR_S3_* / AWS_*.
    store: str = "./limr-data"
    # HTTP listen address and port of /healthz, /readyz, /metrics, /v1/status.
    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=0, le=65535)
    # Seconds between listings when idle (a bucket notification wakes the loop earlier).
    poll_interval_s: float = Field(default=1.0, gt=0, le=3600)
    # Seconds between re-listings of the runs/ prefix to find new runs.
    runs_refresh_s: float = Field(default=5.0, gt=0, le=3600)
    # Seconds a finished run's per-run metrics (`run` label) stay exported after its final datasets are
    # published; then they are removed, so the scorer exports the active runs only (bounded cardinality).
    metrics_retention_s: float = Field(default=900.0, ge=0, le=86400 * 30)
    # Seconds between full re-listings of a run's events, to catch objects that appear below the cursor.
    rescan_interval_s: float = Field(default=60.0, gt=0)
    # Persist the checkpoint after this many ingested objects (and at the end of every listing batch).
    checkpoint_every: int = Field(default=16, ge=1, le=100_000)
    # ...but at most one mid-batch checkpoint per this many seconds: a checkpoint holds the whole prompts x
    # epochs counts, so on big runs it is the expensive part (correctness does not depend on the pace).
    checkpoint_min_interval_s: float = Field(default=1.0, ge=0, le=3600)
    # A run whose pass fails is retried after poll_interval_s, doubling up to this many seconds.
    run_retry_max_s: float = Field(default=300.0, gt=0, le=86400)
    # Bounds on one run's counts (quarantine, with the reason, any events object that would leave them): epochs
    # (0-based, also below run.json `epochs` when it says), distinct prompts, and prompts x epochs (8 bytes each).
    max_epochs: int = Field(default=1000, ge=1, le=1_000_000)
    max_prompts: int = Field(default=2_000_000, ge=1)
    max_cells: int = Field(default=100_000_000, ge=1)
    # auto: use MinIO bucket notifications when the server supports them; off: listing only.
    notifications: Literal["auto", "off"] = "auto"
    # Automatic publishing policies (JSON list in LIMR_POLICIES); empty list disables auto-publishing.
    policies: tuple[PublishPolicy, ...] = DEFAULT_POLICIES
    # Only ingest runs whose id matches this shell glob.
    runs: str = "*"
    # Key prefix of the scorer's own objects (checkpoints, quarantine records, score snapshots).
    state_prefix: str = "scorer"
    # Which samples count as correct (limr.events.correct): FIELD or FIELD OP NUMBER on the events' reward or
    # scores, e.g. "reward == 1", "acc", "reward >= 0.5"; None keeps the correct flags the writer recorded.
    # It applies to every run and policy; changing it needs a fresh state_prefix (counts are checkpointed).
    correct: str | None = None

    @field_validator("correct")
    @classmethod
    def _rule(cls, v: str | None) -> str | None:
        return None if v is None else str(parse_correct(v))

    def correct_rule(self) -> CorrectRule | None:
        return None if self.correct is None else parse_correct(self.correct)

    def bounds(self) -> Bounds:
        return Bounds(self.max_epochs, self.max_prompts, self.max_cells)

    @field_validator("state_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        v = v.strip("/")
        if not v or v.startswith("runs") or v.startswith("datasets"):
            raise ValueError("state_prefix must be a non-empty prefix outside runs/ and datasets/")
        return v


@lru_cache
def get_settings() -> ScorerSettings:
    """Settings from the environment, read once (never at import time)."""
    return ScorerSettings()
