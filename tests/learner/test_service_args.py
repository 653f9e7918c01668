"""The rollout service a run starts: RolloutArgs built from the learner config, overrides merged per section."""

from __future__ import annotations

from pathlib import Path

from limr.learner.config import load_config
from limr.learner.generator.service import rollout_args
from limr.rollout.config import RolloutArgs

REPO = Path(__file__).resolve().parents[2]


def test_rollout_args_from_configs_validate():
    for name in ("tiny-cpu.yaml", "qwen2.5-math-7b.yaml"):
        cfg = load_config(REPO / "configs" / name)
        args = RolloutArgs.model_validate(rollout_args(cfg, "r"))
        assert args.engine.model == cfg.model.actor
        assert args.engine.logprobs_mode == "processed_logprobs"  # comparable with the learner's logprobs
        assert args.limits.max_tokens == cfg.rollout.max_new_tokens
        assert args.engine.max_model_len > cfg.rollout.max_new_tokens


def test_paper_service_overrides_merge_into_engine_section():
    cfg = load_config(REPO / "configs" / "qwen2.5-math-7b.yaml")
    args = RolloutArgs.model_validate(rollout_args(cfg, "r"))
    assert args.num_replicas == 8 and args.num_gpus == 1
    assert args.engine.dtype == "bfloat16" and args.engine.kv_cache_gib is None
    assert args.engine.max_model_len == 1024 + 3072  # from the learner config, kept under the override
