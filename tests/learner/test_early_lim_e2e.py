"""`curation.mode: early-lim` end to end in one process: a local learner run, the scorer following its events
and publishing the early-LIM version after K epochs, the dataset API serving it, the learner switching to it."""

from __future__ import annotations

import json
import threading
import time

import pytest
import uvicorn

from limr.curation.policy import PublishPolicy
from limr.events.io import list_event_keys, read_events_object
from limr.learner.config import load_config
from limr.learner.early_switch import read_switch
from limr.learner.worker import run_local
from limr.store import open_store
from services.datasets.config import DatasetsSettings
from services.datasets.main import create_app
from services.scorer.config import ScorerSettings
from services.scorer.ingest import Ingestor
from tests.learner.conftest import write_config
from tests.support.s3server import free_port


@pytest.mark.slow
def test_learner_trains_k_epochs_on_the_pool_then_on_the_early_lim_subset(tmp_path, tiny_model, synthetic_pool):
    train, _ = synthetic_pool  # 12 prompts, 4 per step: 3 steps per epoch
    store_uri = str(tmp_path / "store")
    store = open_store(store_uri)
    policy = PublishPolicy(name="{run}-early", strategy="lim", threshold=0.3, early_epochs=1)
    scorer = Ingestor(
        store, ScorerSettings(store=store_uri, policies=(policy,), notifications="off", poll_interval_s=0.2)
    )
    port = free_port()
    api = uvicorn.Server(uvicorn.Config(create_app(DatasetsSettings(store=store_uri)), port=port, log_level="warning"))
    threads = [threading.Thread(target=scorer.run, daemon=True), threading.Thread(target=api.run, daemon=True)]
    for t in threads:
        t.start()
    while not api.started:
        time.sleep(0.02)
    cfg_path = write_config(
        tmp_path / "c.yaml",
        tiny_model,
        train,
        run={"seed": 3, "epochs": 3},
        data={"datasets_url": f"http://127.0.0.1:{port}"},
        curation={"mode": "early-lim", "early_epochs": 1, "early_dataset": "{run}-early", "early_wait_s": 120},
    )
    try:
        last = run_local(load_config(cfg_path, {"run.run_id": "el", "run.store": store_uri}))
    finally:
        scorer.stop_event.set()
        api.should_exit = True
        for t in threads:
            t.join(20)

    switch = read_switch(store, "el")
    assert switch is not None and (switch.step, switch.epoch, switch.dataset) == (3, 1, "el-early")
    assert switch.status == "provisional" and switch.epochs_used >= 1 and 0 < len(switch.indices) <= 12
    manifest = json.loads(store.get(f"datasets/el-early/v{switch.version}/manifest.json"))
    assert manifest["provisional"] is True and manifest["run"] == "el"
    subset = {
        json.loads(x)["prompt_id"] for x in store.get(f"datasets/el-early/v{switch.version}/data.jsonl").splitlines()
    }
    steps: dict[int, set[str]] = {}
    for key in list_event_keys(store, "el"):
        t = read_events_object(store, key, ("step", "prompt_id"))
        for step, pid in zip(t.column("step").to_pylist(), t.column("prompt_id").to_pylist(), strict=True):
            steps.setdefault(step, set()).add(pid)
    assert sorted(steps) == list(range(9))  # the step budget of 3 epochs over the full pool
    assert len(set().union(*(steps[s] for s in range(3)))) == 12  # epoch 0: the whole pool
    assert set().union(*(steps[s] for s in range(3, 9))) <= subset  # then only the early-LIM subset
    assert last["curation/pool_size"] == len(switch.indices)
