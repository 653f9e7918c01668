"""Two gloo ranks with different data agree on every statistic and on the adaptive KL coefficient."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from limr.learner.batch import Rollout

STEPS = 3


def _rollouts(rank: int) -> list[Rollout]:
    """Different prompts and responses on each rank, so each rank's own KL would differ."""
    base = 40 + 20 * rank
    prompts = [[base, base + 1, base + 2], [base + 5, base + 6]]
    responses = [[base + 7, base + 8, base + 9], [base + 3], [base + 4, base + 10], [base + 11, base + 12, 13, 14]]
    return [Rollout(i // 2, i % 2, prompts[i // 2], r, None, "", "stop", 0) for i, r in enumerate(responses)]


def _worker(rank: int, port: int, model: str, estimator: str, out: str) -> None:
    import torch.distributed as dist

    from limr.learner.config import LearnerConfig
    from limr.learner.dist import DistCtx
    from limr.learner.trainer import PPOTrainer

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
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
    trainer = PPOTrainer(cfg, cfg.derive(4), DistCtx(rank=rank, world_size=2), pad_token_id=0)
    scores = torch.tensor([1.0, -0.5, -0.5, 1.0]) * (1 + rank)
    history = []
    for step in range(STEPS):
        exp, stats = trainer.make_experience(_rollouts(rank), scores, n=2)
        stats.update(trainer.update(exp, step))
        history.append({"kl_coef_after": trainer.kl_ctl.value, **stats})
    Path(out).write_text(json.dumps(history))
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("estimator", ["grpo", "gae"])
def test_ranks_agree_on_statistics_and_kl_coefficient(tmp_path, tiny_model, estimator):
    outs = [str(tmp_path / f"rank{r}.json") for r in range(2)]
    port = _free_port()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(r, port, str(tiny_model), estimator, outs[r])) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0, f"rank process exited with {p.exitcode}"
    h0, h1 = (json.loads(Path(o).read_text()) for o in outs)
    assert h0[-1]["kl_coef_after"] != pytest.approx(0.1)  # the controller really moved
    assert h0[-1]["train/kl"] > 0  # the policy left the reference, each rank's own KL differs
    for s0, s1 in zip(h0, h1, strict=True):
        timing_free = {k for k in s0 if not k.startswith("time/")}
        assert {k: s0[k] for k in timing_free} == pytest.approx({k: s1[k] for k in timing_free}, rel=1e-9, nan_ok=True)
