"""Least privilege in the store: each role's credentials (SeaweedFS identities made from limr.curation.roles) can
write only its own prefixes; the learner cannot write datasets/, the API cannot write runs/."""

from __future__ import annotations

import pytest

from limr.curation.roles import Access, iam_policy, role_access, seaweed_actions
from limr.store import AccessDenied, open_store
from tests.support.s3server import start_s3_server

BUCKET = "roles"
ROOT = "limr"
ROLES = {
    "learner": role_access("learner"),
    "scorer": role_access("scorer"),
    "api": role_access("api"),
    "api-publishing": role_access("api", publishing=True),
    "rollout": role_access("rollout"),
}


@pytest.fixture(scope="module")
def server():
    identities = [
        {
            "name": name,
            "credentials": [{"accessKey": f"{name}-key", "secretKey": f"{name}-secret-0123"}],
            "actions": seaweed_actions(access, BUCKET, ROOT),
        }
        for name, access in ROLES.items()
    ]
    srv = start_s3_server(identities=identities)
    srv.make_bucket(BUCKET)
    yield srv
    srv.stop()


def _store(server, monkeypatch, role: str):
    monkeypatch.setenv("LIMR_S3_ENDPOINT", server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", f"{role}-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", f"{role}-secret-0123")
    return open_store(f"s3://{BUCKET}/{ROOT}")


WRITES = {  # role -> (key, may it write?)
    "learner": [("runs/r1/run.json", True), ("datasets/d/v1/manifest.json", False), ("scorer/r1/ckpt", False)],
    "scorer": [("runs/r1/events/x", False), ("datasets/d/v1/manifest.json", True), ("scorer/r1/ckpt", True)],
    "api": [("runs/r1/run.json", False), ("datasets/d/v2/manifest.json", False)],
    "api-publishing": [("runs/r1/_FINISHED", False), ("datasets/d/v3/manifest.json", True), ("scorer/x", False)],
    "rollout": [("runs/r1/weights/0000000001/model.safetensors", False), ("datasets/d/v4/manifest.json", False)],
}


@pytest.mark.parametrize("role", list(WRITES))
def test_should_let_each_role_write_only_its_prefixes_when_given_its_own_credentials(server, monkeypatch, role):
    store = _store(server, monkeypatch, role)
    for key, allowed in WRITES[role]:
        if allowed:
            store.put(key, b"{}")
            assert store.get(key) == b"{}"
        else:
            with pytest.raises(AccessDenied):
                store.put(key, b"{}")
    # every role reads what it needs (the learner its runs, the others runs/ and datasets/)
    assert store.list_keys("runs/") is not None


def test_should_grant_exactly_the_prefixes_when_rendered_as_an_iam_policy():
    policy = iam_policy(role_access("learner"), "b", "limr")
    (put,) = [s for s in policy["Statement"] if "s3:PutObject" in s["Action"]]
    assert put["Resource"] == ["arn:aws:s3:::b/limr/runs/*"]
    api = iam_policy(role_access("api"), "b", "limr")
    assert not [s for s in api["Statement"] if "s3:PutObject" in s["Action"]]  # reads only without publishing
    assert seaweed_actions(Access(read=("runs/",), write=()), "b") == ["Read:b", "List:b"]
    with pytest.raises(ValueError, match="unknown store role"):
        role_access("root")  # type: ignore[arg-type]


def test_should_score_and_publish_with_role_credentials_when_the_learner_wrote_the_run(
    server, monkeypatch, run_writer
):
    from fastapi.testclient import TestClient

    from limr.curation.policy import PublishPolicy
    from services.datasets.config import DatasetsSettings
    from services.datasets.main import create_app
    from services.scorer.config import ScorerSettings
    from services.scorer.ingest import Ingestor

    uri = f"s3://{BUCKET}/{ROOT}"
    run_writer(_store(server, monkeypatch, "learner"), "run-roles", prompts=6, epochs=2, steps_per_epoch=1).write_all()
    scorer_store = _store(server, monkeypatch, "scorer")
    policy = PublishPolicy(name="{run}-lim", threshold=0.4)
    Ingestor(scorer_store, ScorerSettings(store=uri, policies=(policy,), notifications="off")).poll_once()
    assert scorer_store.exists("datasets/run-roles-lim/v1/manifest.json")
    with TestClient(create_app(DatasetsSettings(store=uri), store=_store(server, monkeypatch, "api"))) as api:
        assert "run-roles" in [r["run_id"] for r in api.get("/v1/runs", params={"limit": 1000}).json()["items"]]
        assert api.get("/v1/datasets/run-roles-lim/versions/latest").json()["version"] == 1
