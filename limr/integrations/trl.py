"""LIM for TRL's `GRPOTrainer` while it trains: every sample's reward becomes a reward event, no dump parsing.

    lim = LimrCallback(open_store("s3://bucket/limr"), "grpo-run-1", load_pool("train.jsonl"),
                       correct="accuracy_reward == 1")
    trainer = GRPOTrainer(model, reward_funcs=lim.wrap([accuracy_reward, format_reward]),
                          callbacks=[lim], train_dataset=dataset, args=config)
    trainer.train()      # `limr serve scorer` publishes LIM versions as epochs complete

`wrap` returns the reward functions unchanged in behaviour (same names, same outputs); they also hand each
completion's prompt, rewards and length to the callback. TRL calls every reward function once per generation
batch with the same lists; when the last one has returned, the batch's samples are buffered, and at the end
of the optimizer step the callback writes them through `limr.events.writer.EventWriter` (part = process
index, so data-parallel ranks never overwrite each other). The reward is TRL's: the reward columns weighted
by `GRPOConfig.reward_weights` (NaN-skipping sum); each column is also kept in the events' `scores`, so a
correctness rule can name it. `on_train_end` marks the run finished, after which the scorer publishes the
final version.

Prompt ids come from a `prompt_id` column of the training dataset when it has one (`limr datasets download
--format hf` writes it), else from the pool by prompt text (`limr.importers.matching`). The epoch of a sample
is the trainer's epoch when it was generated (`TrainerState.epoch`), or (step - 1) // steps_per_epoch when
`steps_per_epoch` is given.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from transformers import TrainerCallback

from limr.events.correct import CorrectRule
from limr.events.ids import prompt_text
from limr.events.writer import EventWriter
from limr.importers.matching import PromptMatcher
from limr.store import ObjectStore


@dataclass
class _Batch:
    """One generation batch while its reward functions run."""

    prompts: list[Any]
    prompt_ids: list[str] | None
    tokens: list[int]
    epoch: int
    rewards: dict[str, list[float]] = field(default_factory=dict)


class LimrCallback(TrainerCallback):
    """Writes a GRPO run's reward events every optimizer step and finishes the run at the end."""

    def __init__(
        self,
        store: ObjectStore,
        run_id: str,
        prompts: Any = None,
        *,
        correct: str | CorrectRule | None = None,
        steps_per_epoch: int | None = None,
        epochs: int | None = None,
        model: str | None = None,
    ) -> None:
        """`prompts`: the training pool (a `limr.data.Pool`, PromptRecords or texts); `epochs`: the planned
        epochs, for the scorer's early-LIM versions (default: `num_train_epochs` when training starts)."""
        self.writer = EventWriter(
            store, run_id, prompts, correct=correct, source="trl-callback", model=model, epochs=epochs
        )
        self.matcher = PromptMatcher(self.writer.records)
        self.steps_per_epoch = steps_per_epoch
        self.names: list[str] = []
        self.weights: np.ndarray | None = None
        self._pending: dict[int, _Batch] = {}  # id(completions) -> the batch its reward functions are scoring
        self._done: list[_Batch] = []
        self._part = 0
        self.steps_written = 0

    # ---- reward functions --------------------------------------------------------------------------------
    def wrap(self, reward_funcs: Sequence[Callable[..., Any]] | Callable[..., Any]) -> list[Callable[..., Any]]:
        """The reward functions, each also reporting its outputs here (same `__name__`, same results)."""
        funcs = list(reward_funcs) if isinstance(reward_funcs, Sequence) else [reward_funcs]
        self.names = [f.__name__ for f in funcs]
        return [self._wrap_one(f, i) for i, f in enumerate(funcs)]

    def _wrap_one(self, func: Callable[..., Any], index: int) -> Callable[..., Any]:
        @functools.wraps(func)
        def recorded(prompts: list[Any], completions: list[Any], **kwargs: Any) -> Any:
            out = func(prompts=prompts, completions=completions, **kwargs)
            self._record(index, prompts, completions, kwargs, out)
            return out

        return recorded

    def _record(
        self, index: int, prompts: list[Any], completions: list[Any], kwargs: dict[str, Any], out: Any
    ) -> None:
        key = id(completions)
        batch = self._pending.get(key)
        if batch is None:
            state = kwargs.get("trainer_state")
            ids = kwargs.get("prompt_id")
            batch = _Batch(
                prompts=list(prompts),
                prompt_ids=[str(i) for i in ids] if ids is not None else None,
                tokens=[len(c) for c in kwargs.get("completion_ids") or [[] for _ in prompts]],
                epoch=int(math.floor(state.epoch + 1e-9)) if state is not None and state.epoch is not None else 0,
            )
            self._pending[key] = batch
        batch.rewards[self.names[index]] = [math.nan if r is None else float(r) for r in out]
        if len(batch.rewards) == len(self.names):
            self._done.append(self._pending.pop(key))

    # ---- trainer events ----------------------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        weights = getattr(args, "reward_weights", None)
        self.weights = np.asarray(weights if weights is not None else [1.0] * len(self.names), np.float64)
        self._part = int(getattr(args, "process_index", 0) or 0)
        if self.writer.meta.model_extra is not None and "epochs" not in self.writer.meta.model_extra:
            epochs = getattr(args, "num_train_epochs", None)
            if isinstance(epochs, int | float) and float(epochs).is_integer() and getattr(args, "max_steps", -1) <= 0:
                self.writer.meta.model_extra["epochs"] = int(epochs)
        if self._part == 0:
            self.writer.start()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.flush(int(state.global_step))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.flush(int(state.global_step))
        if self._part == 0:
            self.writer.finish(steps=int(state.global_step))

    def flush(self, step: int) -> str | None:
        """Write the samples of the generation batches scored since the last flush as step `step`."""
        batches, self._done = self._done, []
        if not batches:
            return None
        texts = [prompt_text(p) for b in batches for p in b.prompts]
        given = [b.prompt_ids for b in batches]
        ids = (
            [pid for g in given for pid in (g or [])]
            if all(g is not None for g in given)
            else [self.matcher.id_of(t) for t in texts]
        )
        keep = np.array([pid is not None for pid in ids], bool)
        scores = {n: np.concatenate([np.asarray(b.rewards[n], np.float64) for b in batches]) for n in self.names}
        weights = self.weights if self.weights is not None else np.ones(len(self.names))
        reward = np.nansum(np.stack([scores[n] * w for n, w in zip(self.names, weights, strict=True)]), axis=0)
        epochs = np.concatenate([np.full(len(b.prompts), b.epoch) for b in batches])
        tokens = np.concatenate([np.asarray(b.tokens, np.int64) for b in batches])
        epoch = int(epochs[0]) if self.steps_per_epoch is None else (step - 1) // self.steps_per_epoch
        key = self.writer.write_step(
            step,
            [str(pid) for pid, k in zip(ids, keep, strict=True) if k],
            reward[keep],
            epoch=epoch,
            scores={n: v[keep] for n, v in scores.items()},
            response_tokens=tokens[keep],
            part=self._part,
        )
        self.steps_written += 1
        return key
