"""A run's scores snapshot joined with its prompt records, decoded once and queried many times.

The scorer writes the snapshot (limr.curation.snapshot) after each rescore; the run's writer puts
`prompts.parquet` (text, answer, source) at its start. Both are cached per process until the object changes
(its size or modification time), so a request costs a few vectorized passes over the prompts plus the page.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cachetools import LRUCache

from limr.curation.snapshot import read_scores_snapshot, snapshot_key
from limr.events.io import EventSchemaError, read_prompts
from limr.events.schema import prompts_key, run_json_key
from limr.store import ObjectNotFound, ObjectStore

SORTS = ("score", "-score", "prompt_id")


class RunNotFound(LookupError):
    """No run with that id (no run.json), or no such prompt in it."""


class RunNotScored(LookupError):
    """The run exists but the scorer has not completed an epoch of it yet."""


class RunScores:
    """Every prompt of a run: score (NaN: left out), per-epoch counts, prompt text and source, r_avg."""

    def __init__(self, table: pa.Table, prompts: dict[str, tuple[str, str | None, str]] | None = None) -> None:
        self.table = table
        self.ids: list[str] = table.column("prompt_id").to_pylist()
        self.left_out: list[str | None] = table.column("left_out").to_pylist()
        self.score = table.column("score").to_numpy(zero_copy_only=False).astype(np.float64)  # (P,) NaN: left out
        self.row = {pid: i for i, pid in enumerate(self.ids)}
        meta = table.schema.metadata or {}
        self.epochs = int(meta.get(b"epochs", b"0"))
        self.r_avg = [float(x) for x in meta.get(b"r_avg", b"").decode().split(",") if x]
        prompts = prompts or {}
        found = [prompts.get(pid) for pid in self.ids]
        self.text: list[str | None] = [p[0] if p else None for p in found]
        self.source: list[str | None] = [p[1] if p else None for p in found]
        self.answer: list[str | None] = [p[2] if p else None for p in found]
        self._text_arr = pa.array(self.text, pa.string())
        self._source_arr = pa.array(self.source, pa.string())
        self.sources = sorted({s for s in self.source if s})
        self._orders: dict[str, np.ndarray] = {}
        self._sorted_scores = np.sort(self.score[~np.isnan(self.score)])  # (K,) ascending

    @property
    def scored(self) -> int:
        return len(self._sorted_scores)

    def order(self, sort: str) -> np.ndarray:
        """Row order for `sort`; left-out prompts (NaN) last, ties broken by prompt id for stable pages."""
        if sort not in self._orders:
            ids = np.array(self.ids, dtype=str)
            if sort == "prompt_id":
                self._orders[sort] = np.argsort(ids, kind="stable")
            else:
                self._orders[sort] = np.lexsort((ids, -self.score if sort == "-score" else self.score))
        return self._orders[sort]

    def rows(
        self,
        min_score: float | None = None,
        max_score: float | None = None,
        include_left_out: bool = False,
        q: str | None = None,
        source: str | None = None,
        sort: str = "-score",
    ) -> np.ndarray:
        """Row indices matching the filters, in `sort` order. `q`: case-insensitive substring of the prompt
        text or id; `source`: exact source (e.g. `synthetic/level3`). Left-out prompts only on request and
        never under a score bound (they have no score)."""
        scored = ~np.isnan(self.score)
        mask = scored.copy()
        with np.errstate(invalid="ignore"):
            if min_score is not None:
                mask &= self.score >= min_score
            if max_score is not None:
                mask &= self.score <= max_score
        if include_left_out and min_score is None and max_score is None:
            mask |= ~scored
        if q:
            in_text = pc.match_substring(self._text_arr, q, ignore_case=True).fill_null(False)
            in_id = pc.match_substring(pa.array(self.ids, pa.string()), q, ignore_case=True)
            mask &= np.asarray(pc.or_(in_text, in_id).to_numpy(zero_copy_only=False), dtype=bool)
        if source:
            mask &= np.asarray(pc.equal(self._source_arr, source).fill_null(False).to_numpy(zero_copy_only=False))
        order = self.order(sort)
        return order[mask[order]]

    def kept_at(self, threshold: float) -> int:
        """Prompts a LIM threshold keeps (score >= threshold), as `limr select --threshold` counts them."""
        return int(len(self._sorted_scores) - np.searchsorted(self._sorted_scores, threshold, side="left"))

    def threshold_table(self, lo: float = 0.0, hi: float = 1.0, step: float = 0.01) -> dict[str, list[float | int]]:
        """Kept counts on a grid of thresholds: what the web view's threshold control reads without asking
        the server again (101 numbers, whatever the run's size)."""
        grid = np.round(np.arange(lo, hi + step / 2, step), 6)  # (G,)
        kept = len(self._sorted_scores) - np.searchsorted(self._sorted_scores, grid, side="left")  # (G,)
        return {"thresholds": grid.tolist(), "kept": kept.astype(int).tolist()}

    def histogram(self, bins: int = 20) -> dict[str, list[float] | list[int] | int]:
        """Scores in `bins` equal bins over [0, 1], and how many fall below 0 (LIM scores can be negative)."""
        edges = np.linspace(0.0, 1.0, bins + 1)
        s = self._sorted_scores
        counts, _ = np.histogram(s[s >= 0.0], bins=edges)
        return {"edges": edges.tolist(), "counts": counts.tolist(), "below_zero": int((s < 0.0).sum())}

    def item(self, i: int) -> dict[str, object]:
        """One row as the score pages list it."""
        s = self.score[i]
        return {
            "prompt_id": self.ids[i],
            "score": None if math.isnan(s) else float(s),
            "left_out": self.left_out[i],
            "prompt": self.text[i],
            "source": self.source[i],
        }

    def trajectory(self, prompt_id: str) -> dict[str, object]:
        """One prompt's per-epoch counts and accuracy (None where it had no samples), with the run's r_avg."""
        i = self.row.get(prompt_id)
        if i is None:
            raise RunNotFound(f"the run has no prompt {prompt_id!r}")
        row = self.table.slice(i, 1).to_pylist()[0]
        acc = [c / t if t else None for c, t in zip(row["correct"], row["total"], strict=True)]
        score = row["score"] if row["score"] is None or math.isfinite(row["score"]) else None
        return {
            **self.item(i),
            "score": score,
            "answer": self.answer[i],
            "epochs": self.epochs,
            "correct": row["correct"],
            "total": row["total"],
            "accuracy": acc,
            "r_avg": self.r_avg,
        }

    def accuracy_rows(self, rows: np.ndarray) -> list[list[float | None]]:
        """Per-epoch accuracy of `rows` (for sparklines), None where a prompt had no samples."""
        sub = self.table.take(pa.array(rows, pa.int64())).select(["correct", "total"]).to_pydict()
        return [
            [c / t if t else None for c, t in zip(cs, ts, strict=True)]
            for cs, ts in zip(sub["correct"], sub["total"], strict=True)
        ]


@dataclass
class _Entry:
    stamp: tuple[tuple[float, int], tuple[float, int] | None]
    scores: RunScores


_lock = threading.Lock()
_cache: LRUCache[tuple[str, str], _Entry] = LRUCache(maxsize=16)  # runs; a million-prompt run is ~100 MB


def _stamp(store: ObjectStore, key: str) -> tuple[float, int] | None:
    info = next((i for i in store.list(key) if i.key == key), None)
    return None if info is None else (info.last_modified, info.size)


def _prompt_records(store: ObjectStore, run_id: str) -> dict[str, tuple[str, str | None, str]]:
    """prompt id -> (text, source, answer); empty when the run has no readable prompts.parquet (an import
    without texts): the scores are still worth showing."""
    try:
        return {p.prompt_id: (p.prompt, p.source, p.answer) for p in read_prompts(store, run_id)}
    except (ObjectNotFound, EventSchemaError):
        return {}


def load_run_scores(store: ObjectStore, state_prefix: str, run_id: str) -> RunScores:
    """The run's scores with prompt texts, cached until the snapshot or the prompts object changes."""
    key = snapshot_key(state_prefix, run_id)
    snap_stamp = _stamp(store, key)
    if snap_stamp is None:
        if not store.exists(run_json_key(run_id)):
            raise RunNotFound(f"no run {run_id!r}")
        raise RunNotScored(f"run {run_id!r} has no scores yet (no completed epoch ingested by the scorer)")
    stamp = (snap_stamp, _stamp(store, prompts_key(run_id)))
    with _lock:
        hit = _cache.get((store.uri, run_id))
        if hit and hit.stamp == stamp:
            return hit.scores
    scores = RunScores(read_scores_snapshot(store, state_prefix, run_id), _prompt_records(store, run_id))
    with _lock:
        _cache[(store.uri, run_id)] = _Entry(stamp, scores)
    return scores
