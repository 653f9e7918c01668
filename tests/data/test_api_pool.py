"""dataset://NAME@VERSION references: parsing, pinning `latest`, and pools read through the dataset API."""

from __future__ import annotations

import json

import httpx
import pytest

from limr.data import api_pool
from limr.data.api_client import DatasetsClient
from limr.data.api_pool import DatasetRefError, is_api_pool, parse_ref, pin
from limr.data.pool import PoolError, load_pool

RECORDS = [
    {"prompt_id": "syn-a", "prompt": "What is 1 + 2?", "answer": "3", "source": "s", "score": 0.9},
    {"prompt_id": "syn-b", "prompt": "What is 2 + 2?", "answer": "4", "source": "s", "score": 0.7},
]


@pytest.fixture
def api(monkeypatch):
    """A fake dataset API: dataset 'lim' has versions 1 and 2; requests are recorded."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/v1/datasets/lim/versions":
            return httpx.Response(200, json={"name": "lim", "versions": [1, 2]})
        if request.url.path == "/v1/datasets/lim/versions/2/data":
            return httpx.Response(200, text="".join(json.dumps(r) + "\n" for r in RECORDS))
        return httpx.Response(404, json={"detail": "no dataset"})

    def client(base_url=None):
        return DatasetsClient(base_url, transport=httpx.MockTransport(handler))

    monkeypatch.setattr(api_pool, "_client", client)
    return seen


def test_parse_refs():
    assert str(parse_ref("dataset://tiny-lim@3")) == "dataset://tiny-lim@3"
    assert parse_ref("dataset://tiny-lim").version == "latest"
    for bad in ("dataset://", "dataset://a@0", "dataset://a b@1", "dataset://a@v1"):
        with pytest.raises(DatasetRefError, match="expected dataset://NAME@VERSION"):
            parse_ref(bad)
    assert is_api_pool("dataset://x@1") and is_api_pool("http://h/v1/datasets/x/versions/1/data")
    assert not is_api_pool("pool.jsonl") and not is_api_pool("s3://b/k")


def test_latest_is_pinned_and_the_pool_keeps_the_run_ids(api):
    assert pin("dataset://lim@latest", "http://api") == "dataset://lim@2"
    assert pin("dataset://lim@1", "http://api") == "dataset://lim@1"
    pool = load_pool("dataset://lim@2", "http://api")
    assert pool.ids == ["syn-a", "syn-b"] and pool.answer(1) == "4"
    assert "lim@2" in str(pool.path)
    assert api[-1] == "/v1/datasets/lim/versions/2/data"


def test_missing_version_is_one_clear_error(api):
    with pytest.raises(PoolError, match=r"dataset://lim@7: HTTP 404 .*no dataset"):
        load_pool("dataset://lim@7", "http://api")
