"""A tiny model and a small synthetic pool shared by the learner tests (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from limr.model.tiny import init_tiny_model

    return init_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="session")
def synthetic_pool(tmp_path_factory) -> tuple[Path, Path]:
    from limr.tasks.synthetic import SyntheticConfig, make_splits, write_jsonl

    d = tmp_path_factory.mktemp("pool")
    train, test = make_splits(SyntheticConfig(n_train=12, n_test=4, levels=(1,)))
    return write_jsonl(train, d / "train.jsonl"), write_jsonl(test, d / "test.jsonl")


def write_config(path: Path, model: Path, prompts: Path, **sections) -> Path:
    """A small learner config; `sections` update the defaults one section at a time."""
    cfg = {
        "model": {"actor": str(model)},
        "data": {"prompts": str(prompts)},
        "rollout": {"samples_per_prompt": 2, "temperature": 1.0, "max_new_tokens": 6, "backend": "local"},
        "optim": {"actor_lr": 1e-3, "critic_lr": 1e-3},
        "batch": {"rollout_batch_size": 4, "train_batch_size": 4, "micro_batch_size": 4},
        "run": {"seed": 3},
        "metrics": {"progress": False},
    }
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    path.write_text(yaml.safe_dump(cfg))
    return path
