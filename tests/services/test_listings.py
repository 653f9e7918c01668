"""Bounded-staleness listings of /v1/runs and /v1/datasets: the store is listed once per window, a publish
through the API shows at once, and what another process adds shows once the window has passed."""

from __future__ import annotations

from collections import Counter

from fastapi.testclient import TestClient

from limr.curation.policy import PublishPolicy
from limr.store import open_store
from services.datasets.cache import Listings
from services.datasets.config import DatasetsSettings
from services.datasets.main import create_app
from services.scorer.config import ScorerSettings
from services.scorer.ingest import Ingestor

TOKEN = "w"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_should_list_the_store_once_per_window_when_listings_repeat(tmp_path, run_writer):
    store = open_store(str(tmp_path))
    run_writer(store, "run-a", prompts=6, epochs=2, steps_per_epoch=1).write_all()
    policy = PublishPolicy(name="{run}-lim", threshold=0.4)
    Ingestor(store, ScorerSettings(store=str(tmp_path), policies=(policy,), notifications="off")).poll_once()

    lists: Counter[str] = Counter()
    real_list = store.list

    def counting_list(prefix: str = "", start_after: str | None = None):  # type: ignore[no-untyped-def]
        lists[prefix] += 1
        return real_list(prefix, start_after)

    store.list = counting_list  # type: ignore[method-assign]
    clock = Clock()
    app = create_app(DatasetsSettings(store=str(tmp_path), api_token=TOKEN, listing_ttl_s=30), store=store)
    app.state.listings = Listings(30, timer=clock)
    with TestClient(app) as api:
        for _ in range(3):
            assert [r["run_id"] for r in api.get("/v1/runs").json()["items"]] == ["run-a"]
            assert api.get("/v1/datasets").json()["items"][0]["latest"] == 1
        for _ in range(2):  # the web view's index shares the listings
            assert api.get("/ui/").status_code == 200
        assert (lists["runs/"], lists["datasets/"]) == (1, 1)

        # another process adds a run: unseen within the window, listed once it has passed
        run_writer(store, "run-b", prompts=6, epochs=2, steps_per_epoch=1).write_all()
        clock.now = 29.0
        assert api.get("/v1/runs").json()["total"] == 1
        clock.now = 30.5
        assert [r["run_id"] for r in api.get("/v1/runs").json()["items"]] == ["run-a", "run-b"]
        assert lists["runs/"] == 2

        # a publish through this server invalidates the datasets listing at once (no clock change)
        body = {"run": "run-a", "strategy": "lim", "top_k": 2}
        created = api.post("/v1/datasets/run-a-top/versions", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert created.status_code == 201, created.text
        names = [d["name"] for d in api.get("/v1/datasets").json()["items"]]
        assert names == ["run-a-lim", "run-a-top"] and lists["datasets/"] == 2

        # a run deleted within the window is left out of the page, not a 404 for the whole listing
        for key in store.list_keys("runs/run-b/"):
            store.delete(key)
        clock.now = 31.0
        assert [r["run_id"] for r in api.get("/v1/runs").json()["items"]] == ["run-a"]


def test_should_list_the_store_every_time_when_the_window_is_zero(tmp_path, run_writer):
    store = open_store(str(tmp_path))
    run_writer(store, "run-a", prompts=4, epochs=1, steps_per_epoch=1).write_all()
    app = create_app(DatasetsSettings(store=str(tmp_path), listing_ttl_s=0), store=store)
    with TestClient(app) as api:
        assert api.get("/v1/runs").json()["total"] == 1
        run_writer(store, "run-b", prompts=4, epochs=1, steps_per_epoch=1).write_all()
        assert api.get("/v1/runs").json()["total"] == 2
