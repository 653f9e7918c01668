"""Runs as the query API and the web view list them: run.json plus the scorer's status (progress)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from limr.curation.early import run_epochs
from limr.curation.state import status_key
from limr.events.run import list_runs, read_run_meta
from limr.store import ObjectNotFound, ObjectStore
from limr.view.scores import RunNotFound


def read_run_status(store: ObjectStore, state_prefix: str, run_id: str) -> dict[str, Any] | None:
    """The scorer's status summary of the run (limr serve scorer writes it after each pass), or None while
    the scorer has not seen the run."""
    try:
        status: dict[str, Any] = json.loads(store.get(status_key(state_prefix, run_id)))
    except ObjectNotFound:
        return None
    return status


@dataclass
class RunRow:
    """One run with its progress: what run.json says and how far the scorer has counted it."""

    run_id: str
    created_at: str | None = None
    model: str | None = None
    source: str | None = None
    error: str | None = None  # run.json unreadable
    epochs_planned: int | None = None  # run.json's planned epochs, when it says
    status: dict[str, Any] = field(default_factory=dict)  # the scorer's status; empty: not scored yet

    @property
    def scored(self) -> bool:
        return bool(self.status)

    @property
    def progress(self) -> float | None:
        """Share of the planned epochs complete (1.0 once finished); None when the plan is unknown."""
        if self.status.get("finished"):
            return 1.0
        if not self.epochs_planned:
            return None
        return min(1.0, self.status.get("epochs_complete", 0) / self.epochs_planned)


def run_row(store: ObjectStore, state_prefix: str, run_id: str) -> RunRow:
    """A run's row; RunNotFound when it has no run.json, an `error` when its run.json is unreadable."""
    try:
        meta = read_run_meta(store, run_id)
    except ObjectNotFound:
        raise RunNotFound(f"no run {run_id!r}") from None
    except ValueError as e:
        return RunRow(run_id=run_id, error=f"unreadable run.json: {e}")
    row = RunRow(
        run_id=run_id,
        created_at=meta.created_at.isoformat(),
        model=meta.model,
        source=meta.source,
        epochs_planned=run_epochs(store, run_id),
    )
    row.status = read_run_status(store, state_prefix, run_id) or {}
    return row


def run_rows(store: ObjectStore, state_prefix: str, run_ids: list[str] | None = None) -> list[RunRow]:
    """Every run (or those of `run_ids`, a listing the caller already holds), newest first."""
    rows = []
    for run_id in list_runs(store) if run_ids is None else run_ids:
        try:
            rows.append(run_row(store, state_prefix, run_id))
        except RunNotFound:  # deleted between the listing and the read
            continue
    return sorted(rows, key=lambda r: r.created_at or "", reverse=True)
