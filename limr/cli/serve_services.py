"""`limr serve scorer` and `limr serve datasets`: the data-curation services (see docs/services.md).

Flags override the `LIMR_*` environment; tokens come only from the environment (a Kubernetes Secret),
never from the command line, so they do not show up in process listings.
"""

from __future__ import annotations

import json
import os
from typing import Any

import typer


def parse_policy(text: str) -> dict[str, Any]:
    """A publish policy from JSON (`{"name": ...}`) or `key=value,key=value` (e.g. `name={run}-top,top_k=100`)."""
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise typer.BadParameter(f"policy {text!r}: invalid JSON: {e.msg}") from None
        if not isinstance(value, dict):
            raise typer.BadParameter(f"policy {text!r}: expected a JSON object")
        return value
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, val = part.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"policy {text!r}: {part!r} is not key=value")
        out[key.strip()] = val.strip()
    return out


def _settings(cls: type, overrides: dict[str, Any]):  # noqa: ANN202
    from pydantic import ValidationError

    try:
        return cls(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        lines = [f"  {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()]
        typer.echo("invalid configuration:\n" + "\n".join(lines), err=True)
        raise typer.Exit(2) from None


def register(serve: typer.Typer) -> None:
    @serve.command("scorer")
    def scorer(
        store: str = typer.Option(None, "--store", help="Store URI to watch (env LIMR_STORE)."),
        host: str = typer.Option(None, help="Listen address (env LIMR_HOST, default 127.0.0.1)."),
        port: int = typer.Option(None, help="Port of /healthz /readyz /metrics (env LIMR_PORT, default 8081)."),
        policy: list[str] = typer.Option(  # noqa: B008
            None,
            "--policy",
            help="Publish policy, repeatable: 'name={run}-lim-0.6,threshold=0.6' or JSON. Default: {run}-lim-0.6.",
        ),
        no_publish: bool = typer.Option(False, "--no-publish", help="Only ingest and score; publish nothing."),
        runs: str = typer.Option(None, help="Only runs whose id matches this glob."),
        poll_interval: float = typer.Option(None, help="Seconds between listings when idle."),
        checkpoint_every: int = typer.Option(None, help="Checkpoint after this many objects."),
        checkpoint_min_interval: float = typer.Option(None, help="At most one mid-batch checkpoint per N seconds."),
        rescan_interval: float = typer.Option(None, help="Seconds between full re-listings of a run."),
        notifications: str = typer.Option(None, help="auto (MinIO bucket notifications if offered) or off."),
        state_prefix: str = typer.Option(None, help="Key prefix of the scorer's state (default 'scorer')."),
        correct: str = typer.Option(
            None,
            "--correct",
            help="Which samples are correct, e.g. 'reward >= 0.5', 'acc' (env LIMR_CORRECT; default: runs' flags).",
        ),
    ) -> None:
        """Ingest reward events as training writes them; rescore with LIM and publish curated datasets."""
        import logging

        import uvicorn

        from services.scorer.config import ScorerSettings
        from services.scorer.main import create_app

        policies: Any = None
        if no_publish:
            policies = ()
        elif policy:
            policies = tuple(parse_policy(p) for p in policy)
        settings = _settings(
            ScorerSettings,
            {
                "store": store,
                "host": host,
                "port": port,
                "policies": policies,
                "runs": runs,
                "poll_interval_s": poll_interval,
                "checkpoint_every": checkpoint_every,
                "checkpoint_min_interval_s": checkpoint_min_interval,
                "rescan_interval_s": rescan_interval,
                "notifications": notifications,
                "state_prefix": state_prefix,
                "correct": correct,
            },
        )
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")

    @serve.command("datasets")
    def datasets(
        store: str = typer.Option(None, "--store", help="Store URI (env LIMR_STORE)."),
        host: str = typer.Option(None, help="Listen address (env LIMR_HOST, default 127.0.0.1)."),
        port: int = typer.Option(None, help="Port (env LIMR_PORT, default 8080)."),
        state_prefix: str = typer.Option(None, help="Key prefix of the scorer's state (default 'scorer')."),
        workers: int = typer.Option(1, min=1, max=64, help="uvicorn worker processes (each caches on its own)."),
    ) -> None:
        """Serve runs, scores and curated datasets over HTTP (OpenAPI at /docs). Writes need LIMR_API_TOKEN."""
        import uvicorn

        from services.datasets.config import DatasetsSettings
        from services.datasets.main import create_app

        settings = _settings(
            DatasetsSettings, {"store": store, "host": host, "port": port, "state_prefix": state_prefix}
        )
        if workers == 1:
            uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
            return
        # Worker processes build their settings from the environment: hand them what the flags resolved.
        os.environ.update({"LIMR_STORE": settings.store, "LIMR_STATE_PREFIX": settings.state_prefix})
        uvicorn.run(
            "services.datasets.main:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level="warning",
        )
