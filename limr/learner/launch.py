"""`limr train` on Ray: connect (or start a local head), start the rollout service for the run, run Ray Train.

Under `ray job submit -- limr train ...` RAY_ADDRESS points at the cluster and `ray.init()` joins it;
otherwise a local head is started for the run (the embedded default) and stopped at the end.
"""

from __future__ import annotations

import logging
import os

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
    ray.init(num_cpus=max(os.cpu_count() or 1, int(need + 0.999)), include_dashboard=False)
    return True


def run_with_ray(cfg: LearnerConfig, resume_key: str | None = None) -> dict[str, float]:
    import ray
    from ray import serve

    from limr.learner.service_rollout import rollout_args
    from limr.learner.worker import run_ray

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
        return run_ray(run_cfg, resume_key)
    finally:
        if started_app:
            serve.delete(app_name)
        if started_ray:
            ray.shutdown()
