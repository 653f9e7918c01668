"""`EventWriter`: the one way a trainer writes a run that LIM can score, limr's learner included.

    writer = EventWriter(store, "my-run", prompts, steps_per_epoch=8)
    for step in range(total_steps):
        ...  # generate, reward
        writer.write_step(step, prompt_ids, rewards)  # one row per sample
    writer.finish()

A run is `run.json` and `prompts.parquet` (written by `start`, or by the first `write_step`), one events
object per step (and part: one per rank of a data-parallel trainer), and the `_FINISHED` marker, written last
by `finish`. The scorer curates the run while it trains, publishing a dataset version per completed epoch,
and a final one after `finish`. Whether a sample is correct is `correct` when given, else the run's
correctness rule (`limr.events.correct`) on its reward or on one of its `scores`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from limr.events.correct import REWARD, CorrectRule, CorrectRuleError, parse_correct
from limr.events.ids import prompt_hash_id, prompt_text
from limr.events.io import PromptRecord, events_table, write_events, write_prompts
from limr.events.run import RunFinished, RunMeta, mark_run_finished, write_run_meta
from limr.events.schema import check_run_id, finished_key, prompts_key, run_json_key, run_prefix
from limr.store import ObjectStore


class RunExists(ValueError):
    """The run already has objects in the store and the writer was not asked to continue it."""


class EventWriter:
    """Writes one run's prompts, metadata, per-step reward events and finish marker."""

    def __init__(
        self,
        store: ObjectStore,
        run_id: str,
        prompts: Iterable[PromptRecord] | Iterable[str] | Any | None = None,
        *,
        steps_per_epoch: int | None = None,
        samples_per_prompt: int | None = None,
        epochs: int | None = None,
        correct: str | CorrectRule | None = None,
        source: str = "event-writer",
        model: str | None = None,
        config: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
        stamp_time: bool = True,
        **meta: Any,
    ) -> None:
        """`prompts`: the run's pool, as PromptRecords, a `limr.data.Pool`, or prompt texts (ids are then text
        hashes); None when only the events matter (scores then have no prompt texts).

        `epochs`: the planned epochs, when known (the scorer's early-LIM versions need them).
        `exist_ok`: continue a run that already has objects (a resumed trainer, an idempotent re-import);
        otherwise a run id that is taken is an error rather than a silent mix of two runs. `stamp_time`: give
        each event the time it was written (off for imports, so that importing twice writes identical objects).
        """
        self.store = store
        self.run_id = check_run_id(run_id)
        self.records = _records(prompts)
        self.steps_per_epoch = steps_per_epoch
        self.correct_rule = parse_correct(correct)
        fields: dict[str, Any] = {
            "run_id": run_id,
            "model": model,
            "samples_per_prompt": samples_per_prompt,
            "num_prompts": len(self.records) if self.records is not None else None,
            "steps_per_epoch": steps_per_epoch,
            "source": source,
            "config": dict(config or {}),
            "correct": str(self.correct_rule),
        }
        if epochs is not None:
            fields["epochs"] = epochs
        self.meta = RunMeta.model_validate(fields | meta)
        self._exist_ok = exist_ok
        self.stamp_time = stamp_time
        self.started = False
        self.keys: list[str] = []  # events objects written by this writer, in order
        self.last_epoch = -1

    # ---- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Write prompts.parquet and run.json (the run's first objects); `write_step` calls it when needed."""
        if self.started:
            return
        if not self._exist_ok and (
            self.store.exists(run_json_key(self.run_id)) or self.store.list_keys(run_prefix(self.run_id))
        ):
            raise RunExists(
                f"{self.store.uri}: run {self.run_id!r} already exists; runs are immutable, pick another id"
            )
        if self.records is not None:
            write_prompts(self.store, self.run_id, self.records)
        write_run_meta(self.store, self.meta)
        self.started = True

    def write_step(
        self,
        step: int,
        prompt_ids: Sequence[str],
        rewards: Sequence[float] | np.ndarray,
        *,
        epoch: int | None = None,
        correct: Sequence[bool] | np.ndarray | None = None,
        scores: Mapping[str, Sequence[float] | np.ndarray] | None = None,
        response_tokens: Sequence[int] | np.ndarray | None = None,
        responses: Sequence[str | None] | None = None,
        samples: Sequence[int] | np.ndarray | None = None,
        part: int = 0,
        **optional: Sequence[Any],
    ) -> str:
        """Write the samples of one step (part `part`): one row per sample; returns the object's key.

        `epoch` defaults to `step // steps_per_epoch` (0-based steps). `scores` are extra per-sample numbers
        (an `acc` field, one column per reward function) kept in the events so that a correctness rule can
        name them later. `samples` numbers the samples of one prompt (default 0, 1, ... in order).
        Rewriting a step writes the same object again: a resumed trainer or a re-import is idempotent.
        """
        n = len(prompt_ids)
        rewards_arr = np.asarray(rewards, np.float64).reshape(-1)
        if len(rewards_arr) != n:
            raise ValueError(f"step {step}: {len(rewards_arr)} rewards for {n} prompt ids")
        if epoch is None:
            if not self.steps_per_epoch:
                raise ValueError(f"step {step}: give epoch=, or steps_per_epoch= to the writer")
            epoch = step // self.steps_per_epoch
        extra = {k: np.asarray(v, np.float64).reshape(-1) for k, v in (scores or {}).items()}
        for name, values in extra.items():
            if len(values) != n:
                raise ValueError(f"step {step}: scores[{name!r}] has {len(values)} values for {n} samples")
        ok = (
            np.asarray(correct, bool).reshape(-1)
            if correct is not None
            else self.correct_of(rewards_arr, extra, f"step {step}")
        )
        if len(ok) != n:
            raise ValueError(f"step {step}: {len(ok)} correct flags for {n} samples")
        tokens = np.zeros(n, np.int64) if response_tokens is None else np.asarray(response_tokens, np.int64)
        sample = sample_numbers(prompt_ids) if samples is None else np.asarray(samples, np.int32)
        cols: dict[str, Any] = dict(optional)
        if responses is not None:
            cols["response"] = list(responses)
        if extra:
            names = sorted(extra)
            cols["scores"] = [[(k, float(extra[k][i])) for k in names if not np.isnan(extra[k][i])] for i in range(n)]
        if self.stamp_time:
            cols.setdefault("event_time", [datetime.now(UTC)] * n)
        table = events_table(
            self.run_id,
            step,
            np.full(n, epoch, np.int32),
            list(prompt_ids),
            sample,
            rewards_arr.astype(np.float32),
            ok,
            np.minimum(tokens, np.iinfo(np.int32).max).astype(np.int32),
            **cols,
        )
        self.start()
        key = write_events(self.store, self.run_id, step, part, table)
        self.keys.append(key)
        self.last_epoch = max(self.last_epoch, epoch)
        return key

    def finish(self, epochs: int | None = None, **extra: Any) -> RunFinished:
        """Mark the run finished (its last object): the scorer then publishes the final datasets.

        Call it once every events object is written (every rank's). `epochs` defaults to the epochs this
        writer wrote.
        """
        self.start()
        done = self.last_epoch + 1 if epochs is None else epochs
        return mark_run_finished(self.store, self.run_id, done, source=self.meta.source, **extra)

    def write_prompts(self, records: Iterable[PromptRecord]) -> None:
        """Write prompts.parquet late: for a writer made without a pool, once the prompts are known."""
        self.start()
        self.records = list(records)
        write_prompts(self.store, self.run_id, self.records)

    def delete_written(self) -> None:
        """Remove every object this writer wrote (a failed fresh import leaves no partial run)."""
        for key in [*self.keys, prompts_key(self.run_id), run_json_key(self.run_id), finished_key(self.run_id)]:
            self.store.delete(key)
        self.keys.clear()
        self.started = False

    # ---- helpers -------------------------------------------------------------------------------------------
    def correct_of(self, rewards: np.ndarray, scores: Mapping[str, np.ndarray], where: str) -> np.ndarray:
        """The correctness rule on a step's rewards or one of its score columns."""
        rule = self.correct_rule
        if rule.field == REWARD:
            return rule.apply(rewards)
        if rule.field not in scores:
            raise CorrectRuleError(
                f"{where}: the correctness rule {str(rule)!r} needs scores[{rule.field!r}]"
                f" (scores given: {sorted(scores) or 'none'})"
            )
        return rule.apply(scores[rule.field])


def sample_numbers(ids: Sequence[str]) -> np.ndarray:
    """0, 1, 2, ... per prompt within a step: the n samples of one prompt get distinct sample numbers."""
    counter: dict[str, int] = {}
    out = np.empty(len(ids), np.int32)
    for i, pid in enumerate(ids):
        out[i] = counter.get(pid, 0)
        counter[pid] = out[i] + 1
    return out


def _records(prompts: Any) -> list[PromptRecord] | None:
    """PromptRecords of whatever pool the caller has."""
    if prompts is None:
        return None
    if hasattr(prompts, "records") and hasattr(prompts, "ids"):  # limr.data.Pool
        out = []
        for i, pid in enumerate(prompts.ids):
            rec = prompts.records[i]
            answer, source = prompts.answer(i), rec.get("source")
            out.append(
                PromptRecord(
                    pid, prompt_text(prompts.prompt(i)), "" if answer is None else str(answer), _opt_str(source)
                )
            )
        return out
    out = []
    seen: set[str] = set()
    for p in prompts:
        rec = p if isinstance(p, PromptRecord) else PromptRecord(prompt_hash_id(str(p)), str(p).strip(), "")
        if rec.prompt_id not in seen:
            seen.add(rec.prompt_id)
            out.append(rec)
    return out


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
