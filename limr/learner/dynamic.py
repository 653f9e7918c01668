"""DAPO-style dynamic sampling (Yu et al. 2025, https://arxiv.org/abs/2503.14476, section 3.2): online curation.

Under GRPO a group whose samples all got the same outcome has advantage 0 and teaches nothing, so the step
drops it and generates more prompts until it has `rollout_batch_size` informative groups (verl
`algorithm.filter_groups`, OpenRLHF `--algo.dynamic_filtering_enable`, NeMo-RL `use_dynamic_sampling`).
It pays in rollouts: every dropped group was generated. limr counts those tokens
(`rollout/generated_tokens`) so the experiment can compare it with LIM, which drops prompts once, offline.

Refill prompts are a seeded draw from the pool per (step, round, rank), excluding the step's prompts so far:
a pure function of the step like the data plan, so a resumed run draws the same ones. A step still short
after `max_rounds` tops up with dropped groups (advantage 0 under GRPO, kept so step sizes stay fixed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from limr.learner.batch import Rollout


@dataclass
class Groups:
    """Generated and scored groups: n samples per prompt, ordered by (prompt, sample)."""

    indices: list[int]  # pool index of each group's prompt
    rollouts: list[Rollout]  # rollouts[i].prompt_index indexes `indices`
    scores: torch.Tensor  # (G * n,)
    correct: list[bool]  # (G * n,)

    def take(self, groups: list[int], n: int) -> Groups:
        """These groups, in this order, re-indexed from 0."""
        rows = [g * n + k for g in groups for k in range(n)]
        new_pos = {g: i for i, g in enumerate(groups)}
        rollouts = [replace(self.rollouts[r], prompt_index=new_pos[self.rollouts[r].prompt_index]) for r in rows]
        return Groups(
            [self.indices[g] for g in groups],
            rollouts,
            self.scores[rows] if rows else self.scores[:0],
            [self.correct[r] for r in rows],
        )

    @staticmethod
    def concat(parts: list[Groups]) -> Groups:
        indices, rollouts, scores, correct = [], [], [], []
        for p in parts:
            rollouts += [replace(r, prompt_index=r.prompt_index + len(indices)) for r in p.rollouts]
            indices += p.indices
            scores.append(p.scores)
            correct += p.correct
        return Groups(indices, rollouts, torch.cat(scores) if scores else torch.zeros(0), correct)


@dataclass
class Sampled:
    groups: Groups  # what the step trains on
    generated_groups: int  # groups generated, kept or dropped
    generated_tokens: int  # response tokens generated, kept or dropped
    rounds: int
    rolled: list[tuple[list[int], np.ndarray]] = field(default_factory=list)  # each round: prompts, (G, n) outcomes
    skipped: int = 0  # prompts a pre-rollout filter skipped (GRESO)


def informative(values: np.ndarray) -> np.ndarray:
    """(G, n) per-sample outcomes -> (G,) True where the group's samples do not all agree."""
    return values.max(axis=1) != values.min(axis=1)


def refill(pool_size: int, exclude: set[int], k: int, seed: list[int]) -> list[int]:
    """Up to k pool indices not in `exclude`, a seeded uniform draw without replacement."""
    order = np.random.default_rng(seed).permutation(pool_size)
    return [int(i) for i in order if int(i) not in exclude][:k]


def dynamic_sample(
    first: list[int],
    run: Callable[[list[int]], Groups],
    n: int,
    pool_size: int,
    metric: str,
    max_rounds: int,
    seed: list[int],
    prefilter: Callable[[list[int], list[int]], list[int]] | None = None,
) -> Sampled:
    """Generate `first`, keep informative groups, refill until len(first) are kept or max_rounds is spent.

    `prefilter(prompts, seed)`: the prompts of a round worth rolling out (GRESO's pre-rollout skipping); the
    skipped ones count as used for the step, so refills draw others in their place."""
    target = len(first)
    kept: list[Groups] = []
    dropped: list[Groups] = []
    rolled: list[tuple[list[int], np.ndarray]] = []
    n_kept = generated = tokens = skipped = 0
    used = set(first)
    batch, rounds = first, 0
    while batch and rounds < max_rounds:
        rounds += 1
        if prefilter is not None:
            wanted = prefilter(batch, [*seed, rounds])
            skipped += len(batch) - len(wanted)
            batch = wanted
        g = run(batch)
        generated += len(batch)
        tokens += sum(len(r.response_token_ids) for r in g.rollouts)
        outcome = g.scores if metric == "reward" else torch.tensor(g.correct, dtype=torch.float32)
        grid = outcome.view(len(batch), n).numpy()  # (G, n)
        rolled.append((list(batch), np.asarray(g.correct, np.float64).reshape(len(batch), n)))
        mask = informative(grid)
        keep = [i for i in range(len(batch)) if mask[i]]
        kept.append(g.take(keep[: target - n_kept], n))
        dropped.append(g.take([i for i in range(len(batch)) if not mask[i]], n))
        n_kept += len(kept[-1].indices)
        need = target - n_kept
        if need <= 0:
            break
        rate = max(n_kept / generated, 0.25)  # over-draw by the keep rate seen so far: fewer rounds
        batch = refill(pool_size, used, min(pool_size, math.ceil(need / rate)), [*seed, rounds])
        used.update(batch)
    out = Groups.concat(kept)
    short = target - len(out.indices)
    if short > 0:
        spare = Groups.concat(dropped)
        out = Groups.concat([out, spare.take(list(range(min(short, len(spare.indices)))), n)])
    return Sampled(out, generated, tokens, rounds, rolled, skipped)
