"""Least privilege in the object store: what each role may read and write, as key prefixes under the store's root.

One place for the rules, rendered for each store's access control: an AWS IAM / MinIO policy document
(`iam_policy`) and SeaweedFS identity actions (`seaweed_actions`, what the suite runs with).

- learner: writes `runs/` (events, run.json, checkpoints, the `_FINISHED` marker); reads `runs/` (resume);
- scorer: reads `runs/` and `datasets/`; writes `datasets/` (publishing) and its state under `scorer/`;
- api (the dataset service): reads everything it serves; writes `datasets/` only when publishing is on;
- rollout (the RayService's pods): reads `runs/` (the weight versions POST /v1/weights loads); writes nothing.

Nobody but the learner can alter a run's events or checkpoints (DCP metadata included: limr.learner trusts
only what the learner's credentials wrote), and the Ingress-exposed API cannot touch `runs/` at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from limr.curation.publish import DATASETS_PREFIX
from limr.events.schema import RUNS_PREFIX

Role = Literal["learner", "scorer", "api", "rollout"]
ROLES: tuple[Role, ...] = ("learner", "scorer", "api", "rollout")


@dataclass(frozen=True)
class Access:
    read: tuple[str, ...]  # key prefixes (under the store's root) the role may list and get
    write: tuple[str, ...]  # key prefixes it may put and delete


def role_access(role: Role, publishing: bool = False, state_prefix: str = "scorer") -> Access:
    """The prefixes `role` needs. `publishing`: the API's writes are on (LIMR_API_TOKEN set)."""
    state = state_prefix.strip("/") + "/"
    if role == "learner":
        return Access(read=(RUNS_PREFIX,), write=(RUNS_PREFIX,))
    if role == "scorer":
        return Access(read=(RUNS_PREFIX, DATASETS_PREFIX, state), write=(DATASETS_PREFIX, state))
    if role == "api":
        return Access(read=(RUNS_PREFIX, DATASETS_PREFIX, state), write=(DATASETS_PREFIX,) if publishing else ())
    if role == "rollout":
        return Access(read=(RUNS_PREFIX,), write=())
    raise ValueError(f"unknown store role {role!r} ({', '.join(ROLES)})")


def _under(root: str, prefix: str) -> str:
    return f"{root.strip('/')}/{prefix}" if root.strip("/") else prefix


def iam_policy(access: Access, bucket: str, root: str = "") -> dict[str, Any]:
    """An S3 IAM policy document (AWS, MinIO `mc admin policy create`) granting exactly `access` in
    `s3://bucket/root/`."""
    statements: list[dict[str, Any]] = [
        {
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{bucket}"],
            "Condition": {"StringLike": {"s3:prefix": [f"{_under(root, p)}*" for p in access.read]}},
        },
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{bucket}/{_under(root, p)}*" for p in access.read],
        },
    ]
    if access.write:
        statements.append(
            {
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                "Resource": [f"arn:aws:s3:::{bucket}/{_under(root, p)}*" for p in access.write],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def seaweed_actions(access: Access, bucket: str, root: str = "") -> list[str]:
    """SeaweedFS `-s3.config` identity actions for `access` (it matches `Action:bucket/key*` as a key prefix;
    reads are granted on the bucket, as SeaweedFS lists a bucket as a whole)."""
    actions = [f"Read:{bucket}", f"List:{bucket}"]
    actions += [f"Write:{bucket}/{_under(root, p)}*" for p in access.write]
    return actions
