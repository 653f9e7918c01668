"""One local Ray head per test session, shared by all Ray tests (starting Ray costs seconds)."""

from __future__ import annotations

import os


def start_local_ray(num_cpus: int = 4, object_store_mb: int = 300) -> None:
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        address="local",  # a new instance even while another Ray runs on this machine (a test's Cluster, `ray start`)
        num_cpus=num_cpus,
        object_store_memory=object_store_mb * 1024 * 1024,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )
