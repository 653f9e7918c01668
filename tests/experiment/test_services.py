"""The experiment's curation services: reachable from the other nodes of a cluster when they listen on all
interfaces (the GPU learner ranks read the curated pools through the dataset API)."""

from __future__ import annotations

from pathlib import Path

import ray.util

from limr.experiment.config import load_experiment
from limr.experiment.services import reachable_host

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_should_give_loopback_locally_and_the_node_ip_on_all_interfaces():
    assert reachable_host("127.0.0.1") == reachable_host("localhost") == "127.0.0.1"
    assert reachable_host("0.0.0.0") == ray.util.get_node_ip_address()
    assert reachable_host("10.1.2.3") == "10.1.2.3"


def test_should_listen_on_all_interfaces_in_the_cluster_config_only():
    cluster = load_experiment(CONFIGS / "experiment-qwen2.5-math-7b.yaml")
    tiny = load_experiment(CONFIGS / "experiment-tiny.yaml")
    assert cluster.services.host == "0.0.0.0" and tiny.services.host == "127.0.0.1"
