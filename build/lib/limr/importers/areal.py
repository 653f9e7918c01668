"""AReaL: `InferenceEngineConfig.dump_to_file`, `{log_path}/rollout/{version}/{task_id}.jsonl`.

Written by `WorkflowExecutor._dump_trajectory` (inclusionAI/AReaL `areal/core/workflow_executor.py`): one
line per sample with `task_id`, `sample_idx`, `seqlen`, `prompt_len`, `head_version`, `tail_version`,
`reward`, `prompt` and `completion` (decoded with the special tokens kept: the prompt is mapped back to the
pool with `limr.importers.matching`). The directory is the weight version that finished the sample
(`tail_version`, 0-based), so version v is trainer step v + 1. AReaL is asynchronous: a step's samples
come from prompts of several batches, and rejected trajectories are dumped too; LIM counts every sample
the policy of that version produced.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from limr.importers.base import DumpStep, jsonl_rows, number, numeric_fields, text

TASK_FILE_RE = re.compile(r"^(\d+)\.jsonl$")


class ArealFormat:
    """`limr import areal`."""

    name = "areal"
    strict_steps = False
    reward_field = "reward"

    def find_steps(self, root: Path) -> dict[int, list[Path]]:
        base = root / "rollout" if (root / "rollout").is_dir() else root
        out: dict[int, list[Path]] = {}
        for d in base.iterdir():
            if d.is_dir() and d.name.isdigit():
                files = sorted(
                    (p for p in d.iterdir() if TASK_FILE_RE.match(p.name)), key=lambda p: int(p.name.split(".")[0])
                )
                if files:
                    out[int(d.name) + 1] = files
        return out

    def read_step(self, step: int, files: list[Path]) -> DumpStep:
        rows = [r for f in files for r in jsonl_rows(f)]
        prompts, responses = [], []
        rewards = np.empty(len(rows))
        tokens = np.zeros(len(rows), np.int64)
        for i, (where, rec) in enumerate(rows):
            prompts.append(text(rec.get("prompt"), where, "prompt"))
            completion = rec.get("completion")
            responses.append(completion if isinstance(completion, str) else None)
            rewards[i] = number(rec.get("reward"), where, "reward")
            seqlen, prompt_len = rec.get("seqlen"), rec.get("prompt_len")
            if isinstance(seqlen, int) and isinstance(prompt_len, int):
                tokens[i] = max(seqlen - prompt_len, 0)
        skip = {"reward", "task_id", "sample_idx", "seqlen", "prompt_len", "head_version", "tail_version"}
        return DumpStep(step, prompts, rewards, numeric_fields([r for _, r in rows], skip), responses, tokens)
