"""What a learner run records in the store: run.json and prompts.parquet at its start, one reward event per rollout
sample (part `rank` of the step, in the core events layout), the finish marker at its end; and, on resume, the
record of the new attempt (limr.events.attempts). (Per-step metrics: limr.events.metrics.)"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import torch

from limr.events.attempts import record_resume
from limr.events.io import PromptRecord, events_table, write_events, write_prompts
from limr.events.run import RunMeta, mark_run_finished, write_run_meta
from limr.events.schema import finished_key
from limr.learner.batch import Rollout
from limr.learner.dist import DistCtx
from limr.learner.setup import RunSetup

log = logging.getLogger("limr.learner")


def write_step_events(
    setup: RunSetup,
    step: int,
    epoch: int,
    rank: int,
    indices: list[int],
    rollouts: list[Rollout],
    scores: torch.Tensor,
    correct: list[bool],
) -> str | None:
    """Write this rank's events of `step` (0-based); `rollouts[i].prompt_index` indexes `indices`."""
    if not rollouts:
        return None
    ids = setup.texts.ids
    now = datetime.now(UTC)
    table = events_table(
        setup.run_id,
        step,
        epoch=[epoch] * len(rollouts),
        prompt_id=[ids[indices[r.prompt_index]] for r in rollouts],
        sample=[r.sample for r in rollouts],
        reward=scores.tolist(),
        correct=correct,
        response_tokens=[len(r.response_token_ids) for r in rollouts],
        response=[r.text for r in rollouts],
        finish_reason=[r.finish_reason for r in rollouts],
        weight_version=[r.weight_version for r in rollouts],
        event_time=[now] * len(rollouts),
    )
    return write_events(setup.store, setup.run_id, step, rank, table, setup.attempt)


def write_run_start(setup: RunSetup) -> None:
    """run.json and prompts.parquet, the first objects of a run (rank 0, fresh runs only)."""
    cfg, t = setup.cfg, setup.texts
    write_prompts(
        setup.store,
        setup.run_id,
        (
            PromptRecord(pid, raw, ans, src)
            for pid, raw, ans, src in zip(t.ids, t.raw, t.answers, t.sources, strict=True)
        ),
    )
    meta = RunMeta(
        run_id=setup.run_id,
        model=cfg.model.actor,
        samples_per_prompt=cfg.rollout.samples_per_prompt,
        num_prompts=len(t.ids),
        steps_per_epoch=setup.derived.steps_per_epoch,
        source="learner",
        config=cfg.model_dump(mode="json"),
        epochs=cfg.run.epochs,
        total_steps=setup.derived.total_steps,
        estimator=cfg.algorithm.estimator,
        data_fingerprint=setup.plan.fingerprint(),
    )
    write_run_meta(setup.store, meta)


def write_run_finish(setup: RunSetup, ctx: DistCtx) -> None:
    """Mark the run finished (the scorer then publishes its final datasets), once every rank has written
    its last step's events: a barrier first, then rank 0 writes the marker, the run's last object."""
    ctx.barrier()
    if ctx.is_main:
        total = setup.derived.total_steps
        epochs = setup.plan.for_step(total - 1).epoch + 1 if total else 0
        mark_run_finished(setup.store, setup.run_id, epochs, steps=total, source="learner")
        log.info("run %s finished after %d steps (%d epochs)", setup.run_id, total, epochs)


def open_run(setup: RunSetup, ctx: DistCtx, start: int, resumed: bool) -> None:
    """Every rank, before the first step. A fresh run: rank 0 writes run.json and prompts.parquet. A resumed one
    (with any number of workers): rank 0 removes the finish marker (finished only when this attempt ends), then
    records the new attempt and the step it starts at (limr.events.attempts); every rank writes its events
    under that attempt's keys, and the events a crashed attempt wrote for steps at or after `start` no longer
    count for any reader: the run counts exactly one event per sample, whatever the ranks before and now."""
    attempt = 0
    if ctx.is_main:
        if not resumed:
            write_run_start(setup)
        else:
            # The marker goes first, so a scorer that sees the resume record never reads the old attempt's marker.
            setup.store.delete(finished_key(setup.run_id))
            attempt = record_resume(setup.store, setup.run_id, start, ctx.world_size)
            log.info("run %s: attempt %d from step %d", setup.run_id, attempt, start)
    setup.attempt = int(ctx.broadcast_object(attempt))  # (a barrier too)
