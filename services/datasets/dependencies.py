"""Dependencies of the query API: settings, the store client, bearer-token auth, request metrics."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.dependencies.utils import get_flat_dependant
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import SecretStr

from limr.store import ObjectStore
from services.datasets.cache import Listings, VersionCache
from services.datasets.config import DatasetsSettings, get_settings

# The web view's sign-in keeps the token in this cookie (HttpOnly, SameSite=Strict); reads accept it like
# the Authorization header, so a browser can follow the view's links (downloads included).
TOKEN_COOKIE = "limr_token"
_bearer = HTTPBearer(auto_error=False, description="Bearer token (LIMR_API_TOKEN for writes)")


class ApiMetrics:
    """`limr_datasets_*` request counters and latency histograms, on the app's own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "limr_datasets_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "limr_datasets_request_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.published = Counter(
            "limr_datasets_published", "Versions published through the API.", ["dataset"], registry=self.registry
        )


def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


def get_metrics(request: Request) -> ApiMetrics:
    return request.app.state.metrics


def get_cache(request: Request) -> VersionCache:
    return request.app.state.cache


def get_listings(request: Request) -> Listings:
    return request.app.state.listings


StoreDep = Annotated[ObjectStore, Depends(get_store)]
ListingsDep = Annotated[Listings, Depends(get_listings)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
CacheDep = Annotated[VersionCache, Depends(get_cache)]


def _matches(given: str, *tokens: SecretStr | None) -> bool:
    return any(t is not None and hmac.compare_digest(given.encode(), t.get_secret_value().encode()) for t in tokens)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
SettingsDep = Annotated[DatasetsSettings, Depends(get_settings)]


def known_query_only(request: Request) -> None:
    """Refuse query parameters the route does not declare (a typo like `?limt=5` must not be silently
    ignored): 422 in FastAPI's validation-error shape, one entry per unknown parameter."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed = {p.alias for p in get_flat_dependant(dependant).query_params}
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise RequestValidationError(
            [
                {"type": "extra_forbidden", "loc": ("query", name), "msg": "unknown query parameter", "input": None}
                for name in unknown
            ]
        )


def reader_token_ok(given: str, settings: DatasetsSettings) -> bool:
    """The read or the write token (constant-time comparison)."""
    return _matches(given, settings.read_token, settings.api_token)


def require_read(request: Request, creds: Credentials, settings: SettingsDep) -> None:
    """Reads are open unless LIMR_READ_TOKEN is set; then the read or the write token is needed, as a bearer
    token or the web view's sign-in cookie."""
    if settings.read_token is None:
        return
    given = creds.credentials if creds is not None else request.cookies.get(TOKEN_COOKIE)
    if given is None:
        raise _unauthorized("missing bearer token")
    if not reader_token_ok(given, settings):
        raise _unauthorized("invalid bearer token")


def require_write(creds: Credentials, settings: SettingsDep) -> None:
    if settings.api_token is None:
        raise HTTPException(403, "writes are disabled on this server (no LIMR_API_TOKEN configured)")
    if creds is None:
        raise _unauthorized("missing bearer token")
    if not _matches(creds.credentials, settings.api_token):
        raise _unauthorized("invalid bearer token")
