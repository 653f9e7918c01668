"""`limr experiment`: the LIMR study (FULL vs LIM vs RAND vs dynamic sampling) end to end; see docs/experiment.md."""

from __future__ import annotations

import json
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
) -> None:
    """Train every arm and seed (finished runs in the store are reused), then write out/experiment/."""
    from limr.cli.lim import CliError, user_errors
    from limr.console import quiet_terminal
    from limr.experiment.config import ExperimentConfigError, load_experiment
    from limr.learner.config import ConfigError
    from limr.store import open_store

    with user_errors():
        try:
            cfg = load_experiment(config, quick=quick)
        except ExperimentConfigError as e:
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
            from limr.experiment.runner import run_study

            try:
                inputs, plans, state = run_study(cfg, st.uri, out, term.echo)
            except ConfigError as e:
                raise CliError(str(e)) from None
            downloads = state.api_downloads
            arms, summary = write_results(cfg, st, inputs, plans, state, out, downloads, time.monotonic() - t0)
            if not json_out:
                term.echo(_table(arms))
                if summary["verdict"]:  # FULL-only studies have none
                    term.echo(f"goal: {json.dumps(summary['verdict'])}")
                term.echo(f"wrote {out}/results.json, results.md and 4 plots ({summary['wall_seconds'] / 60:.1f} min)")
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


def register(app: typer.Typer) -> None:
    app.command("experiment")(experiment_cmd)


__all__ = ["experiment_cmd", "register"]
