"""Mixed precision (limr.learner.precision): bf16 compute over fp32 masters moves the weights as fp32 training does
at the paper's actor lr; updating bf16 weights in place (the old path) does not; checkpoints hold the masters, and
a resume continues bit for bit."""

from __future__ import annotations

import copy

import pytest
import torch

from limr.algo.ppo import policy_loss
from limr.learner.batch import Rollout
from limr.learner.checkpoint import load_tensors, read_full, save_checkpoint
from limr.learner.config import LearnerConfig
from limr.learner.dist import DistCtx
from limr.learner.generator.local import full_state
from limr.learner.models import response_logprobs
from limr.learner.trainer import PPOTrainer
from limr.store import open_store

PAPER_LR = 5e-7
STEPS = 3
# Relative L2 distance of the bf16 run's master-weight movement from the fp32 run's: measured 0.08 (cosine 0.997).
TOLERANCE = 0.2


def _rollouts() -> list[Rollout]:
    prompts = [[40, 41, 42], [50, 51]]
    responses = [[60, 61, 62, 63], [70, 71], [80, 81, 82], [90, 91, 92]]
    return [Rollout(i // 2, i % 2, prompts[i // 2], r, None, "", "stop", 0) for i, r in enumerate(responses)]


SCORES = torch.tensor([1.0, -0.5, 1.0, -0.5])


def _trainer(tiny_model, dtype: str, estimator: str = "grpo") -> PPOTrainer:
    cfg = LearnerConfig.model_validate(
        {
            "model": {"actor": str(tiny_model), "dtype": dtype},
            "rollout": {"samples_per_prompt": 2, "temperature": 1.0},
            "algorithm": {"estimator": estimator},
            "optim": {"actor_lr": PAPER_LR, "critic_lr": 9e-6},
            "batch": {"rollout_batch_size": 2, "train_batch_size": 4, "micro_batch_size": 2},
        }
    )
    return PPOTrainer(cfg, cfg.derive(2), DistCtx(), pad_token_id=0)


def _masters(tr: PPOTrainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().clone() for k, v in tr.actor.named_parameters()}


def _train(tr: PPOTrainer, steps: int = STEPS, start: int = 0, part: slice = slice(None)) -> None:
    """`steps` PPO steps on the 4 rollouts (or this rank's `part` of them: the global batch is all 4)."""
    for step in range(start, start + steps):
        exp, _ = tr.make_experience(_rollouts()[part], SCORES[part], n=2)
        tr.update(exp, step)


def _movement(before: dict, after: dict) -> torch.Tensor:
    return torch.cat([(after[k] - before[k]).flatten() for k in before])


def _pure_bf16_movement(tiny_model, exp) -> tuple[torch.Tensor, float]:
    """The old path: the actor's parameters and AdamW state in bf16, updated in place, on the same experience."""
    tr = _trainer(tiny_model, "float32")
    model = copy.deepcopy(tr.actor).to(torch.bfloat16)
    before = {k: v.detach().float().clone() for k, v in model.named_parameters()}
    opt = torch.optim.AdamW(model.parameters(), lr=PAPER_LR, betas=(0.9, 0.95), weight_decay=0.0)
    for _ in range(STEPS):
        lp = response_logprobs(model, exp.tokens, 1.0)
        pl = policy_loss(lp, exp.old_logprobs, exp.advantages, exp.tokens.response_mask, 0.2)
        (pl.loss_sum / exp.tokens.response_mask.sum()).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    after = {k: v.detach().float() for k, v in model.named_parameters()}
    moved = _movement(before, after)
    return moved, float((moved != 0).float().mean())


def test_bf16_masters_move_like_fp32_at_the_paper_lr_and_pure_bf16_does_not(tiny_model):
    torch.manual_seed(0)
    runs = {}
    for dtype in ("float32", "bfloat16"):
        tr = _trainer(tiny_model, dtype)
        assert all(p.dtype == torch.float32 for p in tr.actor.parameters())  # masters
        assert all(p.dtype == getattr(torch, dtype) for p in tr.ref.parameters())  # frozen, compute dtype
        before = _masters(tr)
        _train(tr)
        runs[dtype] = _movement(before, _masters(tr))
    fp32, bf16 = runs["float32"], runs["bfloat16"]
    assert fp32.abs().max() > 0
    rel = float((bf16 - fp32).norm() / fp32.norm())
    assert rel < TOLERANCE, f"bf16-compute masters moved {rel:.3f} (relative L2) away from fp32's"
    assert (bf16 != 0).float().mean() > 0.9  # nearly every weight moves, as in fp32

    exp, _ = _trainer(tiny_model, "float32").make_experience(_rollouts(), SCORES, n=2)
    pure, changed = _pure_bf16_movement(tiny_model, exp)
    assert changed < 0.05, f"{changed:.1%} of bf16 weights changed: lr 5e-7 is below half of bf16's spacing"
    assert float((pure - fp32).norm() / fp32.norm()) > 0.9  # it barely moves where fp32 does


def test_weights_for_the_rollout_engine_are_in_the_compute_dtype(tiny_model):
    tr = _trainer(tiny_model, "bfloat16")
    state = full_state(tr.actor)
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.bfloat16}
    from limr.learner.generator.publisher import weight_source

    src = weight_source(tr.actor)
    assert {m.dtype for m in src.metadata()} == {torch.bfloat16}
    name, t = next(iter(src))
    assert t.dtype == torch.bfloat16 and name == src.metadata()[0].name


def test_checkpoint_holds_fp32_masters_and_resume_is_exact(tiny_model, tmp_path):
    torch.manual_seed(0)
    store = open_store(str(tmp_path / "store"))
    a = _trainer(tiny_model, "bfloat16", estimator="gae")
    _train(a, 1)
    tensors, extra = a.checkpoint_state()
    key = save_checkpoint(store, "r", 1, tensors, {"trainer": extra}, DistCtx())
    full = read_full(store, key)
    assert full["actor"] and {v.dtype for v in full["actor"].values()} == {torch.float32}
    assert {v.dtype for v in full["critic"].values()} == {torch.float32}
    moments = [t for s in full["actor_opt"]["state"].values() for n, t in s.items() if n.startswith("exp_avg")]
    assert moments and {t.dtype for t in moments} == {torch.float32}

    _train(a, 1, start=1)
    b = _trainer(tiny_model, "bfloat16", estimator="gae")
    tensors_b, _ = b.checkpoint_state()
    load_tensors(store, key, tensors_b)
    b.load_checkpoint_state(tensors_b, extra)
    _train(b, 1, start=1)
    for (name, pa), (_, pb) in zip(a.actor.named_parameters(), b.actor.named_parameters(), strict=True):
        assert torch.equal(pa, pb), name
    for (name, pa), (_, pb) in zip(a.critic.named_parameters(), b.critic.named_parameters(), strict=True):
        assert torch.equal(pa, pb), name


@pytest.mark.parametrize("dtype", ["float16"])
def test_float16_scales_the_loss_and_keeps_fp32_masters(tiny_model, dtype):
    tr = _trainer(tiny_model, dtype)
    assert tr.scaler.is_enabled()
    before = _masters(tr)
    _train(tr, 2)
    moved = _movement(before, _masters(tr))
    assert torch.isfinite(moved).all() and (moved != 0).float().mean() > 0.9


def _fsdp_rank(rank: int, world: int, port: int, model: str, out: str) -> None:
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        cfg = LearnerConfig.model_validate(
            {
                "model": {"actor": model, "dtype": "bfloat16"},
                "rollout": {"samples_per_prompt": 2, "temperature": 1.0},
                "algorithm": {"estimator": "gae"},
                "optim": {"actor_lr": PAPER_LR, "critic_lr": 9e-6},
                "batch": {"rollout_batch_size": 2, "train_batch_size": 4, "micro_batch_size": 2},
                "trainer": {"num_workers": world, "strategy": "fsdp"},
            }
        )
        tr = PPOTrainer(cfg, cfg.derive(2), DistCtx(rank, world), pad_token_id=0)
        _train(tr, STEPS, part=slice(2 * rank, 2 * rank + 2))  # one prompt's group per rank: the same global batch
        from limr.learner.generator.publisher import weight_source

        src = weight_source(tr.actor)
        sent = {n: t for n, t in src}  # every rank gathers in lockstep
        state = full_state(tr.actor)  # the full state, gathered onto every rank
        store = open_store(out + "/store")
        tensors, extra = tr.checkpoint_state()
        key = save_checkpoint(store, "fsdp", STEPS, tensors, {"trainer": extra}, DistCtx(rank, world))
        if rank == 0:
            wire = {m.dtype for m in src.metadata()} | {t.dtype for t in sent.values()}
            torch.save({"state": state, "key": key, "wire": wire}, out + "/rank0.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned processes (~1 min on a loaded 2-core machine)
def test_fsdp2_on_cpu_keeps_fp32_sharded_masters_and_moves_them_like_fp32(tiny_model, tmp_path):
    """FSDP2 over 2 gloo ranks in bf16: the sharded masters (checkpointed in fp32) move as the fp32 run's do; the
    rollout engine gets bf16."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_fsdp_rank, args=(2, port, str(tiny_model), str(tmp_path)), nprocs=2)
    out = torch.load(tmp_path / "rank0.pt", weights_only=False)
    assert out["wire"] == {torch.bfloat16}
    assert {v.dtype for v in out["state"].values()} == {torch.bfloat16}
    full = read_full(open_store(str(tmp_path / "store")), out["key"])
    assert {v.dtype for v in full["actor"].values()} == {torch.float32}

    torch.manual_seed(0)
    ref = _trainer(tiny_model, "float32", estimator="gae")
    before = _masters(ref)
    _train(ref)
    fp32 = _movement(before, _masters(ref))
    fsdp = _movement(before, {k: full["actor"][k].float() for k in before})
    rel = float((fsdp - fp32).norm() / fp32.norm())
    assert rel < TOLERANCE, f"FSDP2 bf16 masters moved {rel:.3f} (relative L2) away from fp32's"
