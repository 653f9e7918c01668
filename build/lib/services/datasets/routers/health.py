"""Liveness, readiness (store reachable) and Prometheus metrics of the query API."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from limr.store import StoreError
from services.datasets.dependencies import MetricsDep, StoreDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "the object store is unreachable"}})
def readyz(store: StoreDep) -> JSONResponse:
    try:
        store.exists("datasets/.readyz-probe")
    except StoreError as e:
        return JSONResponse({"status": "not ready", "error": str(e)}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(m: MetricsDep) -> Response:
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
