"""What the learner's loop asks of a generator: `generate` n samples per prompt, `sync_weights` after each update.

Two implementations: `ServiceGenerator` (limr.learner.generator.service), the Ray Serve rollout service (vLLM), the
production path; `LocalGenerator` (limr.learner.generator.local), HuggingFace `generate` on the rank's own copy of
the actor, the no-cluster mode for debugging and for fast tests of the loop, checkpoints and resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from torch import nn

    from limr.learner.batch import Rollout
    from limr.learner.dist import DistCtx


@dataclass(frozen=True)
class Sampling:
    """One generation request's sampling: `n` samples per prompt of at most `max_new_tokens` tokens."""

    n: int
    temperature: float
    top_p: float
    max_new_tokens: int
    seed: int | None = None


class Generator(Protocol):
    # True: one generator serves every rank (rank 0 sends the weights, every rollout carries the weight version it
    # came from, and the loop retries rollouts from another version); False: each rank samples from its own copy.
    shared: bool

    def generate(self, prompt_token_ids: list[list[int]], sampling: Sampling) -> list[Rollout]:
        """n rollouts per prompt, ordered by (prompt, sample)."""

    def sync_weights(self, actor: nn.Module, ctx: DistCtx, final: bool = False) -> int:
        """Load the learner's current `actor` (every rank calls it); returns the new weight version. `final`: the
        run's last weights (a service also exports them for replicas that start after the run)."""

    def close(self) -> None: ...
