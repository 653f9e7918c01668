"""End to end on Ray: vLLM (CPU) behind Serve, Ray Train with 2 gloo workers, events read back by `limr score`."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from limr.events.io import list_event_keys, read_events_object
from limr.events.run import read_run_meta
from limr.learner.config import load_config
from limr.store import open_store
from tests.conftest import unique_name
from tests.learner.conftest import write_config

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.vllm]


def test_ray_train_with_rollout_service_writes_scorable_events(tmp_path, ray_session, tiny_model, synthetic_pool):
    from limr.cli.main import app
    from limr.events.schema import weights_key, weights_prefix
    from limr.learner.generator.exporter import export_uri
    from limr.learner.launch import run_with_ray
    from limr.rollout.weights import checkpoint_shapes, fetch_checkpoint

    train, _ = synthetic_pool  # 12 prompts
    n, epochs = 2, 2
    cfg_path = write_config(
        tmp_path / "e2e.yaml",
        tiny_model,
        train,
        rollout={
            "samples_per_prompt": n,
            "max_new_tokens": 8,
            "backend": "service",
            "service": {"engine": {"kv_cache_gib": 0.25, "max_model_len": 512}, "num_cpus": 1},
            "export_every": 3,  # syncs 1 and 4 exported for cold replicas, and the last (5th); pruning keeps two
        },
        batch={"rollout_batch_size": 6, "train_batch_size": 4, "micro_batch_size": 4},
        trainer={"num_workers": 2, "cpus_per_worker": 1},
        run={"epochs": epochs, "checkpoint_every": 2},
        data={"max_prompt_tokens": 256},
    )
    run_id = unique_name("e2e")
    store_uri = str(tmp_path / "store")
    cfg = load_config(cfg_path, {"run.run_id": run_id, "run.store": store_uri})
    result = run_with_ray(cfg)
    assert result["train/step"] == 4  # 12 prompts / 6 per step = 2 steps per epoch, 2 epochs
    assert result["rollout/weight_version"] >= 4  # the service served every step's new weights
    # vLLM (CPU kernels) vs the learner: ~0.002 nats/token at init, a few 0.01 after lr-1e-3 updates; a misaligned
    # slice or stale weights give whole nats
    assert result["rollout/logprob_gap_mean"] < 0.25

    store = open_store(store_uri)
    # Exports of the sent weights (both ranks iterate, rank 0 writes), older ones pruned; each a whole HF model
    exports = sorted({k.split("/")[3] for k in store.list_keys(weights_prefix(run_id))})
    assert len(exports) == 2 and int(exports[-1]) == result["rollout/weight_version"]  # the run's final weights
    newest = export_uri(store, weights_key(run_id, int(exports[-1])))
    assert checkpoint_shapes(fetch_checkpoint(newest, tmp_path)) == checkpoint_shapes(tiny_model)
    meta = read_run_meta(store, run_id)
    assert meta.samples_per_prompt == n and meta.num_prompts == 12 and meta.steps_per_epoch == 2
    keys = list(list_event_keys(store, run_id))
    assert len(keys) == 4 * 2  # one part per worker per step
    t = pa.concat_tables([read_events_object(store, k) for k in keys]).to_pydict()
    per_prompt_epoch = Counter(zip(t["prompt_id"], t["epoch"], strict=True))
    assert len(per_prompt_epoch) == 12 * epochs and set(per_prompt_epoch.values()) == {n}

    out = tmp_path / "scores.jsonl"
    res = CliRunner().invoke(app, ["score", "--run", run_id, "--store", store_uri, "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 12 and all(r["score"] is not None for r in rows)
    assert all(len(r["trajectory"]) == epochs for r in rows)
