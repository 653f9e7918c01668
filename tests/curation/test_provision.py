"""`limr store provision`: one MinIO user per role with the policy limr.curation.roles renders, idempotently.

The admin API is exercised over HTTP with minio-py's real MinioAdmin against tests/support/minio_admin.py (MinIO's
server cannot be installed here; the stand-in checks the root signature and decrypts the bodies as MinIO does).
What each policy allows is tested against a real S3 server in tests/services/test_store_roles.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from limr.cli.main import app
from limr.curation.provision import ProvisionError, admin_client, policy_name, provision, read_role_keys
from limr.curation.roles import ROLES, iam_policy, role_access
from tests.support.minio_admin import FakeMinio

ROOT_KEY, ROOT_SECRET = "rootkey", "rootsecret-0123"


@pytest.fixture
def minio():
    fake = FakeMinio(ROOT_KEY, ROOT_SECRET).start()
    yield fake
    fake.stop()


def _secrets_dir(tmp_path: Path, roles=ROLES, shared: bool = False) -> Path:
    for role in roles:
        d = tmp_path / f"store-{role}"
        d.mkdir(parents=True)
        (d / "access-key-id").write_text("same-key\n" if shared else f"{role}-key\n")
        (d / "secret-access-key").write_text(f"{role}-secret-0123\n")
    return tmp_path


@pytest.mark.slow  # ~20 s: MinIO's body encryption derives an argon2id key per request, on both sides
def test_should_create_a_user_and_policy_per_role_and_change_nothing_when_run_again(minio, tmp_path):
    keys = read_role_keys(_secrets_dir(tmp_path))
    admin = admin_client(minio.endpoint, ROOT_KEY, ROOT_SECRET)
    first = provision(admin, keys, "limr", "team", publishing=True, root_access_key=ROOT_KEY)
    assert [r["newly_attached"] for r in first] == [True] * len(ROLES)
    for role in ROLES:
        name = policy_name(role, "limr", "team")
        assert minio.users[f"{role}-key"] == f"{role}-secret-0123"  # the secret arrived through the encrypted body
        assert minio.attached[f"{role}-key"] == [name]
        assert minio.policies[name] == iam_policy(role_access(role, publishing=True), "limr", "team")
    assert "runs/" not in " ".join(json.dumps(minio.policies[policy_name("api", "limr", "team")]["Statement"][2]))
    again = provision(admin, keys, "limr", "team", publishing=True)
    assert [r["newly_attached"] for r in again] == [False] * len(ROLES)
    assert all(len(v) == 1 for v in minio.attached.values())


def test_should_withdraw_the_apis_writes_when_publishing_is_turned_off_on_upgrade(minio, tmp_path):
    keys = read_role_keys(_secrets_dir(tmp_path), roles=("api",))
    admin = admin_client(minio.endpoint, ROOT_KEY, ROOT_SECRET)
    provision(admin, keys, "limr", publishing=True)
    name = policy_name("api", "limr")
    assert any("s3:PutObject" in s["Action"] for s in minio.policies[name]["Statement"])
    provision(admin, keys, "limr", publishing=False)
    assert not any("s3:PutObject" in s["Action"] for s in minio.policies[name]["Statement"])


def test_should_name_the_file_when_a_roles_credentials_are_missing_or_shared(tmp_path):
    with pytest.raises(ProvisionError, match="store-rollout.*rollout role"):
        read_role_keys(_secrets_dir(tmp_path / "a", roles=("learner", "scorer", "api")))
    with pytest.raises(ProvisionError, match="share an access key"):
        read_role_keys(_secrets_dir(tmp_path / "b", shared=True))


def test_should_refuse_a_role_that_reuses_the_root_key(minio, tmp_path):
    keys = read_role_keys(_secrets_dir(tmp_path))
    with pytest.raises(ProvisionError, match="root user"):
        provision(admin_client(minio.endpoint, ROOT_KEY, ROOT_SECRET), keys, "limr", root_access_key="learner-key")


def test_should_report_minios_refusal_when_the_root_credentials_are_wrong(minio, tmp_path):
    keys = read_role_keys(_secrets_dir(tmp_path))
    with pytest.raises(ProvisionError, match="learner role.*403"):
        provision(admin_client(minio.endpoint, "notroot", "wrong-secret"), keys, "limr")


@pytest.mark.slow  # ~20 s, as above
def test_should_make_the_bucket_and_users_from_the_cli_as_the_charts_job_runs_it(minio, tmp_path, monkeypatch):
    secrets = _secrets_dir(tmp_path)
    (tmp_path / "root-key").write_text(ROOT_KEY)
    (tmp_path / "root-secret").write_text(ROOT_SECRET)
    env = {"LIMR_STORE": "s3://limr/team", "LIMR_S3_ENDPOINT": minio.endpoint, "LIMR_S3_REGION": "us-east-1",
           "LIMR_S3_ACCESS_KEY_FILE": str(tmp_path / "root-key"),
           "LIMR_S3_SECRET_KEY_FILE": str(tmp_path / "root-secret")}  # fmt: skip
    for k in ("LIMR_S3_ACCESS_KEY", "LIMR_S3_SECRET_KEY"):
        monkeypatch.delenv(k, raising=False)
    args = ["store", "provision", "--secrets-dir", str(secrets), "--no-publishing", "--json", "--wait-s", "5"]
    out = CliRunner().invoke(app, args, env=env)
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result["bucket_created"] and minio.buckets == {"limr"}
    assert {r["role"]: r["write"] for r in result["roles"]} == {
        "learner": ["runs/"], "scorer": ["datasets/", "scorer/"], "api": [], "rollout": []}  # fmt: skip
    out = CliRunner().invoke(app, args, env=env)
    assert out.exit_code == 0 and not json.loads(out.output)["bucket_created"]


def test_should_print_each_roles_iam_policy_for_aws():
    out = CliRunner().invoke(app, ["store", "policy", "--bucket", "b", "--prefix", "p", "--no-publishing"])
    assert out.exit_code == 0, out.output
    docs = json.loads(out.output)
    assert set(docs) == set(ROLES)
    assert docs["learner"] == iam_policy(role_access("learner"), "b", "p")
    assert len(docs["api"]["Statement"]) == 2  # list and get only: no write statement without publishing
