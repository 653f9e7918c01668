"""Which prompts a step trains on: the seeded per-epoch order over the pool, and each worker's share of it.

The order of epoch e is a pure function of (seed, e, pool ids), so a resumed run only needs the step
counter to continue with exactly the prompts an uninterrupted run would have used; the checkpoint
stores a fingerprint of the pool to refuse resuming on a different one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from limr.data.pool import Pool


@dataclass(frozen=True)
class StepPrompts:
    step: int
    epoch: int
    indices: list[int]  # pool indices of this step's prompts, all workers, in order


class PromptPlan:
    def __init__(self, pool_ids: list[str], rollout_batch_size: int, seed: int):
        self.ids = pool_ids
        self.batch = rollout_batch_size
        self.seed = seed
        self.steps_per_epoch = -(-len(pool_ids) // rollout_batch_size)
        self._orders: dict[int, np.ndarray] = {}

    def order(self, epoch: int) -> np.ndarray:
        """A permutation of the pool for `epoch`: seeded by (seed, epoch), independent of every other epoch."""
        if epoch not in self._orders:
            self._orders = {epoch: np.random.default_rng([self.seed, epoch]).permutation(len(self.ids))}
        return self._orders[epoch]

    def for_step(self, step: int) -> StepPrompts:
        epoch, i = divmod(step, self.steps_per_epoch)
        idx = self.order(epoch)[i * self.batch : (i + 1) * self.batch]
        return StepPrompts(step, epoch, [int(x) for x in idx])

    def fingerprint(self) -> str:
        """Identifies the pool (ids in file order) and the ordering parameters."""
        h = hashlib.sha256(f"{self.seed}|{self.batch}|".encode())
        for pid in self.ids:
            h.update(pid.encode())
            h.update(b"\0")
        return h.hexdigest()[:16]


def shard(indices: list[int], rank: int, world_size: int) -> list[int]:
    """Contiguous, near-equal slice of a step's prompts for one worker (sizes differ by at most one)."""
    bounds = np.linspace(0, len(indices), world_size + 1).round().astype(int)
    return indices[bounds[rank] : bounds[rank + 1]]


@dataclass(frozen=True)
class PromptTexts:
    """Pool records reduced to what the loop needs, rendered with the prompt template."""

    ids: list[str]
    texts: list[str]  # rendered prompt text fed to the tokenizer
    answers: list[str]
    raw: list[str]  # the original prompt field
    sources: list[str | None]


def prompt_texts(pool: Pool, answer_field: str, render) -> PromptTexts:
    answers, missing = [], []
    for i, rec in enumerate(pool.records):
        a = rec.get(answer_field)
        if a is None:
            missing.append(pool.rows[i] if pool.rows else f"record {i}")
        answers.append("" if a is None else str(a))
    if missing:
        raise ValueError(
            f"{pool.path}: {len(missing)} record(s) without field {answer_field!r}, first at {missing[0]}"
        )
    raw = [pool.prompt(i) for i in range(len(pool))]
    return PromptTexts(
        ids=list(pool.ids),
        texts=[render(p) for p in raw],
        answers=answers,
        raw=raw,
        sources=[r.get("source") for r in pool.records],
    )
