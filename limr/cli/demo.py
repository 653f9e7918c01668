"""`limr demo`: train a tiny model with GRPO -> reward events -> LIM scores -> selection -> summary and plots.

The default runs the study's design (docs/experiment.md) at a smaller size: the study's SFT warm start of a tiny
model, a pool of solved, learnable and out-of-reach additions, GRPO with the real learner (Ray Train + the vLLM
rollout service, or `--local`); it then shows which prompts LIM keeps per skill and why. `--synthetic-only`
skips training and writes simulated reward events instead (seconds; no model, server or GPU).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from limr.console import Terminal
    from limr.store import ObjectStore


def demo_cmd(
    store: Annotated[
        str | None, typer.Option("--store", help="Store URI (default: ./limr-data or $LIMR_STORE).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Directory for scores, selection, summary and plot.")] = Path(
        "out/demo"
    ),
    run: Annotated[str | None, typer.Option("--run", help="Run id (default: demo-<UTC timestamp>).")] = None,
    prompts: Annotated[
        int | None, typer.Option("--prompts", min=8, help="Prompts in the pool (default 100; synthetic-only 2000).")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=2, help="Epochs over the pool (default 5; synthetic-only 12).")
    ] = None,
    samples: Annotated[
        int | None, typer.Option("--samples", min=2, help="Samples per prompt per epoch (default 8).")
    ] = None,
    eval_prompts: Annotated[
        int | None, typer.Option("--eval-prompts", min=0, help="Held-out problems, greedy at start and end (200).")
    ] = None,
    rollout_batch: Annotated[
        int | None, typer.Option("--rollout-batch", min=1, help="Prompts per RL step (default 20).")
    ] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="LIM selection threshold.")] = 0.6,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the run (the warm start and pool are the study's; synthetic: all).")
    ] = 0,
    synthetic_only: Annotated[
        bool, typer.Option("--synthetic-only", help="Simulated reward events instead of training a model.")
    ] = False,
    local: Annotated[bool, typer.Option("--local", help="Train in one process (HF sampling), no Ray.")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Ray Train workers.")] = 1,
    sft_steps: Annotated[
        int | None, typer.Option("--sft-steps", min=1, help="SFT warm-start steps (940, the study's).")
    ] = None,
    model: Annotated[
        Path | None, typer.Option("--model", help="Train this warm-started model (skips init-tiny and SFT).")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Ray/Serve/vLLM logs on the terminal, not in a file.")
    ] = False,
) -> None:
    """Train (or simulate) a run, score it with LIM, select, show what LIM kept per skill and why, and plot it."""
    from limr.cli.common import user_errors
    from limr.console import quiet_terminal
    from limr.store import open_store

    with user_errors(), quiet_terminal(out / "limr-demo.log", verbose=verbose) as term:
        st = open_store(store)
        run_id = run or f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        _experiment_note(term, out)  # first, so the terminal ends with this run's result
        if synthetic_only:
            groups, records, training = _simulate(term, st, run_id, prompts, epochs, samples, seed)
        else:
            given = {"prompts": prompts, "epochs": epochs, "samples": samples, "sft_steps": sft_steps}
            given |= {"eval_prompts": eval_prompts, "rollout_batch": rollout_batch}
            opts = {"seed": seed, "local": local, "workers": workers, "model": model}
            opts |= {k: v for k, v in given.items() if v is not None}  # else the measured defaults
            groups, records, training = _train(term, out, st.uri, run_id, opts)
        _select_and_report(term, st, run_id, threshold, out, groups, records, training)


def _simulate(
    term: Terminal,
    st: ObjectStore,
    run_id: str,
    prompts: int | None,
    epochs: int | None,
    samples: int | None,
    seed: int,
) -> tuple[dict[str, str], dict[str, str], dict[str, Any]]:
    """Simulated reward events (no model): returns (prompt groups, pool records, training metrics)."""
    from limr.cli.common import CliError
    from limr.demo import write_synthetic_run

    try:
        syn = write_synthetic_run(
            st, run_id, num_prompts=prompts or 2000, epochs=epochs or 12, samples=samples or 8, seed=seed
        )
    except FileExistsError as e:
        raise CliError(str(e)) from None
    term.echo(f"wrote synthetic run {run_id} to {st.uri}: {syn.events} events, {len(syn.keys)} objects")
    return syn.profiles, {}, {}


def _train(
    term: Terminal, out: Path, store_uri: str, run_id: str, opts: dict[str, Any]
) -> tuple[dict[str, str], dict[str, str], dict[str, Any]]:
    """Warm-start and train the tiny model: returns (prompt groups, pool records by id, training metrics)."""
    from limr.cli.common import CliError
    from limr.demo.training import DemoTrainingOptions, train_demo_run

    options = DemoTrainingOptions(**opts)
    if options.model is not None and not (options.model / "config.json").is_file():
        raise CliError(f"--model {options.model}: not a HuggingFace model directory (no config.json)")
    trained = train_demo_run(out, store_uri, run_id, options)
    records = {json.loads(line)["id"]: line for line in trained.pool.read_text().splitlines() if line.strip()}
    training: dict[str, Any] = {k: v for k, v in trained.metrics.items() if k.startswith(("eval/", "train/"))}
    training["seconds"] = trained.seconds
    took = ", ".join(f"{k} {v:.0f} s" for k, v in trained.seconds.items())
    term.echo(f"trained run {run_id} in {store_uri} ({took})")
    term.echo(_before_after(training, options.eval_prompts))
    return trained.groups, records, training


def _select_and_report(
    term: Terminal,
    st: ObjectStore,
    run_id: str,
    threshold: float,
    out: Path,
    groups: dict[str, str],
    records: dict[str, str],
    training: dict[str, Any],
) -> None:
    """Score the run, select by LIM, write scores/selection/summary/plot under `out`, print the table."""
    import numpy as np

    from limr.algo.selection import Criterion, select_lim
    from limr.cli.common import write_atomic
    from limr.demo import plot_trajectories, report
    from limr.scoring import score_run
    from limr.view.plots import plot_score_histogram

    crit = Criterion(threshold=threshold)
    result = score_run(st, run_id)
    rows = select_lim(result.scores, crit)
    selected = [result.prompt_ids[i] for i in rows]
    title = f"LIM selection of run {run_id} ({crit.describe()})"
    text, summary = report(result, selected, groups, title=title, threshold=threshold)
    term.echo(text.rstrip())
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
        (
            records[p] + "\n" if p in records else json.dumps({"prompt_id": p, "prompt": result.prompts.get(p)}) + "\n"
            for p in selected
        ),
    )
    summary.update(run_id=run_id, store=st.uri, threshold=threshold, training=training or None)
    write_atomic(out / "summary.json", [json.dumps(summary, indent=2)])
    png = plot_trajectories(result, out / "lim_trajectories.png")
    skills = [groups.get(pid, "all") for pid in result.prompt_ids]
    hist = plot_score_histogram(
        np.asarray(result.scores), skills, threshold, out / "score_histogram.png", what=f"run {run_id}"
    )
    term.echo(f"selected {len(selected)} of {len(result)} scored prompts; wrote {out}/{{scores,selected}}.jsonl,")
    term.echo(f"  {out / 'summary.json'} and the plots {png}, {hist.name}")


def _experiment_note(term: Terminal, out: Path) -> None:
    """The demo's opening words: what the LIMR experiment (FULL vs LIM vs RAND vs dynamic sampling) found,
    which the small run that follows does not show (it ends with its own result)."""
    from limr.experiment.headline import headline, load_results

    found = load_results(out.parent / "experiment" / "results.json")
    if found is not None:
        results, origin = found
        term.echo(f"The LIMR experiment ({origin}): {headline(results)}.")
    term.echo(
        "Run it yourself: `limr experiment` (the whole study, docs/experiment.md) or `limr experiment --quick` "
        "(the same pipeline in minutes)."
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)


def _before_after(metrics: dict, eval_prompts: int) -> str:
    """One line a reader checks first: did training reward and held-out accuracy rise over the run?"""

    def pair(key: str, pct: bool) -> str:
        a, b = metrics.get(f"{key}_initial"), metrics.get(key)
        if a is None or b is None:
            return "n/a"
        return f"{100 * a:.1f}% -> {100 * b:.1f}%" if pct else f"{a:+.3f} -> {b:+.3f}"

    return (
        f"training reward {pair('train/reward_mean', False)} (first -> last step), training accuracy "
        f"{pair('train/accuracy', True)}, held-out greedy accuracy {pair('eval/accuracy', True)} "
        f"({eval_prompts} problems)"
    )
