"""Running the loop: as a Ray Train `TorchTrainer` (N workers, gloo on CPU / NCCL on GPU) or in-process (local).

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
import threading
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

    if not cfg.rollout.app_name:
        raise ValueError("rollout.app_name is not set: start the rollout service first (limr train does this)")
    return ServiceRollout(cfg.rollout.app_name)


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
    relay = config.get("progress") if ctx.is_main else None  # the driver's progress display (run_ray)

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
        _maybe_die(int(clean["train/step"]), ctx.rank)

    try:
        train(cfg, ctx, setup, client, resume_key, report)
    finally:
        client.close()


def _maybe_die(done_steps: int, rank: int) -> None:
    """Fault injection for failure-handling tests: LIMR_FAULT_INJECT="STEP:RANK:MARKER" kills that worker's
    process (os._exit, as a crash would) once, after it completed STEP steps; MARKER records that it did."""
    spec = os.environ.get("LIMR_FAULT_INJECT")
    if not spec:
        return
    step, fault_rank, marker = spec.split(":", 2)
    if done_steps == int(step) and rank == int(fault_rank) and not os.path.exists(marker):
        open(marker, "w").close()
        log.warning("fault injection: worker %d exits after step %d", rank, done_steps)
        os._exit(1)


def run_ray(cfg: LearnerConfig, resume_key: str | None = None) -> dict[str, float]:
    """Launch the loop on a Ray Train TorchTrainer against the connected Ray cluster.

    Rank 0 relays its steps through a Ray queue to this driver's progress display (limr.console): a worker's
    own bar would only reach the driver as log lines.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.util.queue import Queue

    t = cfg.trainer
    storage = t.ray_storage_path or os.path.join(tempfile.gettempdir(), "limr-ray-train")
    relay = Queue(actor_options={"num_cpus": 0}) if cfg.metrics.progress else None
    quiet = cfg.model_copy(update={"metrics": cfg.metrics.model_copy(update={"progress": False})})
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"cfg": quiet.model_dump(mode="json"), "resume_key": resume_key, "progress": relay},
        torch_config=TorchConfig(backend="nccl" if t.use_gpu else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=t.num_workers, use_gpu=t.use_gpu, resources_per_worker={"CPU": t.cpus_per_worker}
        ),
        run_config=RunConfig(
            name=cfg.run.run_id,
            storage_path=storage,
            failure_config=FailureConfig(max_failures=t.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            worker_runtime_env={"env_vars": _worker_env()},
        ),
    )
    if relay is None:
        return dict(trainer.fit().metrics or {})
    done = threading.Event()
    follower = threading.Thread(target=_follow, args=(relay, done), name="limr-progress", daemon=True)
    follower.start()
    try:
        result = trainer.fit()
    finally:
        done.set()
        follower.join(timeout=10)
        relay.shutdown()
    return dict(result.metrics or {})


def _follow(relay: Any, done: threading.Event) -> None:
    """Show the steps rank 0 relays until `done` is set and the queue is drained."""
    from ray.util.queue import Empty

    from limr.console import progress

    with progress("RL steps") as bar:
        while True:
            try:
                item = relay.get(timeout=0.5)
            except Empty:
                if done.is_set():
                    return
                continue
            bar.update(completed=item["step"], total=item["total"], status=item["status"])


def _worker_env() -> dict[str, str]:
    keys = (
        "LIMR_S3_ENDPOINT",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        # the chart mounts the store keys as files (limr.secrets); every Ray pod mounts them at the same path
        "LIMR_S3_ACCESS_KEY_FILE",
        "LIMR_S3_SECRET_KEY_FILE",
        "LIMR_STORE",
        "HF_HUB_OFFLINE",
        "LIMR_FAULT_INJECT",
    )
    env = {k: os.environ[k] for k in keys if k in os.environ}
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env
