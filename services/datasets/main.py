"""The curated-dataset query API: app, routers, and the mapping of named errors to HTTP statuses."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from limr.curation.checkpoint import CheckpointError
from limr.curation.policy import PolicyError
from limr.curation.publish import DatasetNotFound
from limr.store import InvalidKey, ObjectNotFound, ObjectStore, StoreError, open_store
from services.datasets.config import DatasetsSettings, get_settings
from services.datasets.dependencies import ApiMetrics
from services.datasets.routers import datasets, health, runs

_ERRORS: tuple[tuple[type[Exception], int], ...] = (
    (DatasetNotFound, 404),
    (ObjectNotFound, 404),
    (InvalidKey, 400),
    (PolicyError, 422),
    (CheckpointError, 503),
    (StoreError, 503),
)


def create_app(settings: DatasetsSettings | None = None, store: ObjectStore | None = None) -> FastAPI:
    """Build the app; it opens the configured store at start-up unless one is given (tests, embedding)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if store is not None:
            yield
            return
        opened = open_store((settings or get_settings()).store)
        app.state.store = opened
        try:
            yield
        finally:
            opened.close()

    app = FastAPI(
        title="limr datasets",
        version="1",
        description="Runs, LIM scores and curated dataset versions in a limr object store.",
        lifespan=lifespan,
    )
    app.state.metrics = ApiMetrics()
    if store is not None:
        app.state.store = store
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings
    app.include_router(health.router)
    app.include_router(runs.router)
    app.include_router(datasets.router)

    for exc_type, code in _ERRORS:
        app.add_exception_handler(exc_type, _handler(code))

    @app.middleware("http")
    async def observe(request: Request, call_next):  # noqa: ANN001, ANN202
        t0 = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            m: ApiMetrics = app.state.metrics
            m.requests.labels(request.method, path, str(status)).inc()
            m.latency.labels(request.method, path).observe(time.perf_counter() - t0)

    return app


def _handler(code: int):  # noqa: ANN202
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=code)

    return handle
