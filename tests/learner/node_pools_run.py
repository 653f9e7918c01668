"""A multi-node Ray cluster on one machine (ray.cluster_utils.Cluster), for tests/learner/test_node_pools.py.

Run as a script (its own process: the cluster must not meet the test session's Ray): a head for the driver,
two nodes advertising `rollout_pool` and one advertising `train_pool`, as the chart's node pools would. A
service-mode run places its rollout replica and train worker by those resources; once step 0's events are
written, the node holding the replica is removed. Prints one JSON line with what happened.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import ray
from ray.cluster_utils import Cluster


def main(config_path: str, run_id: str, store_uri: str) -> None:
    from limr.events.io import list_event_keys
    from limr.learner.config import load_config
    from limr.learner.launch import run_with_ray
    from limr.store import open_store

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    nodes = {
        "rollout-a": cluster.add_node(num_cpus=2, resources={"rollout_pool": 1}),
        "rollout-b": cluster.add_node(num_cpus=2, resources={"rollout_pool": 1}),
        "train": cluster.add_node(num_cpus=2, resources={"train_pool": 1}),
    }
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    node_name = {n.node_id: name for name, n in nodes.items()} | {cluster.head_node.node_id: "head"}
    seen: dict[str, set[str]] = {"replica": set(), "train_worker": set()}
    killed: list[str] = []
    store = open_store(store_uri)
    done = threading.Event()

    def watch() -> None:
        from ray.util.state import list_actors

        while not done.is_set():
            try:
                for a in list_actors(filters=[("state", "=", "ALIVE")], limit=1000):
                    where = node_name.get(a.node_id, a.node_id)
                    if a.class_name.startswith("ServeReplica") and "rollout" in a.class_name:
                        seen["replica"].add(where)
                        if not killed and any(list_event_keys(store, run_id)):  # step 0 done: lose its node
                            killed.append(where)
                            cluster.remove_node(nodes[where])
                    elif "TrainWorker" in a.class_name:
                        seen["train_worker"].add(where)
            except Exception as e:  # noqa: BLE001 (the state API is best effort while nodes come and go)
                print(f"watch: {e}", file=sys.stderr)
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = run_with_ray(load_config(config_path, {"run.run_id": run_id, "run.store": store_uri}))
    finally:
        done.set()
        watcher.join(10)
        ray.shutdown()
        cluster.shutdown()
    out = {"result": result, "placed": {k: sorted(v) for k, v in seen.items()}, "killed": killed}
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main(*sys.argv[1:4])
