"""The LIMR math reward: 1.0 correct, -0.5 wrong but well formatted, -1.0 format error.

Rules are documented in docs/reward.md. Public API:

- `score_response(response, gold, finished=True) -> float` and `score_batch(responses, golds, finished)`:
  checked in worker processes with a per-item time limit (2 s), so they never hang.
- `grade_batch(...) -> list[Grade]`: the same, with the reason and extracted answer of each score.
- `RewardPool`: an explicitly sized pool (own workers and timeout), usable as a context manager.
- `grade(response, gold, finished)`: the rule in-process, without a time limit (trusted input only).

No torch or vLLM imports here: scorer services and `limr score` load this module cheaply.
"""

from __future__ import annotations

from collections.abc import Sequence

from limr.reward.equivalence import is_equivalent, normalize_gold
from limr.reward.grade import CORRECT, FORMAT_ERROR, WRONG, Grade, Reason, check_format, grade
from limr.reward.pool import RewardPool, RewardPoolConfig, default_pool
from limr.reward.rules import last_boxed

__all__ = [
    "CORRECT",
    "FORMAT_ERROR",
    "WRONG",
    "Grade",
    "Reason",
    "RewardPool",
    "RewardPoolConfig",
    "check_format",
    "grade",
    "grade_batch",
    "is_equivalent",
    "last_boxed",
    "normalize_gold",
    "score_batch",
    "score_response",
]


def grade_batch(
    responses: Sequence[str],
    golds: Sequence[str],
    finished: Sequence[bool] | None = None,
    pool: RewardPool | None = None,
) -> list[Grade]:
    """Grade responses in parallel (default pool unless one is given); same order as the input."""
    return (pool or default_pool()).grade(responses, golds, finished)


def score_batch(
    responses: Sequence[str],
    golds: Sequence[str],
    finished: Sequence[bool] | None = None,
    pool: RewardPool | None = None,
) -> list[float]:
    """Rewards of many responses, checked in parallel with a per-item time limit."""
    return [g.score for g in grade_batch(responses, golds, finished, pool)]


def score_response(response: str, gold: str, finished: bool = True) -> float:
    """Reward of one response: 1.0 correct, -0.5 wrong, -1.0 format error (incl. unfinished, timeout)."""
    return score_batch([response], [gold], [finished])[0]
