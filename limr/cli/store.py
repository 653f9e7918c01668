"""`limr store policy|provision`: least privilege in the object store, one key pair per role (docs/services.md).

`policy` prints the IAM policy documents of the roles (for AWS IAM users or roles, or any S3 with IAM policies);
`provision` is what the chart's store-setup Job runs against its MinIO: the bucket, a user per role and its policy.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from limr.cli.common import JsonOpt, print_result, rows_table

group = typer.Typer(help="Per-role store credentials: IAM policies and MinIO provisioning.", no_args_is_help=True)

BucketOpt = Annotated[str, typer.Option(help="Bucket of the store (s3://BUCKET/PREFIX).")]
PrefixOpt = Annotated[str, typer.Option(help="Key prefix of the store inside the bucket.")]
PublishingOpt = Annotated[
    bool, typer.Option(help="The dataset API publishes (its writer token is set): it may write datasets/.")
]
StateOpt = Annotated[str, typer.Option(help="The scorer's state prefix (its settings' state_prefix).")]


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="store")


@group.command("policy")
def policy(
    bucket: BucketOpt, prefix: PrefixOpt = "", publishing: PublishingOpt = True, state_prefix: StateOpt = "scorer"
) -> None:
    """Each role's IAM policy document (JSON keyed by role): attach one to each role's IAM user or role."""
    from limr.curation.provision import policies_json

    typer.echo(policies_json(bucket, prefix, publishing=publishing, state_prefix=state_prefix))


@group.command("provision")
def provision_cmd(
    secrets_dir: Annotated[
        Path, typer.Option(help="Holds store-<role>/access-key-id and secret-access-key for every role.")
    ] = Path("/var/run/secrets/limr"),
    publishing: PublishingOpt = True,
    state_prefix: StateOpt = "scorer",
    wait_s: Annotated[float, typer.Option(help="How long to wait for MinIO to answer.")] = 600.0,
    as_json: JsonOpt = False,
) -> None:
    """Create the bucket and a MinIO user per role with its policy, idempotently. The store is LIMR_STORE at
    LIMR_S3_ENDPOINT; MinIO's root credentials come from LIMR_S3_ACCESS_KEY(_FILE)/LIMR_S3_SECRET_KEY(_FILE)."""
    import os

    from limr.curation.provision import ProvisionError, admin_client, make_bucket, provision, read_role_keys
    from limr.secrets import env_secret

    store, endpoint = os.environ.get("LIMR_STORE", ""), os.environ.get("LIMR_S3_ENDPOINT", "")
    root_key, root_secret = env_secret("LIMR_S3_ACCESS_KEY"), env_secret("LIMR_S3_SECRET_KEY")
    if not store.startswith("s3://") or not endpoint or not root_key or not root_secret:
        typer.echo("error: set LIMR_STORE=s3://..., LIMR_S3_ENDPOINT and the root credentials", err=True)
        raise typer.Exit(2)
    bucket, _, prefix = store.removeprefix("s3://").partition("/")
    region = os.environ.get("LIMR_S3_REGION", "")
    try:
        keys = read_role_keys(secrets_dir)
        deadline = time.monotonic() + wait_s
        while True:  # MinIO may still be starting (the Job runs beside it)
            try:
                created = make_bucket(endpoint, root_key, root_secret, bucket, region)
                break
            except Exception as e:  # noqa: BLE001 - any failure to answer: retry until the deadline
                if time.monotonic() > deadline:
                    raise ProvisionError(f"{endpoint} did not answer in {wait_s:.0f} s: {e}") from e
                time.sleep(2.0)
        admin = admin_client(endpoint, root_key, root_secret, region)
        rows = provision(admin, keys, bucket, prefix, publishing=publishing, state_prefix=state_prefix,
                         root_access_key=root_key)  # fmt: skip
    except ProvisionError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    result = {"bucket": bucket, "bucket_created": created, "roles": rows}
    shown = [{**r, "write": " ".join(r["write"]) or "-"} for r in rows]
    columns = {"role": "ROLE", "user": "USER", "policy": "POLICY", "write": "WRITES"}
    print_result(result if as_json else shown, as_json, lambda v: rows_table(v, columns, title=f"bucket {bucket}"))
