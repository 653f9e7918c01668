"""GRESO's pre-rollout skipping (Zheng et al. 2025, "Act Only When It Pays", https://arxiv.org/abs/2506.02177).

Dynamic sampling drops a zero-variance group (all samples right, or all wrong) *after* generating it. GRESO
observes that such prompts stay zero-variance from one epoch to the next and skips them *before* rollout:

- each prompt carries the streak z of its most recent rollouts that were all right ("easy") or all wrong
  ("hard");
- before a step's rollout, a prompt with an easy streak z is skipped with probability 1 - max(p_easy^z, 0.01)
  (a hard streak: p_hard); p is the exploration probability, the 0.01 floor keeps every prompt in reach;
- after it, each exploration probability moves by delta_p = 0.01 toward its target share of zero-variance groups
  among the groups rolled out: a third of `target_zero_variance` (25%) for easy ones and two thirds for hard ones
  (more exploration of hard prompts, which turn learnable as the model improves). When more easy groups than the
  target came back, p_easy drops (skip more), else it rises; p stays within [min_p, max_p].

Defaults are the reference implementation's (Infini-AI-Lab/GRESO `math_qwen_7b_dm_greso.sh`: p_easy = p_hard =
0.5, target_zero_variance 0.25; delta_p 0.01 and the 1/3 - 2/3 split from its trainer; the [0.05, 0.95] bounds
from NeMo-RL's port). A step never skips all of its prompts. The skipped prompts' rollouts are the rollouts saved.

Pure Python/numpy; the learner (`curation.mode: greso`) keeps one state per run, shared by its ranks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class GresoSettings:
    target_zero_variance: float = 0.25
    p_init: float = 0.5
    delta_p: float = 0.01
    min_p: float = 0.05
    max_p: float = 0.95
    floor: float = 0.01  # minimum keep probability of any prompt

    @property
    def target_easy(self) -> float:
        return self.target_zero_variance / 3

    @property
    def target_hard(self) -> float:
        return self.target_zero_variance * 2 / 3


@dataclass
class StepOutcome:
    """What one step's rollouts showed: groups rolled out, and how many were all right / all wrong."""

    groups: int
    easy: int
    hard: int


@dataclass
class GresoState:
    settings: GresoSettings = field(default_factory=GresoSettings)
    easy_streak: dict[int, int] = field(default_factory=dict)  # pool index -> consecutive all-right rollouts
    hard_streak: dict[int, int] = field(default_factory=dict)  # pool index -> consecutive all-wrong rollouts
    p_easy: float = -1.0
    p_hard: float = -1.0

    def __post_init__(self) -> None:
        if self.p_easy < 0:
            self.p_easy = self.settings.p_init
        if self.p_hard < 0:
            self.p_hard = self.settings.p_init

    def skip_probability(self, index: int) -> float:
        z, p = self.easy_streak.get(index, 0), self.p_easy
        if z == 0:
            z, p = self.hard_streak.get(index, 0), self.p_hard
        return 0.0 if z == 0 else 1.0 - max(p**z, self.settings.floor)

    def filter(self, indices: list[int], rng: np.random.Generator) -> tuple[list[int], list[int]]:
        """(kept, skipped) of `indices`, in order; one uniform draw per prompt. Never skips every prompt."""
        draws = rng.random(len(indices))
        skip = [d < self.skip_probability(i) for i, d in zip(indices, draws, strict=True)]
        kept = [i for i, s in zip(indices, skip, strict=True) if not s]
        if not kept:
            return list(indices), []
        return kept, [i for i, s in zip(indices, skip, strict=True) if s]

    def observe(self, indices: list[int], outcomes: np.ndarray) -> StepOutcome:
        """Update streaks from rolled-out groups: `outcomes` (G, n) of 0/1 correctness, row i for indices[i]."""
        outcomes = np.asarray(outcomes)
        all_right = outcomes.min(axis=1) == 1
        all_wrong = outcomes.max(axis=1) == 0
        for i, right, wrong in zip(indices, all_right, all_wrong, strict=True):
            self.easy_streak[i] = self.easy_streak.get(i, 0) + 1 if right else 0
            self.hard_streak[i] = self.hard_streak.get(i, 0) + 1 if wrong else 0
        return StepOutcome(len(indices), int(all_right.sum()), int(all_wrong.sum()))

    def adapt(self, step: StepOutcome) -> None:
        """Move each exploration probability by delta_p toward its target zero-variance share."""
        if step.groups == 0:
            return
        s = self.settings
        self.p_easy = _move(self.p_easy, step.easy / step.groups >= s.target_easy, s)
        self.p_hard = _move(self.p_hard, step.hard / step.groups >= s.target_hard, s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "p_easy": self.p_easy,
            "p_hard": self.p_hard,
            "easy_streak": {str(k): v for k, v in self.easy_streak.items() if v},
            "hard_streak": {str(k): v for k, v in self.hard_streak.items() if v},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], settings: GresoSettings) -> GresoState:
        return cls(
            settings,
            {int(k): int(v) for k, v in d["easy_streak"].items()},
            {int(k): int(v) for k, v in d["hard_streak"].items()},
            float(d["p_easy"]),
            float(d["p_hard"]),
        )


def _move(p: float, above_target: bool, s: GresoSettings) -> float:
    return max(p - s.delta_p, s.min_p) if above_target else min(p + s.delta_p, s.max_p)
