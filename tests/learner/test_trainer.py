"""The PPO/GRPO trainer on the tiny model: experience, KL at the start, updates move the policy the right way."""

from __future__ import annotations

import pytest
import torch

from limr.learner.batch import Rollout, collate
from limr.learner.config import LearnerConfig
from limr.learner.dist import DistCtx
from limr.learner.models import response_logprobs
from limr.learner.trainer import PPOTrainer


def _rollouts() -> list[Rollout]:
    prompts = [[40, 41, 42], [50, 51]]
    responses = [[60, 61, 62, 63], [70, 71], [80, 81, 82], [90]]
    return [
        Rollout(i // 2, i % 2, prompts[i // 2], r, [-5.5] * len(r), "", "stop", 0) for i, r in enumerate(responses)
    ]


def _trainer(tiny_model, estimator: str) -> PPOTrainer:
    cfg = LearnerConfig.model_validate(
        {
            "model": {"actor": str(tiny_model)},
            "rollout": {"samples_per_prompt": 2, "temperature": 1.0},
            "algorithm": {"estimator": estimator},
            "optim": {"actor_lr": 3e-3, "critic_lr": 3e-3},
            "batch": {"rollout_batch_size": 2, "train_batch_size": 4, "micro_batch_size": 3},
        }
    )
    return PPOTrainer(cfg, cfg.derive(2), DistCtx(), pad_token_id=0)


@pytest.mark.parametrize("estimator", ["gae", "grpo"])
def test_update_raises_logprob_of_rewarded_samples(tiny_model, estimator):
    torch.manual_seed(0)
    tr = _trainer(tiny_model, estimator)
    ros = _rollouts()
    scores = torch.tensor([1.0, -0.5, 1.0, -0.5])  # first sample of each prompt correct
    tb = collate(ros, 0)
    with torch.no_grad():
        before = response_logprobs(tr.actor, tb).sum(1)  # (B,)
    exp, stats = tr.make_experience(ros, scores, n=2)
    assert exp.advantages.shape == tb.response_mask.shape == (4, 4)
    assert stats["train/kl"] == pytest.approx(0.0, abs=1e-6)  # actor == reference at the start
    assert stats["rollout/logprob_gap_mean"] > 0  # the fake engine logprobs differ from the model's
    assert (exp.advantages * (1 - tb.response_mask)).abs().sum() == 0  # padding carries nothing
    if estimator == "grpo":
        seq = (exp.advantages * tb.response_mask).sum(1)
        assert (seq[[0, 2]] > 0).all() and (seq[[1, 3]] < 0).all()
    for step in range(3):
        exp, _ = tr.make_experience(ros, scores, n=2)
        out = tr.update(exp, step)
        assert {"losses/policy", "losses/approx_kl", "losses/clipfrac"} <= out.keys()
        assert ("losses/value" in out) == (estimator == "gae")
    with torch.no_grad():
        after = response_logprobs(tr.actor, tb).sum(1)
    delta = after - before
    assert (delta[[0, 2]] > 0).all(), delta
    assert (delta[[1, 3]] < 0).all(), delta
    assert tr.optimizer_step == 3


def test_checkpoint_round_trip(tiny_model, tmp_path):
    from limr.learner.checkpoint import latest_checkpoint, load_tensors, read_extra, save_checkpoint
    from limr.store import open_store

    a = _trainer(tiny_model, "gae")
    ros = _rollouts()
    exp, _ = a.make_experience(ros, torch.tensor([1.0, -1.0, 1.0, -1.0]), n=2)
    a.update(exp, 0)
    store = open_store(str(tmp_path / "store"))
    tensors, extra = a.checkpoint_state()
    save_checkpoint(store, "r", 1, tensors, {"trainer": extra}, DistCtx())
    b = _trainer(tiny_model, "gae")
    key = latest_checkpoint(store, "r")
    into, _ = b.checkpoint_state()
    load_tensors(store, key, into)
    b.load_checkpoint_state(into, read_extra(store, key)["trainer"])
    assert b.optimizer_step == 1
    for (k, v), (k2, v2) in zip(a.actor.state_dict().items(), b.actor.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    sa, sb = a.actor_opt.state_dict()["state"], b.actor_opt.state_dict()["state"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)
