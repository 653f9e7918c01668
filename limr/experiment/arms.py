"""Arms and their runs: which prompts a run reads, its step budget, its id, and whether the store already has it.

A run of an arm is (arm, seed) -> run id `{experiment}-{arm}-s{seed}`, deterministic, so a second invocation
finds what the first one finished (its last step's metrics are in the store) and reuses it: the study
resumes where it stopped. Curated pools are read through the dataset API as `dataset://NAME@VERSION`.
"""

from __future__ import annotations

from dataclasses import dataclass

from limr.events.schema import metrics_key, run_prefix
from limr.experiment.config import Arm, ExperimentConfig
from limr.store import ObjectStore


@dataclass(frozen=True)
class RunPlan:
    arm: Arm
    seed: int
    run_id: str
    steps: int  # the study's step budget (FULL's steps)

    @property
    def label(self) -> str:
        return f"{self.arm.name} seed {self.seed}"


def run_id(cfg: ExperimentConfig, arm: Arm, seed: int) -> str:
    return f"{cfg.name}-{arm.name}-s{seed}"


def lim_dataset(cfg: ExperimentConfig) -> str:
    return f"{cfg.name}-lim"


def subset_dataset(cfg: ExperimentConfig, subset: str) -> str:
    """Dataset name of a subset the study publishes through the API (e.g. `tiny-rand`)."""
    return f"{cfg.name}-{subset}"


EARLY_DATASET = "{run}-early-lim"  # the scorer's provisional early-LIM versions of an early-lim run


def early_dataset_template() -> str:
    return EARLY_DATASET


def early_runs(cfg: ExperimentConfig) -> list[str]:
    """Run ids of the early-lim arms: the scorer follows them and publishes their early-LIM versions."""
    return [run_id(cfg, a, s) for a in cfg.arms if a.curation == "early-lim" for s in cfg.seeds_of(a)]


def plan_runs(cfg: ExperimentConfig, steps: int) -> list[RunPlan]:
    """Every run of the study in the order it trains: FULL's source seed first (LIM scores that one), then seed
    by seed, every arm of that seed in config order. Seed-major order means a study stopped part-way (it resumes
    from its store) has whole seeds done, which paired comparisons across arms can use."""
    full = cfg.full_arm()
    source = cfg.source_seed()
    plans = [RunPlan(full, source, run_id(cfg, full, source), steps)]
    seeds = sorted({s for arm in cfg.arms for s in cfg.seeds_of(arm)})
    for seed in seeds:
        for arm in cfg.arms:
            if seed in cfg.seeds_of(arm) and not (arm is full and seed == source):
                plans.append(RunPlan(arm, seed, run_id(cfg, arm, seed), steps))
    return plans


def is_finished(store: ObjectStore, plan: RunPlan) -> bool:
    """The run reached its last step: its metrics for that step are in the store."""
    return store.exists(metrics_key(plan.run_id, plan.steps))


def clear_run(store: ObjectStore, run: str) -> int:
    """Delete an unfinished run's objects (it restarts from step 0); returns how many were deleted."""
    keys = [info.key for info in store.list(run_prefix(run))]
    for k in keys:
        store.delete(k)
    return len(keys)


def prompts_for(arm: Arm, full_pool: str, versions: dict[str, str]) -> str:
    """The `--prompts` of an arm: the pool file, or the curated version read through the dataset API."""
    if arm.pool == "full":
        return full_pool
    return versions[arm.pool]  # e.g. "dataset://tiny-lim@3"
