"""`limr demo`: synthetic reward events -> store -> LIM scores -> selection -> summary table and plot.

Until the training pipeline runs end to end this is limr's main job; it needs no server, GPU or model.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer


def demo_cmd(
    store: Annotated[
        str | None, typer.Option("--store", help="Store URI (default: ./limr-data or $LIMR_STORE).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Directory for scores, selection, summary and plot.")] = Path(
        "out/demo"
    ),
    run: Annotated[str | None, typer.Option("--run", help="Run id (default: demo-<UTC timestamp>).")] = None,
    prompts: Annotated[int, typer.Option("--prompts", min=1, help="Synthetic prompts.")] = 2000,
    epochs: Annotated[int, typer.Option("--epochs", min=2, help="Epochs over the prompt pool.")] = 12,
    samples: Annotated[int, typer.Option("--samples", min=1, help="Samples per prompt per epoch.")] = 8,
    threshold: Annotated[float, typer.Option("--threshold", help="LIM selection threshold.")] = 0.6,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic run.")] = 0,
) -> None:
    """Write a synthetic run, score it with LIM, select, print a summary and plot trajectories."""
    from limr.cli.lim import CliError, user_errors, write_atomic

    with user_errors():
        from limr.algo.selection import Criterion, select_lim
        from limr.demo import plot_trajectories, report, write_synthetic_run
        from limr.scoring import score_run
        from limr.store import open_store

        crit = Criterion(threshold=threshold)
        st = open_store(store)
        run_id = run or f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        try:
            syn = write_synthetic_run(st, run_id, num_prompts=prompts, epochs=epochs, samples=samples, seed=seed)
        except FileExistsError as e:
            raise CliError(str(e)) from None
        typer.echo(f"wrote synthetic run {run_id} to {st.uri}: {syn.events} events, {len(syn.keys)} objects")
        result = score_run(st, run_id)
        rows = select_lim(result.scores, crit)
        selected = [result.prompt_ids[i] for i in rows]
        text, summary = report(
            result, selected, syn.profiles, title=f"LIM selection of run {run_id} ({crit.describe()})"
        )
        typer.echo(text.rstrip())
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(
            out / "scores.jsonl",
            (
                json.dumps({"prompt_id": pid, "score": float(s), "trajectory": [float(x) for x in t]}) + "\n"
                for pid, s, t in zip(result.prompt_ids, result.scores, result.trajectories, strict=True)
            ),
        )
        write_atomic(
            out / "selected.jsonl",
            (json.dumps({"prompt_id": p, "prompt": result.prompts.get(p)}) + "\n" for p in selected),
        )
        summary.update(run_id=run_id, store=st.uri, threshold=threshold)
        write_atomic(out / "summary.json", [json.dumps(summary, indent=2)])
        png = plot_trajectories(result, out / "lim_trajectories.png")
        typer.echo(f"selected {len(selected)} of {len(result)} scored prompts; wrote {out}/{{scores,selected}}.jsonl,")
        typer.echo(f"  {out / 'summary.json'} and the plot {png}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
