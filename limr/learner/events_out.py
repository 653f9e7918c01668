"""One reward event per rollout sample, written as part `rank` of the step in the core events layout."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import torch

from limr.events.io import events_table, write_events
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
