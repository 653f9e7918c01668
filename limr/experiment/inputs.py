"""What every run of the tiny study starts from: the SFT warm start and the pool and held-out files.

`limr experiment` and `limr demo` both build them here, so the demo runs in the study's regime (a warm start
that already solves a good share of its pool, docs/experiment.md) from the same code, only smaller.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from limr.experiment.config import PoolSection, WarmStart

log = logging.getLogger("limr.experiment")


@dataclass
class StudyInputs:
    model: Path
    pool: Path
    held_out: Path
    pool_size: int
    groups: dict[str, str]  # prompt id -> skill (pool and held-out)


def build_warm_start(
    models: Path,
    seed: int,
    steps: int,
    problems: int,
    levels: tuple[int, ...],
    column_fraction: float,
    skills: dict[str, int] | None = None,
) -> Path:
    """`models/tiny` (init) -> `models/tiny-sft` (SFT warm start), each built only if missing; returns the latter."""
    from limr.model.sft import SFTConfig, run_sft
    from limr.model.tiny import init_tiny_model

    models = models.resolve()
    tiny, sft = models / "tiny", models / "tiny-sft"
    if not (sft / "config.json").exists():
        if not (tiny / "config.json").exists():
            init_tiny_model(tiny, seed=seed)
        log.info("SFT warm start: %d steps", steps)
        sft_cfg = SFTConfig(
            model=tiny, out=sft, steps=steps, n_train=problems, levels=levels, column_fraction=column_fraction,
            skills=dict(skills or {}), seed=seed, eval_n=0, threads=1,
        )  # fmt: skip
        run_sft(sft_cfg)
    return sft


def prepare_inputs(pool_cfg: PoolSection, warm_start: WarmStart, out: Path) -> StudyInputs:
    """Pool and held-out files under `out/data` (deterministic; drawn first, so a mix that asks for more problems
    than a skill has fails before any training), then the warm start under `out/models/<its settings>` (reused
    when it is there already), or the configured model."""
    from limr.data.pool import load_pool
    from limr.tasks.synthetic import write_jsonl

    groups: dict[str, str] = {}
    if pool_cfg.mix is not None:
        from limr.tasks.skills import make_mix

        # held-out problems are never ones the warm start trained on (sft_skills included), nor pool prompts
        pool_problems, held = make_mix(pool_cfg.mix, held_out_exclude=warm_start.seen_problems())
        pool = write_jsonl(pool_problems, out / "data" / "pool.jsonl")
        held_out = write_jsonl(held, out / "data" / "held_out.jsonl")
        groups = {p.id: p.source.rsplit("/", 1)[-1] for p in pool_problems + held}
        size = len(pool_problems)
    else:
        pool, held_out = Path(pool_cfg.prompts), Path(pool_cfg.eval_prompts)
        size = len(load_pool(pool))
    if warm_start.model:
        model = Path(warm_start.model)
    else:
        w = warm_start
        model = build_warm_start(
            out / "models" / w.slug(), seed=w.seed, steps=w.sft_steps, problems=w.sft_problems, levels=w.sft_levels,
            column_fraction=w.sft_column_fraction, skills=w.sft_skills,
        )  # fmt: skip
    return StudyInputs(model.resolve(), pool.resolve(), held_out.resolve(), size, groups)
