"""verl: `trainer.rollout_data_dir`, one `{global_step}.jsonl` per step.

Written by `RayPPOTrainer._dump_generations` (volcengine/verl `verl/trainer/ppo/ray_trainer.py`): one line per
response with `input` (the prompt tokens decoded with `skip_special_tokens=True`, so the chat template's text
stays: map it back with `limr.importers.matching`), `output`, `gts`, `score` (the sum of the token-level
scores: the reward), `step`, and every `reward_extra_info` key of the reward function (e.g. `acc`), which
a correctness rule may name. `global_steps` starts at 1. In DAPO-style runs (`algorithm.filter_groups`)
the dump is written after filtering, so all-solved and all-unsolved groups are missing: epochs with gaps,
which the import reports and LIM fills from the next epoch.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from limr.importers.base import DumpError, DumpStep, jsonl_rows, number, numeric_fields, one_file_per_step, text

STEP_FILE_RE = re.compile(r"^(\d+)\.jsonl$")


class VerlFormat:
    """`limr import verl`."""

    name = "verl"
    strict_steps = False
    reward_field = "score"

    def find_steps(self, root: Path) -> dict[int, list[Path]]:
        return one_file_per_step(root, STEP_FILE_RE)

    def read_step(self, step: int, files: list[Path]) -> DumpStep:
        rows = jsonl_rows(files[0])
        prompts, responses = [], []
        rewards = np.empty(len(rows))
        for i, (where, rec) in enumerate(rows):
            prompts.append(text(rec.get("input"), where, "input"))
            out = rec.get("output")
            responses.append(out if isinstance(out, str) else None)
            rewards[i] = number(rec.get("score"), where, "score")
            if rec.get("step", step) != step:
                raise DumpError(f"{where}: field 'step' is {rec.get('step')!r} in the file of step {step}")
        fields = numeric_fields([r for _, r in rows], skip={"step"})
        return DumpStep(step, prompts, rewards, fields, responses)
