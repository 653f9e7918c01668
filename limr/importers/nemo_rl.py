"""NeMo-RL: `train_data_step{N}.jsonl` in the logger's directory, one per GRPO step.

Written by `grpo_train` through `Logger.log_batched_dict_as_jsonl` (NVIDIA-NeMo/RL
`nemo_rl/algorithms/grpo.py`): one line per sample with `content` (the sample's message contents: the
templated prompt message(s), then the response), `rewards`, `input_lengths`, logprob lists, and with dynamic
sampling `filtered_rewards`. The prompt is every message but the last (mapped back to the pool with
`limr.importers.matching`), the reward `rewards`. Steps are 1-based. Step files may sit in `exp_*/`
subdirectories of the directory given (one per experiment): give the experiment's directory.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from limr.importers.base import DumpError, DumpStep, jsonl_rows, number, numeric_fields, one_file_per_step, what

STEP_FILE_RE = re.compile(r"^train_data_step(\d+)\.jsonl$")


class NemoRLFormat:
    """`limr import nemo-rl`."""

    name = "nemo-rl"
    strict_steps = False
    reward_field = "rewards"

    def find_steps(self, root: Path) -> dict[int, list[Path]]:
        return one_file_per_step(root, STEP_FILE_RE)

    def read_step(self, step: int, files: list[Path]) -> DumpStep:
        rows = jsonl_rows(files[0])
        prompts: list[str] = []
        responses: list[str | None] = []
        rewards = np.empty(len(rows))
        for i, (where, rec) in enumerate(rows):
            content = rec.get("content")
            if isinstance(content, str):
                prompts.append(content)
                responses.append(None)
            elif isinstance(content, list) and len(content) >= 2 and all(isinstance(c, str) for c in content):
                prompts.append("\n".join(content[:-1]))
                responses.append(content[-1])
            else:
                raise DumpError(f"{where}: field 'content' is {what(content)}, expected a list of message strings")
            rewards[i] = number(rec.get("rewards"), where, "rewards")
        fields = numeric_fields([r for _, r in rows], skip={"rewards", "input_lengths"})
        return DumpStep(step, prompts, rewards, fields, responses)
