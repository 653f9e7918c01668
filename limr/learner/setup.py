"""Run set-up shared by every rank (store, prompt pool, data plan, tokenizer), and checkpoint save/restore.
What a run records in the store (run.json, prompts, events, the finish marker) is limr.learner.record's."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from limr.data.pool import load_pool
from limr.events.io import PromptRecord
from limr.events.writer import EventWriter
from limr.learner.checkpoint import load_tensors, read_extra, save_checkpoint
from limr.learner.config import Derived, LearnerConfig
from limr.learner.data import PromptPlan, PromptTexts, prompt_texts
from limr.learner.dist import DistCtx
from limr.learner.early_switch import SwitchedPlan, read_switch
from limr.learner.greso import Greso
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
    events: EventWriter  # how the run is written (limr.learner.record): the writer any trainer uses
    attempt: int = 0  # 0: the run's first attempt; N: its N-th resume (limr.events.attempts), in event keys
    greso: Greso | None = None  # curation.mode greso: the pre-rollout skip state (saved with checkpoints)

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

    fields = {"run.run_id": cfg.run.run_id, "run.store": cfg.run.store, "data.prompts": cfg.data.prompts}
    missing = [name for name, value in fields.items() if not value]
    if missing:
        raise ValueError(f"{', '.join(missing)} not set: resolve them first (limr.cli.train.resolve does)")
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
    plan = SwitchedPlan(  # the full pool's plan, and the early-LIM subset after a recorded switch (resume)
        PromptPlan(texts.ids, cfg.batch.rollout_batch_size, cfg.run.seed),
        read_switch(store, cfg.run.run_id) if cfg.curation.mode == "early-lim" else None,
        min_step_prompts=cfg.trainer.num_workers,
    )
    return RunSetup(
        greso=Greso(cfg.curation.greso_settings()) if cfg.curation.mode == "greso" else None,
        cfg=cfg,
        run_id=cfg.run.run_id,
        store=store,
        texts=texts,
        plan=plan,
        derived=derived,
        tokenizer=tokenizer,
        eval_prompts=eval_prompts,
        _token_cache={},
        events=run_writer(cfg, store, texts, derived, plan.fingerprint()),
    )


def run_writer(
    cfg: LearnerConfig, store: ObjectStore, texts: PromptTexts, derived: Derived, fingerprint: str
) -> EventWriter:
    """The run's EventWriter: its pool, run.json fields, and `exist_ok` (a resumed run continues its objects)."""
    records = [
        PromptRecord(pid, raw, ans, src)
        for pid, raw, ans, src in zip(texts.ids, texts.raw, texts.answers, texts.sources, strict=True)
    ]
    return EventWriter(
        store,
        cfg.run.run_id or "",
        records,
        steps_per_epoch=derived.steps_per_epoch,
        samples_per_prompt=cfg.rollout.samples_per_prompt,
        epochs=cfg.run.epochs,
        source="learner",
        model=cfg.model.actor,
        config=cfg.model_dump(mode="json"),
        exist_ok=True,
        total_steps=derived.total_steps,
        estimator=cfg.algorithm.estimator,
        data_fingerprint=fingerprint,
    )


def save(setup: RunSetup, trainer, ctx: DistCtx, done_steps: int, initial: dict[str, float]) -> dict[str, Any]:
    """Checkpoint after `done_steps` completed steps (every rank writes its shard). Returns the pointer."""
    tensors, extra = trainer.checkpoint_state()
    loop = {"step": done_steps, "fingerprint": setup.plan.fingerprint(), "run_id": setup.run_id, "initial": initial}
    if setup.greso is not None:
        loop["greso"] = setup.greso.to_dict()
    state = {"trainer": extra, "loop": loop}
    key = save_checkpoint(setup.store, setup.run_id, done_steps, tensors, state, ctx, setup.cfg.run.keep_checkpoints)
    if ctx.is_main:
        log.info("checkpoint after step %d -> %s/%s", done_steps, setup.store.uri, key)
    return {"key": key, "step": done_steps, "store": setup.store.uri, "run_id": setup.run_id}


def restore(setup: RunSetup, trainer, ctx: DistCtx, key: str | None) -> tuple[int, dict[str, float]]:
    """Load the checkpoint under `key` into `trainer` (any number of workers; None: a fresh start); returns the
    step to start at and the run's initial figures. What the store records of a resumed attempt (its resume
    record, the attempt number its events carry) is limr.learner.record.open_run's."""
    if key is None:
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
    if setup.greso is not None:  # the skip state the run had reached (a checkpoint from before greso: fresh)
        setup.greso.load(loop.get("greso"))
    if ctx.is_main:
        log.info("resumed %s at step %d from %s", setup.run_id, start, key)
    return start, dict(loop.get("initial", {}))
