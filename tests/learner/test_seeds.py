"""Reproducible service-mode runs: same config and seed, different run ids -> the same reward events."""

from __future__ import annotations

import pyarrow as pa
import pytest

from limr.events.io import list_event_keys, read_events_object
from limr.events.schema import OPTIONAL_EVENT_FIELDS, REQUIRED_EVENT_COLUMNS
from limr.learner.config import load_config
from limr.store import open_store
from tests.conftest import unique_name
from tests.learner.conftest import write_config

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.vllm]
# What a run's events may differ in: its name and the wall clock.
VOLATILE = ("run_id", "event_time")


def _events(store_uri: str, run_id: str) -> list[dict]:
    store = open_store(store_uri)
    columns = [c for c in (*REQUIRED_EVENT_COLUMNS, *OPTIONAL_EVENT_FIELDS) if c not in VOLATILE]
    t = pa.concat_tables([read_events_object(store, k, columns) for k in sorted(list_event_keys(store, run_id))])
    rows = t.to_pylist()
    return sorted(rows, key=lambda r: (r["step"], r["prompt_id"], r["sample"]))


def test_two_service_runs_with_one_seed_write_identical_events(tmp_path, ray_session, tiny_model, synthetic_pool):
    from limr.learner.launch import run_with_ray

    train, _ = synthetic_pool
    cfg_path = write_config(
        tmp_path / "seed.yaml",
        tiny_model,
        train,
        rollout={
            "samples_per_prompt": 4,
            "max_new_tokens": 8,
            "backend": "service",
            "service": {"engine": {"kv_cache_gib": 0.25, "max_model_len": 512}, "num_cpus": 1},
        },
        batch={"rollout_batch_size": 6, "train_batch_size": 12, "micro_batch_size": 12},
        trainer={"num_workers": 1, "cpus_per_worker": 1},
        run={"epochs": 1, "max_steps": 2, "checkpoint_every": 0},
        data={"max_prompt_tokens": 256},
    )
    store_uri = str(tmp_path / "store")
    runs = [unique_name("seed-a"), unique_name("seed-b")]
    for run_id in runs:
        run_with_ray(load_config(cfg_path, {"run.run_id": run_id, "run.store": store_uri}))
    a, b = (_events(store_uri, r) for r in runs)
    assert len(a) == 2 * 6 * 4
    assert len({(r["prompt_id"], r["response"]) for r in a}) > len(a) // 2  # samples really vary
    assert a == b
