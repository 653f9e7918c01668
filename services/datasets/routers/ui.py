"""The web view (`/ui/`): server-rendered pages over the same data and auth as the read API. The data shaping
lives in limr.view; here are only routes, templates and the static files (plotly.js from its package)."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from functools import lru_cache
from importlib import resources
from importlib.metadata import version as package_version
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from limr.curation.policy import DATASET_NAME_RE
from limr.curation.publish import list_versions
from limr.events.schema import RUN_ID_RE
from limr.view import figures
from limr.view.datasets import datasets_of_run, datasets_overview, diff_versions, version_rows
from limr.view.runs import run_row, run_rows
from limr.view.scores import RunNotScored, load_run_scores
from services.datasets.dependencies import (
    TOKEN_COOKIE,
    CacheDep,
    ListingsDep,
    SettingsDep,
    StoreDep,
    reader_token_ok,
    require_read,
)

_HERE = FsPath(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=_HERE / "templates")
templates.env.globals["plotly_version"] = package_version("plotly")
templates.env.filters["spark"] = figures.sparkline

router = APIRouter(prefix="/ui", include_in_schema=False)
pages = APIRouter(dependencies=[Depends(require_read)])

RunId = Annotated[str, Path(pattern=RUN_ID_RE.pattern)]
Name = Annotated[str, Path(pattern=DATASET_NAME_RE.pattern)]
PAGE = 50


def _render(request: Request, template: str, **ctx: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, ctx)


@pages.get("/", response_class=HTMLResponse)
def index(
    request: Request, store: StoreDep, settings: SettingsDep, cache: CacheDep, listings: ListingsDep
) -> HTMLResponse:
    """Runs with their progress, and every dataset's latest version (listings up to `listing_ttl_s` old)."""
    runs = run_rows(store, settings.state_prefix, listings.runs(store))
    datasets = datasets_overview(store, cache.read_manifest, listings.datasets(store))
    return _render(request, "index.html", runs=runs, datasets=datasets)


@pages.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    cache: CacheDep,
    run_id: RunId,
    threshold: Annotated[float, Query(ge=-1.0, le=1.0, allow_inf_nan=False)] = 0.6,
) -> HTMLResponse:
    """The run's LIM picture: r_avg, the score histogram, and a threshold control with the prompts it keeps."""
    row = run_row(store, settings.state_prefix, run_id)
    published = datasets_of_run(store, run_id, cache.read_manifest)
    ctx: dict[str, Any] = {"run": row, "published": published, "threshold": threshold, "scores": None}
    try:
        scores = load_run_scores(store, settings.state_prefix, run_id)
    except RunNotScored as e:
        ctx["not_scored"] = str(e)
    else:
        table = scores.threshold_table()
        ctx.update(
            scores=scores,
            kept=scores.kept_at(threshold),
            thresholds=table,
            r_avg_fig=figures.r_avg_figure(scores.r_avg),
            hist_fig=figures.histogram_figure(scores.histogram(), threshold),
            kept_fig=figures.kept_curve_figure(table, scores.scored),
        )
    return _render(request, "run.html", **ctx)


@pages.get("/runs/{run_id}/prompts", response_class=HTMLResponse)
def prompts_page(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    run_id: RunId,
    q: Annotated[str | None, Query(max_length=500)] = None,
    source: Annotated[str | None, Query(max_length=500)] = None,
    min_score: Annotated[str | None, Query(max_length=32, description="a number; empty: no bound")] = None,
    max_score: Annotated[str | None, Query(max_length=32, description="a number; empty: no bound")] = None,
    sort: Annotated[Literal["score", "-score", "prompt_id"], Query()] = "-score",
    offset: Annotated[int, Query(ge=0, le=10**12)] = 0,
) -> HTMLResponse:
    """Per-prompt trajectories (sparklines) with text, score and source; searchable and filterable. The
    filter form sends empty fields for bounds left blank: they mean no bound."""
    lo, hi = _bound("min_score", min_score), _bound("max_score", max_score)
    scores = load_run_scores(store, settings.state_prefix, run_id)
    rows = scores.rows(lo, hi, False, q or None, source or None, sort)
    shown = rows[offset : offset + PAGE]
    items = [
        {**scores.item(i), "accuracy": acc} for i, acc in zip(shown.tolist(), scores.accuracy_rows(shown), strict=True)
    ]
    params = {"q": q, "source": source, "min_score": lo, "max_score": hi, "sort": sort}
    base = "&".join(f"{k}={quote(str(v))}" for k, v in params.items() if v not in (None, ""))
    return _render(
        request, "prompts.html", run_id=run_id, scores=scores, items=items, total=len(rows), offset=offset,
        page=PAGE, params=params, base=base, r_avg=scores.r_avg,
    )  # fmt: skip


def _bound(field: str, value: str | None) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        x = float(value)
    except ValueError:
        x = math.nan
    if not math.isfinite(x):
        raise HTTPException(422, f"{field}: {value!r} is not a finite number")
    return x


@pages.get("/runs/{run_id}/prompts/{prompt_id}", response_class=HTMLResponse)
def prompt_page(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    run_id: RunId,
    prompt_id: Annotated[str, Path(min_length=1, max_length=512)],
) -> HTMLResponse:
    """One prompt: text, answer, source, per-epoch counts and its trajectory against r_avg."""
    t = load_run_scores(store, settings.state_prefix, run_id).trajectory(prompt_id)
    fig = figures.trajectory_figure(t["accuracy"], t["r_avg"], prompt_id)  # type: ignore[arg-type]
    return _render(request, "prompt.html", run_id=run_id, t=t, fig=fig)


@pages.get("/datasets/{name}", response_class=HTMLResponse)
def dataset_page(request: Request, store: StoreDep, cache: CacheDep, name: Name) -> HTMLResponse:
    """A dataset's versions (status, epochs, size), with a form to compare two of them."""
    versions = list_versions(store, name)
    if not versions:
        raise HTTPException(404, f"no dataset {name!r}")
    rows = version_rows(store, name, versions, cache.read_manifest)
    return _render(request, "dataset.html", name=name, rows=rows)


@pages.get("/datasets/{name}/versions/{version}", response_class=HTMLResponse)
def version_page(
    request: Request, store: StoreDep, cache: CacheDep, name: Name, version: Annotated[int, Path(ge=1, le=10**9)]
) -> HTMLResponse:
    """A version's manifest, its score histogram and download links."""
    if version not in list_versions(store, name):
        raise HTTPException(404, f"dataset {name!r} has no version {version}")
    row = version_rows(store, name, [version], cache.read_manifest)[0]
    hist = row.manifest.get("score_histogram")
    threshold = (row.manifest.get("policy") or {}).get("threshold")
    fig = figures.histogram_figure(hist, threshold if threshold is not None else -2.0) if hist else None
    pretty = json.dumps(row.manifest, indent=2)
    return _render(request, "version.html", row=row, fig=fig, manifest_json=pretty)


@pages.get("/datasets/{name}/diff", response_class=HTMLResponse)
def diff_page(
    request: Request,
    store: StoreDep,
    name: Name,
    from_version: Annotated[int, Query(alias="from", ge=1, le=10**9)],
    to_version: Annotated[int, Query(alias="to", ge=1, le=10**9)],
) -> HTMLResponse:
    """Prompts added and removed between two versions, with their text and score."""
    versions = list_versions(store, name)
    for v in (from_version, to_version):
        if v not in versions:
            raise HTTPException(404, f"dataset {name!r} has no version {v} (versions: {versions})")
    d = diff_versions(store, name, from_version, to_version, ["prompt", "source", "score"])
    return _render(request, "diff.html", name=name, a=from_version, b=to_version, d=d, versions=versions)


def is_page(request: Request) -> bool:
    """A request for a web-view page (its errors are pages too), not for the API or a static file."""
    path = request.url.path
    return (path == "/ui" or path.startswith("/ui/")) and not path.startswith("/ui/static/")


def error_page(request: Request, status: int, detail: str) -> Response:
    """An error as a page; a missing or wrong token sends the browser to the sign-in form."""
    if status == 401:
        return RedirectResponse(f"/ui/login?next={quote(request.url.path)}", status_code=303)
    return templates.TemplateResponse(request, "error.html", {"status": status, "detail": detail}, status_code=status)


# -- sign-in (only when reads need a token) and static files ------------------------------------------------
@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/ui/") -> HTMLResponse:  # noqa: A002 - the conventional name
    return _render(request, "login.html", next=_local(next), failed=False)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, settings: SettingsDep) -> Response:
    """Check the token and keep it in an HttpOnly, SameSite=Strict cookie that reads accept like the header."""
    form = parse_qs((await request.body()).decode(errors="replace"))
    token, nxt = (form.get("token") or [""])[0], _local((form.get("next") or ["/ui/"])[0])
    if settings.read_token is None or not reader_token_ok(token, settings):
        return templates.TemplateResponse(request, "login.html", {"next": nxt, "failed": True}, status_code=401)
    resp = RedirectResponse(nxt, status_code=303)
    resp.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", path="/")
    return resp


@router.post("/logout")
def logout() -> Response:
    resp = RedirectResponse("/ui/login", status_code=303)
    resp.delete_cookie(TOKEN_COOKIE, path="/")
    return resp


def _local(path: str) -> str:
    """Only redirect within this site (an open redirect would let a link send a signed-in user anywhere)."""
    return path if path.startswith("/ui/") and not path.startswith("//") else "/ui/"


@lru_cache
def _static(name: str) -> tuple[bytes, bytes, str]:
    """(body, gzipped body, ETag) of a static file: plotly.min.js from the plotly package, ours from static/."""
    if name == "plotly.min.js":
        body = (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    else:
        body = (_HERE / "static" / name).read_bytes()
    return body, gzip.compress(body, 6), '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


_MEDIA = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@router.get("/static/{name}")
def static(
    name: Literal["plotly.min.js", "ui.js", "ui.css"],
    request: Request,
    v: Annotated[str | None, Query(max_length=64, description="cache buster (the package version)")] = None,
) -> Response:
    """Served from the packages on disk, never a CDN (the view works air-gapped); gzip when accepted."""
    body, gz, etag = _static(name)
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(
            gz, media_type=_MEDIA[name[name.rindex(".") :]], headers={**headers, "Content-Encoding": "gzip"}
        )
    return Response(body, media_type=_MEDIA[name[name.rindex(".") :]], headers=headers)


@router.get("", include_in_schema=False)
def root() -> Response:
    return RedirectResponse("/ui/", status_code=307)


router.include_router(pages)
