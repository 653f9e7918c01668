"""Two gloo ranks with different data agree on every statistic and on the adaptive KL coefficient."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from limr.learner.batch import Rollout
from tests.support.gloo import run_ranks

STEPS = 3


def _rollouts(rank: int) -> list[Rollout]:
    """Different prompts and responses on each rank, so each rank's own KL would differ."""
    base = 40 + 20 * rank
    prompts = [[base, base + 1, base + 2], [base + 5, base + 6]]
    responses = [[base + 7, base + 8, base + 9], [base + 3], [base + 4, base + 10], [base + 11, base + 12, 13, 14]]
    return [Rollout(i // 2, i % 2, prompts[i // 2], r, None, "", "stop", 0) for i, r in enumerate(responses)]


def _worker(rank: int, world: int, model: str, estimator: str, outs: list[str]) -> None:
    from limr.learner.config import LearnerConfig
    from limr.learner.dist import DistCtx
    from limr.learner.trainer import PPOTrainer

    cfg = LearnerConfig.model_validate(
        {
            "model": {"actor": model},
            "rollout": {"samples_per_prompt": 2, "temperature": 1.0},
            "algorithm": {"estimator": estimator, "kl_coef": 0.1, "kl_target": 1e-4, "kl_horizon": 4},
            "optim": {"actor_lr": 1e-2, "critic_lr": 1e-2},
            "batch": {"rollout_batch_size": 4, "train_batch_size": 8, "micro_batch_size": 3},
        }
    )
    torch.manual_seed(0)
    trainer = PPOTrainer(cfg, cfg.derive(4), DistCtx(rank=rank, world_size=world), pad_token_id=0)
    scores = torch.tensor([1.0, -0.5, -0.5, 1.0]) * (1 + rank)
    history = []
    for step in range(STEPS):
        exp, stats = trainer.make_experience(_rollouts(rank), scores, n=2)
        stats.update(trainer.update(exp, step))
        history.append({"kl_coef_after": trainer.kl_ctl.value, **stats})
    Path(outs[rank]).write_text(json.dumps(history))


@pytest.mark.parametrize("estimator", ["grpo", "gae"])
def test_ranks_agree_on_statistics_and_kl_coefficient(tmp_path, tiny_model, estimator):
    outs = [str(tmp_path / f"rank{r}.json") for r in range(2)]
    run_ranks(_worker, 2, str(tiny_model), estimator, outs)
    h0, h1 = (json.loads(Path(o).read_text()) for o in outs)
    assert h0[-1]["kl_coef_after"] != pytest.approx(0.1)  # the controller really moved
    assert h0[-1]["train/kl"] > 0  # the policy left the reference, each rank's own KL differs
    for s0, s1 in zip(h0, h1, strict=True):
        timing_free = {k for k in s0 if not k.startswith("time/")}
        assert {k: s0[k] for k in timing_free} == pytest.approx({k: s1[k] for k in timing_free}, rel=1e-9, nan_ok=True)
