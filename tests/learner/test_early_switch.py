"""Online early-LIM curation: the switch from the full pool to the early-LIM subset, and its record."""

from __future__ import annotations

import json

import httpx
import pytest

from limr.data.api_client import DatasetsClient
from limr.learner import early_switch
from limr.learner.data import PromptPlan
from limr.learner.early_switch import (
    PoolSwitch,
    SwitchedPlan,
    SwitchError,
    make_switch,
    pick_version,
    read_switch,
    wait_for_subset,
    write_switch,
)
from limr.store import open_store

POOL = [f"p{i:03d}" for i in range(40)]


def _switch(indices: list[int], step: int = 8, epoch: int = 2) -> PoolSwitch:
    return PoolSwitch(step, epoch, indices, "r-early", 3, "provisional", 2, 0.9)


def test_plan_is_the_full_pool_before_the_switch_and_subset_epochs_after():
    base = PromptPlan(POOL, rollout_batch_size=10, seed=7)  # 4 steps per epoch
    subset = [1, 5, 9, 12, 20, 21, 30, 33, 38, 39, 2, 3, 4]  # 13 prompts: 2 steps per subset epoch
    plan = SwitchedPlan(base, _switch(sorted(subset)))
    for step in range(8):
        assert plan.for_step(step) == base.for_step(step)
    after = [plan.for_step(s) for s in range(8, 14)]
    assert [s.epoch for s in after] == [2, 2, 3, 3, 4, 4]
    for epoch in (2, 3, 4):
        seen = [i for s in after if s.epoch == epoch for i in s.indices]
        assert sorted(seen) == sorted(subset)  # every subset prompt once per subset epoch
    assert [s.indices for s in after] == [
        SwitchedPlan(base, _switch(sorted(subset))).for_step(s).indices for s in range(8, 14)
    ]
    assert after[0].indices != after[2].indices  # a fresh order per epoch
    assert SwitchedPlan(base).for_step(9) == base.for_step(9)


def test_pick_version_takes_the_newest_of_the_run_from_enough_epochs():
    items = [
        {"version": 1, "run": "r", "epochs_used": 1, "status": "interim"},
        {"version": 2, "run": "r", "epochs_used": 2, "status": "provisional"},
        {"version": 3, "run": "other", "epochs_used": 5, "status": "final"},
        {"version": 4, "run": "r", "epochs_used": 3, "status": "provisional"},
    ]
    assert pick_version(items, "r", 2)["version"] == 4
    assert pick_version(items, "r", 4) is None
    assert pick_version(items, "nope", 1) is None


def test_wait_for_subset_polls_until_the_version_exists():
    listings = iter([None, {"versions": [1], "items": [{"version": 1, "run": "r", "epochs_used": 1}]}])
    final = {"versions": [2], "items": [{"version": 2, "run": "r", "epochs_used": 2, "status": "provisional"}]}
    paths = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.path == "/v1/datasets/r-early/versions":
            body = next(listings, final)
            if body is None:
                return httpx.Response(404, json={"detail": "no dataset"})
            return httpx.Response(200, json=body)
        assert request.url.path == "/v1/datasets/r-early/versions/2/data" and request.url.params["format"] == "jsonl"
        lines = [json.dumps({"prompt_id": p, "score": 0.7}) + "\n" for p in ["p003", "p001"]]
        return httpx.Response(200, text="".join(lines))

    with DatasetsClient("http://api", transport=httpx.MockTransport(handler)) as client:
        found, ids = wait_for_subset(client, "r-early", "r", 2, timeout_s=5, poll_s=0.01)
        assert found["version"] == 2 and ids == ["p003", "p001"] and len(paths) == 4
        with pytest.raises(SwitchError, match="has no version of run 'r' from 3 epochs"):
            wait_for_subset(client, "r-early", "r", 3, timeout_s=0.05, poll_s=0.01)


def test_switch_reads_the_token_from_a_secret_file_and_sends_it_to_the_api_only(tmp_path, monkeypatch):
    """The early-LIM switch reads LIMR_READ_TOKEN_FILE through env_secret and sends the token to its API."""
    (tmp_path / "reader").write_text("r-token\n")
    monkeypatch.delenv("LIMR_READ_TOKEN", raising=False)
    monkeypatch.delenv("LIMR_API_TOKEN", raising=False)
    monkeypatch.delenv("LIMR_API_TOKEN_FILE", raising=False)
    monkeypatch.setenv("LIMR_READ_TOKEN_FILE", str(tmp_path / "reader"))
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("Authorization")))
        if request.url.path.endswith("/versions"):
            return httpx.Response(200, json={"versions": [1], "items": [{"version": 1, "run": "r", "epochs_used": 2}]})
        return httpx.Response(200, text=json.dumps({"prompt_id": "p001"}) + "\n")

    real = early_switch.DatasetsClient
    monkeypatch.setattr(early_switch, "DatasetsClient", lambda url: real(url, transport=httpx.MockTransport(handler)))

    class Ctx:
        is_main = True

        def broadcast_object(self, obj):
            return obj

    plan = SwitchedPlan(PromptPlan(POOL, rollout_batch_size=10, seed=0))
    store = open_store(str(tmp_path / "store"))
    made = early_switch.switch_if_due(
        8, plan, POOL, store, "r", Ctx(), epochs=2, dataset="d", api_url="http://api:8080", timeout_s=1
    )
    assert made is not None and made.indices == [1] and read_switch(store, "r") == made
    assert [auth for _, auth in seen] == ["Bearer r-token", "Bearer r-token"]
    assert all(url.startswith("http://api:8080/v1/datasets/d/versions") for url, _ in seen)


def test_make_switch_maps_ids_to_pool_rows_and_refuses_strangers(tmp_path):
    found = {"version": 2, "run": "r", "epochs_used": 2, "status": "provisional", "predicted_precision": 0.93}
    sw = make_switch(found, ["p010", "p002", "p010"], POOL, step=8, epoch=2, dataset="r-early")
    assert sw.indices == [2, 10] and sw.version == 2 and sw.predicted_precision == 0.93
    with pytest.raises(SwitchError, match="1 prompt\\(s\\) not in the run's pool, e.g. 'zzz'"):
        make_switch(found, ["p001", "zzz"], POOL, 8, 2, "r-early")
    with pytest.raises(SwitchError, match="selects no prompt"):
        make_switch(found, [], POOL, 8, 2, "r-early")
    store = open_store(str(tmp_path))
    assert read_switch(store, "r") is None
    write_switch(store, "r", sw)
    assert read_switch(store, "r") == sw
    assert json.loads(store.get("runs/r/curation.json"))["mode"] == "early-lim"


def test_short_subset_tail_joins_the_last_step_so_every_worker_has_a_prompt():
    base = PromptPlan(POOL, rollout_batch_size=10, seed=1)
    subset = list(range(21))  # 2 full steps + 1 prompt: with 2 workers the tail joins the second step
    plan = SwitchedPlan(base, _switch(subset), min_step_prompts=2)
    steps = [plan.for_step(s) for s in range(8, 12)]
    assert [len(s.indices) for s in steps] == [10, 11, 10, 11]
    assert [s.epoch for s in steps] == [2, 2, 3, 3]
    assert sorted(steps[0].indices + steps[1].indices) == subset


def test_early_lim_config_is_checked():
    from pydantic import ValidationError

    from limr.learner.config import LearnerConfig

    base = {"model": {"actor": "m"}, "run": {"epochs": 4}}
    ok = LearnerConfig.model_validate(base | {"curation": {"mode": "early-lim", "early_epochs": 2}})
    assert ok.curation.early_dataset == "{run}-early-lim"
    with pytest.raises(ValidationError, match="curation.early_epochs \\(4\\) must be below run.epochs \\(4\\)"):
        LearnerConfig.model_validate(base | {"curation": {"mode": "early-lim", "early_epochs": 4}})
    with pytest.raises(ValidationError, match="exclude each other"):
        LearnerConfig.model_validate(base | {"curation": {"mode": "early-lim", "dynamic_sampling": True}})
