"""A run's per-step metrics in the store (`runs/{run}/metrics/{done_steps:010d}.json`, written by the learner's rank
0 after each step), so training curves (held-out accuracy, generated tokens) can be read back per step."""

from __future__ import annotations

import json

from limr.events.schema import metrics_key, metrics_prefix
from limr.store import ObjectStore


def write_step_metrics(store: ObjectStore, run_id: str, done_steps: int, metrics: dict[str, float]) -> str:
    """`runs/{run}/metrics/{done_steps:010d}.json`: the step's metrics (a resumed step overwrites its own)."""
    key = metrics_key(run_id, done_steps)
    body = {k: float(v) for k, v in sorted(metrics.items())}
    store.put(key, json.dumps(body).encode(), content_type="application/json")
    return key


def read_run_metrics(store: ObjectStore, run_id: str) -> list[dict[str, float]]:
    """Every step's metrics of a run, in step order."""
    keys = sorted(info.key for info in store.list(metrics_prefix(run_id)) if info.key.endswith(".json"))
    return [json.loads(store.get(k)) for k in keys]
