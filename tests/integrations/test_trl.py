"""TRL's GRPOTrainer for real (tiny model, CPU, a few steps): curated live through `limr.integrations.trl`
while it trains, and its `log_completions` parquet imported with `limr import trl` gives the same LIM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

PROMPTS = 8  # pool size
GENERATIONS = 4  # samples per prompt
PER_STEP = 4  # prompts per optimizer step -> 2 steps per epoch
EPOCHS = 3


def parity_reward(completions: list[str], **_: object) -> list[float]:
    """A deterministic stand-in for a verifier: 1 when the completion has an even number of characters."""
    return [1.0 if len(c) % 2 == 0 else 0.0 for c in completions]


def length_penalty(completions: list[str], **_: object) -> list[float]:
    return [-0.01 * len(c) for c in completions]


def test_grpo_run_curated_live_and_its_completions_import_alike(tmp_path: Path) -> None:
    import datasets
    import torch
    import trl
    from transformers import AutoTokenizer, TrainerCallback

    from limr.curation.policy import PublishPolicy
    from limr.curation.publish import list_versions, read_manifest, version_status
    from limr.data.pool import load_pool
    from limr.importers import dump_format, import_dump
    from limr.integrations.trl import LimrCallback
    from limr.model.tiny import init_tiny_model
    from limr.scoring import score_run
    from limr.store import open_store
    from services.scorer.config import ScorerSettings
    from services.scorer.ingest import Ingestor

    torch.manual_seed(0)
    model = init_tiny_model(tmp_path / "tiny", seed=0)
    records = [{"id": f"q{i}", "prompt": f"Compute {i} + {i + 3}.", "answer": str(2 * i + 3)} for i in range(PROMPTS)]
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    pool = load_pool(tmp_path / "pool.jsonl")
    store = open_store(str(tmp_path / "store"))
    policy = PublishPolicy(name="{run}-lim", strategy="lim", threshold=0.6)
    scorer = Ingestor(store, ScorerSettings(store=store.uri, policies=(policy,), notifications="off"))
    lim = LimrCallback(store, "grpo", pool, correct="parity_reward == 1")
    published: list[str | None] = []

    class Scorer(TrainerCallback):  # `limr serve scorer`'s loop, one pass per step, in-process
        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001, ANN202
            scorer.poll_once()
            versions = list_versions(store, "grpo-lim")
            published.append(version_status(read_manifest(store, "grpo-lim", versions[-1])) if versions else None)

    tokenizer = AutoTokenizer.from_pretrained(model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = trl.GRPOConfig(
        output_dir=str(tmp_path / "trl"),
        per_device_train_batch_size=PER_STEP * GENERATIONS,
        gradient_accumulation_steps=1,
        generation_batch_size=PER_STEP * GENERATIONS,
        num_generations=GENERATIONS,
        max_completion_length=8,
        num_train_epochs=EPOCHS,
        learning_rate=1e-4,
        seed=0,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        log_completions=True,
        disable_tqdm=True,
    )
    dataset = datasets.Dataset.from_dict({"prompt": [r["prompt"] for r in records], "prompt_id": pool.ids})
    trainer = trl.GRPOTrainer(
        model=str(model),
        reward_funcs=lim.wrap([parity_reward, length_penalty]),
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[lim, Scorer()],
    )
    trainer.train()
    scorer.poll_once()

    steps = trainer.state.global_step
    assert steps == EPOCHS * PROMPTS // PER_STEP and lim.steps_written == steps
    # Published while it trained (interim versions before the last step), then the final version.
    assert "interim" in published[:-1]  # versions of completed epochs while it trained
    final = read_manifest(store, "grpo-lim", list_versions(store, "grpo-lim")[-1])
    assert version_status(final) == "final" and final["epochs_used"] == EPOCHS
    live = score_run(store, "grpo")
    assert len(live.prompt_ids) == PROMPTS

    # TRL's own completions dump, imported: the same samples, so the same LIM.
    assert len(list((tmp_path / "trl" / "completions").glob("completions_*.parquet"))) == steps
    import_dump(
        store, dump_format("trl"), tmp_path / "trl", "grpo-dump", PROMPTS // PER_STEP, pool, "parity_reward == 1"
    )
    imported = score_run(store, "grpo-dump")
    assert imported.prompt_ids == live.prompt_ids
    np.testing.assert_allclose(imported.scores, live.scores, atol=1e-12)
