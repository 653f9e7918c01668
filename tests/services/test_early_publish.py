"""The scorer's provisional dataset versions: a policy with `early_epochs: K` publishes the early-LIM prediction
from K complete epochs on, and plain LIM once the run has all its epochs."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from limr.algo.selection import Criterion
from limr.curation.early import early_score_run
from limr.curation.policy import PublishPolicy
from limr.curation.publish import list_versions, read_manifest, version_status
from limr.events.run import RunMeta, write_run_meta
from limr.scoring import score_run
from limr.store import open_store
from services.scorer.config import ScorerSettings
from services.scorer.ingest import Ingestor

POLICY = PublishPolicy(name="{run}-early", strategy="lim", threshold=0.6, early_epochs=2)


def _ids(store, name: str, version: int) -> set[str]:
    data = store.get(f"datasets/{name}/v{version}/data.jsonl").decode()
    return {json.loads(line)["prompt_id"] for line in data.splitlines()}


def test_provisional_versions_from_k_epochs_then_plain_lim(tmp_path, run_writer):
    store = open_store(str(tmp_path / "store"))
    w = run_writer(store, "r", prompts=60, epochs=5, samples=8, steps_per_epoch=2, seed=4)
    w.start()
    write_run_meta(store, RunMeta(run_id="r", num_prompts=60, samples_per_prompt=8, source="test", epochs=5))
    settings = ScorerSettings(store=store.uri, policies=(POLICY,), notifications="off", checkpoint_min_interval_s=0)
    scorer = Ingestor(store, settings)
    steps = list(w.steps())

    def write_epochs(upto: int) -> None:
        for epoch, step in steps:
            if epoch < upto and not any(k.endswith(f"{step:010d}-0000.parquet") for k in w.keys):
                w.write_step(epoch, step)
        scorer.poll_once()

    write_epochs(1)
    assert list_versions(store, "r-early") == []  # one complete epoch: before K
    write_epochs(2)
    assert list_versions(store, "r-early") == [1]
    m1 = read_manifest(store, "r-early", 1)
    assert m1["provisional"] is True and m1["epochs_used"] == 2 and m1["epochs_total"] == 5
    assert m1["predictor"] == "trend" and 0 <= m1["predicted_precision"] <= 1
    assert version_status(m1) == "provisional"
    early = early_score_run(store, "r", 2, 0.6)  # what `limr select --early 2` picks
    expected = {pid for pid, s in zip(early.result.prompt_ids, early.prediction.selected, strict=True) if s}
    assert _ids(store, "r-early", 1) == expected
    assert m1["counts"]["selected"] == m1["predicted_selected"] == len(expected)

    write_epochs(3)
    m2 = read_manifest(store, "r-early", 2)
    assert m2["provisional"] is True and m2["epochs_used"] == 3

    write_epochs(5)
    last = list_versions(store, "r-early")[-1]
    final = read_manifest(store, "r-early", last)
    assert not final.get("provisional") and final["epochs_used"] == 5
    assert version_status(final) != "provisional"
    lim = score_run(store, "r")
    crit = Criterion(threshold=0.6)
    assert _ids(store, "r-early", last) == {
        p for p, s in zip(lim.prompt_ids, lim.scores, strict=True) if crit.threshold <= s
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"strategy": "rand", "threshold": 0.6},
        {"strategy": "lim", "top_k": 10},
        {"strategy": "lim", "threshold": 0.6, "max_epochs": 3},
    ],
)
def test_early_policies_need_lim_with_a_threshold(bad):
    with pytest.raises(ValidationError, match="early_epochs needs strategy lim with a threshold"):
        PublishPolicy(name="x", early_epochs=2, **bad)


def test_learner_switches_to_the_provisional_subset_through_the_api(tmp_path, run_writer):
    """The whole online chain without a model: events of K epochs -> scorer's provisional version -> dataset
    API -> the learner's switch (`curation.mode: early-lim`), recorded in the store."""
    import threading
    import time

    import uvicorn

    from limr.learner.data import PromptPlan
    from limr.learner.early_switch import SwitchedPlan, read_switch, switch_if_due
    from services.datasets.config import DatasetsSettings
    from services.datasets.main import create_app
    from tests.support.s3server import free_port

    store = open_store(str(tmp_path / "store"))
    w = run_writer(store, "r", prompts=60, epochs=2, samples=8, steps_per_epoch=2, seed=5)
    w.write_all()
    write_run_meta(store, RunMeta(run_id="r", num_prompts=60, samples_per_prompt=8, source="test", epochs=6))
    settings = ScorerSettings(store=store.uri, policies=(POLICY,), notifications="off", checkpoint_min_interval_s=0)
    Ingestor(store, settings).poll_once()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(DatasetsSettings(store=store.uri)), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)

    class Ctx:  # one rank
        is_main = True

        @staticmethod
        def broadcast_object(obj):
            return obj

    try:
        plan = SwitchedPlan(PromptPlan(w.ids, rollout_batch_size=20, seed=0))  # 3 steps per epoch
        kw = {"epochs": 2, "dataset": "r-early", "api_url": f"http://127.0.0.1:{port}", "timeout_s": 5}
        assert switch_if_due(5, plan, w.ids, store, "r", Ctx, **kw) is None  # not yet the first step after K
        sw = switch_if_due(6, plan, w.ids, store, "r", Ctx, **kw)
    finally:
        server.should_exit = True
        thread.join(10)
    assert sw is not None and sw.status == "provisional" and sw.version == 1 and sw.epochs_used == 2
    assert {w.ids[i] for i in sw.indices} == _ids(store, "r-early", 1)
    assert read_switch(store, "r") == sw and plan.switch == sw
    assert set(plan.for_step(6).indices) <= set(sw.indices)
