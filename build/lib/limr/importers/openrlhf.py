"""LIMR's OpenRLHF fork: `step_N.json` dumps, and published per-prompt score files.

Dumps are `step_N.json` files (N = 1, 2, ...) in the directory or its `train/` subdirectory, each a JSON
list of {prompt, response, reward, response_length} (GAIR-NLP/LIMR `openrlhf/trainer/ppo_trainer.py`). As in
the released `lim_selection.py`, every step must be there (`strict_steps`), a sample is correct when
reward == 1 (the default rule), and prompts are keyed by their stripped text.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from limr.events.ids import prompt_hash_id
from limr.importers.base import DumpError, DumpStep, what

STEP_FILE_RE = re.compile(r"^step_(\d+)\.json$")


class OpenRLHFFormat:
    """`limr import openrlhf`."""

    name = "openrlhf"
    strict_steps = True
    reward_field = "reward"

    def find_steps(self, root: Path) -> dict[int, list[Path]]:
        found = _step_files(root)
        if not found and (root / "train").is_dir():
            found = _step_files(root / "train")
        return {s: [p] for s, p in found.items()}

    def read_step(self, step: int, files: list[Path]) -> DumpStep:
        s = read_step(files[0], step, 0)
        return DumpStep(step, s.prompts, s.rewards, {}, s.responses, s.response_lengths)


@dataclass(frozen=True)
class StepSamples:
    """The samples of one step file, validated, as columns."""

    step: int
    epoch: int
    prompts: list[str]  # raw prompt text per sample
    rewards: np.ndarray  # (n,) float64
    response_lengths: np.ndarray  # (n,) int64, 0 where absent
    responses: list[str | None]


def read_step(path: Path, step: int, epoch: int) -> StepSamples:
    """Parse and validate one step file; errors name the file, the row and the field."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise DumpError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise DumpError(f"{path}: not UTF-8 text ({e.reason})") from None
    if not isinstance(data, list):
        raise DumpError(f"{path}: expected a JSON list of samples, got {type(data).__name__}")
    n = len(data)
    prompts: list[str] = []
    responses: list[str | None] = []
    rewards = np.empty(n, np.float64)
    lengths = np.zeros(n, np.int64)
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise DumpError(f"{path}: row {i}: expected an object, got {type(rec).__name__}")
        prompt = rec.get("prompt")
        if not isinstance(prompt, str):
            raise DumpError(f"{path}: row {i}: field 'prompt' is {_what(prompt)}, expected a string")
        reward = rec.get("reward")
        if isinstance(reward, list) and len(reward) == 1:  # some OpenRLHF versions dump [r]
            reward = reward[0]
        if isinstance(reward, bool) or not isinstance(reward, int | float):
            raise DumpError(f"{path}: row {i}: field 'reward' is {_what(reward)}, expected a number")
        if not math.isfinite(reward):
            raise DumpError(f"{path}: row {i}: field 'reward' is {reward}, expected a finite number")
        length = rec.get("response_length", 0)
        if isinstance(length, float) and length.is_integer():
            length = int(length)
        if length is None:
            length = 0
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise DumpError(f"{path}: row {i}: field 'response_length' is {_what(length)}, expected an integer >= 0")
        response = rec.get("response")
        if response is not None and not isinstance(response, str):
            raise DumpError(f"{path}: row {i}: field 'response' is {_what(response)}, expected a string")
        prompts.append(prompt)
        responses.append(response)
        rewards[i] = reward
        lengths[i] = length
    return StepSamples(step, epoch, prompts, rewards, lengths, responses)


def _what(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return what(value)


# ---- published scores ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PublishedScores:
    """A published {prompt, score} file: ids are hashes of the stripped prompt text."""

    path: Path
    prompt_ids: list[str]
    prompts: list[str]
    scores: np.ndarray  # (N,) float64


def read_published_scores(path: str | Path) -> PublishedScores:
    """Read a JSON list (or JSONL) of {prompt, score}; repeated prompts must agree on the score."""
    path = Path(path)
    if not path.is_file():
        raise DumpError(f"{path}: no such scores file")
    text = path.read_text(encoding="utf-8")
    rows: list[tuple[str, Any]]
    try:
        data = json.loads(text)
        if not isinstance(data, list):
            raise DumpError(f"{path}: expected a JSON list of {{prompt, score}} objects, got {type(data).__name__}")
        rows = [(f"row {i}", r) for i, r in enumerate(data)]
    except json.JSONDecodeError as e:
        if not text.lstrip().startswith("{"):
            raise DumpError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
        rows = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((f"line {lineno}", json.loads(line)))
                except json.JSONDecodeError as e2:
                    raise DumpError(f"{path}: line {lineno}: invalid JSON at column {e2.colno}: {e2.msg}") from None
    ids: list[str] = []
    prompts: list[str] = []
    scores: list[float] = []
    seen: dict[str, tuple[float, str]] = {}
    for where, rec in rows:
        if not isinstance(rec, dict):
            raise DumpError(f"{path}: {where}: expected an object, got {type(rec).__name__}")
        prompt, score = rec.get("prompt"), rec.get("score")
        if not isinstance(prompt, str):
            raise DumpError(f"{path}: {where}: field 'prompt' is {_what(prompt)}, expected a string")
        if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
            raise DumpError(f"{path}: {where}: field 'score' is {_what(score)}, expected a finite number")
        pid = prompt_hash_id(prompt)
        if pid in seen:
            if seen[pid][0] != score:
                raise DumpError(
                    f"{path}: {where}: prompt repeats {seen[pid][1]} with another score ({score} vs {seen[pid][0]})"
                )
            continue
        seen[pid] = (float(score), where)
        ids.append(pid)
        prompts.append(prompt)
        scores.append(float(score))
    if not ids:
        raise DumpError(f"{path}: no scores")
    return PublishedScores(path, ids, prompts, np.array(scores, np.float64))


def _step_files(directory: Path) -> dict[int, Path]:
    out: dict[int, Path] = {}
    for p in directory.iterdir():
        m = STEP_FILE_RE.match(p.name)
        if m and p.is_file():
            out[int(m.group(1))] = p
    return out
