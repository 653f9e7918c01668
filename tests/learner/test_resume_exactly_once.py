"""Exactly once across resumes: the learner is SIGKILLed between writing a step's events and checkpointing,
resumes on fewer workers, and the scorer (which counted the crashed attempt's events) ends with the final
dataset `limr select --run` gives."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from limr.cli.main import app
from limr.curation.policy import PublishPolicy
from limr.curation.publish import read_manifest, wait_for_final
from limr.events.attempts import read_attempts
from limr.events.io import list_event_keys
from limr.learner.checkpoint import latest_checkpoint
from limr.learner.config import load_config
from limr.learner.worker import run_local
from limr.scoring import count_run
from limr.store import open_store
from services.scorer.config import ScorerSettings
from services.scorer.ingest import Ingestor
from tests.learner.conftest import write_config
from tests.support.gloo import run_ranks

pytestmark = pytest.mark.slow  # two gloo ranks and a resume: ~1-3 minutes on 2 shared cores

KILL_AT = 4  # the checkpoint after 4 steps never happens: steps 2 and 3 are redone after the resume


def _crashing_attempt(rank: int, world: int, cfg_path: str, store_uri: str) -> None:
    """The real loop on `world` gloo ranks; each rank SIGKILLs itself as it enters the checkpoint after
    KILL_AT steps, i.e. after writing the events of step KILL_AT - 1 and before the checkpoint."""
    import os
    import signal

    import torch

    import limr.learner.loop as loop
    from limr.learner.dist import DistCtx
    from limr.learner.setup import build_setup
    from limr.learner.worker import make_generator

    save = loop.save

    def dying_save(setup, trainer, ctx, done, initial):  # noqa: ANN001, ANN202
        if done == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)
        return save(setup, trainer, ctx, done, initial)

    loop.save = dying_save
    cfg = load_config(cfg_path, {"run.run_id": "r", "run.store": store_uri, "trainer.num_workers": world})
    ctx = DistCtx(rank=rank, world_size=world, device=torch.device("cpu"))
    setup = build_setup(cfg)
    loop.train(cfg, ctx, setup, make_generator(cfg, setup, ctx))


def test_sigkill_then_resume_on_fewer_workers_counts_each_sample_once(tmp_path, tiny_model, synthetic_pool):
    train, _ = synthetic_pool  # 12 prompts, 4 per step: 3 steps per epoch, 6 steps in 2 epochs
    cfg_path = write_config(tmp_path / "c.yaml", tiny_model, train, run={"epochs": 2, "checkpoint_every": 2})
    store_uri = str(tmp_path / "store")
    store = open_store(store_uri)
    run_ranks(_crashing_attempt, 2, str(cfg_path), store_uri, exit_code=-9)
    assert latest_checkpoint(store, "r").endswith("0000000002/")
    crashed = store.list_keys("runs/r/events/")
    assert {k.rsplit("/", 1)[1] for k in crashed} >= {"0000000003-0000.parquet", "0000000003-0001.parquet"}

    policy = PublishPolicy(name="{run}-lim", threshold=0.5)
    ing = Ingestor(store, ScorerSettings(store=store_uri, policies=(policy,), notifications="off"))
    ing.poll_once()  # the scorer counts the crashed attempt's events, steps 0-3 of both ranks
    assert ing.states["r"].objects == len(crashed) == 8

    # resume on one worker: its events go under keys of attempt 1; both ranks' old events of steps 2-3 stop counting
    cfg = load_config(cfg_path, {"run.run_id": "r", "run.store": store_uri})
    run_local(cfg, latest_checkpoint(store, "r"))
    assert read_attempts(store, "r").latest == 1
    effective = list(list_event_keys(store, "r"))
    assert len(effective) == 4 + 4  # steps 0-1 of the first attempt (2 ranks), steps 2-5 of the resumed one
    assert all(k.endswith("-a0001.parquet") for k in effective if int(k.rsplit("/", 1)[1][:10]) >= 2)
    counts = count_run(store, "r").counts
    assert int(counts.total.sum()) == 6 * 4 * 2  # 6 steps x 4 prompts x 2 samples: each sample once

    ing.poll_once()  # sees the resume record, recounts the run, and publishes the final version
    state = ing.states["r"]
    assert state.attempt == 1 and state.ingested == set(effective) and state.counts == counts
    manifest = wait_for_final(store, "r-lim", timeout_s=0)
    data = store.get(f"datasets/r-lim/v{manifest['version']}/data.jsonl")
    got = [json.loads(line)["prompt_id"] for line in data.splitlines()]
    out = tmp_path / "select.jsonl"
    args = ["select", "--run", "r", "--store", store_uri, "--prompts", str(train), "--out", str(out)]
    res = CliRunner().invoke(app, [*args, "--strategy", "lim", "--threshold", "0.5"])
    assert res.exit_code == 0, res.output
    assert got == [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert read_manifest(store, "r-lim", manifest["version"])["final"] is True
