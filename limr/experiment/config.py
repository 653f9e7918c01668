"""The typed config of `limr experiment` (YAML -> pydantic): pool, warm start, learner, budget, arms.

An arm is a name, a pool source, a curation mode and seeds. Pool sources: `full` (the whole pool),
`lim` (the LIM version the scorer publishes for the source FULL run), `rand` (a random subset of the LIM
version's size, published through the dataset API). Curation `dynamic` turns on the learner's
`curation.dynamic_sampling`. Every arm trains from the same warm start with the same step and sample
budget as FULL (`epochs` passes over the full pool), so only the prompts differ.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from limr.learner.config import set_dotted
from limr.tasks.skills import SkillMix

BUILTIN_POOLS = ("full", "lim")  # the whole pool, and the LIM version the scorer publishes for the FULL run


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Subset(_Section):
    """A curated pool the study publishes through the dataset API (POST /v1/datasets/{name}/versions) from the
    FULL source run's scores: the `limr select` knobs, one size rule, or `size_of` another pool's size."""

    strategy: Literal["lim", "rand", "linear", "variance", "learnability", "pass-band"] = Field(
        description="Selection strategy (limr select --strategy)."
    )
    threshold: float | None = Field(None, le=1.0, description="Keep scores >= threshold (not rand).")
    top_k: int | None = Field(None, ge=1, description="Keep k prompts (best k, or k random).")
    fraction: float | None = Field(None, gt=0, le=1, description="Keep this share of the scored prompts.")
    size_of: str | None = Field(None, description="As many prompts as this pool ('lim' or a subset before it).")
    seed: int = Field(0, ge=0, description="Seed of a random draw.")
    band_lo: float = Field(0.1, ge=0, le=1, description="pass-band: lower edge of the pass rate.")
    band_hi: float = Field(0.95, ge=0, le=1, description="pass-band: upper edge of the pass rate.")
    band_epochs: int = Field(1, ge=1, description="pass-band: epochs averaged (1: the starting model).")

    def publish_body(self) -> dict[str, Any]:
        """The dataset API publish body's selection knobs (size rule excluded: the study sets it)."""
        body: dict[str, Any] = {"strategy": self.strategy, "seed": self.seed}
        if self.strategy == "pass-band":
            body.update(band_lo=self.band_lo, band_hi=self.band_hi, band_epochs=self.band_epochs)
        return body

    @model_validator(mode="after")
    def _one_size(self) -> Subset:
        given = [n for n in ("threshold", "top_k", "fraction", "size_of") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of threshold, top_k, fraction, size_of (got {given or 'none'})")
        return self


class Arm(_Section):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,23}$", description="Arm name (part of run ids).")
    pool: str = Field(description="Pool source: full, lim (the scorer's version) or a name in `subsets`.")
    curation: Literal["none", "dynamic", "greso", "early-lim"] = Field(
        "none",
        description="dynamic: DAPO-style dynamic sampling; greso: GRESO's pre-rollout skipping on top of it "
        "(learner curation.mode greso); early-lim: the full pool for lim.early_epochs epochs, "
        "then the early-LIM subset the scorer publishes for the run (learner curation.mode early-lim).",
    )
    seeds: list[int] | None = Field(None, description="RL seeds (default: the experiment's seeds).")
    budget: Literal["steps", "epochs"] = Field(
        "steps",
        description="steps: FULL's number of steps (more passes over a smaller pool); epochs: FULL's number of "
        "epochs over the arm's own pool (fewer steps for a curated pool).",
    )


class WarmStart(_Section):
    model: str | None = Field(None, description="Use this warm-started model (else build one under --out).")
    sft_steps: int = Field(800, ge=1, description="SFT steps of the tiny model's warm start.")
    sft_problems: int = Field(600, ge=1, description="Synthetic problems the warm start trains on.")
    sft_levels: tuple[int, ...] = Field((1,), description="Synthetic levels of the warm start.")
    sft_column_fraction: float = Field(0.2, ge=0, le=1, description="Share of SFT additions worked by column.")
    sft_skills: dict[str, int] = Field(
        default_factory=dict,
        description="Extra SFT problems per named skill (limr.tasks.skills), e.g. {add-2x2: 300}: puts a wider "
        "skill in the learnable middle. They are kept out of the held-out set like the level problems.",
    )
    seed: int = Field(0, description="Seed of the tiny model and its warm start.")

    @field_validator("sft_skills")
    @classmethod
    def _known_skills(cls, v: dict[str, int]) -> dict[str, int]:
        from limr.tasks.skills import check_skill_counts

        return check_skill_counts(v, "warm_start.sft_skills")

    def slug(self) -> str:
        """A directory name that changes with every setting of the built warm start.

        The study reuses a warm start it finds under --out; keying the directory by its settings means a
        config that changes them builds a new one instead of silently reusing a model trained otherwise.
        """
        levels = "".join(str(lv) for lv in self.sft_levels)
        slug = f"sft{self.sft_steps}-n{self.sft_problems}-l{levels}-c{self.sft_column_fraction:g}-s{self.seed}"
        extra = "".join(f"-{k}.{n}" for k, n in sorted(self.sft_skills.items()))
        return slug + extra

    def seen_problems(self) -> set[str]:
        """The prompts of the warm start built from these settings trained on (held-out sets exclude them)."""
        from limr.model.sft import sft_problems

        return {
            p.prompt
            for p in sft_problems(
                self.sft_problems, self.seed, self.sft_levels, self.sft_skills, "warm_start.sft_skills"
            )
        }


class PoolSection(_Section):
    mix: SkillMix | None = Field(None, description="A synthetic skill mix (pool and held-out set).")
    prompts: str | None = Field(None, description="Or a prompt pool file (the held-out set in eval_prompts).")
    eval_prompts: str | None = Field(None, description="Held-out problems (with `prompts`; never in the pool).")

    @model_validator(mode="after")
    def _one(self) -> PoolSection:
        if (self.mix is None) == (self.prompts is None):
            raise ValueError("give exactly one of pool.mix and pool.prompts")
        if self.prompts is not None and self.eval_prompts is None:
            raise ValueError("pool.prompts needs pool.eval_prompts (the held-out problems)")
        return self


class LimSection(_Section):
    threshold: float = Field(0.6, le=1.0, description="LIM selection threshold (the paper's 0.6).")
    source_seed: int | None = Field(None, description="FULL seed whose run LIM scores (default: the first).")
    early_epochs: int = Field(2, ge=1, description="early-lim arms: epochs of the full pool before the switch.")


class ServicesSection(_Section):
    host: str = Field(
        "127.0.0.1",
        description="Listen address of scorer and dataset API. 0.0.0.0 on a multi-node cluster: learner ranks on "
        "other nodes read curated pools through the API, at this node's IP.",
    )
    scorer_port: int = Field(0, ge=0, le=65535, description="`limr serve scorer` port (0: a free one).")
    datasets_port: int = Field(0, ge=0, le=65535, description="`limr serve datasets` port (0: a free one).")
    poll_interval_s: float = Field(0.5, gt=0, description="Scorer listing interval.")
    publish_timeout_s: float = Field(300, gt=0, description="How long to wait for the scorer's final LIM version.")


class FinalEval(_Section):
    """Benchmarks every run's final model is evaluated on with `limr eval` (each under its paper protocol:
    MATH500 greedy, AIME24 and AMC23 the mean of 4 samples at T = 0.4; limr.evaluation.benchmarks)."""

    benchmarks: list[str] = Field(["math500", "aime24", "amc23"], min_length=1, description="Benchmark names.")
    data_dir: str | None = Field(None, description="Directory with <benchmark>.jsonl files.")
    max_tokens: int | None = Field(None, ge=1, description="Generated tokens per sample (None: limr eval's default).")
    gpu_memory_utilization: float = Field(0.3, gt=0, le=1, description="GPU share of the eval engine.")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per eval engine.")


class ExperimentConfig(_Section):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,31}$", description="Prefix of run ids and dataset names.")
    seeds: list[int] = Field([0, 1, 2], min_length=1, description="RL seeds of every arm (unless it gives its own).")
    epochs: int = Field(6, ge=2, description="FULL's passes over the pool; sets every arm's step budget.")
    eval_every: int = Field(6, ge=1, description="Held-out greedy accuracy every K steps (and at start and end).")
    learner: str = Field(description="Base learner config (YAML path) every arm starts from.")
    learner_overrides: dict[str, Any] = Field(default_factory=dict, description="Dotted overrides of it.")
    warm_start: WarmStart = Field(default_factory=WarmStart)
    pool: PoolSection
    lim: LimSection = Field(default_factory=LimSection)
    services: ServicesSection = Field(default_factory=ServicesSection)
    final_eval: FinalEval | None = Field(None, description="Evaluate each run's final model on benchmarks.")
    subsets: dict[str, Subset] = Field(
        default_factory=lambda: {"rand": Subset(strategy="rand", size_of="lim")},
        description="Curated pools published through the dataset API (default: rand, the size of lim).",
    )
    arms: list[Arm] = Field(min_length=1)
    quick: dict[str, Any] = Field(default_factory=dict, description="Dotted overrides applied by --quick.")

    @model_validator(mode="after")
    def _check(self) -> ExperimentConfig:
        known = list(BUILTIN_POOLS)
        for name, sub in self.subsets.items():
            if not re.match(r"^[a-z][a-z0-9-]{0,23}$", name) or name in BUILTIN_POOLS:
                raise ValueError(f"subsets: invalid name {name!r} (lowercase letters, digits, '-'; not full/lim)")
            if sub.size_of is not None and sub.size_of not in known:
                raise ValueError(f"subsets.{name}.size_of: {sub.size_of!r} is not lim or a subset listed before it")
            known.append(name)
        for a in self.arms:
            if a.pool not in known:
                raise ValueError(f"arms: {a.name!r} reads pool {a.pool!r}; known pools: {', '.join(known)}")
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arms: names must be unique, got {names}")
        for a in self.arms:
            if a.curation == "early-lim" and (a.pool != "full" or self.lim.early_epochs >= self.epochs):
                raise ValueError(
                    f"arms: {a.name!r} (early-lim) needs pool full and lim.early_epochs ({self.lim.early_epochs})"
                    f" below epochs ({self.epochs})"
                )
        if not any(a.pool == "full" and a.curation == "none" for a in self.arms):
            raise ValueError("arms: one arm must train on the full pool without curation (FULL: LIM scores it)")
        full = self.full_arm()
        source = self.source_seed()
        if source not in self.seeds_of(full):
            raise ValueError(f"lim.source_seed {source} is not a seed of arm {full.name!r}")
        return self

    def full_arm(self) -> Arm:
        return next(a for a in self.arms if a.pool == "full" and a.curation == "none")

    def seeds_of(self, arm: Arm) -> list[int]:
        return list(arm.seeds if arm.seeds is not None else self.seeds)

    def comparisons(self) -> list[tuple[str, str]]:
        """(curated pool, its random control) pairs the goal is checked on: lim vs the rand subset of its size,
        and any other selector's subset vs a rand subset sized by it."""
        pairs = []
        for name, sub in self.subsets.items():
            if sub.strategy == "rand" and sub.size_of is not None:
                base = sub.size_of
                if base == "lim" or self.subsets[base].strategy != "rand":
                    pairs.append((base, name))
        return pairs

    def source_seed(self) -> int:
        return self.lim.source_seed if self.lim.source_seed is not None else self.seeds_of(self.full_arm())[0]


class ExperimentConfigError(ValueError):
    """A config that does not validate; the message names the file and the field."""


def load_experiment(path: str | Path, quick: bool = False) -> ExperimentConfig:
    """Read and validate an experiment config; `quick` applies its `quick:` overrides (1 seed, small pool)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ExperimentConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as e:
        raise ExperimentConfigError(f"{path}: invalid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ExperimentConfigError(f"{path}: expected a mapping at the top level")
    if quick:
        for dotted, value in (data.get("quick") or {}).items():
            set_dotted(data, dotted, value)
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as e:
        msgs = [
            f"{path}: field {'.'.join(str(p) for p in err['loc']) or '(top level)'!r}: {err['msg']}"
            for err in e.errors()
        ]
        raise ExperimentConfigError("\n".join(msgs)) from None
