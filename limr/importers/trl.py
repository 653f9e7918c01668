"""TRL: `GRPOConfig(log_completions=True)` writes `{output_dir}/completions/completions_{step:05d}.parquet`.

Written by `GRPOTrainer.log` (huggingface/trl `trl/trainer/grpo_trainer.py`): columns `step`, `prompt` (text,
or a conversation: a list of {role, content}), `completion`, one column per reward function (named after
it; NaN where it returned None), any `log_extra` columns, and `advantage`. The reward is the sum of the
reward columns (TRL's default `reward_weights` are all 1), and a correctness rule may name one of them
(`--correct "accuracy_reward == 1"`).

What it means for LIM: TRL keeps only the last `generation_batch_size` samples per *logging* step (a bounded
deque), so with `logging_steps > 1`, or several generation batches per logging step, the other samples are
never written; those steps are missing and their epochs have gaps (reported). Set `logging_steps=1` and
`steps_per_generation=1`... or use `limr.integrations.trl`, which sees every sample.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from limr.events.ids import prompt_text
from limr.importers.base import DumpError, DumpStep, one_file_per_step

STEP_FILE_RE = re.compile(r"^completions_(\d+)\.parquet$")
#: Numeric columns that are not rewards.
NOT_REWARDS = ("step", "advantage")


class TrlFormat:
    """`limr import trl`."""

    name = "trl"
    strict_steps = False
    reward_field = "the sum of the reward columns"

    def __init__(self, reward_columns: list[str] | None = None) -> None:
        self.reward_columns = reward_columns  # None: every numeric column but step and advantage

    def find_steps(self, root: Path) -> dict[int, list[Path]]:
        base = root / "completions" if (root / "completions").is_dir() else root
        return one_file_per_step(base, STEP_FILE_RE)

    def read_step(self, step: int, files: list[Path]) -> DumpStep:
        path = files[0]
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as e:
            raise DumpError(f"{path}: not a readable Parquet file: {e}") from None
        for name in ("prompt", "completion"):
            if name not in table.column_names:
                raise DumpError(f"{path}: missing column {name!r} (columns: {', '.join(table.column_names)})")
        numeric = [
            f.name
            for f in table.schema
            if f.name not in NOT_REWARDS
            and (pa.types.is_floating(f.type) or pa.types.is_integer(f.type) or pa.types.is_boolean(f.type))
        ]
        rewards_cols = self.reward_columns if self.reward_columns is not None else numeric
        missing = [c for c in rewards_cols if c not in numeric]
        if missing or not rewards_cols:
            raise DumpError(f"{path}: no numeric reward column(s) {missing or ''} (columns: {table.column_names})")
        fields = {c: table.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in numeric}
        rewards = np.nansum(np.stack([fields[c] for c in rewards_cols]), axis=0)
        prompts = []
        for i, value in enumerate(table.column("prompt").to_pylist()):
            try:
                prompts.append(prompt_text(value))
            except ValueError as e:
                raise DumpError(f"{path}: row {i}: column 'prompt': {e}") from None
        responses = [_completion(c) for c in table.column("completion").to_pylist()]
        return DumpStep(step, prompts, rewards, fields, responses)


def _completion(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        content = value[-1].get("content")
        return content if isinstance(content, str) else None
    return None
