"""Per-role store credentials on MinIO: the bucket, one user per role and its policy (from limr.curation.roles).

The chart's store-setup Job runs this (`limr store provision`) with MinIO's root credentials, which no other pod
holds; every other pod mounts only its own role's key pair. It talks to MinIO's admin API through minio-py's
`MinioAdmin`, which signs plain HTTP requests to `/minio/admin/v3/...` (SigV4, request bodies encrypted with the
root secret as `mc` does): no `mc` binary, nothing downloaded at run time.

Idempotent, so every install and upgrade runs it again: MinIO replaces a canned policy that exists (a changed
`publishing` or prefix takes effect), sets the secret of a user that exists (a rotated Secret takes effect), and
answers a re-attached policy with `XMinioAdminPolicyChangeAlreadyApplied`, which is success here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from limr.curation.roles import ROLES, Role, iam_policy, role_access

_ALREADY_APPLIED = "XMinioAdminPolicyChangeAlreadyApplied"


class ProvisionError(RuntimeError):
    """A role's credentials are missing or malformed, or MinIO refused a change."""


@dataclass(frozen=True)
class RoleKeys:
    role: Role
    access_key: str
    secret_key: str = ""

    def __repr__(self) -> str:  # never print a secret
        return f"RoleKeys({self.role!r}, {self.access_key!r})"


class Admin(Protocol):
    """What provisioning uses of minio.MinioAdmin."""

    def policy_add(self, policy_name: str, policy_file: None = None, policy: dict[str, Any] | None = None) -> str: ...

    def user_add(self, access_key: str, secret_key: str) -> str: ...

    def attach_policy(self, policies: list[str], user: str | None = None, group: str | None = None) -> str: ...


def policy_name(role: Role, bucket: str, root: str = "") -> str:
    """The canned policy of `role` for `s3://bucket/root` (one per store, so two releases sharing a MinIO never
    overwrite each other's)."""
    where = re.sub(r"[^A-Za-z0-9-]+", "-", f"{bucket}-{root.strip('/')}".strip("-")).strip("-")
    return f"limr-{where}-{role}"


def read_role_keys(secrets_dir: Path, roles: Iterable[Role] = ROLES) -> list[RoleKeys]:
    """Each role's key pair from `secrets_dir/store-<role>/{access-key-id,secret-access-key}` (the files the chart
    mounts into the store-setup Job)."""
    out = []
    for role in roles:
        d = secrets_dir / f"store-{role}"
        try:
            access, secret = ((d / f).read_text().strip() for f in ("access-key-id", "secret-access-key"))
        except OSError as e:
            raise ProvisionError(f"{d}: cannot read the {role} role's store credentials ({e})") from e
        if len(access) < 3 or len(secret) < 8:  # MinIO's own limits, said here rather than as its 400
            raise ProvisionError(f"{d}: the {role} role's access key needs >= 3 characters and its secret >= 8")
        out.append(RoleKeys(role, access, secret))
    if len({k.access_key for k in out}) != len(out):
        raise ProvisionError(f"{secrets_dir}: two roles share an access key; each role needs its own")
    return out


def provision(
    admin: Admin,
    keys: Iterable[RoleKeys],
    bucket: str,
    root: str = "",
    *,
    publishing: bool = True,
    state_prefix: str = "scorer",
    root_access_key: str = "",
) -> list[dict[str, Any]]:
    """Create or update each role's policy and user on MinIO; returns one record per role (no secrets)."""
    from minio.error import MinioAdminException

    done = []
    for k in keys:
        if root_access_key and k.access_key == root_access_key:
            raise ProvisionError(f"the {k.role} role's access key is the root user's: give each role its own")
        access = role_access(k.role, publishing=publishing, state_prefix=state_prefix)
        name = policy_name(k.role, bucket, root)
        try:
            admin.policy_add(name, policy=iam_policy(access, bucket, root))
            admin.user_add(k.access_key, k.secret_key)
            try:
                admin.attach_policy([name], user=k.access_key)
                attached = True
            except MinioAdminException as e:
                if _ALREADY_APPLIED not in str(e):
                    raise
                attached = False
        except MinioAdminException as e:
            raise ProvisionError(f"MinIO refused the {k.role} role's policy or user: {e}") from e
        done.append({"role": k.role, "user": k.access_key, "policy": name, "newly_attached": attached,
                     "read": list(access.read), "write": list(access.write)})  # fmt: skip
    return done


def admin_client(endpoint: str, access_key: str, secret_key: str, region: str = "") -> Any:
    """minio.MinioAdmin for `endpoint` (http(s)://host:port) with the root credentials."""
    from minio import MinioAdmin
    from minio.credentials import StaticProvider

    parsed = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
    return MinioAdmin(endpoint=parsed.netloc, credentials=StaticProvider(access_key, secret_key), region=region,
                      secure=parsed.scheme == "https")  # fmt: skip


def make_bucket(endpoint: str, access_key: str, secret_key: str, bucket: str, region: str = "") -> bool:
    """Create `bucket` unless it exists; True when it was created."""
    from minio import Minio

    parsed = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
    client = Minio(parsed.netloc, access_key=access_key, secret_key=secret_key, secure=parsed.scheme == "https",
                   region=region or None)  # fmt: skip
    if client.bucket_exists(bucket):
        return False
    client.make_bucket(bucket)
    return True


def policies_json(bucket: str, root: str = "", *, publishing: bool = True, state_prefix: str = "scorer") -> str:
    """Every role's IAM policy document, as JSON keyed by role (what `limr store policy` prints for AWS)."""
    docs: Mapping[str, Any] = {
        r: iam_policy(role_access(r, publishing=publishing, state_prefix=state_prefix), bucket, root) for r in ROLES
    }
    return json.dumps(docs, indent=2)
