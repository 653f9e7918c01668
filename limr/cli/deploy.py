"""`limr deploy up|down|status`: the chart's pods as Docker containers on this machine (docs/deploy.md)."""

from __future__ import annotations

import json
import subprocess
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


def register(app: typer.Typer) -> None:
    deploy = typer.Typer(
        help="Run the Helm chart's pods as Docker containers here: a Ray head and workers, the rollout app, "
        "scorer, dataset API, S3 and Prometheus (`make images` first; docs/deploy.md).",
        no_args_is_help=True,
    )

    @deploy.command("up")
    def up_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False) -> None:
        """Start (or replace) the deployment and wait until every part answers."""
        from limr.deploy.docker import DeployError
        from limr.deploy.up import Settings, up

        try:
            summary = up(Settings())
        except DeployError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from None
        if as_json:
            typer.echo(json.dumps(summary))
            return
        table = Table(title=f"limr deployment (up in {summary['seconds']} s)")
        table.add_column("what")
        table.add_column("where")
        for key in ("api", "prometheus", "ray"):
            table.add_row(key, summary[key])
        Console().print(table)
        typer.echo(
            "submit the training job:\n"
            f"  RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH={summary['ray_token_file']} \\\n"
            f"  ray job submit --address {summary['ray']} -- {summary['job']}"
        )

    @deploy.command("down")
    def down_cmd(
        volumes: Annotated[bool, typer.Option("--volumes", help="Also delete S3 data, models and secrets.")] = False,
    ) -> None:
        """Remove the deployment's containers and network."""
        from limr.deploy.up import Settings, down

        removed = down(Settings(), volumes=volumes)
        typer.echo(f"removed {len(removed)} containers" + (" and the deployment's data" if volumes else ""))

    @deploy.command("status")
    def status_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
        """The deployment's containers with their state and health."""
        from limr.deploy.docker import LABEL

        fmt = "{{.Names}}\t{{.Status}}\t{{.Image}}"
        out = subprocess.run(["docker", "ps", "-a", "--filter", f"label={LABEL}", "--format", fmt],
                             capture_output=True, text=True, check=False).stdout  # fmt: skip
        rows = [line.split("\t") for line in sorted(out.splitlines())]
        if as_json:
            typer.echo(json.dumps([dict(zip(("name", "status", "image"), r, strict=True)) for r in rows]))
            return
        table = Table(title="limr deployment")
        for col in ("container", "status", "image"):
            table.add_column(col)
        for r in rows:
            table.add_row(*r)
        Console().print(table)

    app.add_typer(deploy, name="deploy")
