"""`limr import FORMAT PATH`: a trainer's rollout dumps (verl, TRL, OpenRLHF, NeMo-RL, AReaL) as a run of
reward events, imported once or followed live (`--follow`); `limr import-openrlhf` is an alias."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from limr.cli.common import CliError, StoreOpt, user_errors
from limr.console import progress

CorrectOpt = Annotated[
    str | None,
    typer.Option(
        "--correct",
        help="Which samples are correct: FIELD or FIELD OP NUMBER, e.g. 'reward == 1' (default), 'acc',"
        " 'score >= 0.5', 'accuracy_reward == 1' (a TRL reward column).",
    ),
]
FORMAT_NAMES = ("openrlhf", "verl", "trl", "nemo-rl", "areal")


def import_cmd(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="openrlhf | verl | trl | nemo-rl | areal")],
    path: Annotated[Path, typer.Argument(help="The dump directory (verl rollout_data_dir, TRL output_dir, ...).")],
    run: Annotated[str, typer.Option("--run", help="Id of the run to write.")],
    steps_per_epoch: Annotated[
        int | None,
        typer.Option(
            "--steps-per-epoch",
            min=1,
            help="Trainer steps per epoch (default: inferred, the first step repeating a prompt starts epoch 2).",
        ),
    ] = None,
    prompts: Annotated[
        Path | None,
        typer.Option("--prompts", help="The training pool: dumped prompts are mapped to its ids and answers."),
    ] = None,
    correct: CorrectOpt = None,
    store: StoreOpt = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            help="Tail a live dump directory: write each epoch once complete, until the file LIMR_FINISHED"
            " appears in it (or --max-steps); Ctrl-C stops, leaving the run unfinished (rerun to continue).",
        ),
    ] = False,
    poll: Annotated[float, typer.Option("--poll", min=0.05, help="With --follow: seconds between listings.")] = 5.0,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", min=1, help="With --follow: finish once this step is dumped.")
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option("--epochs", min=1, help="The run's planned epochs (run.json): early-LIM versions need it."),
    ] = None,
) -> None:
    """Import a trainer's rollout dumps as a run: events, prompts, run.json, then the finished marker."""
    with user_errors():
        from limr.data import load_pool
        from limr.events.correct import parse_correct
        from limr.importers import Follow, dump_format, import_dump, infer_steps_per_epoch
        from limr.store import open_store

        if fmt not in FORMAT_NAMES:
            raise CliError(f"FORMAT must be one of {', '.join(FORMAT_NAMES)}, got {fmt!r}")
        if (max_steps is not None) and not follow:
            raise CliError("--max-steps applies to --follow")
        rule = parse_correct(correct)
        pool = load_pool(prompts) if prompts else None
        st = open_store(store)
        reader = dump_format(fmt)
        if steps_per_epoch is None:
            if follow:
                raise CliError("--follow needs --steps-per-epoch (a live dump may not hold two epochs yet)")
            steps_per_epoch = infer_steps_per_epoch(reader, path, pool)
            typer.echo(f"steps per epoch: {steps_per_epoch} (inferred: step {steps_per_epoch + 1} repeats a prompt)")
        stop = threading.Event()
        live = Follow(poll_s=poll, max_steps=max_steps, stop=stop) if follow else None
        if live is not None:
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with progress(f"import {fmt}", enabled=sys.stderr.isatty()) as bar:  # quiet in tests and pipelines
            summary = import_dump(
                st, reader, path, run, steps_per_epoch, pool, rule, live, lambda _s: bar.advance(), epochs
            )
        state = "finished" if summary.finished else "not finished (stopped before the finish signal)"
        typer.echo(
            f"imported {fmt} run {summary.run_id} into {st.uri}: {summary.steps} steps, {summary.epochs} epochs,"
            f" {summary.events} events, {summary.prompts} prompts; correct = {rule}; {state}"
        )
        for note in summary.notes(len(pool) if pool is not None else None):
            typer.echo(f"note: {note}", err=True)


def import_openrlhf_cmd(
    samples_dir: Annotated[Path, typer.Argument(help="Directory of step_N.json files, or its parent holding train/")],
    steps_per_epoch: Annotated[int, typer.Option("--steps-per-epoch", min=1, help="Training steps per epoch.")],
    run: Annotated[str, typer.Option("--run", help="Id of the new run.")],
    store: StoreOpt = None,
    prompts: Annotated[
        Path | None, typer.Option("--prompts", help="Prompt pool: ids and answers are taken from it.")
    ] = None,
    correct: CorrectOpt = None,
) -> None:
    """Alias of `limr import openrlhf`: LIMR's OpenRLHF step_N.json dumps as a run of reward events."""
    import_cmd("openrlhf", samples_dir, run, steps_per_epoch, prompts, correct, store)


def register(app: typer.Typer) -> None:
    app.command("import")(import_cmd)
    app.command("import-openrlhf")(import_openrlhf_cmd)
