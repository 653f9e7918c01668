"""`limr score`, `limr select`: LIM scoring and selection from the command line.

Only numpy/pyarrow/typer are imported here (never torch, Ray or vLLM), so these commands start fast on a
laptop. Outputs are written to a temporary file and renamed at the end: a failed command leaves no file.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from limr.atomic import atomic_file

StoreOpt = Annotated[
    str | None, typer.Option("--store", help="Store URI: a path, file://..., or s3://bucket/prefix [env LIMR_STORE]")
]
MaxEpochsOpt = Annotated[
    int | None, typer.Option("--max-epochs", min=1, help="Score only the first E epochs (released script: 21).")
]
EarlyOpt = Annotated[
    int | None,
    typer.Option(
        "--early",
        min=1,
        help="Predict the final LIM scores from the first K complete epochs (default early-LIM predictor).",
    ),
]
CorrectOpt = Annotated[
    str | None,
    typer.Option(
        "--correct",
        help="Re-decide which samples are correct: FIELD or FIELD OP NUMBER on the events' reward or scores,"
        " e.g. 'reward == 1', 'acc', 'reward >= 0.5' (default: the run's own correct flags).",
    ),
]
EpochsTotalOpt = Annotated[
    int | None, typer.Option("--epochs-total", min=1, help="With --early: the run's planned epochs [run.json].")
]


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's input errors into one `error: ...` line on stderr and exit status 2 (1 when the store
    could not be reached)."""
    from limr.algo.selection import SelectionError
    from limr.data.pool import PoolError
    from limr.events.correct import CorrectRuleError
    from limr.events.io import EventSchemaError
    from limr.events.writer import RunExists
    from limr.importers.base import DumpError
    from limr.scoring import EmptyRun, EventDataError, RunNotFound
    from limr.store import InvalidKey, ObjectNotFound, StoreError

    try:
        yield
    except (
        CliError,
        SelectionError,
        PoolError,
        EventSchemaError,
        DumpError,
        CorrectRuleError,
        RunExists,
        EventDataError,
        RunNotFound,
        EmptyRun,
        StoreError,
    ) as e:
        typer.echo(f"error: {e}", err=True)
        # 2: the input is at fault (file, field, argument); 1: the store could not be reached or refused us.
        transient = isinstance(e, StoreError) and not isinstance(e, ObjectNotFound | InvalidKey)
        raise typer.Exit(1 if transient else 2) from None


def write_atomic(path: str | Path, lines: Iterable[str]) -> int:
    """Write lines to `path` via a temp file in the same directory + rename; returns the line count."""
    n = 0
    with atomic_file(path, "w") as f:
        for line in lines:
            f.write(line)
            n += 1
    return n


def write_atomic_bytes(path: str | Path, chunks: Iterable[Any]) -> int:
    """`write_atomic` for bytes-like chunks (e.g. Arrow buffers, written without a copy); returns the size.

    A chunk is written in a thread while the next one is made: writing a 200 MB file takes as long as
    making it, and both release the GIL.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    n = 0
    with atomic_file(path, "wb") as f, ThreadPoolExecutor(1) as pool:
        pending: Future[int] | None = None
        for chunk in chunks:
            n += pending.result() if pending else 0
            pending = pool.submit(f.write, chunk)
        n += pending.result() if pending else 0
    return n


def _json_line(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n"


def _progress_bar(total: int, unit: str, desc: str):  # -> tqdm
    from tqdm import tqdm

    # Only on a terminal and only when it may take a while: quiet in tests and pipelines.
    return tqdm(total=total, unit=unit, desc=desc, disable=None, leave=False, mininterval=0.5)


# ---- commands ----------------------------------------------------------------------------------------------
def score_cmd(
    run: Annotated[str, typer.Option("--run", help="Run id in the store.")],
    out: Annotated[Path, typer.Option("--out", help="Output JSONL: one object per prompt.")],
    store: StoreOpt = None,
    max_epochs: MaxEpochsOpt = None,
    early: EarlyOpt = None,
    epochs_total: EpochsTotalOpt = None,
    threshold: Annotated[
        float, typer.Option("--threshold", help="With --early: the threshold p_select refers to.")
    ] = 0.6,
    correct: CorrectOpt = None,
) -> None:
    """Score every prompt of a run with LIM; prompts left out are written with score null and a reason."""
    with user_errors():
        from limr.store import open_store

        if early is not None:
            if max_epochs is not None:
                raise CliError("--early and --max-epochs exclude each other")
            _early_score(open_store(store), run, out, early, epochs_total, threshold, _rule(correct))
            return
        result = _score_run_with_progress(open_store(store), run, max_epochs, _rule(correct))
        from limr.scoring.output import score_chunks

        write_atomic_bytes(out, score_chunks(result))
        _print_score_summary(result, out)


def _rule(correct: str | None):
    """The parsed `--correct` rule (None: keep the events' own correct flags)."""
    from limr.events.correct import parse_correct

    return None if correct is None else parse_correct(correct)


def _early_score(st, run: str, out: Path, early: int, epochs_total: int | None, threshold: float, rule=None) -> None:
    """`limr score --early K`: predicted final score and probability of selection per prompt."""
    er = _early_run(st, run, early, threshold, epochs_total, rule)
    res, pred = er.result, er.prediction
    lines = (
        _json_line(
            {
                "prompt_id": pid,
                "prompt": res.prompts.get(pid),
                "score": float(s),
                "p_select": float(p),
                "trajectory": [float(x) for x in t],
            }
        )
        for pid, s, p, t in zip(res.prompt_ids, res.scores, pred.p_select, res.trajectories, strict=True)
    )
    left = (
        _json_line({"prompt_id": pid, "prompt": res.prompts.get(pid), "score": None, "left_out": why})
        for pid, why in res.left_out.items()
    )
    write_atomic(out, itertools.chain(lines, left))
    typer.echo(f"scored {len(res)} prompts of {res.source}")
    _print_early_summary(er, threshold)
    typer.echo(f"wrote {out}")


def _early_run(st, run: str, early: int, threshold: float, epochs_total: int | None, rule=None):
    from limr.algo.early_lim import EarlyLimError
    from limr.curation.early import EarlyError, early_score_run

    try:
        return early_score_run(st, run, early, threshold, epochs_total=epochs_total, correct=rule)
    except (EarlyError, EarlyLimError) as e:
        raise CliError(str(e)) from None


def _print_early_summary(er, threshold: float) -> None:
    d = er.describe()
    precision = "n/a" if d["predicted_precision"] is None else f"{d['predicted_precision']:.3f}"
    typer.echo(
        f"early LIM: {d['epochs_used']} of {d['epochs_total']} epochs, predictor {d['predictor']}:"
        f" {d['predicted_selected']} prompts predicted to score >= {threshold:g} at the end,"
        f" predicted precision {precision} (expected share the full run selects too)"
    )


def _score_run_with_progress(st, run: str, max_epochs: int | None, rule=None):
    from limr.scoring import score_run

    bar = _progress_bar(0, "obj", "score")

    def progress(events: int, done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        return score_run(st, run, max_epochs=max_epochs, progress=progress, correct=rule)
    finally:
        bar.close()


def _print_score_summary(result, out: Path) -> None:
    import numpy as np

    typer.echo(f"scored {len(result)} prompts of {result.source} over {result.epochs} epochs ({result.events} events)")
    if len(result):
        q = np.quantile(result.scores, [0, 0.25, 0.5, 0.75, 1])
        typer.echo("score min/q1/median/q3/max: " + " / ".join(f"{x:.3f}" for x in q))
        typer.echo("r_avg: " + " ".join(f"{x:.3f}" for x in result.r_avg))
    if result.left_out:
        reasons = Counter(
            r.split(" (")[0] if r.startswith("no samples in epoch(s)") else r for r in result.left_out.values()
        )
        typer.echo(f"left out {len(result.left_out)} prompts (in {out} with score null):", err=True)
        for reason, n in reasons.most_common(5):
            typer.echo(f"  {n:>8}  {reason}", err=True)
    typer.echo(f"wrote {out}")


def select_cmd(
    prompts: Annotated[Path, typer.Option("--prompts", help="Prompt pool whose records are selected.")],
    out: Annotated[Path, typer.Option("--out", help="Output: .jsonl (default) or .json (a JSON list).")],
    run: Annotated[str | None, typer.Option("--run", help="Score this run of the store.")] = None,
    store: StoreOpt = None,
    openrlhf_samples: Annotated[
        Path | None, typer.Option("--openrlhf-samples", help="Score OpenRLHF step_N.json dumps in this directory.")
    ] = None,
    steps_per_epoch: Annotated[
        int | None, typer.Option("--steps-per-epoch", min=1, help="Steps per epoch of the dumps.")
    ] = None,
    scores: Annotated[Path | None, typer.Option("--scores", help="Published {prompt, score} JSON list.")] = None,
    max_epochs: MaxEpochsOpt = None,
    strategy: Annotated[str, typer.Option("--strategy", help="lim | rand | linear")] = "lim",
    threshold: Annotated[float | None, typer.Option("--threshold", help="Select score >= T.")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", help="Select the K best.")] = None,
    fraction: Annotated[float | None, typer.Option("--fraction", help="Select the best fraction F.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of --strategy rand.")] = 0,
    early: EarlyOpt = None,
    epochs_total: EpochsTotalOpt = None,
    correct: CorrectOpt = None,
) -> None:
    """Select prompts (LIM, RAND or LINEAR) and write their records from --prompts unchanged, in file order."""
    with user_errors():
        from limr.algo.selection import STRATEGIES, Criterion
        from limr.curation.selecting import select_prompts

        sources = [x is not None for x in (run, openrlhf_samples, scores)]
        if sum(sources) != 1:
            raise CliError("give exactly one of --run, --openrlhf-samples, --scores")
        if openrlhf_samples is not None and steps_per_epoch is None:
            raise CliError("--openrlhf-samples needs --steps-per-epoch")
        if strategy not in STRATEGIES:
            raise CliError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        crit = Criterion(threshold=threshold, top_k=top_k, fraction=fraction)
        if scores is not None and (max_epochs is not None or correct is not None):
            raise CliError("--max-epochs and --correct do not apply to --scores (published scores are final)")
        if early is not None and (run is None or strategy != "lim" or threshold is None or max_epochs is not None):
            raise CliError("--early selects from a run (--run) with --strategy lim and --threshold, no --max-epochs")

        from limr.data import load_pool

        pool = load_pool(prompts)
        early_run = None
        if early is not None:
            from limr.store import open_store

            early_run = _early_run(open_store(store), run, early, threshold, epochs_total, _rule(correct))
            result = early_run.result
        else:
            result = _score_source(run, store, openrlhf_samples, steps_per_epoch, scores, max_epochs, correct)
        if len(result) == 0:
            raise CliError(f"{result.source}: no prompt has a complete trajectory; nothing to select from")
        rows_of = dict(zip(result.prompt_ids, match_pool(pool, result), strict=True))
        sel, picked = select_prompts(result, strategy, crit, seed=seed, pool_ids=pool.ids)
        # rand picks pool ids (each its own row); lim/linear pick scored ids (their rows by id or prompt text).
        rows = sorted({r for pid in picked for r in (rows_of[pid] if pid in rows_of else [pool.index[pid]])})
        if out.suffix.lower() == ".json":
            payload = json.dumps([pool.records[r] for r in rows], ensure_ascii=False)
            write_atomic(out, [payload])
        else:
            write_atomic(out, (_json_line(pool.records[r]) for r in rows))
        typer.echo(f"source: {result.source}")
        epochs = f", {result.epochs} epochs" if result.epochs else ""
        typer.echo(f"scored: {len(result)} prompts{epochs}; left out: {len(result.left_out)}")
        if pool.duplicates:
            typer.echo(f"prompts file: dropped {len(pool.duplicates)} record(s) with a repeated id", err=True)
        typer.echo(f"strategy: {sel.description}")
        if early_run is not None:
            _print_early_summary(early_run, threshold)
        typer.echo(f"selected {len(rows)} of {len(pool)} prompts from {prompts} -> {out}")


def _score_source(run, store, openrlhf_samples, steps_per_epoch, scores, max_epochs, correct=None):
    if run is not None:
        from limr.store import open_store

        return _score_run_with_progress(open_store(store), run, max_epochs, _rule(correct))
    if openrlhf_samples is not None:
        from limr.scoring.sources import score_dump

        return score_dump("openrlhf", openrlhf_samples, steps_per_epoch, max_epochs, correct)
    from limr.scoring.sources import score_published

    return score_published(scores)


def match_pool(pool, result) -> list[list[int]]:
    """Pool rows of each scored prompt: by id, else by prompt text (all records with that text, as the
    released script). Scored prompts with no record are an error: the prompts file does not fit the scores."""
    from limr.events.ids import prompt_hash_id

    by_text: dict[str, list[int]] = {}
    for row, rec in enumerate(pool.records):
        by_text.setdefault(prompt_hash_id(rec["prompt"]), []).append(row)
    out: list[list[int]] = []
    unknown: list[str] = []
    for pid in result.prompt_ids:
        row = pool.index.get(pid)
        if row is not None:
            out.append([row])
            continue
        text = result.prompts.get(pid)
        rows = by_text.get(prompt_hash_id(text) if text is not None else pid)
        if rows is None:
            unknown.append(pid)
            rows = []
        out.append(rows)
    if unknown:
        hint = ""
        if not pool.has_own_ids():
            hint = f"; {pool.path} has no 'id' fields, so its ids are hashes of the prompt text"
        example = result.prompts.get(unknown[0])
        example_s = f" (prompt {example[:60]!r})" if example else ""
        raise CliError(
            f"{pool.path}: {len(unknown)} of {len(result.prompt_ids)} scored prompts are not in the prompts file,"
            f" e.g. prompt_id {unknown[0]!r}{example_s}{hint}"
        )
    return out


def register(app: typer.Typer) -> None:
    app.command("score")(score_cmd)
    app.command("select")(select_cmd)


__all__ = ["CliError", "match_pool", "register", "user_errors", "write_atomic"]
