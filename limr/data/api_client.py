"""The one client of limr's curated-dataset API (`limr serve datasets`).

Every caller goes through it: prompt pools read by reference (limr.data.api_pool), the learner's early-LIM switch
(limr.learner.early_switch), the experiment harness (limr.experiment.services) and `limr datasets`. So the base URL,
the token, the timeout and the errors are decided here once:

- the base URL: the argument, else $LIMR_DATASETS_URL, else the local default;
- the bearer token: the argument, else the environment through `limr.secrets.env_secret` (a variable or the
  Secret file its `_FILE` twin names): a reader prefers LIMR_READ_TOKEN (least privilege), a writer LIMR_API_TOKEN;
- the token is sent only to the client's own base URL (same scheme, host and port): a URL of another server, given
  as a full `http(s)://` address, is fetched without it, and redirects are never followed, so a token never leaks
  to a host that a dataset reference or a server's answer names;
- one error, `DatasetAPIError`, naming what was asked, the URL, the HTTP status and the API's `detail`.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from limr.secrets import env_secret

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "LIMR_DATASETS_URL"
READ_TOKEN_ENV = "LIMR_READ_TOKEN"
WRITE_TOKEN_ENV = "LIMR_API_TOKEN"


class DatasetAPIError(RuntimeError):
    """A dataset-API call that failed (server unreachable, or an HTTP error status). `status` is the HTTP status,
    None when no answer came."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def api_url(base_url: str | None = None) -> str:
    """The API base URL: the argument, else $LIMR_DATASETS_URL, else the local default (no trailing slash)."""
    return (base_url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")


def env_token(write: bool = False) -> str | None:
    """The bearer token of the environment: for reads the reader token, else the writer's (which may read too);
    for writes the writer token, else the reader's (the API then answers 403, which names the problem)."""
    first, second = (WRITE_TOKEN_ENV, READ_TOKEN_ENV) if write else (READ_TOKEN_ENV, WRITE_TOKEN_ENV)
    return env_secret(first) or env_secret(second)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


class _BaseURLBearer(httpx.Auth):
    """`Authorization: Bearer` on requests to one origin only."""

    def __init__(self, token: str, base: httpx.URL) -> None:
        self.token, self.origin = token, _origin(base)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if _origin(request.url) == self.origin:
            request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


class DatasetsClient:
    """A client of one dataset API. Use it as a context manager (or call `close`)."""

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        write: bool = False,
        timeout_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`token` None: from the environment (`env_token(write)`). `transport`: tests pass a mock."""
        self.base_url = api_url(base_url)
        token = token if token is not None else env_token(write)
        auth = _BaseURLBearer(token, httpx.URL(self.base_url)) if token else None
        self.http = httpx.Client(
            base_url=self.base_url, auth=auth, timeout=timeout_s, transport=transport, follow_redirects=False
        )

    def __enter__(self) -> DatasetsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def sends_token_to(self, url: str) -> bool:
        """Whether a request to `url` (a path under the base URL, or a full URL) would carry the token."""
        auth = self.http.auth
        return isinstance(auth, _BaseURLBearer) and _origin(httpx.URL(self.base_url).join(url)) == auth.origin

    # ---- the HTTP edge ------------------------------------------------------------------------------------
    def request(
        self, method: str, url: str, *, what: str | None = None, missing_ok: bool = False, **kw: Any
    ) -> httpx.Response | None:
        """`method` on `url` (a path under the base URL, or a full URL); the response, or None for a 404 when
        `missing_ok`. Raises DatasetAPIError otherwise, its message starting with `what` (default: method, url)."""
        what = what or f"{method} {url}"
        resp = self._send(method, url, what, **kw)
        if missing_ok and resp.status_code == 404:
            return None
        check(resp, what)
        return resp

    def call(self, method: str, url: str, *, what: str | None = None, **kw: Any) -> httpx.Response:
        """`request` for a resource that must exist (a 404 is an error too)."""
        what = what or f"{method} {url}"
        resp = self._send(method, url, what, **kw)
        check(resp, what)
        return resp

    def _send(self, method: str, url: str, what: str, **kw: Any) -> httpx.Response:
        try:
            return self.http.request(method, url, **kw)
        except httpx.HTTPError as e:
            raise DatasetAPIError(f"{what}: dataset API {self.base_url} unreachable: {e}") from None

    @contextmanager
    def stream(self, method: str, url: str, *, what: str | None = None, **kw: Any) -> Iterator[httpx.Response]:
        """A streamed response (large downloads), checked before its body is read."""
        try:
            with self.http.stream(method, url, **kw) as resp:
                if resp.status_code >= 300:
                    resp.read()
                    check(resp, what or f"{method} {url}")
                yield resp
        except httpx.HTTPError as e:
            raise DatasetAPIError(f"{what or url}: dataset API {self.base_url} unreachable: {e}") from None

    # ---- the API's resources ------------------------------------------------------------------------------
    def version_listing(self, name: str, *, missing_ok: bool = False) -> dict[str, Any] | None:
        """GET /v1/datasets/{name}/versions: {"versions": [numbers], "items": [entries]}; None: no such dataset
        (with `missing_ok`)."""
        resp = self.request("GET", f"/v1/datasets/{name}/versions", what=f"versions of {name}", missing_ok=missing_ok)
        return None if resp is None else dict(resp.json())

    def versions(self, name: str, *, missing_ok: bool = False) -> list[int]:
        """The dataset's version numbers, oldest first ([] for a dataset that does not exist, with `missing_ok`)."""
        listing = self.version_listing(name, missing_ok=missing_ok)
        return [] if listing is None else [int(v) for v in listing["versions"]]

    def manifest(self, name: str, version: int | str) -> dict[str, Any]:
        return dict(self.call("GET", f"/v1/datasets/{name}/versions/{version}", what=f"{name} v{version}").json())

    def data(self, name: str, version: int | str, what: str | None = None) -> str:
        """A version's records as JSONL text."""
        path = f"/v1/datasets/{name}/versions/{version}/data"
        return self.call("GET", path, params={"format": "jsonl"}, what=what or f"{name} v{version}").text

    def publish(self, name: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """POST /v1/datasets/{name}/versions (needs the writer token): the manifest, and whether it is a new version
        (False: the same selection as the newest version, which the API returns unchanged)."""
        resp = self.call("POST", f"/v1/datasets/{name}/versions", json=body, what=f"publish {name}")
        return dict(resp.json()), resp.status_code == 201


def check(resp: httpx.Response, what: str) -> None:
    """Raise DatasetAPIError for an HTTP error status, with the API's `detail` (or the body's start); and for a
    redirect, which the API never sends and the client never follows (it could carry the token elsewhere)."""
    if resp.status_code < 300:
        return
    if resp.status_code < 400:
        where = resp.headers.get("Location")
        msg = f"{what}: HTTP {resp.status_code} from {resp.request.url}: redirect to {where} not followed"
        raise DatasetAPIError(msg, resp.status_code)
    try:
        body = resp.json()
        detail = body.get("detail") if isinstance(body, dict) else body
    except ValueError:
        detail = resp.text[:300]
    raise DatasetAPIError(f"{what}: HTTP {resp.status_code} from {resp.request.url}: {detail}", resp.status_code)
