"""The curated-dataset query API: app, routers, and the mapping of named errors to HTTP statuses."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from limr.curation.policy import PolicyError
from limr.curation.publish import DatasetNotFound
from limr.curation.state import CheckpointError
from limr.store import InvalidKey, ObjectNotFound, ObjectStore, StoreError, open_store
from limr.view.scores import RunNotFound, RunNotScored
from services.datasets.cache import Listings, VersionCache
from services.datasets.config import DatasetsSettings, get_settings
from services.datasets.dependencies import ApiMetrics, known_query_only
from services.datasets.routers import datasets, health, runs, ui

_ERRORS: tuple[tuple[type[Exception], int], ...] = (
    (DatasetNotFound, 404),
    (RunNotFound, 404),
    (RunNotScored, 409),
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
        dependencies=[Depends(known_query_only)],
        title="limr datasets",
        version="1",
        description="Runs, LIM scores and curated dataset versions in a limr object store.",
        lifespan=lifespan,
    )
    app.state.metrics = ApiMetrics()
    app.state.cache = VersionCache()
    app.state.listings = Listings((settings or get_settings()).listing_ttl_s)
    if store is not None:
        app.state.store = store
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings
    app.include_router(health.router)
    app.include_router(runs.router)
    app.include_router(datasets.router)
    app.include_router(ui.router)

    for exc_type, code in _ERRORS:
        app.add_exception_handler(exc_type, _handler(code))
    app.add_exception_handler(StarletteHTTPException, _http_error)

    app.add_middleware(_Observe, metrics=app.state.metrics)
    app.openapi = lambda: _openapi(app, settings or get_settings())  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI, settings: DatasetsSettings) -> dict:
    """The spec of this deployment: with reads open (no LIMR_READ_TOKEN, the default), the read routes declare
    no security and no 401, since they enforce none; writes keep theirs (401 without a token, 403 when off)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        if settings.read_token is None:
            for path in schema.get("paths", {}).values():
                op = path.get("get")
                if op is not None:
                    op.pop("security", None)
                    op.get("responses", {}).pop("401", None)
        app.openapi_schema = schema
    return app.openapi_schema


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's 405 names only the first such route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if route.matches(request.scope)[0] != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


class _Observe:
    """Request count and latency by route template: a plain ASGI middleware (Starlette's `BaseHTTPMiddleware`
    costs a task and a stream per request, a large share of a cached read's time)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], path, str(status)).inc()
            self.metrics.latency.labels(scope["method"], path).observe(time.perf_counter() - t0)


def _handler(code: int) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        if ui.is_page(request):
            return ui.error_page(request, code, str(exc))
        return JSONResponse({"detail": str(exc)}, status_code=code)

    return handle


async def _http_error(request: Request, exc: Exception) -> Response:
    """The web view answers errors with a page (401: the sign-in form); the API keeps FastAPI's JSON."""
    if ui.is_page(request) and isinstance(exc, StarletteHTTPException):
        return ui.error_page(request, exc.status_code, str(exc.detail))
    if isinstance(exc, StarletteHTTPException) and exc.status_code == 405:
        exc.headers = {**(exc.headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return await http_exception_handler(request, exc)  # type: ignore[arg-type]
