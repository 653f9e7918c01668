"""`limr serve ...`: long-running services. Each service module adds its own subcommand."""

from __future__ import annotations

import importlib

import typer

_SERVICE_MODULES = ("limr.cli.serve_rollout", "limr.cli.serve_services")


def register(app: typer.Typer) -> None:
    serve = typer.Typer(
        help="Run a limr service (rollout on Ray Serve, scorer, curated-dataset API).", no_args_is_help=True
    )
    for name in _SERVICE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue
        module.register(serve)
    app.add_typer(serve, name="serve")
