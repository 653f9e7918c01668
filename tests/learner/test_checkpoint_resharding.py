"""Sharded checkpoints (torch.distributed.checkpoint) resume on another number of workers: 2 -> 1 and 1 -> 2."""

from __future__ import annotations

import pytest
import torch

from limr.learner.batch import Rollout
from tests.support.gloo import run_ranks


def _trainer(model: str, rank: int, world: int):  # noqa: ANN202
    from limr.learner.config import LearnerConfig
    from limr.learner.dist import DistCtx
    from limr.learner.trainer import PPOTrainer

    cfg = LearnerConfig.model_validate(
        {
            "model": {"actor": model},
            "rollout": {"samples_per_prompt": 2, "temperature": 1.0},
            "algorithm": {"estimator": "gae"},  # actor and critic, two optimizers
            "optim": {"actor_lr": 1e-2, "critic_lr": 1e-2},
            "batch": {"rollout_batch_size": 4, "train_batch_size": 8, "micro_batch_size": 4},
        }
    )
    torch.manual_seed(0)
    return PPOTrainer(cfg, cfg.derive(4), DistCtx(rank=rank, world_size=world), pad_token_id=0)


def _train_and_save(rank: int, world: int, model: str, store_uri: str) -> None:
    from limr.learner.checkpoint import save_checkpoint
    from limr.store import open_store

    trainer = _trainer(model, rank, world)
    ros = [Rollout(i // 2, i % 2, [40 + rank, 41], [60 + i, 61, 62], None, "", "stop", 0) for i in range(4)]
    for step in range(2):
        exp, _ = trainer.make_experience(ros, torch.tensor([1.0, -0.5, 1.0, -0.5]), n=2)
        trainer.update(exp, step)
    tensors, extra = trainer.checkpoint_state()
    save_checkpoint(open_store(store_uri), "run", 2, tensors, {"trainer": extra}, trainer.ctx)


def _load(rank: int, world: int, model: str, store_uri: str, out: str) -> None:
    from limr.learner.checkpoint import latest_checkpoint, load_tensors, read_extra
    from limr.store import open_store

    store = open_store(store_uri)
    trainer = _trainer(model, rank, world)
    key = latest_checkpoint(store, "run")
    tensors, _ = trainer.checkpoint_state()
    load_tensors(store, key, tensors)
    trainer.load_checkpoint_state(tensors, read_extra(store, key)["trainer"])
    loaded, _ = trainer.checkpoint_state()
    torch.save({"state": loaded, "optimizer_step": trainer.optimizer_step}, f"{out}.{rank}")
    # and training continues from there on this world size
    ros = [Rollout(i // 2, i % 2, [45, 46], [70 + i, 71], None, "", "stop", 0) for i in range(4)]
    exp, _ = trainer.make_experience(ros, torch.tensor([1.0, -0.5, 1.0, -0.5]), n=2)
    trainer.update(exp, 2)


def _flat(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif isinstance(v, list) and v and isinstance(v[0], dict):  # param_groups
            for i, g in enumerate(v):
                out.update(_flat(g, f"{prefix}{k}.{i}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@pytest.mark.parametrize(("saved_by", "loaded_by"), [(2, 1), (1, 2)])
def test_resume_on_another_number_of_workers(tmp_path, tiny_model, saved_by, loaded_by):
    from limr.learner.checkpoint import latest_checkpoint, read_full
    from limr.store import open_store

    store_uri = str(tmp_path / "store")
    run_ranks(_train_and_save, saved_by, str(tiny_model), store_uri)
    key = latest_checkpoint(open_store(store_uri), "run")
    assert key.endswith("0000000002/")
    saved = _flat(read_full(open_store(store_uri), key))
    assert any(k.startswith("actor_opt.state.") and k.endswith("exp_avg") for k in saved)  # optimizer included
    out = str(tmp_path / "loaded")
    run_ranks(_load, loaded_by, str(tiny_model), store_uri, out)
    for rank in range(loaded_by):
        got = torch.load(f"{out}.{rank}", weights_only=False)
        assert got["optimizer_step"] == 2  # two steps of one mini-batch each
        flat = _flat(got["state"])
        assert flat.keys() == saved.keys()
        for name, value in saved.items():
            if isinstance(value, torch.Tensor):
                torch.testing.assert_close(flat[name], value, rtol=0, atol=0, msg=lambda m, n=name: f"{n}: {m}")
            else:
                assert flat[name] == value, name
