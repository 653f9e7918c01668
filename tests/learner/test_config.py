"""The learner config: derived batch numbers, divisibility checks that name the field, shipped configs load."""

from __future__ import annotations

from pathlib import Path

import pytest

from limr.learner.config import ConfigError, LearnerConfig, load_config

REPO = Path(__file__).resolve().parents[2]


def _cfg(**sections) -> LearnerConfig:
    return LearnerConfig.model_validate({"model": {"actor": "m"}, **sections})


def test_paper_batch_vocabulary():
    cfg = load_config(REPO / "configs" / "qwen2.5-math-7b.yaml")
    assert cfg.rollout.samples_per_prompt == 8 and cfg.rollout.temperature == 1.2
    assert cfg.batch.rollout_batch_size == 1024 and cfg.batch.train_batch_size == 256
    assert cfg.optim.actor_lr == 5e-7 and cfg.optim.critic_lr == 9e-6 and cfg.algorithm.kl_coef == 0.01
    assert cfg.rollout.max_new_tokens == 3072
    d = cfg.derive(1389)  # the LIMR subset
    assert d.samples_per_step == 8192
    assert d.optimizer_steps_per_step == 32
    assert d.steps_per_epoch == 2  # 1024 + a last step of 365 prompts
    assert d.per_worker_train_batch == 256 // cfg.trainer.num_workers


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
        ({"trainer": {"strategy": "fsdp"}}, "fsdp"),
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
