"""`limr train`: the PPO/GRPO learner (Ray Train + the rollout service), or in-process with --local."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from limr.cli.common import parse_sets


def register(app: typer.Typer) -> None:
    app.command("train")(train)


def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="Learner YAML config (see configs/).")],
    prompts: Annotated[
        str | None,
        typer.Option(help="Prompt pool; overrides data.prompts (e.g. a LIM subset, dataset://NAME@VERSION)."),
    ] = None,
    store: Annotated[str | None, typer.Option(help="Object store URI for events/checkpoints (path or s3://).")] = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="Run id (default: config run.run_id or generated).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run from its newest checkpoint.")] = False,
    local: Annotated[
        bool, typer.Option(help="One process, no Ray: debugging mode (forces rollout backend local).")
    ] = False,
    max_steps: Annotated[int | None, typer.Option(help="Override run.max_steps.")] = None,
    workers: Annotated[int | None, typer.Option(help="Override trainer.num_workers.")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override any field: --set algorithm.kl_coef=0.02 (YAML value).")
    ] = None,
    tracking: Annotated[
        str | None,
        typer.Option(
            "--tracking",
            help="Experiment tracker: mlflow[:URI] (server URL or local file store, ./mlruns by default) or"
            " tensorboard:DIR. Overrides metrics.tracking.",
        ),
    ] = None,
    summary: Annotated[Path | None, typer.Option(help="Write the final metrics as JSON to this file.")] = None,
    log_file: Annotated[
        Path | None, typer.Option("--log-file", help="Ray/Serve/vLLM logs (default: limr-logs/train-RUN.log).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Logs on the terminal instead of the log file.")] = False,
    ignore_plan: Annotated[
        bool, typer.Option("--ignore-plan", help="Start even when `limr plan`'s checks find problems.")
    ] = False,
) -> None:
    """Train a policy with PPO (or GRPO) on a prompt pool, writing reward events for LIM."""

    from limr.console import quiet_terminal
    from limr.learner.config import ConfigError, load_config

    overrides = parse_sets(set_)
    for key, value in (
        ("data.prompts", prompts),
        ("run.store", store),
        ("run.run_id", run_id),
        ("run.max_steps", max_steps),
        ("trainer.num_workers", workers),
        ("metrics.tracking", tracking),
    ):
        if value is not None:
            overrides[key] = value
    if local:
        overrides["rollout.backend"] = "local"
    try:
        cfg = load_config(config, overrides)
        cfg, resume_key = resolve(cfg, resume)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    if not ignore_plan:
        from limr.plan.check import start_check

        problems = start_check(cfg)
        for p in problems:
            typer.echo(f"error: plan: {p}", err=True)
        if problems:
            typer.echo("(limr plan --config ... shows the whole plan; --ignore-plan starts anyway)", err=True)
            raise typer.Exit(2)
    with quiet_terminal(log_file or Path("limr-logs") / f"train-{cfg.run.run_id}.log", verbose=verbose) as term:
        term.echo(f"run {cfg.run.run_id} -> {cfg.run.store}" + (f" (resuming {resume_key})" if resume_key else ""))
        if local:
            from limr.learner.worker import run_local

            result = run_local(cfg, resume_key)
        else:
            from limr.learner.launch import run_with_ray

            result = run_with_ray(cfg, resume_key)
    text = json.dumps({"run_id": cfg.run.run_id, "store": cfg.run.store, **result}, indent=2, sort_keys=True)
    if summary:
        summary.write_text(text + "\n")
    typer.echo(text)


def resolve(cfg, resume: bool):
    """Fill in store, run id and prompts; find the checkpoint to resume from. Returns (cfg, resume_key)."""
    from limr.events.run import list_runs
    from limr.events.schema import run_prefix
    from limr.learner.checkpoint import latest_checkpoint
    from limr.store import default_store_uri, open_store

    run = cfg.run.model_copy()
    run.store = run.store or default_store_uri()
    if "://" not in run.store:  # Ray workers run elsewhere: a relative path must not depend on their cwd
        run.store = os.path.abspath(run.store)
    if not cfg.data.prompts:
        raise ValueError("no prompt pool: give --prompts FILE or data.prompts in the config")
    from limr.data.api_client import api_url
    from limr.data.api_pool import is_api_pool, pin

    api_pool = is_api_pool(cfg.data.prompts)  # dataset://NAME@VERSION or the URL of a version, via the API
    remote_pool = api_pool or cfg.data.prompts.startswith(("s3://", "file://"))  # e.g. a curated dataset version
    if not remote_pool and not Path(cfg.data.prompts).exists():
        raise FileNotFoundError(f"{cfg.data.prompts}: no such prompts file")
    store = open_store(run.store)
    key = None
    if resume:
        if run.run_id is None:  # the newest run of this config that has a checkpoint
            candidates = [r for r in list_runs(store) if r.startswith(f"{cfg.name}-") and latest_checkpoint(store, r)]
            if not candidates:
                raise ValueError(f"--resume: no run of config {cfg.name!r} with a checkpoint in {run.store}")
            run.run_id = sorted(candidates)[-1]
        key = latest_checkpoint(store, run.run_id)
        if key is None:
            raise ValueError(f"--resume: run {run.run_id!r} has no checkpoint in {run.store}")
    elif run.run_id is None:
        run.run_id = f"{cfg.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    elif next(iter(store.list(run_prefix(run.run_id))), None) is not None:
        # Runs are never silently continued (nor mixed with the events of an earlier run of that id).
        raise ValueError(
            f"run {run.run_id!r} already exists in {run.store}: pass --resume to continue it, or a new --run-id"
        )
    if run.output_dir:
        run.output_dir = os.path.abspath(run.output_dir)
    prompts = cfg.data.prompts if remote_pool else os.path.abspath(cfg.data.prompts)
    if api_pool:  # every rank, and a resumed run, reads the same version
        prompts = pin(prompts, cfg.data.datasets_url)
    update = {"prompts": prompts}
    if api_pool:  # Ray workers elsewhere do not see this process's environment: fix the URL in the config
        update["datasets_url"] = api_url(cfg.data.datasets_url)
    data = cfg.data.model_copy(update=update)
    return cfg.model_copy(update={"run": run, "data": data}), key
