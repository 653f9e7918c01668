"""What the scorer is doing: tracked runs, their progress and quarantined objects."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from services.scorer.dependencies import IngestorDep
from services.scorer.ingest import run_status

router = APIRouter(prefix="/v1", tags=["status"])


@router.get("/status")
def status(ingestor: IngestorDep) -> dict:
    runs = [run_status(state, ingestor.epochs_complete(state)) for _, state in sorted(ingestor.states.items())]
    failing = {run_id: f.to_dict() for run_id, f in sorted(ingestor.failing.runs.items())}
    return {"ready": ingestor.ready.is_set(), "last_error": ingestor.last_error, "runs": runs, "failing": failing}


@router.get("/runs/{run_id}/quarantine")
def quarantine(run_id: str, ingestor: IngestorDep) -> list[dict]:
    state = ingestor.states.get(run_id)
    if state is None:
        raise HTTPException(404, f"run {run_id!r} is not tracked by this scorer")
    return [r.to_dict() for r in sorted(state.quarantined.values(), key=lambda r: r.key)]
