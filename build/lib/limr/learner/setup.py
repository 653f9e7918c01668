"""Run set-up shared by every rank (store, prompt pool, data plan, tokenizer), run metadata, save/restore."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from limr.data.pool import load_pool
from limr.events.io import PromptRecord, write_prompts
from limr.events.run import RunMeta, mark_run_finished, write_run_meta
from limr.events.schema import EVENT_KEY_RE, events_prefix, finished_key
from limr.learner.checkpoint import load_tensors, read_extra, save_checkpoint
from limr.learner.config import Derived, LearnerConfig
from limr.learner.data import PromptPlan, PromptTexts, prompt_texts
from limr.learner.dist import DistCtx
from limr.learner.early_switch import SwitchedPlan, read_switch
from limr.store import ObjectStore, open_store

log = logging.getLogger("limr.learner")


class ResumeError(RuntimeError):
    """A checkpoint that does not belong to this run's pool or config."""


@dataclass
class RunSetup:
    cfg: LearnerConfig
    run_id: str
    store: ObjectStore
    texts: PromptTexts
    plan: SwitchedPlan
    derived: Derived
    tokenizer: Any
    eval_prompts: PromptTexts | None
    _token_cache: dict[int, list[int]]

    def encode(self, text: str) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids[-self.cfg.data.max_prompt_tokens :]  # keep the end: the question and the assistant turn

    def prompt_tokens(self, index: int) -> list[int]:
        if index not in self._token_cache:
            self._token_cache[index] = self.encode(self.texts.texts[index])
        return self._token_cache[index]


def renderer(cfg: LearnerConfig, tokenizer):
    """Prompt text -> model input text, through limr.data.templates when a template is configured."""
    if cfg.data.template is None:
        return lambda p: p
    from limr.data.templates import render_prompt

    return lambda p: render_prompt(p, tokenizer, cfg.data.template)


def build_setup(cfg: LearnerConfig) -> RunSetup:
    """Load everything a rank needs. `cfg.run.run_id`, `cfg.run.store` and `cfg.data.prompts` are resolved."""
    from transformers import AutoTokenizer

    assert cfg.run.run_id and cfg.run.store and cfg.data.prompts, "resolve run id, store and prompts first"
    tokenizer = AutoTokenizer.from_pretrained(cfg.model.actor)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    render = renderer(cfg, tokenizer)
    pool = load_pool(cfg.data.prompts, cfg.data.datasets_url)
    store = open_store(cfg.run.store)
    texts = prompt_texts(pool, cfg.data.answer_field, render)
    derived = cfg.derive(len(texts.ids))
    rem = len(texts.ids) % cfg.batch.rollout_batch_size
    if rem and rem < cfg.trainer.num_workers:
        raise ValueError(
            f"{cfg.data.prompts}: the last step of an epoch would have {rem} prompt(s) for "
            f"{cfg.trainer.num_workers} workers; change batch.rollout_batch_size or trainer.num_workers"
        )
    eval_prompts = None
    if cfg.data.eval_prompts:
        ev = load_pool(cfg.data.eval_prompts)
        ev.records, ev.ids, ev.rows = (
            ev.records[: cfg.data.eval_limit],
            ev.ids[: cfg.data.eval_limit],
            ev.rows[: cfg.data.eval_limit],
        )
        eval_prompts = prompt_texts(ev, cfg.data.answer_field, render)
    return RunSetup(
        cfg=cfg,
        run_id=cfg.run.run_id,
        store=store,
        texts=texts,
        plan=SwitchedPlan(  # the full pool's plan, and the early-LIM subset after a recorded switch (resume)
            PromptPlan(texts.ids, cfg.batch.rollout_batch_size, cfg.run.seed),
            read_switch(store, cfg.run.run_id) if cfg.curation.mode == "early-lim" else None,
            min_step_prompts=cfg.trainer.num_workers,
        ),
        derived=derived,
        tokenizer=tokenizer,
        eval_prompts=eval_prompts,
        _token_cache={},
    )


def write_run_start(setup: RunSetup) -> None:
    """run.json and prompts.parquet, the first objects of a run (rank 0, fresh runs only)."""
    cfg, t = setup.cfg, setup.texts
    write_prompts(
        setup.store,
        setup.run_id,
        (
            PromptRecord(pid, raw, ans, src)
            for pid, raw, ans, src in zip(t.ids, t.raw, t.answers, t.sources, strict=True)
        ),
    )
    meta = RunMeta(
        run_id=setup.run_id,
        model=cfg.model.actor,
        samples_per_prompt=cfg.rollout.samples_per_prompt,
        num_prompts=len(t.ids),
        steps_per_epoch=setup.derived.steps_per_epoch,
        source="learner",
        config=cfg.model_dump(mode="json"),
        epochs=cfg.run.epochs,
        total_steps=setup.derived.total_steps,
        estimator=cfg.algorithm.estimator,
        data_fingerprint=setup.plan.fingerprint(),
    )
    write_run_meta(setup.store, meta)


def write_run_finish(setup: RunSetup, ctx: DistCtx) -> None:
    """Mark the run finished (the scorer then publishes its final datasets), once every rank has written
    its last step's events: a barrier first, then rank 0 writes the marker, the run's last object."""
    ctx.barrier()
    if ctx.is_main:
        total = setup.derived.total_steps
        epochs = setup.plan.for_step(total - 1).epoch + 1 if total else 0
        mark_run_finished(setup.store, setup.run_id, epochs, steps=total, source="learner")
        log.info("run %s finished after %d steps (%d epochs)", setup.run_id, total, epochs)


def save(setup: RunSetup, trainer, ctx: DistCtx, done_steps: int, initial: dict[str, float]) -> dict[str, Any]:
    """Checkpoint after `done_steps` completed steps (every rank writes its shard). Returns the pointer."""
    tensors, extra = trainer.checkpoint_state()
    loop = {"step": done_steps, "fingerprint": setup.plan.fingerprint(), "run_id": setup.run_id, "initial": initial}
    key = save_checkpoint(setup.store, setup.run_id, done_steps, tensors, {"trainer": extra, "loop": loop}, ctx)
    if ctx.is_main:
        log.info("checkpoint after step %d -> %s/%s", done_steps, setup.store.uri, key)
    return {"key": key, "step": done_steps, "store": setup.store.uri, "run_id": setup.run_id}


def restore(setup: RunSetup, trainer, ctx: DistCtx, key: str | None) -> tuple[int, dict[str, float]]:
    """Load a checkpoint (or start fresh); returns the step to start at and the run's initial figures.

    Fresh start: rank 0 writes run.json and prompts.parquet. Resume (with any number of workers): events a
    crashed attempt wrote for steps at or after the checkpoint are deleted, so the run ends with exactly one
    event per sample.
    """
    if key is None:
        if ctx.is_main:
            write_run_start(setup)
        ctx.barrier()
        return 0, {}
    extra = read_extra(setup.store, key)
    loop = extra["loop"]
    if loop["fingerprint"] != setup.plan.fingerprint():
        raise ResumeError(
            f"{setup.store.uri}/{key}: checkpoint was written for a different prompt pool, seed or "
            "rollout_batch_size; resume with the same --prompts and config"
        )
    tensors, _ = trainer.checkpoint_state()
    load_tensors(setup.store, key, tensors)
    trainer.load_checkpoint_state(tensors, extra["trainer"])
    start = int(loop["step"])
    if ctx.is_main:
        setup.store.delete(finished_key(setup.run_id))  # running again: finished only when this attempt ends
        _drop_events_from(setup, start)
        log.info("resumed %s at step %d from %s", setup.run_id, start, key)
    ctx.barrier()
    return start, dict(loop.get("initial", {}))


def _drop_events_from(setup: RunSetup, step: int) -> None:
    for info in list(setup.store.list(events_prefix(setup.run_id))):
        m = EVENT_KEY_RE.match(info.key)
        if m and int(m.group("step")) >= step:
            setup.store.delete(info.key)
