"""`curation.mode: greso`: GRESO's pre-rollout skipping (limr.algo.greso) inside the learner's dynamic sampling.

Each step, every round's prompts (the data plan's, then dynamic sampling's refills) pass the skip rule before
they are rolled out; the ones skipped count as used, so refills take their place, and the step still trains on
`rollout_batch_size` informative groups. After the step every rank applies the same outcomes (all ranks'
groups, gathered in rank order) to its copy of the state, and the exploration probabilities adapt once: the
state stays identical on every rank. The skip draws are seeded by (seed, step, rank, round), so a resumed run
that restores the state from its checkpoint makes the same choices.

Metrics per step: `curation/greso_skipped` (prompts skipped before rollout, all ranks; x samples_per_prompt =
rollouts saved), `curation/greso_p_easy`, `curation/greso_p_hard`, `curation/greso_zero_variance` (share of the
step's rolled-out groups that were all right or all wrong).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from limr.algo.greso import GresoSettings, GresoState, StepOutcome
from limr.learner.dist import DistCtx


class Greso:
    def __init__(self, settings: GresoSettings | None = None) -> None:
        self.state = GresoState(settings or GresoSettings())

    def prefilter(self, indices: list[int], seed: list[int]) -> list[int]:
        kept, _ = self.state.filter(indices, np.random.default_rng(seed))
        return kept

    def end_step(self, ctx: DistCtx, rolled: list[tuple[list[int], np.ndarray]], skipped: int) -> dict[str, float]:
        """Apply every rank's outcomes of the step (rank order) and adapt; returns the step's metrics."""
        mine = [(list(map(int, idx)), np.asarray(out).tolist()) for idx, out in rolled]
        everyone = ctx.all_gather_objects((mine, skipped))
        total = StepOutcome(0, 0, 0)
        for rounds, _ in everyone:
            for idx, out in rounds:
                if idx:
                    o = self.state.observe(idx, np.asarray(out))
                    total = StepOutcome(total.groups + o.groups, total.easy + o.easy, total.hard + o.hard)
        self.state.adapt(total)
        return {
            "curation/greso_skipped": float(sum(s for _, s in everyone)),
            "curation/greso_p_easy": self.state.p_easy,
            "curation/greso_p_hard": self.state.p_hard,
            "curation/greso_zero_variance": (total.easy + total.hard) / total.groups if total.groups else 0.0,
        }

    def to_dict(self) -> dict[str, Any]:
        return self.state.to_dict()

    def load(self, d: dict[str, Any] | None) -> None:
        if d is not None:
            self.state = GresoState.from_dict(d, self.state.settings)
