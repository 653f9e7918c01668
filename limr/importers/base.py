"""What every importer shares: a dump is a sequence of trainer steps, grouped into epochs, written as a run.

A format (`DumpFormat`) only finds its step files and reads one step into a `DumpStep`. This module plans
the epochs (step s, 1-based, belongs to epoch (s - 1) // steps_per_epoch; only complete epochs count, a
trailing partial epoch is ignored and reported, as in the released `lim_selection.py`), maps prompts to the
pool, applies the correctness rule and writes events through `limr.events.writer.EventWriter`, one step at
a time, so memory stays constant however large the dump.

Live runs (`follow`): the dump directory is polled; an epoch is written once a step of a later epoch exists
(a trainer writes step s + 1 only after step s is complete), so the scorer sees whole epochs and publishes
as the run trains. Following stops when the dump directory holds the finish signal `LIMR_FINISHED` (an
empty file the trainer, or its launcher, creates when training ends), when `max_steps` steps are in, or
when `stop` is set; only the first two mark the run finished.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeGuard

import numpy as np

from limr.events.correct import REWARD, CorrectRule, CorrectRuleError, parse_correct
from limr.events.io import PromptRecord
from limr.events.run import read_run_meta
from limr.events.schema import run_json_key
from limr.events.writer import EventWriter, RunExists, prompt_records
from limr.importers.matching import MatchReport, PromptMatcher
from limr.store import ObjectStore

#: The file whose presence in a dump directory says the run is over (see the module docstring).
FINISH_SIGNAL = "LIMR_FINISHED"


class DumpError(ValueError):
    """A malformed dump; the message names the file and the row/field."""


@dataclass
class DumpStep:
    """The samples of one trainer step, as columns."""

    step: int  # 1-based trainer step
    prompts: list[str]  # (n,) prompt text as dumped
    rewards: np.ndarray  # (n,) float64, the trainer's own reward
    fields: dict[str, np.ndarray] = field(default_factory=dict)  # (n,) float64 each: extra numbers (acc, ...)
    responses: list[str | None] | None = None
    response_tokens: np.ndarray | None = None  # (n,) int64


class DumpFormat(Protocol):
    """One framework's dump layout."""

    name: str
    strict_steps: bool  # every step 1..N must be there (OpenRLHF, as the released script requires)
    reward_field: str  # the dump's name for the reward, for messages

    def find_steps(self, root: Path) -> dict[int, list[Path]]:
        """Step (1-based) -> the files holding it, for the steps present now."""
        ...

    def read_step(self, step: int, files: list[Path]) -> DumpStep: ...


@dataclass
class ImportSummary:
    run_id: str
    format: str
    steps: int  # steps written
    epochs: int  # complete epochs written
    events: int
    prompts: int  # distinct prompts with events
    ignored_steps: list[int] = field(default_factory=list)  # trailing partial epoch
    missing_steps: list[int] = field(default_factory=list)  # gaps inside the epochs written
    epoch_prompts: list[int] = field(default_factory=list)  # distinct prompts with samples, per epoch
    unmapped: MatchReport = field(default_factory=MatchReport)
    finished: bool = False
    keys: list[str] = field(default_factory=list)

    def notes(self, pool_size: int | None) -> list[str]:
        """What a user should know about the import: gaps, dropped steps, unmapped prompts."""
        out = []
        if self.ignored_steps:
            out.append(f"ignored steps {_ranges(self.ignored_steps)}: an incomplete last epoch")
        if self.missing_steps:
            out.append(f"no dump for step(s) {_ranges(self.missing_steps)}: those epochs have gaps")
        if pool_size:
            short = [(e, n) for e, n in enumerate(self.epoch_prompts) if n < pool_size]
            if short:
                shown = ", ".join(f"epoch {e}: {n}" for e, n in short[:6])
                out.append(
                    f"{len(short)} epoch(s) lack samples for some of the {pool_size} pool prompts ({shown}): filtered"
                    " groups (DAPO-style dynamic sampling) or logging gaps; LIM fills such gaps from the next epoch"
                )
        if self.unmapped.unmapped_samples:
            out.append(self.unmapped.describe())
        return out


@dataclass
class Follow:
    """How to tail a live dump directory."""

    poll_s: float = 5.0
    max_steps: int | None = None  # finish once this many steps are in
    stop: threading.Event | None = None  # set it to stop following (the run is then left unfinished)


def import_dump(
    store: ObjectStore,
    fmt: DumpFormat,
    root: str | Path,
    run_id: str,
    steps_per_epoch: int,
    pool: Any = None,
    correct: str | CorrectRule | None = None,
    follow: Follow | None = None,
    progress: Callable[[int], None] | None = None,
    epochs: int | None = None,
) -> ImportSummary:
    """Write a dump as a run: events per step, prompts.parquet, run.json, then the finished marker.

    Idempotent: importing the same dump with the same options into the same run id rewrites the same objects
    (a `--follow` that was stopped can simply be started again). A different import into a taken run id is
    an error. A failed fresh import (not a follow) deletes what it wrote. `epochs`: the run's planned epochs,
    recorded in run.json so that the scorer's early-LIM policies can publish provisional versions of a
    followed run.
    """
    if steps_per_epoch < 1:
        raise DumpError(f"--steps-per-epoch must be >= 1, got {steps_per_epoch}")
    root = Path(root)
    if not root.is_dir():
        raise DumpError(f"{root}: not a directory of {fmt.name} dumps")
    rule = parse_correct(correct)
    settings = {"format": fmt.name, "path": str(root.resolve()), "steps_per_epoch": steps_per_epoch}
    writer = EventWriter(
        store,
        run_id,
        pool,
        steps_per_epoch=steps_per_epoch,
        correct=rule,
        source=f"{fmt.name}-import",
        config={"import": settings},
        exist_ok=_same_import(store, run_id, settings, str(rule)),
        stamp_time=False,
        epochs=epochs,
    )
    matcher = PromptMatcher(writer.records)
    state = _Progress(fmt, steps_per_epoch, matcher, writer, rule, progress)
    fresh = not writer._exist_ok
    try:
        if follow is None:
            state.advance(fmt.find_steps(root), final=True, root=root)
        else:
            _follow(state, root, follow)
        if state.summary.finished:
            if writer.records is None:
                writer.write_prompts([PromptRecord(pid, text, "") for pid, text in matcher.seen.items()])
            writer.finish(state.epochs_written, steps=state.summary.steps)
    except BaseException:
        if fresh and follow is None:
            writer.delete_written()
        raise
    state.summary.keys = list(writer.keys)
    state.summary.unmapped = matcher.report
    state.summary.prompts = len(matcher.seen)
    return state.summary


def infer_steps_per_epoch(fmt: DumpFormat, root: str | Path, pool: Any = None) -> int:
    """Steps per epoch from the dump itself: a trainer sees every prompt once per epoch (shuffled), so the first
    step holding a prompt an earlier step held starts epoch 2 (this needs a dump file for every step: not TRL
    with `logging_steps > 1`). Reads the steps up to that one."""
    root = Path(root)
    found = fmt.find_steps(root) if root.is_dir() else {}
    matcher = PromptMatcher(prompt_records(pool))
    seen: set[str] = set()
    for step in sorted(found):
        ids = {pid for pid in matcher.ids_of(fmt.read_step(step, found[step]).prompts) if pid is not None}
        if ids & seen:
            return step - 1
        seen |= ids
    raise DumpError(
        f"{root}: no prompt repeats in {len(found)} step(s), so the dump holds at most one epoch and its length"
        " cannot be inferred; give --steps-per-epoch"
    )


def _same_import(store: ObjectStore, run_id: str, settings: dict[str, Any], rule: str) -> bool:
    """True when the run exists and was written by this very import (so re-importing is idempotent)."""
    if not store.exists(run_json_key(run_id)):
        return False
    meta = read_run_meta(store, run_id)
    if meta.config.get("import") != settings or meta.correct != rule:
        raise RunExists(
            f"{store.uri}: run {run_id!r} already exists from another source or other options"
            f" ({meta.source}, {meta.config.get('import')}); runs are immutable, pick another --run"
        )
    return True


def _follow(state: _Progress, root: Path, follow: Follow) -> None:
    while True:
        finished = (root / FINISH_SIGNAL).exists()
        found = state.fmt.find_steps(root)
        if follow.max_steps is not None and found and max(found) >= follow.max_steps:
            found = {s: f for s, f in found.items() if s <= follow.max_steps}
            finished = True
        state.advance(found, final=finished, root=root)
        if finished or (follow.stop is not None and follow.stop.is_set()):
            return
        if follow.stop is not None:
            follow.stop.wait(follow.poll_s)
        else:
            time.sleep(follow.poll_s)


class _Progress:
    """The import's position: epochs written so far, and the per-epoch bookkeeping of the summary."""

    def __init__(
        self,
        fmt: DumpFormat,
        steps_per_epoch: int,
        matcher: PromptMatcher,
        writer: EventWriter,
        rule: CorrectRule,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.fmt, self.k, self.matcher, self.writer, self.rule = fmt, steps_per_epoch, matcher, writer, rule
        self.progress = progress
        self.epochs_written = 0
        self.summary = ImportSummary(writer.run_id, fmt.name, 0, 0, 0, 0)

    def advance(self, found: dict[int, list[Path]], final: bool, root: Path) -> None:
        """Write every epoch that is complete in `found` and not written yet (all of them when `final`)."""
        if not found:
            if final:
                raise DumpError(f"{root}: no {self.fmt.name} step files found")
            return
        last = max(found)
        # Epoch e is complete once a later step exists (live) or its last step is in (final).
        complete = last // self.k if final else (last - 1) // self.k
        if final and complete == 0 and self.epochs_written == 0:
            raise DumpError(
                f"{root}: {len(found)} step file(s) up to step {last}, fewer than one epoch of {self.k} steps"
            )
        for epoch in range(self.epochs_written, complete):
            self._write_epoch(epoch, found, root)
        if final:
            self.summary.ignored_steps = sorted(s for s in found if s > complete * self.k)
            self.summary.finished = True

    def _write_epoch(self, epoch: int, found: dict[int, list[Path]], root: Path) -> None:
        steps = range(epoch * self.k + 1, (epoch + 1) * self.k + 1)
        missing = [s for s in steps if s not in found]
        if missing and self.fmt.strict_steps:
            raise DumpError(f"{root}: missing step file(s) {_ranges(missing)} (steps must be 1, 2, ... without gaps)")
        self.summary.missing_steps.extend(missing)
        prompts: set[str] = set()
        for step in steps:
            if step in found:
                prompts.update(self._write_step(self.fmt.read_step(step, found[step]), epoch))
        self.summary.epoch_prompts.append(len(prompts))
        self.epochs_written = epoch + 1
        self.summary.epochs = self.epochs_written

    def _write_step(self, dumped: DumpStep, epoch: int) -> set[str]:
        ids = self.matcher.ids_of(dumped.prompts)
        keep = np.array([pid is not None for pid in ids], bool)
        if not keep.all():
            dumped = _take(dumped, keep)
            ids = [pid for pid in ids if pid is not None]
        where = f"{self.fmt.name} step {dumped.step}"
        correct = self._correct(dumped, where)
        self.writer.write_step(
            dumped.step,
            [str(pid) for pid in ids],
            dumped.rewards,
            epoch=epoch,
            correct=correct,
            scores=dumped.fields,
            response_tokens=dumped.response_tokens,
            responses=dumped.responses,
        )
        self.summary.steps += 1
        self.summary.events += len(ids)
        if self.progress:
            self.progress(dumped.step)
        return {str(pid) for pid in ids}

    def _correct(self, dumped: DumpStep, where: str) -> np.ndarray:
        name = self.rule.field
        if name == REWARD:
            return self.rule.apply(dumped.rewards)
        if name not in dumped.fields:
            raise CorrectRuleError(
                f"{where}: the correctness rule {str(self.rule)!r} names {name!r}, which this dump lacks"
                f" (numeric fields: {', '.join([REWARD, *sorted(dumped.fields)])})"
            )
        return self.rule.apply(dumped.fields[name])


def _take(dumped: DumpStep, keep: np.ndarray) -> DumpStep:
    idx = np.flatnonzero(keep)
    return DumpStep(
        dumped.step,
        [dumped.prompts[i] for i in idx],
        dumped.rewards[idx],
        {k: v[idx] for k, v in dumped.fields.items()},
        None if dumped.responses is None else [dumped.responses[i] for i in idx],
        None if dumped.response_tokens is None else dumped.response_tokens[idx],
    )


# ---- helpers the formats share -----------------------------------------------------------------------------
def number(value: Any, where: str, name: str) -> float:
    """A finite number from a dump field (bools count as 0/1; a one-element list is its element)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise DumpError(f"{where}: field {name!r} is {what(value)}, expected a finite number")
    return float(value)


def numeric_fields(rows: list[Mapping[str, Any]], skip: set[str]) -> dict[str, np.ndarray]:
    """Columns of the numbers (and bools) rows carry besides `skip`: NaN where a row lacks one."""
    names = sorted({k for r in rows for k, v in r.items() if k not in skip and _is_number(v)})
    out = {}
    for name in names:
        col = np.full(len(rows), np.nan)
        for i, r in enumerate(rows):
            v = r.get(name)
            if _is_number(v):
                col[i] = float(v)
        out[name] = col
    return out


def _is_number(v: Any) -> TypeGuard[bool | int | float]:
    return isinstance(v, bool | int | float) and (not isinstance(v, float) or math.isfinite(v))


def what(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, dict | list):
        return type(value).__name__
    return f"{value!r} ({type(value).__name__})"


def _ranges(steps: list[int]) -> str:
    shown = ", ".join(str(s) for s in steps[:10])
    return shown + (f" ... ({len(steps)} in all)" if len(steps) > 10 else "")


def one_file_per_step(root: Path, pattern: re.Pattern[str]) -> dict[int, list[Path]]:
    """Step -> [file] of a dump with one file per step, `pattern`'s first group the step (verl, NeMo-RL, TRL)."""
    out: dict[int, list[Path]] = {}
    for p in root.iterdir():
        m = pattern.match(p.name)
        if m and p.is_file() and int(m.group(1)) >= 1:
            out[int(m.group(1))] = [p]
    return out


def jsonl_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """The objects of a JSONL file with where each came from ("line N"); errors name the file and line."""
    from limr.jsonl import JsonlError, jsonl_records

    try:
        with open(path, encoding="utf-8") as f:
            return [(f"{path}: line {lineno}", rec) for lineno, rec in jsonl_records(f, str(path))]
    except JsonlError as e:
        raise DumpError(str(e)) from None


def text(value: Any, where: str, name: str) -> str:
    if not isinstance(value, str):
        raise DumpError(f"{where}: field {name!r} is {what(value)}, expected a string")
    return value
