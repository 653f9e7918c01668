"""Where the loop runs: the Ray Train worker function (limr.learner.launch starts N of them, gloo on CPU / NCCL
on GPU) or in-process (local).

The Ray Train worker function only builds the context and hands over to `limr.learner.loop.train`;
checkpoints live in the object store, and Ray Train's checkpoint holds just a pointer to the newest one,
so when a worker dies and Ray Train restarts the group (FailureConfig.max_failures), every worker
resumes from the last checkpoint through `ray.train.get_checkpoint()`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from typing import Any

from limr.learner.config import LearnerConfig
from limr.learner.dist import DistCtx

log = logging.getLogger("limr.learner")
POINTER = "limr_checkpoint.json"


def make_client(cfg: LearnerConfig, setup, ctx: DistCtx):
    """The generator of this rank: the shared rollout service, or a private HF sampler (local backend)."""
    if cfg.rollout.backend == "local":
        from limr.learner.rollout_client import LocalRollout

        tok = setup.tokenizer
        eos = {tok.eos_token_id, tok.pad_token_id} - {None}
        return LocalRollout(cfg.model.actor, sorted(eos), tok.pad_token_id, cfg.model.dtype)
    from limr.learner.service_rollout import ServiceRollout
    from limr.learner.weight_export import WeightExporter

    if not cfg.rollout.app_name:
        raise ValueError("rollout.app_name is not set: start the rollout service first (limr train does this)")
    every = cfg.rollout.export_every
    exporter = WeightExporter(setup.store, setup.run_id, every, setup.tokenizer) if every else None
    return ServiceRollout(cfg.rollout.app_name, exporter=exporter)


def run_local(cfg: LearnerConfig, resume_key: str | None = None) -> dict[str, float]:
    """One process, no Ray Train, no process group: the debugging mode of the same loop."""
    import torch

    from limr.learner.loop import train
    from limr.learner.setup import build_setup

    if cfg.trainer.num_workers != 1:
        raise ValueError("local mode runs one worker: set trainer.num_workers to 1 (or use Ray Train)")
    if cfg.trainer.torch_threads:
        torch.set_num_threads(cfg.trainer.torch_threads)
    ctx = DistCtx(device=torch.device("cuda" if cfg.trainer.use_gpu else "cpu"))
    setup = build_setup(cfg)
    client = make_client(cfg, setup, ctx)
    try:
        return train(cfg, ctx, setup, client, resume_key)
    finally:
        client.close()


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train entry point: config = {"cfg": LearnerConfig as dict, "resume_key": str | None}."""
    import ray.train
    import ray.train.torch
    import torch

    from limr.learner.loop import train
    from limr.learner.metrics import status_line
    from limr.learner.setup import build_setup

    cfg = LearnerConfig.model_validate(config["cfg"])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    tc = ray.train.get_context()
    torch.set_num_threads(cfg.trainer.torch_threads or max(1, int(cfg.trainer.cpus_per_worker)))
    ctx = DistCtx(
        rank=tc.get_world_rank(),
        world_size=tc.get_world_size(),
        local_rank=tc.get_local_rank(),
        device=ray.train.torch.get_device(),
    )
    resume_key = config.get("resume_key")
    restart = ray.train.get_checkpoint()
    if restart is not None:  # Ray Train restarted us after a failure: continue from the newest checkpoint
        with restart.as_directory() as d, open(os.path.join(d, POINTER)) as f:
            resume_key = json.load(f)["key"]
        log.info("restarting from %s", resume_key)
    setup = build_setup(cfg)
    client = make_client(cfg, setup, ctx)
    relay = config.get("progress") if ctx.is_main else None  # the driver's progress display (launch.fit)

    def report(metrics: dict[str, float], pointer: dict[str, Any] | None) -> None:
        clean = {k: float(v) for k, v in metrics.items()}
        if pointer is None:
            ray.train.report(clean)
        else:
            with tempfile.TemporaryDirectory() as d:
                checkpoint = None
                if ctx.is_main:
                    with open(os.path.join(d, POINTER), "w") as f:
                        json.dump(pointer, f)
                    checkpoint = ray.train.Checkpoint.from_directory(d)
                ray.train.report(clean, checkpoint=checkpoint)
        if relay is not None:
            step = {"step": int(clean["train/step"]), "total": setup.derived.total_steps}
            relay.put({**step, "status": status_line(clean)})

    try:
        train(cfg, ctx, setup, client, resume_key, report)
    finally:
        client.close()
