"""Generated OpenRLHF-style dumps with controlled gaps, and a plain restatement of the released LIMR script.

`released_lim` re-states the released `lim_selection.py` as directly as possible (loops over dicts, -1 for
a missing epoch, one left-to-right fill pass, >= threshold, selection by exact prompt text), so that
limr's vectorized implementation is checked against the published algorithm, not against itself.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

# Gap patterns by prompt group: which epochs (of 6) a prompt is *absent* from.
PATTERNS: dict[str, list[int]] = {
    "always": [],
    "single_gap": [2],
    "double_gap": [2, 3],
    "last_gap": [5],
    "first_gap": [0],
    "late_only": [0, 1, 2],  # appears in epochs 3-5 only
    "early_only": [3, 4, 5],  # appears in epochs 0-2 only
    "two_singles": [1, 3],
    "gap_before_last": [4],
}
EPOCHS = 6


def make_dumps(
    root: Path, steps_per_epoch: int = 3, samples: int = 4, per_group: int = 6, seed: int = 0
) -> tuple[Path, list[dict]]:
    """Write root/train/step_N.json for EPOCHS epochs; returns (root, prompt records with ids)."""
    rng = random.Random(seed)
    train = root / "train"
    train.mkdir(parents=True)
    prompts: list[tuple[str, str]] = []  # (text, group)
    for group in PATTERNS:
        for j in range(per_group):
            prompts.append((f"[{group} {j}] Compute {j} + {len(group)}.", group))
    skill = {text: rng.random() for text, _ in prompts}
    step = 0
    for epoch in range(EPOCHS):
        present = [t for t, g in prompts if epoch not in PATTERNS[g]]
        rng.shuffle(present)
        per_step = -(-len(present) // steps_per_epoch)
        for s in range(steps_per_epoch):
            step += 1
            rows = []
            for text in present[s * per_step : (s + 1) * per_step]:
                p = min(1.0, skill[text] * (0.4 + 0.15 * epoch))
                for _ in range(samples):
                    r = rng.random()
                    # Mostly 0/1 rewards, some 0.5 and -1 (partial/format penalties): only exactly 1 counts.
                    reward = 1.0 if r < p else rng.choice([0.0, 0.0, 0.5, -1.0])
                    rows.append(
                        {
                            "prompt": text,
                            "response": f"answer {r:.3f}",
                            "reward": reward,
                            "response_length": rng.randint(1, 400),
                        }
                    )
            (train / f"step_{step}.json").write_text(json.dumps(rows))
    records = [{"id": f"id-{i:03d}", "prompt": t, "answer": str(i), "source": g} for i, (t, g) in enumerate(prompts)]
    # A prompt that never occurs in the dumps: never selected, and not an error.
    records.append({"id": "id-unused", "prompt": "Never trained on.", "answer": "0", "source": "none"})
    return root, records


def released_lim(train_dir: Path, steps_per_epoch: int, max_epochs: int) -> dict[str, float]:
    """Scores by prompt text, following the released script step by step."""
    epochs, prompts, current = [], set(), []
    for step in range(1, steps_per_epoch * max_epochs + 1):
        with open(train_dir / f"step_{step}.json") as f:
            current.extend(json.load(f))
        if step % steps_per_epoch == 0:
            prompts.update(sample["prompt"] for sample in current)
            epochs.append(current)
            current = []
    epoch_acc = []
    for epoch in epochs:
        acc = {p: [0, 0] for p in prompts}
        for sample in epoch:
            acc[sample["prompt"].strip()][1] += 1
            if sample["reward"] == 1:
                acc[sample["prompt"].strip()][0] += 1
        epoch_acc.append({p: c / t if t else -1 for p, (c, t) in acc.items()})
    seqs = {p: [e[p] for e in epoch_acc] for p in prompts}
    for seq in seqs.values():
        for i in range(len(seq) - 1):
            if seq[i] == -1 and seq[i + 1] != -1:
                seq[i] = seq[i + 1]
    valid = [(p, s[:max_epochs]) for p, s in seqs.items() if -1 not in s[:max_epochs]]
    if not valid:
        return {}
    mean = np.mean([s for _, s in valid], axis=0)
    out = {}
    for p, s in valid:
        sq = sum((a - b) ** 2 for a, b in zip(s, mean, strict=True))
        mx = sum((1 - b) ** 2 for b in mean)
        out[p] = 1 - sq / mx
    return out


def released_select(scores: dict[str, float], records: list[dict], threshold: float) -> list[dict]:
    chosen = {p for p, s in scores.items() if s >= threshold}
    return [r for r in records if r["prompt"] in chosen]
