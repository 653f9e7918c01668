"""`limr plan`: steps, samples, store bytes, memory per GPU and time of a config, and what makes it not fit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from limr.cli.common import parse_sets

if TYPE_CHECKING:
    from limr.plan.check import Plan


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_cmd)


def plan_cmd(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Learner or experiment config, or the chart's values file.")
    ],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a learner field: --set run.epochs=3 (YAML value).")
    ] = None,
    prompts: Annotated[str | None, typer.Option(help="Prompt pool file; overrides data.prompts.")] = None,
    pool_size: Annotated[int | None, typer.Option(help="Prompts in the pool, when the file is not here.")] = None,
    gpus: Annotated[float | None, typer.Option(help="GPUs of the cluster (node pool) the run starts in.")] = None,
    store_size: Annotated[str | None, typer.Option(help="Store volume, e.g. 500Gi (MinIO's PVC).")] = None,
    deadline: Annotated[float | None, typer.Option(help="RayJob deadline in seconds (activeDeadlineSeconds).")] = None,
    rayjob: Annotated[
        Path | None, typer.Option(help="A RayJob manifest: its activeDeadlineSeconds and GPUs are the limits.")
    ] = None,
    hardware: Annotated[str | None, typer.Option(help="h100 or cpu (default: h100 when trainer.use_gpu).")] = None,
    mean_response: Annotated[
        int | None, typer.Option(help="Mean response tokens (default: 26% of max_new_tokens).")
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="An experiment config's quick variant.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """What a run costs and whether it fits, before anything starts; exits 2 naming each problem."""
    from limr.plan.check import Limits
    from limr.plan.estimate import HARDWARE, Assumptions
    from limr.plan.sources import PlanSourceError, plan_file, quantity_bytes, rayjob_limits

    try:
        limits = rayjob_limits(rayjob) if rayjob else Limits()
        if gpus is not None:
            limits.gpus = gpus
        if store_size is not None:
            limits.store_bytes = quantity_bytes(store_size)
        if deadline is not None:
            limits.deadline_s = deadline
        if hardware is not None:
            if hardware not in HARDWARE:
                raise PlanSourceError(f"--hardware {hardware!r}: one of {', '.join(HARDWARE)}")
            limits.hardware = HARDWARE[hardware]
        plan = plan_file(config, parse_sets(set_), prompts, pool_size, limits, Assumptions(None, mean_response), quick)
    except (PlanSourceError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    if json_out:
        typer.echo(json.dumps(plan.as_dict(), indent=2, sort_keys=True))
    else:
        from rich.console import Console

        Console(width=119).print(render(plan))
    if plan.problems:
        raise typer.Exit(2)


def render(plan: Plan):
    """The plan as rich tables: the run, memory per GPU, time, then problems and notes."""
    from rich.console import Group
    from rich.table import Table

    parts: list = []
    est, cfg = plan.estimate, plan.config
    t = Table(title=f"plan: {plan.source} ({plan.kind}, {plan.runs} run(s), {plan.hardware.name})", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    if plan.shape is not None:
        t.add_row("actor / critic parameters", f"{plan.shape.causal_lm_params:,} / {plan.shape.critic_params:,}")
    if est is not None and cfg is not None:
        d = est.derived
        t.add_row("pool / prompts per step", f"{d.pool_size:,} / {cfg.batch.rollout_batch_size:,}")
        t.add_row("steps per epoch x epochs -> steps", f"{d.steps_per_epoch} x {cfg.run.epochs} -> {d.total_steps}")
        t.add_row("optimizer steps (per step, total)", f"{d.optimizer_steps_per_step}, {d.total_optimizer_steps:,}")
        t.add_row("rollout samples", f"{est.samples:,}")
        t.add_row("token upper bound", f"{est.token_upper_bound:,}")
        t.add_row("GPUs: learner + rollout", f"{est.learner_gpus} + {est.rollout_gpus:g}")
        if est.checkpoint_bytes is not None:
            t.add_row("bytes per checkpoint", _gb(est.checkpoint_bytes))
            t.add_row(
                f"checkpoints written / kept (keep_checkpoints {cfg.run.keep_checkpoints})",
                f"{est.checkpoints_written} / {min(est.checkpoints_written, cfg.run.keep_checkpoints or 10**9)}",
            )
            t.add_row("peak store bytes (one run)", _gb(est.peak_store_bytes or 0))
    parts.append(t)
    if est is not None and est.memory is not None and cfg is not None:
        m = est.memory
        per = "GPU" if cfg.trainer.use_gpu else "CPU worker"
        mt = Table(title=f"memory per {per}, GiB ({cfg.trainer.strategy}, {cfg.model.dtype} compute, fp32 masters)")
        for h in ("actor state", "critic state", "reference", "update transient", "overhead", "learner peak"):
            mt.add_column(h, justify="right")
        mt.add_column("vLLM budget / KV (full sequences)", justify="right")
        vllm = "-"
        if m.vllm_budget is not None:
            vllm = f"{m.vllm_budget:.1f} / {m.vllm_kv_cache:.1f} ({m.vllm_full_sequences})"
        mt.add_row(*(f"{x:.2f}" for x in (m.actor_state, m.critic_state, m.reference, m.transient, m.overhead,
                                          m.learner_peak)), vllm)  # fmt: skip
        parts.append(mt)
    if est is not None and est.step_seconds:
        tt = Table(title="time (an estimate: limr.plan.estimate's model, docs/scale.md)")
        tt.add_column("phase")
        tt.add_column("seconds per step", justify="right")
        for phase, s in est.step_seconds.items():
            tt.add_row(phase, f"{s:,.0f}")
        tt.add_row("step", f"{sum(est.step_seconds.values()):,.0f}")
        tt.add_row("one run", _dur(est.run_seconds or 0))
        tt.add_row(f"all {plan.runs} run(s)", _dur(plan.total_seconds or 0))
        if est.gpu_hours is not None:
            tt.add_row("GPU-hours", f"{est.gpu_hours * plan.runs:,.0f}")
        parts.append(tt)
    parts += [f"[red]problem[/red]: {p}" for p in plan.problems] or ["no problems found"]
    parts += [f"note: {n}" for n in plan.notes]
    return Group(*parts)


def _gb(n: int) -> str:
    return f"{n / 1e9:,.1f} GB"


def _dur(s: float) -> str:
    return f"{s / 3600:,.1f} h" if s < 3 * 86400 else f"{s / 86400:,.1f} days"
