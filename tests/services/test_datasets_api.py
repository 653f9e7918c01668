"""The query API over a real S3 store: runs, scores, trajectories, datasets, downloads, diffs, publish, auth."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from limr.curation.policy import PublishPolicy
from limr.events.io import events_table, write_events
from limr.store import open_store
from services.datasets.config import DatasetsSettings
from services.datasets.main import create_app
from services.scorer.config import ScorerSettings
from services.scorer.ingest import Ingestor

TOKEN = "s3cret-write"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api(s3_uri, run_writer):
    store = open_store(s3_uri)
    w = run_writer(store, "run-a", prompts=30, epochs=3, steps_per_epoch=2)
    w.write_all()
    # A prompt seen in epoch 0 only: its trajectory cannot be completed, so it is left out of scoring.
    gap = events_table("run-a", 100, [0, 0], ["zz-gap", "zz-gap"], [0, 1], [1.0, 0.0], [True, False], [5, 5])
    write_events(store, "run-a", 100, 0, gap)
    policy = PublishPolicy(name="{run}-lim", threshold=0.4)
    Ingestor(store, ScorerSettings(store=s3_uri, policies=(policy,), notifications="off")).poll_once()
    settings = DatasetsSettings(store=s3_uri, api_token=TOKEN, max_page_size=50)
    with TestClient(create_app(settings)) as client:
        client.writer = w
        yield client


def test_runs_progress_scores_and_trajectory(api):
    runs = api.get("/v1/runs").json()
    assert runs["total"] == 1 and runs["items"][0]["run_id"] == "run-a" and runs["items"][0]["source"] == "test"
    progress = api.get("/v1/runs/run-a").json()
    assert progress["scored"] and progress["events"] == 30 * 3 * 4 + 2 and progress["objects"] == 7
    assert (progress["epochs_seen"], progress["epochs_complete"], progress["prompts"]) == (3, 3, 31)
    page = api.get("/v1/runs/run-a/scores", params={"limit": 7, "sort": "-score"}).json()
    assert page["total"] == 30 and len(page["items"]) == 7 and page["next_offset"] == 7 and page["epochs"] == 3
    scores = [i["score"] for i in page["items"]]
    assert scores == sorted(scores, reverse=True)
    rest = api.get("/v1/runs/run-a/scores", params={"limit": 50, "offset": 7}).json()
    assert rest["next_offset"] is None and len(rest["items"]) == 23
    hi = api.get("/v1/runs/run-a/scores", params={"min_score": 0.5, "max_score": 0.9, "sort": "score"}).json()
    assert all(0.5 <= i["score"] <= 0.9 for i in hi["items"])
    assert api.get("/v1/runs/run-a/scores", params={"limit": 10_000}).json()["limit"] == 50  # capped
    with_left = api.get("/v1/runs/run-a/scores", params={"include_left_out": True, "limit": 50}).json()
    assert with_left["total"] == 31 and with_left["items"][-1]["prompt_id"] == "zz-gap"
    assert with_left["items"][-1]["score"] is None and "epoch" in with_left["items"][-1]["left_out"]
    by_id = api.get("/v1/runs/run-a/scores", params={"sort": "prompt_id", "limit": 5, "offset": 5}).json()
    assert [i["prompt_id"] for i in by_id["items"]] == [f"p{i:04d}" for i in range(5, 10)]
    gap_traj = api.get("/v1/runs/run-a/prompts/zz-gap").json()
    assert gap_traj["score"] is None and gap_traj["accuracy"] == [0.5, None, None] and gap_traj["left_out"]
    pid = page["items"][0]["prompt_id"]
    traj = api.get(f"/v1/runs/run-a/prompts/{pid}").json()
    assert traj["score"] == scores[0] and len(traj["accuracy"]) == 3 and traj["total"] == [4, 4, 4]
    assert traj["accuracy"] == [c / 4 for c in traj["correct"]] and len(traj["r_avg"]) == 3
    n = int(pid[1:])
    assert (traj["prompt"], traj["answer"], traj["source"]) == (f"What is {n} + {n}?", str(2 * n), "synthetic")
    assert page["items"][0]["prompt"] == traj["prompt"] and page["items"][0]["source"] == "synthetic"
    assert gap_traj["prompt"] is None and gap_traj["source"] is None  # not in prompts.parquet
    found = api.get("/v1/runs/run-a/scores", params={"q": "WHAT IS 1", "source": "synthetic", "sort": "prompt_id"})
    assert [i["prompt_id"] for i in found.json()["items"]] == ["p0001"] + [f"p{i:04d}" for i in range(10, 20)]
    assert found.json()["sources"] == ["synthetic"]
    assert api.get("/v1/runs/run-a/scores", params={"q": "p0002"}).json()["total"] == 1  # ids match too
    assert api.get("/v1/runs/run-a/scores", params={"source": "math"}).json()["total"] == 0
    assert api.get("/v1/runs/run-a/prompts/nope").status_code == 404
    assert api.get("/v1/runs/nope").status_code == 404
    assert api.get("/v1/runs/nope/scores").status_code == 404
    assert api.get("/v1/runs/run-a/scores", params={"min_score": "nan"}).status_code == 422
    assert api.get("/v1/runs/run-a/scores", params={"sort": "bogus"}).status_code == 422


def test_datasets_versions_download_diff(api):
    listing = api.get("/v1/datasets").json()
    assert [d["name"] for d in listing["items"]] == ["run-a-lim"]
    manifest = api.get("/v1/datasets/run-a-lim/versions/latest").json()
    assert manifest["version"] == 1 and manifest["epochs_used"] == 3
    jsonl = api.get("/v1/datasets/run-a-lim/versions/1/data")
    assert jsonl.status_code == 200 and jsonl.headers["content-type"].startswith("application/x-ndjson")
    ids = [json.loads(x)["prompt_id"] for x in jsonl.text.splitlines()]
    assert len(ids) == manifest["counts"]["selected"] > 0
    pq_resp = api.get("/v1/datasets/run-a-lim/versions/1/data", params={"format": "parquet"})
    assert pq.read_table(io.BytesIO(pq_resp.content)).column("prompt_id").to_pylist() == ids

    body = {"run": "run-a", "strategy": "lim", "top_k": 5}
    assert api.post("/v1/datasets/run-a-lim/versions", json=body).status_code == 401
    assert (
        api.post("/v1/datasets/run-a-lim/versions", json=body, headers={"Authorization": "Bearer no"}).status_code
        == 401
    )
    created = api.post("/v1/datasets/run-a-lim/versions", json=body, headers=AUTH)
    assert created.status_code == 201 and created.json()["version"] == 2
    same = api.post("/v1/datasets/run-a-lim/versions", json=body, headers=AUTH)
    assert same.status_code == 200 and same.json()["version"] == 2
    listed = api.get("/v1/datasets/run-a-lim/versions").json()
    assert listed["versions"] == [1, 2] and [v["status"] for v in listed["items"]] == ["interim", "interim"]
    assert [v["selected"] for v in listed["items"]] == [len(ids), 5]
    diff = api.get("/v1/datasets/run-a-lim/diff", params={"from": 1, "to": 2}).json()
    top5 = {json.loads(x)["prompt_id"] for x in api.get("/v1/datasets/run-a-lim/versions/2/data").text.splitlines()}
    assert set(diff["added"]) == top5 - set(ids) and set(diff["removed"]) == set(ids) - top5
    assert diff["kept_count"] == len(top5 & set(ids))

    bad = [
        ({"run": "run-a", "threshold": 0.5, "top_k": 2}, 422),  # two size rules
        ({"run": "nope", "threshold": 0.5}, 404),
        ({"run": "run-a", "threshold": 2}, 422),
        ({"run": "run-a", "strategy": "best", "top_k": 2}, 422),
    ]
    for payload, code in bad:
        assert api.post("/v1/datasets/new/versions", json=payload, headers=AUTH).status_code == code, payload
    assert api.get("/v1/datasets/nope/versions").status_code == 404
    assert api.get("/v1/datasets/run-a-lim/versions/9").status_code == 404
    assert api.get("/v1/datasets/run-a-lim/versions/1/data", params={"format": "csv"}).status_code == 422
    assert api.get("/v1/datasets/-bad/versions").status_code == 422


def test_read_token_and_disabled_writes(s3_uri):
    settings = DatasetsSettings(store=s3_uri, read_token="reader")
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/datasets").status_code == 401
        assert client.get("/v1/datasets", headers={"Authorization": "Bearer reader"}).status_code == 200
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
        post = client.post(
            "/v1/datasets/x/versions", json={"run": "r", "top_k": 1}, headers={"Authorization": "Bearer reader"}
        )
        assert post.status_code == 403  # no LIMR_API_TOKEN configured: writes disabled
        metrics = client.get("/metrics").text
        assert 'limr_datasets_requests_total{method="GET",route="/v1/datasets",status="401"} 1.0' in metrics
        assert "limr_datasets_request_seconds_bucket" in metrics


def test_blank_token_means_writes_disabled(s3_uri, monkeypatch):
    monkeypatch.setenv("LIMR_API_TOKEN", "  ")
    assert DatasetsSettings(store=s3_uri).api_token is None


def test_should_read_the_tokens_from_mounted_secret_files(monkeypatch, tmp_path):
    from limr.secrets import SecretFileError

    for name, value in (("writer", "w-token\n"), ("reader", "r-token\n")):
        (tmp_path / name).write_text(value)
    monkeypatch.delenv("LIMR_API_TOKEN", raising=False)
    monkeypatch.delenv("LIMR_READ_TOKEN", raising=False)
    monkeypatch.setenv("LIMR_API_TOKEN_FILE", str(tmp_path / "writer"))
    monkeypatch.setenv("LIMR_READ_TOKEN_FILE", str(tmp_path / "reader"))
    settings = DatasetsSettings(store=str(tmp_path))
    assert settings.api_token.get_secret_value() == "w-token"
    assert settings.read_token.get_secret_value() == "r-token"
    assert DatasetsSettings(store=str(tmp_path), api_token="explicit").api_token.get_secret_value() == "explicit"
    monkeypatch.setenv("LIMR_API_TOKEN", "both")
    with pytest.raises(SecretFileError, match="LIMR_API_TOKEN and LIMR_API_TOKEN_FILE are both set"):
        DatasetsSettings(store=str(tmp_path))


def test_a_405_names_every_method_of_the_path(tmp_path):
    """GET and POST serve /v1/datasets/{name}/versions from two routes: a PUT's 405 names both (Starlette's
    own names only the first route's)."""
    from fastapi.testclient import TestClient

    from limr.store import LocalStore
    from services.datasets.config import DatasetsSettings
    from services.datasets.main import create_app

    store = LocalStore(tmp_path / "s")
    with TestClient(create_app(DatasetsSettings(store=store.uri), store=store)) as client:
        r = client.put("/v1/datasets/x/versions")
        assert r.status_code == 405 and set(r.headers["allow"].split(", ")) >= {"GET", "POST"}
        spec = client.get("/openapi.json").json()  # reads open: the read routes declare no security, no 401
        op = spec["paths"]["/v1/runs"]["get"]
        assert "security" not in op and "401" not in op["responses"]
        assert "security" in spec["paths"]["/v1/datasets/{name}/versions"]["post"]
