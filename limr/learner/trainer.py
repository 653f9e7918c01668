"""The PPO/GRPO update on one data-parallel rank: models, optimizers, experience making and the PPO epochs.

Losses are token means over the global mini-batch: every rank divides its token-sum losses by the
global token count (all-reduced) and multiplies by world_size, which DDP's gradient averaging undoes.
Ranks may hold different numbers of samples (the last step of an epoch); they still run the same
number of micro-batches, padding with zero-weight ones, so every backward takes part in the same
gradient all-reduce.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from limr.algo.advantages import (
    AdaptiveKLController,
    FixedKLController,
    RunningMoments,
    kl_estimate,
    masked_sums,
    masked_whiten,
)
from limr.algo.experience import (
    advantages_and_returns,
    logprob_gap_sums,
    mean_var_from_sums,
    value_fit_sums,
    value_sums,
)
from limr.algo.ppo import explained_variance_from_sums, policy_loss, value_loss, warmup_lr_factor
from limr.learner.batch import Experience, Rollout, TokenBatch, collate, rollout_logprobs_tensor
from limr.learner.config import Derived, LearnerConfig
from limr.learner.dist import DistCtx
from limr.learner.models import Critic, load_actor, load_reference, response_logprobs, response_values
from limr.learner.precision import autocast, clip_grad_norm, grad_scaler, gradient_sync, shard

# Losses every rank adds its share of the global mini-batch to; summed over ranks before they are reported.
_SUMMED_LOSSES = ("losses/policy", "losses/approx_kl", "losses/clipfrac", "losses/value", "losses/value_clipfrac")


class PPOTrainer:
    def __init__(self, cfg: LearnerConfig, derived: Derived, ctx: DistCtx, pad_token_id: int):
        self.cfg, self.derived, self.ctx, self.pad = cfg, derived, ctx, pad_token_id
        m, o = cfg.model, cfg.optim
        self.use_critic = cfg.algorithm.estimator == "gae"
        self.actor = self._wrap(load_actor(m.actor, m.dtype, m.gradient_checkpointing).to(ctx.device))
        self.ref = load_reference(m.actor, m.dtype).to(ctx.device)
        self.actor_opt = self._adamw(self.actor, o.actor_lr)
        self.actor_sched = self._scheduler(self.actor_opt)
        self.critic: nn.Module | None = None
        if self.use_critic:
            torch.manual_seed(cfg.run.seed)  # the value head's init is part of the run's seed
            critic = Critic.from_pretrained(m.critic or m.actor, m.dtype, m.gradient_checkpointing).to(ctx.device)
            self.critic = self._wrap(critic)
            self.critic_opt = self._adamw(self.critic, o.critic_lr)
            self.critic_sched = self._scheduler(self.critic_opt)
        a = cfg.algorithm
        self.kl_ctl = (
            AdaptiveKLController(a.kl_coef, a.kl_target, a.kl_horizon) if a.kl_target else FixedKLController(a.kl_coef)
        )
        self.reward_moments = RunningMoments()
        self.optimizer_step = 0
        self.scaler = grad_scaler(m.dtype, ctx.device)  # loss scaling for float16 only

    def _compute(self):
        """Forward/backward context: the compute dtype over fp32 masters (limr.learner.precision)."""
        return autocast(self.ctx.device, self.cfg.model.dtype, self._fsdp())

    # ---- set-up -------------------------------------------------------------------------------------------
    def _wrap(self, model: nn.Module) -> nn.Module:
        if not self.ctx.distributed:
            return model
        if self.cfg.trainer.strategy == "fsdp":
            return shard(model, self.cfg.model.dtype)  # FSDP2, fp32 sharded masters, compute-dtype layers
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.ctx.device] if self.ctx.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def _adamw(self, model: nn.Module, lr: float) -> torch.optim.Optimizer:
        o = self.cfg.optim
        params = [p for p in model.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=lr, betas=o.betas, weight_decay=o.weight_decay)

    def _scheduler(self, opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
        o, total = self.cfg.optim, self.derived.total_optimizer_steps
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_lr_factor(s, o.warmup_steps, total, o.schedule))

    # ---- experience ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def make_experience(self, rollouts: list[Rollout], scores: torch.Tensor, n: int) -> tuple[Experience, dict]:
        """Logprobs (actor, reference), values, KL-shaped rewards and advantages for this rank's rollouts.

        `rollouts` are ordered by (prompt, sample) with n samples per prompt; scores (B,).
        """
        cfg, a = self.cfg, self.cfg.algorithm
        tb = collate(rollouts, self.pad)
        mask = tb.response_mask  # (B, R)
        temp = cfg.rollout.temperature or 1.0
        self.actor.eval()
        with self._compute():
            actor_lp = self._micro_map(lambda mb: response_logprobs(self.actor, mb, temp), tb)  # (B, R)
            ref_lp = self._micro_map(lambda mb: response_logprobs(self.ref, mb, temp), tb)  # (B, R)
            values = torch.zeros_like(mask)  # (B, R)
            if self.critic is not None:
                self.critic.eval()
                values = self._micro_map(lambda mb: response_values(self.critic, mb), tb)
        stats: dict[str, float] = {}
        engine_lp = rollout_logprobs_tensor(rollouts, mask.shape[1])  # (B, R) or None
        if engine_lp is not None:
            s, mx, cnt = logprob_gap_sums(engine_lp, actor_lp, mask)
            s, cnt = self.ctx.all_sum([s, cnt])
            stats["rollout/logprob_gap_mean"] = s / max(cnt, 1)
            stats["rollout/logprob_gap_max"] = float(max(self.ctx.all_gather_objects(mx)))
        old_lp = engine_lp if (a.old_logprobs == "rollout" and engine_lp is not None) else actor_lp

        kl = kl_estimate(actor_lp, ref_lp, a.kl_estimator) * mask  # (B, R)
        shaped_scores = scores.clone()  # (B,)
        if a.normalize_reward:  # with the moments of all ranks
            s, ss, c = self.ctx.all_sum(list(value_sums(scores)))
            mean, var = mean_var_from_sums(s, ss, c)
            self.reward_moments.update(mean, var, int(c))
            shaped_scores = self.reward_moments.normalize(scores)
        advantages, returns = advantages_and_returns(  # (B, R) each: GAE with a critic, GRPO without
            shaped_scores, kl, mask, self.kl_ctl.value, n, values if self.critic is not None else None, a.gamma, a.lam
        )
        if a.normalize_advantages:  # with the statistics of all ranks
            s, ss, c = self.ctx.all_sum(list(masked_sums(advantages, mask)))
            advantages = masked_whiten(advantages, mask, (s, ss, c))
        # Every statistic below, and the KL controller's input, is over the GLOBAL batch: a rank's own figures
        # would let the ranks' KL coefficients drift apart under an adaptive controller.
        kl_sum, tok, n_seq, adv_abs = self.ctx.all_sum(
            [kl.sum().item(), mask.sum().item(), len(rollouts), (advantages.abs() * mask).sum().item()]
        )
        stats.update(
            {
                "train/kl": kl_sum / max(tok, 1),  # per token
                "train/kl_coef": self.kl_ctl.value,
                "train/advantage_abs_mean": adv_abs / max(tok, 1),
            }
        )
        if self.critic is not None:
            moments = self.ctx.all_sum(value_fit_sums(returns, values, mask))
            stats["train/explained_var"] = explained_variance_from_sums(*moments, tok)
        self.kl_ctl.update(kl_sum / max(n_seq, 1), int(n_seq))  # mean sequence KL of the global batch
        exp = Experience(tb, old_lp, ref_lp, advantages, returns, values, scores.float())
        return exp, stats

    def _micro_map(self, fn, tb: TokenBatch) -> torch.Tensor:
        mb = self.cfg.batch.micro_batch_size
        parts = [
            fn(tb.select(torch.arange(i, min(i + mb, len(tb)))).to(self.ctx.device)).cpu()
            for i in range(0, len(tb), mb)
        ]
        return torch.cat(parts, 0)

    # ---- update -------------------------------------------------------------------------------------------
    def update(self, exp: Experience, step: int) -> dict[str, float]:
        """cfg.algorithm.ppo_epochs passes over the experience in global mini-batches of train_batch_size."""
        cfg, ctx = self.cfg, self.ctx
        n_global = int(ctx.all_sum([len(exp)])[0])
        n_minibatches = max(1, round(n_global / cfg.batch.train_batch_size))
        gen = torch.Generator().manual_seed(hash((cfg.run.seed, step, ctx.rank)) % (2**63))
        self.actor.train()
        if self.critic is not None:
            self.critic.train()
        totals: dict[str, float] = {}
        for _ in range(cfg.algorithm.ppo_epochs):
            perm = torch.randperm(len(exp), generator=gen)
            for chunk in torch.tensor_split(perm, n_minibatches):
                for k, v in self._minibatch_step(exp, chunk).items():
                    totals[k] = totals.get(k, 0.0) + v
        count = cfg.algorithm.ppo_epochs * n_minibatches
        return {k: v / count for k, v in totals.items()}

    def _minibatch_step(self, exp: Experience, idx: torch.Tensor) -> dict[str, float]:
        cfg, ctx, a = self.cfg, self.ctx, self.cfg.algorithm
        mb = cfg.batch.micro_batch_size
        global_tokens = ctx.all_sum([exp.tokens.response_mask[idx].sum().item()])[0]
        n_micro = ctx.all_max(max(1, math.ceil(len(idx) / mb)))
        scale = ctx.world_size / max(global_tokens, 1.0)
        temp = cfg.rollout.temperature or 1.0
        stats = {"losses/policy": 0.0, "losses/approx_kl": 0.0, "losses/clipfrac": 0.0}
        if self.critic is not None:
            stats.update({"losses/value": 0.0, "losses/value_clipfrac": 0.0})
        for i in range(n_micro):
            sel = idx[i * mb : (i + 1) * mb]
            weight = 1.0
            if len(sel) == 0:  # this rank ran out: a zero-weight pass keeps the gradient all-reduce in step
                sel, weight = torch.tensor([0]), 0.0
            m = exp.select(sel).to(ctx.device)
            mask = m.tokens.response_mask
            last = i == n_micro - 1
            with gradient_sync(self.actor, last), self._compute():
                lp = response_logprobs(self.actor, m.tokens, temp)  # (b, R)
                pl = policy_loss(lp, m.old_logprobs, m.advantages, mask, a.clip_eps)
                self.scaler.scale(pl.loss_sum * scale * weight).backward()
            share = mask.sum().item() * weight / max(global_tokens, 1.0)  # this micro-batch's token share
            stats["losses/policy"] += pl.loss_sum.item() * weight / max(global_tokens, 1.0)
            stats["losses/approx_kl"] += pl.approx_kl.item() * share  # token means over the global mini-batch
            stats["losses/clipfrac"] += pl.clipfrac.item() * share
            if self.critic is not None:
                with gradient_sync(self.critic, last), self._compute():
                    v = response_values(self.critic, m.tokens)  # (b, R)
                    vl = value_loss(v, m.values, m.returns, mask, a.value_clip_eps)
                    self.scaler.scale(vl.loss_sum * scale * weight).backward()
                stats["losses/value"] += vl.loss_sum.item() * weight / max(global_tokens, 1.0)
                stats["losses/value_clipfrac"] += vl.clipfrac.item() * share
        stats["losses/actor_grad_norm"] = self._step(self.actor, self.actor_opt, self.actor_sched)
        if self.critic is not None:
            stats["losses/critic_grad_norm"] = self._step(self.critic, self.critic_opt, self.critic_sched)
        self.scaler.update()
        summed = [k for k in _SUMMED_LOSSES if k in stats]  # each rank holds its share of the global figure
        stats.update(zip(summed, ctx.all_sum([stats[k] for k in summed]), strict=True))
        stats["train/actor_lr"] = self.actor_sched.get_last_lr()[0]
        self.optimizer_step += 1
        return stats

    def _step(self, model: nn.Module, opt: torch.optim.Optimizer, sched) -> float:
        """Clip and apply the fp32 gradients to the fp32 masters (DDP: already all-reduced, every rank computes
        the same norm; FSDP2: each rank holds a shard, the norm is reduced over ranks)."""
        self.scaler.unscale_(opt)  # float16: undo the loss scale before clipping (a no-op otherwise)
        norm = clip_grad_norm(model, self.cfg.optim.max_grad_norm)
        self.scaler.step(opt)  # float16: skips the step when a gradient overflowed
        sched.step()
        opt.zero_grad(set_to_none=True)
        return norm

    # ---- weights and state --------------------------------------------------------------------------------
    def _fsdp(self) -> bool:
        return self.cfg.trainer.strategy == "fsdp" and self.ctx.distributed

    def checkpoint_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(tensors, extra): the models' and optimizers' state as DCP state dicts (this rank's shards under FSDP,
        by parameter name, so any world size can load them), and the small rest (schedulers, controllers).

        Every rank calls it. The tensor dicts alias the live parameters and optimizer state: a checkpoint load
        (limr.learner.checkpoint.load_tensors) writes into them in place, then `load_checkpoint_state` applies.
        """
        from torch.distributed.checkpoint.state_dict import get_state_dict

        tensors: dict[str, Any] = {}
        extra: dict[str, Any] = {
            "actor_sched": self.actor_sched.state_dict(),
            "kl_ctl": self.kl_ctl.state_dict(),
            "reward_moments": vars(self.reward_moments).copy(),
            "optimizer_step": self.optimizer_step,
        }
        tensors["actor"], tensors["actor_opt"] = get_state_dict(self.actor, self.actor_opt)
        if self.critic is not None:
            tensors["critic"], tensors["critic_opt"] = get_state_dict(self.critic, self.critic_opt)
            extra["critic_sched"] = self.critic_sched.state_dict()
        return tensors, extra

    def load_checkpoint_state(self, tensors: dict[str, Any], extra: dict[str, Any]) -> None:
        """Apply state produced by `checkpoint_state` (after a checkpoint was loaded into its tensors)."""
        from torch.distributed.checkpoint.state_dict import set_state_dict

        set_state_dict(
            self.actor, self.actor_opt, model_state_dict=tensors["actor"], optim_state_dict=tensors["actor_opt"]
        )
        self.actor_sched.load_state_dict(extra["actor_sched"])
        self.kl_ctl.load_state_dict(extra["kl_ctl"])
        self.reward_moments = RunningMoments(**extra["reward_moments"])
        self.optimizer_step = int(extra["optimizer_step"])
        if self.critic is not None:
            set_state_dict(
                self.critic,
                self.critic_opt,
                model_state_dict=tensors["critic"],
                optim_state_dict=tensors["critic_opt"],
            )
            self.critic_sched.load_state_dict(extra["critic_sched"])
