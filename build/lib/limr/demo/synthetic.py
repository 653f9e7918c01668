"""A synthetic run of reward events with known learning profiles, written through the real event writer.

Each prompt gets a profile that fixes its probability of a correct sample per epoch; LIM should rank
`learnable` prompts (which improve like the model as a whole) above `easy`, `hard`, `noisy` and
`forgotten` ones. A few prompts skip epochs to exercise gap filling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from limr.events.io import PromptRecord, events_table, write_events, write_prompts
from limr.events.run import RunMeta, mark_run_finished, write_run_meta
from limr.events.schema import run_prefix
from limr.store import ObjectStore

# Profile name -> share of prompts with that profile.
PROFILES: dict[str, float] = {"learnable": 0.35, "easy": 0.2, "hard": 0.2, "noisy": 0.15, "forgotten": 0.1}


def _p_correct(profile: str, epochs: int, rng: np.random.Generator) -> np.ndarray:
    """(E,) probability of a correct sample per epoch for one prompt of `profile`."""
    t = np.arange(epochs) / max(1, epochs - 1)
    if profile == "learnable":  # a sigmoid rise at a random point of the run
        mid, width = rng.uniform(0.2, 0.6), rng.uniform(0.05, 0.2)
        return 0.05 + 0.9 / (1 + np.exp(-(t - mid) / width))
    if profile == "easy":
        return np.full(epochs, rng.uniform(0.9, 1.0))
    if profile == "hard":
        return np.full(epochs, rng.uniform(0.0, 0.05))
    if profile == "noisy":  # erratic: jumps between mostly wrong and mostly right
        return rng.choice([0.1, 0.9], size=epochs)
    if profile == "forgotten":  # learned early, then lost
        return np.clip(0.9 - 1.2 * t, 0.02, 1.0)
    raise ValueError(f"unknown profile {profile!r}")


@dataclass
class SyntheticRun:
    run_id: str
    prompt_ids: list[str]
    profiles: dict[str, str]  # prompt id -> profile
    events: int
    epochs: int
    keys: list[str] = field(default_factory=list)


def write_synthetic_run(
    store: ObjectStore,
    run_id: str,
    num_prompts: int = 2000,
    epochs: int = 12,
    samples: int = 8,
    steps_per_epoch: int = 4,
    gap_rate: float = 0.03,
    seed: int = 0,
) -> SyntheticRun:
    """Write prompts.parquet, one events object per step, run.json and the finished marker (last)."""
    if num_prompts < 1 or epochs < 2 or samples < 1 or steps_per_epoch < 1:
        raise ValueError("need >= 1 prompt, >= 2 epochs, >= 1 sample, >= 1 step per epoch")
    if store.list_keys(run_prefix(run_id)):
        raise FileExistsError(f"{store.uri}: run {run_id!r} already exists; runs are immutable, pick another id")
    rng = np.random.default_rng(seed)
    names = list(PROFILES)
    kinds = rng.choice(len(names), size=num_prompts, p=np.array(list(PROFILES.values())))
    ids = [f"syn-{i:06d}" for i in range(num_prompts)]
    profiles = {pid: names[k] for pid, k in zip(ids, kinds, strict=True)}
    p = np.stack([_p_correct(names[k], epochs, rng) for k in kinds])  # (P, E)
    records = []
    for pid in ids:
        a, b = int(rng.integers(2, 99)), int(rng.integers(2, 99))
        records.append(PromptRecord(pid, f"What is {a} + {b}?", str(a + b), f"synthetic/{profiles[pid]}"))
    write_prompts(store, run_id, records)
    present = rng.random((num_prompts, epochs)) >= gap_rate  # (P, E) False = prompt skipped that epoch
    keys: list[str] = []
    events = 0
    per_step = -(-num_prompts // steps_per_epoch)
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(num_prompts)
        order = order[present[order, epoch]]
        for s in range(steps_per_epoch):
            rows = order[s * per_step : (s + 1) * per_step]  # (b,) prompt rows of this step
            if len(rows) == 0:
                step += 1
                continue
            n = len(rows) * samples
            rep = np.repeat(rows, samples)  # (n,)
            correct = rng.random(n) < p[rep, epoch]
            table = events_table(
                run_id,
                step,
                np.full(n, epoch, np.int32),
                [ids[r] for r in rep],
                np.tile(np.arange(samples, dtype=np.int32), len(rows)),
                correct.astype(np.float32),
                correct,
                rng.integers(16, 512, n).astype(np.int32),
            )
            keys.append(write_events(store, run_id, step, 0, table))
            events += n
            step += 1
    write_run_meta(
        store,
        RunMeta(
            run_id=run_id,
            source="synthetic-demo",
            model="synthetic",
            samples_per_prompt=samples,
            num_prompts=num_prompts,
            steps_per_epoch=steps_per_epoch,
            config={"epochs": epochs, "gap_rate": gap_rate, "seed": seed, "profiles": PROFILES},
        ),
    )
    mark_run_finished(store, run_id, epochs, steps=step, source="synthetic-demo")
    return SyntheticRun(run_id, ids, profiles, events, epochs, keys)
