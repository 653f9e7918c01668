"""Immutable versions are served from memory with ETags: 304 on If-None-Match, and never stale."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from limr.curation.policy import PublishPolicy
from limr.store import LocalStore
from services.datasets.config import DatasetsSettings
from services.datasets.main import create_app
from services.scorer.config import ScorerSettings
from services.scorer.ingest import Ingestor


def test_manifests_and_files_carry_etags_and_answer_304(tmp_path, run_writer) -> None:
    store = LocalStore(tmp_path / "store")
    w = run_writer(store, "c", prompts=20, epochs=3)
    w.write_all()
    ing = Ingestor(store, ScorerSettings(store=store.uri, policies=(PublishPolicy(name="{run}", top_k=5),)))
    ing.poll_once()
    with TestClient(create_app(DatasetsSettings(store=store.uri), store=store)) as api:
        first = api.get("/v1/datasets/c/versions/1")
        manifest = json.loads(store.get("datasets/c/v1/manifest.json"))
        assert first.json() == manifest and first.headers["etag"] == f'"{manifest["content_hash"]}"'
        assert "immutable" in first.headers["cache-control"]
        again = api.get("/v1/datasets/c/versions/1", headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == first.headers["etag"]
        assert api.get("/v1/datasets/c/versions/1", headers={"If-None-Match": '"other"'}).status_code == 200

        data = api.get("/v1/datasets/c/versions/latest/data")
        sha = manifest["files"]["data.jsonl"]["sha256"]
        assert data.content == store.get("datasets/c/v1/data.jsonl") and data.headers["etag"] == f'"{sha}"'
        assert data.headers["cache-control"] == "no-cache"  # latest can move
        assert "c-v1.jsonl" in data.headers["content-disposition"]
        assert api.get("/v1/datasets/c/versions/1/data", headers={"If-None-Match": f'"{sha}"'}).status_code == 304

        # A new version shows at once under latest (listings are never cached), with its own ETag.
        w.finish()
        ing.poll_once()
        latest = api.get("/v1/datasets/c/versions/latest")
        assert latest.json()["version"] == 2 and latest.json()["final"] is True
        assert latest.headers["etag"] != first.headers["etag"]
        assert (
            api.get("/v1/datasets/c/versions/latest", headers={"If-None-Match": first.headers["etag"]}).status_code
            == 200
        )
