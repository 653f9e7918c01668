"""`limr serve rollout --model DIR`: the rollout service (vLLM on Ray Serve) from the command line.

Attaches to the Ray cluster in RAY_ADDRESS when set, else starts an embedded local one. Settings come from an
optional YAML/JSON file of `RolloutArgs` fields, then the flags. The admin token for POST /v1/weights comes
only from the environment (LIMR_ROLLOUT_ADMIN_TOKEN), so it never shows in process listings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer


def build_args(config: Path | None, overrides: dict[str, Any], engine_overrides: dict[str, Any]):  # noqa: ANN201
    """RolloutArgs from a file plus flags (flags win; None means 'not given'). Exits 2 naming bad fields."""
    from pydantic import ValidationError

    from limr.rollout.config import RolloutArgs

    data: dict[str, Any] = {}
    if config is not None:
        import yaml

        try:
            data = yaml.safe_load(config.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            typer.echo(f"cannot read config {config}: {e}", err=True)
            raise typer.Exit(2) from None
        if not isinstance(data, dict):
            typer.echo(f"config {config}: expected a mapping of RolloutArgs fields", err=True)
            raise typer.Exit(2)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        elif value is not None:
            data[key] = value
    engine = dict(data.get("engine") or {})
    engine.update({k: v for k, v in engine_overrides.items() if v is not None})
    data["engine"] = engine
    try:
        return RolloutArgs.model_validate(data)
    except ValidationError as e:
        lines = [f"  {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()]
        typer.echo("invalid rollout configuration:\n" + "\n".join(lines), err=True)
        raise typer.Exit(2) from None


def register(serve: typer.Typer) -> None:
    @serve.command("rollout")
    def rollout(
        model: str = typer.Option(None, "--model", help="HuggingFace model directory (safetensors)."),
        config: Path = typer.Option(None, "--config", exists=True, dir_okay=False, help="YAML/JSON RolloutArgs."),  # noqa: B008
        replicas: int = typer.Option(None, "--replicas", help="Replicas (fixed)."),
        min_replicas: int = typer.Option(None, "--min-replicas", help="Autoscaling lower bound."),
        max_replicas: int = typer.Option(None, "--max-replicas", help="Autoscaling upper bound."),
        num_cpus: float = typer.Option(None, "--num-cpus", help="Ray CPUs per replica."),
        num_gpus: float = typer.Option(None, "--num-gpus", help="Ray GPUs per replica."),
        dtype: str = typer.Option(None, help="auto | float32 | bfloat16 | float16."),
        max_model_len: int = typer.Option(None, "--max-model-len", help="Longest prompt + completion."),
        kv_cache_gib: float = typer.Option(None, "--kv-cache-gib", help="KV cache per engine, GiB."),
        gpu_memory_utilization: float = typer.Option(None, "--gpu-memory-utilization"),
        tensor_parallel_size: int = typer.Option(None, "--tensor-parallel-size"),
        max_tokens: int = typer.Option(None, "--max-tokens", help="Largest max_tokens a request may ask for."),
        name: str = typer.Option("rollout", help="Serve application name."),
        route_prefix: str = typer.Option("/", "--route-prefix", help="HTTP route prefix of the application."),
        host: str = typer.Option("127.0.0.1", help="HTTP listen address of Serve's proxy."),
        port: int = typer.Option(8000, help="HTTP port of Serve's proxy."),
        ray_cpus: int = typer.Option(None, "--ray-cpus", help="CPUs of the embedded Ray (no RAY_ADDRESS)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the validated RolloutArgs as JSON and exit."),
        log_file: Path = typer.Option(  # noqa: B008
            None, "--log-file", help="Ray/Serve/vLLM logs (default: limr-logs/serve-rollout-NAME.log)."
        ),
        verbose: bool = typer.Option(False, "--verbose", help="Logs on the terminal instead of the log file."),
    ) -> None:
        """Serve rollouts: POST /v1/generate, /v1/completions, /v1/weights; GET /v1/models, /metrics, /readyz."""
        from limr.rollout.config import ADMIN_TOKEN_ENV
        from limr.secrets import env_secret

        overrides: dict[str, Any] = {
            "num_replicas": replicas,
            "autoscaling_min_replicas": min_replicas,
            "autoscaling_max_replicas": max_replicas,
            "num_cpus": num_cpus,
            "num_gpus": num_gpus,
            "admin_token": env_secret(ADMIN_TOKEN_ENV),
        }
        if max_tokens is not None:
            overrides["limits"] = {"max_tokens": max_tokens}
        engine = {
            "model": model,
            "dtype": dtype,
            "max_model_len": max_model_len,
            "kv_cache_gib": kv_cache_gib,
            "gpu_memory_utilization": gpu_memory_utilization,
            "tensor_parallel_size": tensor_parallel_size,
        }
        args = build_args(config, overrides, engine)
        if not Path(args.engine.model, "config.json").is_file():
            typer.echo(f"--model {args.engine.model}: not a HuggingFace model directory (no config.json)", err=True)
            raise typer.Exit(2)
        if dry_run:
            shown = args.model_dump(mode="json")
            shown["admin_token"] = "***" if args.admin_token else None
            typer.echo(json.dumps(shown, indent=2))
            return
        from limr.console import quiet_terminal

        with quiet_terminal(log_file or Path("limr-logs") / f"serve-rollout-{name}.log", verbose=verbose) as term:
            _run(term, args, name, route_prefix, host, port, ray_cpus)


def _run(term, args, name: str, route_prefix: str, host: str, port: int, ray_cpus: int | None) -> None:  # noqa: ANN001
    import threading

    import ray
    from ray import serve

    from limr.console import progress
    from limr.rollout.client import deploy_local

    address = os.environ.get("RAY_ADDRESS")
    with progress(f"starting rollout app {name!r} on Ray {'at ' + address if address else '(embedded)'}") as bar:
        if address:
            ray.init(address=address)
        else:
            # address="local": a new embedded instance even when another Ray runs on this machine (ray.init()
            # alone would join that one; limr.learner.launch does the same)
            ray.init(address="local", num_cpus=ray_cpus, include_dashboard=False)
        dep = deploy_local(args, name=name, route_prefix=route_prefix, http_host=host, http_port=port, timeout_s=600)
        bar.update(completed=1, total=1)
    term.echo(f"ready: {dep.http_client.base_url} (model {args.engine.name}); Ctrl-C stops")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        serve.delete(name)
        if not address:
            serve.shutdown()
