"""Selection and publishing policies: what a curated dataset version contains, as typed, validated config.

A `SelectionPolicy` is exactly the knobs of `limr select` (strategy, one size rule, seed, max epochs), so a
published version can always be reproduced with the CLI. A `PublishPolicy` adds where and for which runs the
scorer publishes automatically.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from limr.algo.selection import Criterion, PassBand

DATASET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class PolicyError(ValueError):
    """A policy that cannot be applied (bad name template, inconsistent size rule)."""


def _one_size_rule_schema(schema: dict[str, Any]) -> None:
    """State "exactly one of threshold, top_k, fraction" in the JSON schema too, so an OpenAPI client (or a
    fuzzer) knows which bodies are valid without trying them."""
    rules = ("threshold", "top_k", "fraction")
    given, absent = {"not": {"type": "null"}}, {"type": "null"}
    schema["oneOf"] = [
        {"required": [rule], "properties": {r: given if r == rule else absent for r in rules}} for rule in rules
    ]


class SelectionPolicy(BaseModel):
    """How prompts are selected from a scored run (the `limr select` options)."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_one_size_rule_schema)

    # lim: by LIM score; rand: seeded uniform sample; linear: the paper's LINEAR baseline; variance, learnability,
    # pass-band: the field's cheap signals from the same accuracy matrix (limr.algo.selection).
    strategy: Literal["lim", "rand", "linear", "variance", "learnability", "pass-band"] = "lim"
    # Keep prompts with score >= threshold (lim: LIM score, linear: slope x R^2, pass-band: 0 keeps the band), or
    # for rand sample as many as lim would keep.
    threshold: float | None = Field(default=None, ge=-1e6, le=1.0)
    # Keep the k best prompts (lim/linear) or k random ones (rand).
    top_k: int | None = Field(default=None, ge=1)
    # Keep this share of the scored prompts (0 < fraction <= 1).
    fraction: float | None = Field(default=None, gt=0.0, le=1.0)
    # Seed of the `rand` strategy (ignored by the others, kept so a manifest fully describes a version).
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    # Score only the first E epochs (None: every completed epoch).
    max_epochs: int | None = Field(default=None, ge=1, le=100_000)
    # pass-band only: the band of the mean accuracy over the first band_epochs epochs, between its two edges
    # band_lo and band_hi (in either order: every schema-valid request is a valid policy).
    band_lo: float = Field(default=0.1, ge=0.0, le=1.0)
    band_hi: float = Field(default=0.95, ge=0.0, le=1.0)
    band_epochs: int = Field(default=1, ge=1, le=100_000)

    @model_validator(mode="after")
    def _one_size_rule(self) -> SelectionPolicy:
        given = [n for n in ("threshold", "top_k", "fraction") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of threshold, top_k, fraction (got {given or 'none'})")
        return self

    def criterion(self) -> Criterion:
        """The size rule, as the selection core takes it."""
        return Criterion(threshold=self.threshold, top_k=self.top_k, fraction=self.fraction)

    def pass_band(self) -> PassBand:
        return PassBand(min(self.band_lo, self.band_hi), max(self.band_lo, self.band_hi), self.band_epochs)

    def selection_dict(self) -> dict[str, Any]:
        """Canonical form for manifests and content hashes (only the fields that change the selection: the band
        only for pass-band, so versions published before it existed keep their hashes)."""
        d = self.model_dump(mode="json")
        if self.strategy != "pass-band":
            for k in BAND_FIELDS:
                d.pop(k)
        return d


BAND_FIELDS = ("band_lo", "band_hi", "band_epochs")


class PublishPolicy(SelectionPolicy):
    """A policy the scorer applies automatically each time a run gains a completed epoch."""

    # Dataset name; `{run}` is replaced by the run id, e.g. "{run}-lim-0.6".
    name: str = Field(min_length=1, max_length=160)
    # Runs this policy applies to (shell glob on the run id).
    runs: str = "*"
    # Publish only once at least this many epochs are complete.
    min_epochs: int = Field(default=1, ge=1)
    # Early LIM: from K complete epochs on, and until the run ends, publish provisional versions whose scores are
    # the final LIM scores predicted by the default early-LIM predictor (`limr select --early`); the run's last
    # epoch then gives the plain LIM version. Needs strategy lim and a threshold; None: no early versions.
    early_epochs: int | None = Field(default=None, ge=1, le=100_000)

    @model_validator(mode="after")
    def _early_needs_lim_threshold(self) -> PublishPolicy:
        if self.early_epochs is not None and (
            self.strategy != "lim" or self.threshold is None or self.max_epochs is not None
        ):
            raise ValueError("early_epochs needs strategy lim with a threshold, and no max_epochs")
        return self

    def applies_to(self, run_id: str) -> bool:
        return fnmatch.fnmatchcase(run_id, self.runs)

    def dataset_name(self, run_id: str) -> str:
        name = self.name.replace("{run}", run_id)
        check_dataset_name(name)
        return name

    def selection(self) -> SelectionPolicy:
        return SelectionPolicy.model_validate(self.model_dump(include=set(SelectionPolicy.model_fields)))


def check_dataset_name(name: str) -> str:
    if not DATASET_NAME_RE.match(name):
        raise PolicyError(f"invalid dataset name {name!r}: use 1-128 of letters, digits, '.', '_' or '-'")
    return name
