"""Node pools on a multi-node Ray cluster: rollout replicas and train workers on their pools, and a run that
survives losing the rollout node mid-run (Serve restarts the replica on the other rollout node, the learner
sends the weights again and retries the step, every event written exactly once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from limr.events.io import list_event_keys, read_events_object
from limr.store import open_store
from tests.learner.conftest import write_config

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.vllm]
REPO = Path(__file__).resolve().parents[2]


def test_pools_placement_and_losing_the_rollout_node(tmp_path, tiny_model, synthetic_pool):
    train, _ = synthetic_pool  # 12 prompts
    cfg = write_config(
        tmp_path / "pools.yaml",
        tiny_model,
        train,
        rollout={
            "samples_per_prompt": 2,
            "max_new_tokens": 6,
            "backend": "service",
            "service": {
                "engine": {"kv_cache_gib": 0.1, "max_model_len": 384},
                "num_cpus": 1,
                "resources": {"rollout_pool": 1},
            },
        },
        batch={"rollout_batch_size": 4, "train_batch_size": 8, "micro_batch_size": 8},
        trainer={"num_workers": 1, "cpus_per_worker": 1, "resources": {"train_pool": 1}},
        run={"epochs": 1, "checkpoint_every": 0},
        data={"max_prompt_tokens": 256},
    )
    store_uri = str(tmp_path / "store")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.learner.node_pools_run", str(cfg), "pools", store_uri],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["placed"]["train_worker"] == ["train"]
    assert out["killed"] and set(out["placed"]["replica"]) == {"rollout-a", "rollout-b"}  # restarted elsewhere
    assert out["result"]["train/step"] == 3  # 12 prompts / 4 per step
    store = open_store(store_uri)
    t = pa.concat_tables([read_events_object(store, k) for k in list_event_keys(store, "pools")]).to_pydict()
    per_sample = Counter(zip(t["step"], t["prompt_id"], t["sample"], strict=True))
    assert len(per_sample) == 3 * 4 * 2 and set(per_sample.values()) == {1}  # every event exactly once
