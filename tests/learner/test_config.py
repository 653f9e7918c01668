"""The learner config: derived batch numbers, divisibility checks that name the field, shipped configs load."""

from __future__ import annotations

from pathlib import Path

import pytest

from limr.learner.config import ConfigError, LearnerConfig, load_config
from limr.learner.data import PromptPlan

REPO = Path(__file__).resolve().parents[2]


def _cfg(**sections) -> LearnerConfig:
    return LearnerConfig.model_validate({"model": {"actor": "m"}, **sections})


def test_paper_config_plans_every_prompt_once_per_epoch_in_full_steps_and_a_short_last_one():
    """What the run does with the paper's batch sizes on the 1,389-prompt LIMR subset: the step count the loop
    runs (derived.total_steps), the prompts each step draws (PromptPlan, sized by rollout_batch_size) and the
    span of the LR schedule (derived.total_optimizer_steps)."""
    cfg = load_config(REPO / "configs" / "qwen2.5-math-7b.yaml")
    pool = [f"p{i}" for i in range(1389)]
    d = cfg.derive(len(pool))
    plan = PromptPlan(pool, cfg.batch.rollout_batch_size, cfg.run.seed)
    assert d.steps_per_epoch == plan.steps_per_epoch == 2 and d.total_steps == 2 * cfg.run.epochs
    steps = [plan.for_step(s) for s in range(d.total_steps)]
    assert [len(s.indices) for s in steps[:2]] == [1024, 365]  # the last step of an epoch is short
    for epoch in range(cfg.run.epochs):
        drawn = [i for s in steps if s.epoch == epoch for i in s.indices]
        assert sorted(drawn) == list(range(len(pool)))  # every prompt once per epoch: LIM sees each every epoch
    # 8 samples x 1024 prompts in optimizer steps of 256 samples, ppo_epochs passes, every step
    assert d.total_optimizer_steps == (8 * 1024 // 256) * cfg.algorithm.ppo_epochs * d.total_steps
    assert cfg.run.max_steps is None or d.total_steps <= cfg.run.max_steps


def test_tiny_cpu_config_loads():
    cfg = load_config(REPO / "configs" / "tiny-cpu.yaml")
    assert cfg.trainer.num_workers >= 1 and not cfg.trainer.use_gpu


@pytest.mark.parametrize(
    ("sections", "field"),
    [
        ({"batch": {"train_batch_size": 10}, "trainer": {"num_workers": 4}}, "num_workers"),
        (
            {"batch": {"rollout_batch_size": 3, "train_batch_size": 16}, "rollout": {"samples_per_prompt": 2}},
            "train_batch_size",
        ),
        ({"trainer": {"strategy": "fsdp"}, "model": {"actor": "m", "dtype": "float16"}}, "float16"),
        (
            {
                "algorithm": {"estimator": "grpo"},
                "rollout": {"samples_per_prompt": 1},
                "batch": {"train_batch_size": 8},
            },
            "grpo",
        ),
    ],
)
def test_divisibility_and_consistency_checks(sections, field):
    with pytest.raises(ValueError, match=field):
        _cfg(**sections)


def test_load_config_names_file_and_field(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("model: {actor: m}\nalgorithm: {clip_eps: -1}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: field 'algorithm.clip_eps'"):
        load_config(p)
    p.write_text("model: {actor: m}\nalgorithm: {cliip: 1}\n")
    with pytest.raises(ConfigError, match="algorithm.cliip"):
        load_config(p)


def test_overrides_and_max_steps(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(
        "model: {actor: m}\nbatch: {rollout_batch_size: 4, train_batch_size: 8}\nrollout: {samples_per_prompt: 2}\n"
    )
    cfg = load_config(p, {"run.max_steps": 3, "run.epochs": 5})
    assert cfg.name == "c"
    d = cfg.derive(10)
    assert d.steps_per_epoch == 3 and d.total_steps == 3
    assert d.total_optimizer_steps == 3
