"""`limr train` on Ray: connect (or start a local head), start the rollout service for the run, run Ray Train.

Under `ray job submit -- limr train ...` RAY_ADDRESS points at the cluster and `ray.init()` joins it;
otherwise a local head is started for the run (the embedded default) and stopped at the end.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from limr.learner.config import LearnerConfig

log = logging.getLogger("limr.learner")


def ensure_ray(cfg: LearnerConfig) -> bool:
    """Connect to the cluster ($RAY_ADDRESS: a RayJob's driver, `ray job submit`) or start a local Ray sized for
    the run; True when this call started Ray (the caller shuts it down)."""
    import ray

    if ray.is_initialized():
        return False
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=True)  # a cluster's resources are its own: never pass num_cpus here
        return False
    # logical CPUs: the service replica and the train workers must all be placeable, even on 2 cores
    need = cfg.trainer.num_workers * cfg.trainer.cpus_per_worker + 2
    # address="local": a new local head even when another one on this machine left /tmp/ray/ray_current_cluster
    # behind (`ray start --head`): ray.init() alone would try to join that one
    ray.init(address="local", num_cpus=max(os.cpu_count() or 1, int(need + 0.999)), include_dashboard=False)
    return True


def run_with_ray(cfg: LearnerConfig, resume_key: str | None = None) -> dict[str, float]:
    import ray
    from ray import serve

    from limr.learner.generator.service import rollout_args

    started_ray = ensure_ray(cfg)
    app_name, started_app = cfg.rollout.app_name, False
    if cfg.rollout.backend == "service" and not app_name:
        from limr.rollout.app import build_app

        app_name = f"limr-rollout-{cfg.run.run_id}"[:60]
        log.info("starting rollout service %s for model %s", app_name, cfg.model.actor)
        serve.run(build_app(rollout_args(cfg, cfg.run.run_id)), name=app_name, route_prefix=f"/{app_name}")
        started_app = True
    run_cfg = cfg.model_copy(update={"rollout": cfg.rollout.model_copy(update={"app_name": app_name})})
    try:
        return fit(run_cfg, resume_key)
    finally:
        if started_app:
            serve.delete(app_name)
        if started_ray:
            ray.shutdown()


def fit(
    cfg: LearnerConfig, resume_key: str | None = None, train_loop: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, float]:
    """Run the loop on a Ray Train TorchTrainer against the connected Ray cluster (and a running service).

    `train_loop` is the worker function (default `limr.learner.worker.train_loop_per_worker`); the failure test
    passes one that kills a worker after a step.

    Rank 0 relays its steps through a Ray queue to this driver's progress display (limr.console): a worker's
    own bar would only reach the driver as log lines.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.util.queue import Queue

    from limr.learner.worker import train_loop_per_worker

    t = cfg.trainer
    storage, storage_fs = ray_storage(cfg)
    name = ray_run_name(cfg)
    if resume_key is None:
        _clear_ray_run_state(storage, storage_fs, name)
    relay = Queue(actor_options={"num_cpus": 0}) if cfg.metrics.progress else None
    quiet = cfg.model_copy(update={"metrics": cfg.metrics.model_copy(update={"progress": False})})
    trainer = TorchTrainer(
        train_loop or train_loop_per_worker,
        train_loop_config={"cfg": quiet.model_dump(mode="json"), "resume_key": resume_key, "progress": relay},
        torch_config=TorchConfig(backend="nccl" if t.use_gpu else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=t.num_workers,
            use_gpu=t.use_gpu,
            resources_per_worker={"CPU": t.cpus_per_worker, **t.resources},
        ),
        run_config=RunConfig(
            name=name,
            storage_path=storage,
            storage_filesystem=storage_fs,
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


def ray_run_name(cfg: LearnerConfig) -> str:
    """Ray Train's run name: the run id and a digest of the store, so runs of one id in two stores never
    share Ray Train state (it would restore the other store's checkpoint pointer)."""
    digest = hashlib.sha256((cfg.run.store or "").encode()).hexdigest()[:12]
    return f"{cfg.run.run_id}-{digest}"


def ray_storage(cfg: LearnerConfig) -> tuple[str, Any]:
    """Ray Train's (storage_path, storage_filesystem): every node of a multi-node run must reach it (Ray Train
    refuses a node-local path at the first checkpoint report). "store" puts it under the run in the run's store;
    an s3:// location gets the store's endpoint and keys (limr.store.s3.arrow_filesystem)."""
    from limr.events.schema import ray_train_prefix

    where = cfg.trainer.ray_storage_path or os.path.join(tempfile.gettempdir(), "limr-ray-train")
    if where == "store":
        where = f"{str(cfg.run.store).rstrip('/')}/{ray_train_prefix(str(cfg.run.run_id))}".rstrip("/")
    if where.startswith("s3://"):
        from limr.store.s3 import arrow_filesystem

        fs, path = arrow_filesystem(where)
        return path, fs
    if where.startswith("file://"):
        where = where.removeprefix("file://")
    return where, None


def _clear_ray_run_state(storage: str, fs: Any, name: str) -> None:
    """Remove Ray Train state left under `name` by an earlier run of this id in this store (e.g. one whose
    store was wiped since): a fresh run must start fresh; only Ray Train's restarts within one `fit` resume."""
    import pyarrow.fs as pafs

    if fs is None:
        fs, storage = pafs.FileSystem.from_uri(storage if "://" in storage else os.path.abspath(storage))
    path = f"{storage.rstrip('/')}/{name}"
    if fs.get_file_info(path).type != pafs.FileType.NotFound:
        log.info("removing stale Ray Train state %s", path)
        fs.delete_dir(path)


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
        "LIMR_DATASETS_URL",
        "LIMR_READ_TOKEN",
        "LIMR_READ_TOKEN_FILE",  # early LIM and dataset:// pools read through the API (the chart mounts a file)
    )
    env = {k: os.environ[k] for k in keys if k in os.environ}
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env
