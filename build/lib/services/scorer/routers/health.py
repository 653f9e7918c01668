"""Liveness, readiness and Prometheus metrics of the scorer."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.scorer.dependencies import IngestorDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up (the ingestion thread may still be catching up)."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(ingestor: IngestorDep) -> JSONResponse:
    """Ready after one complete pass over the store; 503 while the store is unreachable."""
    if ingestor.ready.is_set() and ingestor.last_error is None:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "not ready", "error": ingestor.last_error}, status_code=503)


@router.get("/metrics")
def metrics(ingestor: IngestorDep) -> Response:
    return Response(generate_latest(ingestor.metrics.registry), media_type=CONTENT_TYPE_LATEST)
