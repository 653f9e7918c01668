"""Version numbers are unique across processes: two dataset-API processes and the scorer publish one dataset
at once, on local disk and on S3; every number is used once, consecutive, and each version is whole."""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from limr.curation.publish import list_versions, read_manifest
from limr.store import open_store
from tests.services.conftest import Service, service_env

pytestmark = pytest.mark.slow
TOKEN = "race-token"


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_two_apis_and_the_scorer_publish_at_once(backend, tmp_path, run_writer, request):
    uri = str(tmp_path / "store") if backend == "local" else request.getfixturevalue("s3_uri")
    store = open_store(uri)
    w = run_writer(store, "race", prompts=24, epochs=2, steps_per_epoch=2, seed=1)
    w.write_all()
    env = service_env({"LIMR_API_TOKEN": TOKEN})
    policy = ["--policy", "name=shared,threshold=0.5", "--poll-interval", "0.05"]
    scorer = Service(["scorer", "--store", uri, *policy], env, tmp_path / "scorer.log")
    apis = [Service(["datasets", "--store", uri], env, tmp_path / f"api{i}.log") for i in range(2)]
    try:
        for s in (scorer, *apis):
            s.wait_ready()
        w.finish()  # the scorer now publishes the final version while the APIs publish theirs

        def post(k: int) -> tuple[int, int]:
            body = {"run": "race", "strategy": "lim", "top_k": k}
            r = httpx.post(
                f"{apis[k % 2].url}/v1/datasets/shared/versions",
                json=body,
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=60,
            )
            assert r.status_code in (200, 201), r.text
            return r.status_code, r.json()["version"]

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post, range(1, 17)))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the scorer's final version (a threshold policy)
            if any(read_manifest(store, "shared", v)["publisher"] == "scorer" for v in list_versions(store, "shared")):
                break
            time.sleep(0.1)
    finally:
        for s in (scorer, *apis):
            s.stop()
    versions = list_versions(store, "shared")
    created = [v for status, v in answers if status == 201]
    assert len(created) == 16 and len(set(created)) == 16  # 16 different selections: 16 versions, none shared
    manifests = {v: read_manifest(store, "shared", v) for v in versions}
    assert versions == list(range(1, len(versions) + 1))  # consecutive: nobody crashed, so no hole
    assert set(created) < set(versions) and any(m["publisher"] == "scorer" for m in manifests.values())
    assert len({m["content_hash"] for m in manifests.values()}) == len(versions)  # each version once
    for v, m in manifests.items():
        assert m["version"] == v
        for fname, info in m["files"].items():  # whole: nobody wrote into another's version
            assert hashlib.sha256(store.get(f"datasets/shared/v{v}/{fname}")).hexdigest() == info["sha256"]
    assert not [k for k in store.list_keys("datasets/shared/") if k.endswith("/_claim")]  # every claim released
    print(json.dumps({"backend": backend, "versions": len(versions)}))
