"""Import OpenRLHF/LIMR training-sample dumps and published per-prompt score files.

Dumps are `step_N.json` files (N = 1, 2, ...), each a JSON list of {prompt, response, reward,
response_length} written by the LIMR fork of OpenRLHF. As in the released `lim_selection.py`, step N
belongs to epoch (N - 1) // steps_per_epoch, only complete epochs count (a trailing partial epoch is
ignored and reported), a sample is correct when reward == 1, and prompts are keyed by their stripped text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from limr.events.ids import prompt_hash_id

STEP_FILE_RE = re.compile(r"^step_(\d+)\.json$")


class DumpError(ValueError):
    """A malformed dump or score file; the message names the file and the row/field."""


@dataclass
class StepPlan:
    """Which step files make up which epochs."""

    directory: Path
    steps_per_epoch: int
    files: dict[int, Path]  # step -> file, only the steps used
    epochs: int  # complete epochs used
    ignored_steps: list[int] = field(default_factory=list)  # steps of a trailing partial epoch / past max_epochs

    def epoch_of(self, step: int) -> int:
        return (step - 1) // self.steps_per_epoch


def plan_steps(samples_dir: str | Path, steps_per_epoch: int, max_epochs: int | None = None) -> StepPlan:
    """Find the step files: in `samples_dir` itself or in its `train/` subdirectory."""
    if steps_per_epoch < 1:
        raise DumpError(f"--steps-per-epoch must be >= 1, got {steps_per_epoch}")
    root = Path(samples_dir)
    if not root.is_dir():
        raise DumpError(f"{root}: not a directory of OpenRLHF step files")
    directory = root
    found = _step_files(root)
    if not found and (root / "train").is_dir():
        directory = root / "train"
        found = _step_files(directory)
    if not found:
        raise DumpError(f"{root}: no step_N.json files here or in {root / 'train'}")
    last = max(found)
    complete = last // steps_per_epoch
    if max_epochs is not None:
        complete = min(complete, max_epochs)
    if complete == 0:
        raise DumpError(
            f"{directory}: {len(found)} step file(s) up to step_{last}.json, fewer than one epoch of"
            f" {steps_per_epoch} steps"
        )
    used = range(1, complete * steps_per_epoch + 1)
    missing = [s for s in used if s not in found]
    if missing:
        raise DumpError(f"{directory}: missing step file(s) {_ranges(missing)} (steps must be 1, 2, ... without gaps)")
    return StepPlan(
        directory=directory,
        steps_per_epoch=steps_per_epoch,
        files={s: found[s] for s in used},
        epochs=complete,
        ignored_steps=sorted(s for s in found if s > complete * steps_per_epoch),
    )


def _step_files(directory: Path) -> dict[int, Path]:
    out: dict[int, Path] = {}
    for p in directory.iterdir():
        m = STEP_FILE_RE.match(p.name)
        if m and p.is_file():
            out[int(m.group(1))] = p
    return out


def _ranges(steps: list[int]) -> str:
    shown = ", ".join(str(s) for s in steps[:10])
    return shown + (f" ... ({len(steps)} in all)" if len(steps) > 10 else "")


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
    if value is None:
        return "missing"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return f"{value!r} ({type(value).__name__})" if not isinstance(value, dict | list) else type(value).__name__


def iter_steps(plan: StepPlan) -> Iterator[StepSamples]:
    for step in sorted(plan.files):
        yield read_step(plan.files[step], step, plan.epoch_of(step))


def step_table(samples: StepSamples, id_of: dict[str, str] | None = None) -> pa.Table:
    """prompt_id / epoch / correct columns of one step, ids = hash of stripped text (or `id_of[stripped]`)."""
    ids = [_id(p, id_of) for p in samples.prompts]
    return pa.table(
        {
            "prompt_id": pa.array(ids, pa.string()),
            "epoch": pa.array(np.full(len(ids), samples.epoch, np.int32)),
            "correct": pa.array(samples.rewards == 1),
        }
    )


def _id(prompt: str, id_of: dict[str, str] | None) -> str:
    if id_of is None:
        return prompt_hash_id(prompt)
    return id_of.get(prompt.strip()) or prompt_hash_id(prompt)


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


# ---- import into a run ----------------------------------------------------------------------------------
@dataclass
class ImportSummary:
    run_id: str
    steps: int
    epochs: int
    events: int
    prompts: int
    ignored_steps: list[int]
    keys: list[str] = field(default_factory=list)


def import_openrlhf(
    store: Any,
    samples_dir: str | Path,
    steps_per_epoch: int,
    run_id: str,
    pool: Any = None,
    progress: Any = None,
) -> ImportSummary:
    """Write dumps as a run: one events object per step, prompts.parquet, run.json, then the finished marker.

    With a prompt `pool` (limr.data.Pool), prompt ids are the pool's ids (matched by stripped prompt text)
    and every dumped prompt must be in the pool. On any error the objects written so far are deleted, so a
    failed import leaves no partial run.
    """
    from limr.events.io import write_events, write_prompts
    from limr.events.run import RunMeta, mark_run_finished, write_run_meta
    from limr.events.schema import check_run_id, finished_key, run_json_key, run_prefix

    check_run_id(run_id)
    if store.exists(run_json_key(run_id)) or store.list_keys(run_prefix(run_id)):
        raise DumpError(f"{store.uri}: run {run_id!r} already exists; runs are immutable, pick another --run")
    plan = plan_steps(samples_dir, steps_per_epoch)
    ids = _PromptIds(pool)
    written: list[str] = []
    events = 0
    try:
        for samples in iter_steps(plan):
            table = _events_of_step(run_id, samples, ids, plan.files[samples.step])
            written.append(write_events(store, run_id, samples.step, 0, table))
            events += table.num_rows
            if progress:
                progress(samples.step)
        records = ids.records()
        write_prompts(store, run_id, records)
        written.append(f"{run_prefix(run_id)}prompts.parquet")
        config = {"samples_dir": str(plan.directory), "epochs": plan.epochs, "ignored_steps": plan.ignored_steps}
        meta = RunMeta(
            run_id=run_id,
            source="openrlhf-import",
            num_prompts=len(records),
            steps_per_epoch=steps_per_epoch,
            config=config,
        )
        write_run_meta(store, meta)
        written.append(run_json_key(run_id))
        written.append(finished_key(run_id))
        mark_run_finished(store, run_id, plan.epochs, steps=len(plan.files), source="openrlhf-import")
    except BaseException:
        for key in written:
            store.delete(key)
        raise
    return ImportSummary(run_id, len(plan.files), plan.epochs, events, len(ids.seen), plan.ignored_steps, written)


class _PromptIds:
    """Prompt ids of dumped prompt texts: the pool's (by stripped text) when there is one, else derived."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.id_of: dict[str, str] | None = None
        self.rows: dict[str, dict[str, Any]] = {}
        self.seen: dict[str, str] = {}  # prompt id -> prompt text, of the dumped prompts
        if pool is not None:
            self.id_of = {}
            for pid, rec in zip(pool.ids, pool.records, strict=True):
                self.id_of.setdefault(rec["prompt"].strip(), pid)
                self.rows[pid] = rec

    def ids(self, prompts: list[str], path: Path) -> list[str]:
        out = []
        for i, p in enumerate(prompts):
            pid = _id(p, self.id_of)
            if self.id_of is not None and pid not in self.rows:
                raise DumpError(f"{path}: row {i}: prompt not in the prompts file {self.pool.path}: {p[:80]!r}")
            self.seen.setdefault(pid, p.strip())
            out.append(pid)
        return out

    def records(self) -> list[Any]:
        """The run's prompts: with a pool the whole pool (prompts never dumped show as "no events")."""
        from limr.events.io import PromptRecord

        texts = {pid: rec["prompt"] for pid, rec in self.rows.items()} if self.rows else self.seen
        records = []
        for pid, text in texts.items():
            rec = self.rows.get(pid, {})
            answer, source = rec.get("answer"), rec.get("source")
            records.append(
                PromptRecord(pid, text, "" if answer is None else str(answer), None if source is None else str(source))
            )
        return records


def _events_of_step(run_id: str, samples: Any, ids: _PromptIds, path: Path) -> Any:
    """The events table of one dumped step."""
    from limr.events.io import events_table

    prompt_ids = ids.ids(samples.prompts, path)
    return events_table(
        run_id,
        samples.step,
        np.full(len(prompt_ids), samples.epoch, np.int32),
        prompt_ids,
        _sample_numbers(prompt_ids),
        samples.rewards.astype(np.float32),
        samples.rewards == 1,
        np.minimum(samples.response_lengths, np.iinfo(np.int32).max).astype(np.int32),
        response=samples.responses,
    )


def _sample_numbers(ids: list[str]) -> np.ndarray:
    """0, 1, 2, ... per prompt within a step: the n samples of one prompt get distinct sample numbers."""
    counter: dict[str, int] = {}
    out = np.empty(len(ids), np.int32)
    for i, pid in enumerate(ids):
        out[i] = counter.get(pid, 0)
        counter[pid] = out[i] + 1
    return out
