"""The RL loop every data-parallel rank runs, top to bottom:

    for step: prompts of the step -> generate n samples each (rollout service) -> reward (limr.reward)
              -> experience (logprobs, reference KL, values, advantages) -> PPO update -> push weights
              -> reward events + metrics -> checkpoint every K steps

Each rank works on its own contiguous share of the step's prompts and writes its events as part
`rank` of the step; the update is data-parallel (DDP). Rank 0 pushes weights, serves metrics, checkpoints.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from limr.curation.policy import check_dataset_name
from limr.data.api_pool import api_url
from limr.learner.batch import Rollout
from limr.learner.config import LearnerConfig
from limr.learner.data import shard
from limr.learner.dist import DistCtx
from limr.learner.dynamic import Groups, dynamic_sample
from limr.learner.early_switch import switch_if_due
from limr.learner.events_out import write_step_events, write_step_metrics
from limr.learner.metrics import Progress, TrainMetrics
from limr.learner.rollout_client import RolloutClient, Sampling
from limr.learner.setup import RunSetup, restore, save, write_run_finish
from limr.learner.trainer import PPOTrainer

log = logging.getLogger("limr.learner")

Report = Callable[[dict[str, float], dict[str, Any] | None], None]  # (metrics, checkpoint pointer or None)


@dataclass
class Timer:
    phases: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        yield
        self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - t0


def train(
    cfg: LearnerConfig,
    ctx: DistCtx,
    setup: RunSetup,
    client: RolloutClient,
    resume_key: str | None = None,
    report: Report | None = None,
) -> dict[str, float]:
    """Run (or continue) the training run described by `setup`; returns the last step's metrics."""
    trainer = PPOTrainer(cfg, setup.derived, ctx, setup.tokenizer.pad_token_id)
    start, initial = restore(setup, trainer, ctx, resume_key)  # initial: the run's before-training figures
    # A resumed run's engine still serves the initial weights, and a shared service (rollout.app_name, e.g. one
    # service for every arm of `limr experiment`) may serve another run's: start from this run's own.
    version = push_weights(trainer, client, ctx)
    metrics = TrainMetrics(cfg.metrics.port) if ctx.is_main else None
    bar = Progress(setup.derived.total_steps, start, cfg.metrics.progress and ctx.is_main)
    last: dict[str, float] = {}
    if start == 0 and setup.eval_prompts is not None:
        initial["eval/accuracy_initial"] = evaluate(cfg, ctx, setup, client)["eval/accuracy"]
    try:
        for step in range(start, setup.derived.total_steps):
            if cfg.curation.mode == "early-lim":
                switch_pool(step, cfg, ctx, setup)
            last = train_step(step, cfg, ctx, setup, trainer, client, version)
            version = int(last["rollout/weight_version"])
            if cfg.curation.mode == "early-lim":
                last["curation/pool_size"] = len(setup.plan.switch.indices if setup.plan.switch else setup.texts.ids)
            if step == 0:
                initial["train/reward_mean_initial"] = last["train/reward_mean"]
                initial["train/accuracy_initial"] = last["train/accuracy"]
            if _due(step, cfg.run.eval_every, setup.derived.total_steps) and setup.eval_prompts is not None:
                last.update(evaluate(cfg, ctx, setup, client))
            last.update(initial)
            done = step + 1
            pointer = None
            if _due(step, cfg.run.checkpoint_every, setup.derived.total_steps):
                pointer = save(setup, trainer, ctx, done, initial)
            if ctx.is_main:
                write_step_metrics(setup.store, setup.run_id, done, last)
                metrics.observe(done, setup.plan.for_step(step).epoch, last, last_phases(last), int(last["n_samples"]))
                bar.update(last)
                log.info("step %d/%d %s", done, setup.derived.total_steps, _brief(last))
            if report is not None:
                report(last, pointer)
    finally:
        bar.close()
        if metrics is not None:
            metrics.close()
    write_run_finish(setup, ctx)
    if cfg.run.output_dir and ctx.is_main:
        trainer_actor_save(trainer, setup, cfg.run.output_dir)
    return last


def switch_pool(step: int, cfg: LearnerConfig, ctx: DistCtx, setup: RunSetup) -> None:
    """`curation.mode: early-lim`: after `early_epochs` epochs of the full pool, continue on the subset early LIM
    predicts (the scorer's version of `early_dataset`, through the dataset API); recorded in the store."""
    c = cfg.curation
    made = switch_if_due(
        step,
        setup.plan,
        setup.texts.ids,
        setup.store,
        setup.run_id,
        ctx,
        epochs=c.early_epochs,
        dataset=check_dataset_name(c.early_dataset.replace("{run}", setup.run_id)),
        api_url=api_url(cfg.data.datasets_url),
        timeout_s=c.early_wait_s,
    )
    if made is not None and ctx.is_main:
        precision = "n/a" if made.predicted_precision is None else f"{made.predicted_precision:.3f}"
        log.info(
            "step %d: early LIM: switching from %d prompts to %d (%s v%d, %s from %d epochs, predicted precision %s)",
            step, len(setup.texts.ids), len(made.indices), made.dataset, made.version, made.status,
            made.epochs_used, precision,
        )  # fmt: skip


def train_step(
    step: int,
    cfg: LearnerConfig,
    ctx: DistCtx,
    setup: RunSetup,
    trainer: PPOTrainer,
    client: RolloutClient,
    version: int = 0,
) -> dict[str, float]:
    """One step; `version` is the weight version the rollouts must come from (the last one pushed)."""
    timer = Timer()
    t0 = time.perf_counter()
    torch.manual_seed(_seed(cfg.run.seed, step, ctx.rank))
    sp = setup.plan.for_step(step)
    mine = shard(sp.indices, ctx.rank, ctx.world_size)  # pool indices of this rank's prompts
    n = cfg.rollout.samples_per_prompt

    # Ranks agree on retries (collectives) only when each runs one generation per step: dynamic sampling runs a
    # rank-local number of rounds, so there a failed rollout fails the step.
    coordinated = not cfg.curation.dynamic_sampling

    def run(indices: list[int]) -> Groups:
        nonlocal version
        with timer("rollout"):
            seed = _seed(cfg.run.seed, step, ctx.rank)
            rollouts, version = generate_on(version, client, setup, indices, cfg, seed, trainer, ctx, coordinated)
        with timer("reward"):
            scores, correct = task_reward(setup, indices, rollouts)
        return Groups(indices, rollouts, scores, correct)

    if cfg.curation.dynamic_sampling:
        c = cfg.curation
        sampled = dynamic_sample(
            mine, run, n, setup.derived.pool_size, c.filter_metric, c.max_rounds, [cfg.run.seed, step, ctx.rank]
        )
        groups, generated_groups, generated_tokens = sampled.groups, sampled.generated_groups, sampled.generated_tokens
    else:
        groups = run(mine)
        generated_groups, generated_tokens = len(mine), sum(len(r.response_token_ids) for r in groups.rollouts)
    mine, rollouts, scores, correct = groups.indices, groups.rollouts, groups.scores, groups.correct
    with timer("experience"):
        exp, stats = trainer.make_experience(rollouts, scores, n)
    with timer("update"):
        stats.update(trainer.update(exp, step))
    with timer("weight_sync"):
        try:
            version = push_weights(trainer, client, ctx, final=step + 1 == setup.derived.total_steps)
        except RuntimeError as e:  # WeightSyncError on every rank: the next step's rollouts send them again
            log.warning("weight sync after step %d failed (%s); the next step sends the weights again", step + 1, e)
            version = -1  # matches no replica: the next step's rollouts retry after a new sync
    with timer("events"):
        write_step_events(setup, step, sp.epoch, ctx.rank, mine, rollouts, scores, correct)

    resp_tokens = sum(len(r.response_token_ids) for r in rollouts)
    n_samples, n_correct, score_sum, tokens, gen_groups, gen_tokens = ctx.all_sum(
        [len(rollouts), sum(correct), float(scores.sum()), resp_tokens, generated_groups, generated_tokens]
    )
    wall = time.perf_counter() - t0
    phases = {f"time/{k}": v for k, v in timer.phases.items()}
    stats.update(phases)
    stats.update(
        {
            "train/step": step + 1,
            "train/epoch": sp.epoch,
            "train/reward_mean": score_sum / n_samples,
            "train/accuracy": n_correct / n_samples,
            "rollout/response_length": tokens / n_samples,
            "rollout/generated_tokens": gen_tokens,  # every sample generated this step, dropped groups included
            "rollout/generated_prompts": gen_groups,
            "rollout/weight_version": version,
            "perf/tokens_per_second": tokens / wall,
            "perf/step_seconds": wall,
            "n_samples": n_samples,
        }
    )
    return stats


def generate_on(
    version: int,
    client: RolloutClient,
    setup: RunSetup,
    indices: list[int],
    cfg: LearnerConfig,
    seed: int,
    trainer: PPOTrainer,
    ctx: DistCtx,
    coordinated: bool = True,
) -> tuple[list[Rollout], int]:
    """The step's rollouts, all from weight `version`; on a failure of any rank (the service lost a replica,
    or a restarted replica serves older weights) every rank drops its attempt, the weights are sent again to
    the replicas alive now (a new transfer group), and the step generates again with the same seed. Returns the
    rollouts and the version they come from. Not `coordinated`: no retry, a failure raises on this rank."""
    shared = getattr(client, "shared", False)
    for attempt in range(cfg.rollout.retries + 1):
        error = None
        try:
            rollouts = generate(client, setup, indices, cfg, seed)
            stale = {ro.weight_version for ro in rollouts} - {version}
            if shared and stale:
                error = f"rollouts from weight versions {sorted(stale)}, expected {version}"
        except Exception as e:  # noqa: BLE001 (any service failure: the replica's actor, the engine, the node)
            error = f"{type(e).__name__}: {e}"
        failed = ctx.all_max(int(error is not None)) if coordinated else int(error is not None)
        if not failed:
            return rollouts, version
        if attempt == cfg.rollout.retries or not coordinated:
            raise RuntimeError(f"rollouts failed {attempt + 1} times; last error on rank {ctx.rank}: {error}")
        log.warning("rollout attempt %d failed (%s); sending weights again and retrying", attempt + 1, error)
        try:
            version = push_weights(trainer, client, ctx)
        except RuntimeError as e:  # WeightSyncError on every rank alike: members still changing; next attempt
            log.warning("weight sync before the retry failed (%s)", e)
    raise AssertionError("unreachable")


def generate(client: RolloutClient, setup: RunSetup, indices: list[int], cfg: LearnerConfig, seed: int):
    r = cfg.rollout
    prompts = [setup.prompt_tokens(i) for i in indices]
    sampling = Sampling(r.samples_per_prompt, r.temperature, r.top_p, r.max_new_tokens, seed)
    rollouts = client.generate(prompts, sampling)
    for ro in rollouts:
        if not ro.text:
            ro.text = setup.tokenizer.decode(ro.response_token_ids, skip_special_tokens=True)
    return rollouts


def task_reward(setup: RunSetup, indices: list[int], rollouts: list[Rollout]):
    """Task reward of every rollout by limr.reward (1 correct, -0.5 wrong, -1 format error or unfinished)."""
    from limr.reward import Reason, grade_batch

    golds = [setup.texts.answers[indices[ro.prompt_index]] for ro in rollouts]
    grades = grade_batch([ro.text for ro in rollouts], golds, [ro.finish_reason == "stop" for ro in rollouts])
    scores = torch.tensor([g.score for g in grades], dtype=torch.float32)  # (B,)
    return scores, [g.reason == Reason.CORRECT for g in grades]


def push_weights(trainer: PPOTrainer, client: RolloutClient, ctx: DistCtx, final: bool = False) -> int:
    """Send the updated actor to the rollout engine(s): a shared service gets them once, from rank 0 (every
    rank takes part: under FSDP gathering the full weights is a collective). `final`: the run's last weights,
    exported for cold replicas whatever the export cadence."""
    version = client.sync_weights(trainer, ctx, final=final)
    ctx.barrier()  # nobody generates the next step on stale weights
    return version


def evaluate(cfg: LearnerConfig, ctx: DistCtx, setup: RunSetup, client: RolloutClient) -> dict[str, float]:
    """Greedy accuracy on the held-out prompts (each rank takes a share)."""
    from limr.reward import Reason, grade_batch

    ev = setup.eval_prompts
    mine = shard(list(range(len(ev.ids))), ctx.rank, ctx.world_size)
    sampling = Sampling(1, 0.0, 1.0, cfg.rollout.max_new_tokens, 0)
    rollouts = client.generate([setup.encode(ev.texts[i]) for i in mine], sampling) if mine else []
    texts = [ro.text or setup.tokenizer.decode(ro.response_token_ids, skip_special_tokens=True) for ro in rollouts]
    golds = [ev.answers[mine[ro.prompt_index]] for ro in rollouts]
    finished = [ro.finish_reason == "stop" for ro in rollouts]
    hits = sum(g.reason == Reason.CORRECT for g in grade_batch(texts, golds, finished)) if rollouts else 0
    total, hits_all = ctx.all_sum([len(rollouts), hits])
    acc = hits_all / max(total, 1)
    if ctx.is_main:
        log.info("eval accuracy %.4f on %d held-out prompts", acc, int(total))
    return {"eval/accuracy": acc}


def trainer_actor_save(trainer: PPOTrainer, setup: RunSetup, out_dir: str) -> None:
    from limr.learner.models import unwrap

    unwrap(trainer.actor).save_pretrained(out_dir, safe_serialization=True)
    setup.tokenizer.save_pretrained(out_dir)


def last_phases(stats: dict[str, float]) -> dict[str, float]:
    return {k.removeprefix("time/"): v for k, v in stats.items() if k.startswith("time/")}


def _due(step: int, every: int, total: int) -> bool:
    return step + 1 == total or (every > 0 and (step + 1) % every == 0)


def _seed(seed: int, step: int, rank: int) -> int:
    return (seed * 1_000_003 + step * 7919 + rank) % (2**31)


def _brief(s: dict[str, float]) -> str:
    keys = ("train/reward_mean", "train/accuracy", "train/kl", "losses/policy", "eval/accuracy")
    return " ".join(f"{k.split('/')[-1]}={s[k]:.4f}" for k in keys if k in s)
