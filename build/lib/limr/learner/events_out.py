"""One reward event per rollout sample, written as part `rank` of the step in the core events layout; and the
step's metrics (rank 0), so training curves (held-out accuracy, generated tokens) can be read back per step."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import torch

from limr.events.io import events_table, write_events
from limr.events.schema import metrics_prefix
from limr.learner.batch import Rollout

if TYPE_CHECKING:
    from limr.learner.setup import RunSetup


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
    return write_events(setup.store, setup.run_id, step, rank, table)


def write_step_metrics(store, run_id: str, done_steps: int, metrics: dict[str, float]) -> str:
    """`runs/{run}/metrics/{done_steps:010d}.json`: the step's metrics (a resumed step overwrites its own)."""
    key = f"{metrics_prefix(run_id)}{done_steps:010d}.json"
    body = {k: float(v) for k, v in sorted(metrics.items())}
    store.put(key, json.dumps(body).encode(), content_type="application/json")
    return key


def read_run_metrics(store, run_id: str) -> list[dict[str, float]]:
    """Every step's metrics of a run, in step order."""
    keys = sorted(info.key for info in store.list(metrics_prefix(run_id)) if info.key.endswith(".json"))
    return [json.loads(store.get(k)) for k in keys]
