"""Entry point of the `limr` console command."""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer

app = typer.Typer(
    name="limr",
    help="LIMR: LIM-curated, data-efficient RL post-training on Ray (see README.md).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Command modules, each with `register(app)`. Order is the order of `limr --help`.
_COMMAND_MODULES = (
    "limr.cli.importing",  # import FORMAT (verl, trl, ...), import-openrlhf (bring your own trainer)
    "limr.cli.lim",  # score, select                            (issue: limr core)
    "limr.cli.demo",  # demo                                      (core, grown by the learner)
    "limr.cli.experiment",  # experiment: FULL vs LIM vs RAND vs dynamic sampling (experiment)
    "limr.cli.data",  # data inspect                              (tasks)
    "limr.cli.model",  # model init-tiny / sft                     (tasks)
    "limr.cli.evaluate",  # eval                                  (tasks)
    "limr.cli.train",  # train                                     (learner)
    "limr.cli.plan",  # plan: cost and fit of a config before it runs (scale)
    "limr.cli.serve",  # serve rollout|scorer|datasets            (rollout, services)
    "limr.cli.datasets",  # datasets ... client                  (services)
    "limr.cli.store",  # store policy|provision: a key pair and policy per role (hardening)
    "limr.cli.deploy",  # deploy up|down|status: the chart as containers here (deployment)
)

for _name in _COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _e:  # a module not written yet; never hide other import errors
        if _e.name != _name:
            raise
        continue
    _module.register(app)


# Short data commands whose only native thread pools are Arrow's. Arrow can abort at interpreter teardown
# ("terminate called without an active exception", SIGABRT after the work is done and written: apache/arrow#34314);
# it failed a `limr select` in CI once. These commands finish their writes before returning, so their process ends
# without native teardown. Commands that run Ray, servers or trainers keep the normal exit (atexit handlers).
_EXIT_WITHOUT_TEARDOWN = frozenset({"score", "select", "import", "import-openrlhf", "plan", "datasets"})


def main() -> None:
    try:
        app()
    except SystemExit as done:
        command = sys.argv[1] if len(sys.argv) > 1 else ""
        if command in _EXIT_WITHOUT_TEARDOWN and (done.code is None or isinstance(done.code, int)):
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(done.code or 0)
        raise


if __name__ == "__main__":
    main()
