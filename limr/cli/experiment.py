"""`limr experiment`: the LIMR study (FULL vs LIM vs RAND vs dynamic sampling) end to end; see docs/experiment.md."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_CONFIG = Path("configs/experiment-tiny.yaml")


def experiment_cmd(
    config: Annotated[Path, typer.Option("--config", "-c", help="Experiment config (YAML).")] = DEFAULT_CONFIG,
    store: Annotated[
        str | None, typer.Option("--store", help="Store URI (default: ./limr-data or $LIMR_STORE).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Directory for results, plots, data and logs.")] = Path(
        "out/experiment"
    ),
    quick: Annotated[
        bool, typer.Option("--quick", help="The config's quick variant: 1 seed, a few steps, a small pool.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print results.json instead of the table.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Ray/Serve/vLLM logs on the terminal, not in a file.")
    ] = False,
    results: Annotated[
        Path | None,
        typer.Option(
            "--results", help="Train nothing: rank the arms of this results.json (e.g. a committed study) into --out."
        ),
    ] = None,
    finished_only: Annotated[
        bool,
        typer.Option(
            "--finished-only",
            help="Train nothing: report the runs the store has finished (a study run in parts); arms and seeds not"
            " finished yet are left out.",
        ),
    ] = False,
    tracking: Annotated[
        str | None,
        typer.Option(
            "--tracking",
            help="Experiment tracker for every run and the study: mlflow[:URI] (./mlruns by default) or"
            " tensorboard:DIR.",
        ),
    ] = None,
) -> None:
    """Train every arm and seed (finished runs in the store are reused), then write out/experiment/."""
    from limr.cli.common import CliError, user_errors

    if results is not None:
        with user_errors():
            _leaderboard_only(results, out, json_out)
        return
    from limr.console import quiet_terminal
    from limr.experiment.config import ExperimentConfigError, load_experiment
    from limr.experiment.tracking import log_study, tracked
    from limr.learner.config import ConfigError
    from limr.store import open_store
    from limr.tracking import TrackingError, parse_spec

    with user_errors():
        try:
            cfg = tracked(load_experiment(config, quick=quick), tracking)
            if tracking:
                parse_spec(tracking)
        except (ExperimentConfigError, TrackingError) as e:
            raise CliError(str(e)) from None
        from limr.plan.check import Limits
        from limr.plan.estimate import Assumptions
        from limr.plan.sources import PlanSourceError, experiment_plan

        try:
            problems = experiment_plan(config, Limits(), Assumptions(), None, quick).problems
        except PlanSourceError as e:
            raise CliError(str(e)) from None
        if problems:
            raise CliError("\n".join(f"plan: {p}" for p in problems))
        out = out.resolve()  # Ray workers and Serve replicas run in other working directories
        st = open_store(store)
        t0 = time.monotonic()
        with quiet_terminal(out / "limr-experiment.log", verbose=verbose) as term:
            from limr.experiment.report import write_results
            from limr.experiment.runner import StudyNotFinishedError, run_study
            from limr.tasks.skills import SkillMixError

            try:
                inputs, plans, state = run_study(cfg, st.uri, out, term.echo, train=not finished_only)
            except (ConfigError, StudyNotFinishedError) as e:
                raise CliError(str(e)) from None
            except SkillMixError as e:
                raise CliError(f"{config}: {e}") from None
            downloads = state.api_downloads
            arms, summary = write_results(cfg, st, inputs, plans, state, out, downloads, time.monotonic() - t0)
            if tracking:
                info = log_study(tracking, cfg, out, summary)
                term.echo(f"tracked in {info.uri} ({info.backend} run {info.run_id} and one per training run)")
            if not json_out:
                term.echo(_table(arms))
                term.echo(_leaderboard_table(summary["leaderboard"]))
                if summary["verdict"]:  # FULL-only studies have none
                    term.echo(f"goal: {json.dumps(summary['verdict'])}")
                term.echo(f"wrote {out}/results.json, results.md and 5 plots ({summary['wall_seconds'] / 60:.1f} min)")
        if json_out:
            typer.echo((out / "results.json").read_text())


def _table(arms):
    from rich.table import Table

    from limr.experiment.results import HEADER, table_rows

    t = Table(title="held-out greedy accuracy, mean ± std over seeds")
    for h in HEADER:
        t.add_column(h, justify="left" if h == "arm" else "right")
    for row in table_rows(arms):
        t.add_row(*row)
    return t


def _leaderboard_table(lb):
    from rich.table import Table

    from limr.experiment.leaderboard import LEADERBOARD_HEADER, leaderboard_rows

    t = Table(title=f"leaderboard: 95% intervals, {lb['method']} ({lb['problems']} held-out problems)")
    for h in LEADERBOARD_HEADER:
        t.add_column(h, justify="left" if h == "arm" else "right")
    for row in leaderboard_rows(lb):
        t.add_row(*row)
    return t


def _leaderboard_only(results: Path, out: Path, json_out: bool) -> None:
    """`--results`: the leaderboard of a stored study (leaderboard.json, leaderboard.md, leaderboard.png)."""
    from rich.console import Console

    from limr.cli.common import CliError
    from limr.experiment.leaderboard import from_results, leaderboard_markdown
    from limr.experiment.plots import plot_leaderboard
    from limr.experiment.report import _write

    try:
        data = json.loads(results.read_text())
        lb = from_results(data)
    except FileNotFoundError:
        raise CliError(f"{results}: no such file") from None
    except (ValueError, KeyError, TypeError, StopIteration) as e:
        raise CliError(f"{results}: not a limr experiment results.json ({type(e).__name__}: {e})") from None
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "leaderboard.json", json.dumps(lb, indent=2))
    _write(out / "leaderboard.md", leaderboard_markdown(lb) + "\n")
    plot_leaderboard(lb, out / "leaderboard.png")
    if json_out:
        typer.echo(json.dumps(lb, indent=2))
    else:
        Console(width=None if sys.stdout.isatty() else 220).print(_leaderboard_table(lb))
        typer.echo(f"wrote {out}/leaderboard.json, leaderboard.md, leaderboard.png")


def register(app: typer.Typer) -> None:
    app.command("experiment")(experiment_cmd)


__all__ = ["experiment_cmd", "register"]
