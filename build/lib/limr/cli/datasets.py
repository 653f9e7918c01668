"""`limr datasets ...`: a small client of the curated-dataset query API (`limr serve datasets`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console, RenderableType
from rich.table import Table

from limr.secrets import env_secret

DEFAULT_URL = "http://127.0.0.1:8080"


class _Client:
    def __init__(self, url: str, token: str | None) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=60.0)

    def call(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        try:
            resp = self.http.request(method, path, **kw)
        except httpx.HTTPError as e:
            typer.echo(f"error: {self.http.base_url}{path}: {e}", err=True)
            raise typer.Exit(1) from None
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail")
            except ValueError:
                detail = resp.text
            typer.echo(f"error: {method} {path}: HTTP {resp.status_code}: {detail}", err=True)
            raise typer.Exit(1)
        return resp


JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON (for scripts) instead of a table.")]

group = typer.Typer(help="Query and publish curated datasets (client of `limr serve datasets`).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="datasets")


@group.callback()
def main(
    ctx: typer.Context,
    url: str = typer.Option(DEFAULT_URL, envvar="LIMR_DATASETS_URL", help="Base URL of the datasets API."),
    token: str = typer.Option(
        None, envvar="LIMR_API_TOKEN", show_default=False, help="Bearer token (env LIMR_API_TOKEN)."
    ),
) -> None:
    # LIMR_API_TOKEN_FILE / LIMR_READ_TOKEN_FILE: Secrets mounted as files (limr.secrets)
    ctx.obj = _Client(url, token or env_secret("LIMR_API_TOKEN") or env_secret("LIMR_READ_TOKEN"))


def _show(value: Any, as_json: bool, table: Callable[[Any], RenderableType]) -> None:
    """JSON for scripts, else a table for people (as `kubectl get` / `gh` print them)."""
    if as_json:
        typer.echo(json.dumps(value, indent=2))
    else:
        Console(highlight=False).print(table(value))


def _table(rows: list[dict[str, Any]], columns: dict[str, str], title: str | None = None) -> Table:
    """A table of `rows` with `columns` {key: header}; numbers right-aligned, floats to 4 places, None as '-'."""
    t = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    numeric = {k for k in columns if any(isinstance(r.get(k), int | float) for r in rows)}
    for key, header in columns.items():
        t.add_column(header, justify="right" if key in numeric else "left")
    for r in rows:
        t.add_row(*(_cell(r.get(k)) for k in columns))
    return t


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _when(unix: float | None) -> str | None:
    return None if unix is None else datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _fields(pairs: list[tuple[str, Any]], title: str) -> Table:
    """A two-column table of one object's fields, no header."""
    t = Table(title=title, box=None, show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    for k, v in pairs:
        t.add_row(k, _cell(v))
    return t


@group.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Datasets with their version counts."""
    items = ctx.obj.call("GET", "/v1/datasets", params={"limit": 1000}).json()["items"]
    _show(items, as_json, lambda v: _table(v, {"name": "NAME", "versions": "VERSIONS", "latest": "LATEST"}))


@group.command("versions")
def versions(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Published versions of a dataset: provisional (predicted by early LIM), interim or final."""
    body = ctx.obj.call("GET", f"/v1/datasets/{name}/versions").json()
    items = body.get("items") or [{"version": x} for x in body["versions"]]
    columns = {
        "version": "VERSION",
        "status": "STATUS",
        "epochs_used": "EPOCHS",
        "selected": "SELECTED",
        "predictor": "PREDICTOR",
        "predicted_precision": "PRED. PREC.",
        "run": "RUN",
    }
    _show(items, as_json, lambda v: _table(v, columns, name))


@group.command("show")
def show(ctx: typer.Context, name: str, version: str = typer.Argument("latest"), as_json: JsonOpt = False) -> None:
    """A version's manifest (run, epochs, policy, counts, histogram, content hash)."""
    m = ctx.obj.call("GET", f"/v1/datasets/{name}/versions/{version}").json()

    def table(m: dict[str, Any]) -> Table:
        counts = m.get("counts") or {}
        policy = " ".join(f"{k}={v}" for k, v in (m.get("policy") or {}).items() if v is not None)
        pairs = [
            ("run", m.get("run")),
            ("epochs used", m.get("epochs_used")),
            ("policy", policy),
            ("selected", counts.get("selected")),
            ("prompts scored", counts.get("prompts_scored")),
            ("prompts left out", counts.get("prompts_left_out")),
            ("content hash", m.get("content_hash")),
            ("created", m.get("created_at")),
            ("previous version", m.get("previous_version")),
        ]
        return _fields(pairs, f"{m.get('name')} v{m.get('version')}")

    _show(m, as_json, table)


@group.command("download")
def download(
    ctx: typer.Context,
    name: str,
    version: str = typer.Option("latest", "--version", "-v"),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl or parquet"),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (written atomically)."),  # noqa: B008
) -> None:
    """Download a version's records (streamed; the file appears only when complete)."""
    c: _Client = ctx.obj
    tmp = out.with_name(f".{out.name}.part")
    path = f"/v1/datasets/{name}/versions/{version}/data"
    try:
        with c.http.stream("GET", path, params={"format": fmt}) as resp:
            if resp.status_code >= 400:
                resp.read()
                c.call("GET", path, params={"format": fmt})  # reports the error and exits
            with open(tmp, "wb") as f:
                for chunk in resp.iter_bytes():
                    f.write(chunk)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    typer.echo(f"wrote {out}")


@group.command("diff")
def diff(ctx: typer.Context, name: str, a: int, b: int, as_json: JsonOpt = False) -> None:
    """Prompts added/removed from version A to version B."""
    d = ctx.obj.call("GET", f"/v1/datasets/{name}/diff", params={"from": a, "to": b}).json()

    def table(d: dict[str, Any]) -> Table:
        more = " (lists truncated)" if d.get("truncated") else ""
        pairs = [("added", d["added_count"]), ("removed", d["removed_count"]), ("kept", d["kept_count"])]
        pairs += [("added ids", " ".join(d["added"][:20])), ("removed ids", " ".join(d["removed"][:20]))]
        return _fields(pairs, f"{d['name']} v{d['from_version']} -> v{d['to_version']}{more}")

    _show(d, as_json, table)


@group.command("publish")
def publish(
    ctx: typer.Context,
    name: str,
    run: str = typer.Option(..., "--run"),
    strategy: str = typer.Option("lim", help="lim, rand or linear"),
    threshold: float = typer.Option(None),
    top_k: int = typer.Option(None, "--top-k"),
    fraction: float = typer.Option(None),
    seed: int = typer.Option(0),
    max_epochs: int = typer.Option(None, "--max-epochs"),
) -> None:
    """Publish a new version from a run's scores (needs LIMR_API_TOKEN)."""
    body = {"run": run, "strategy": strategy, "threshold": threshold, "top_k": top_k, "fraction": fraction}
    body |= {"seed": seed, "max_epochs": max_epochs}
    resp = ctx.obj.call("POST", f"/v1/datasets/{name}/versions", json={k: v for k, v in body.items() if v is not None})
    m = resp.json()
    what = "published" if resp.status_code == 201 else "unchanged, existing"
    typer.echo(f"{what} {m['name']} v{m['version']}: {m['counts']['selected']} prompts ({m['content_hash']})")


@group.command("runs")
def runs(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Runs in the store."""
    items = ctx.obj.call("GET", "/v1/runs", params={"limit": 1000}).json()["items"]
    cols = {"run_id": "RUN", "created_at": "CREATED", "model": "MODEL", "source": "SOURCE"}
    _show(items, as_json, lambda v: _table(v, cols))


@group.command("run")
def run(ctx: typer.Context, run_id: str, as_json: JsonOpt = False) -> None:
    """One run's progress (events, epochs, prompts, last update)."""
    p = ctx.obj.call("GET", f"/v1/runs/{run_id}").json()
    keys = ("scored", "events", "objects", "quarantined", "prompts", "epochs_seen", "epochs_complete")
    pairs = [(k.replace("_", " "), p.get(k)) for k in keys]
    pairs += [("last update", _when(p.get("last_update"))), ("model", p.get("model")), ("source", p.get("source"))]
    _show(p, as_json, lambda p: _fields(pairs, f"run {p['run_id']}"))


@group.command("scores")
def scores(
    ctx: typer.Context,
    run_id: str,
    min_score: float = typer.Option(None, "--min"),
    max_score: float = typer.Option(None, "--max"),
    search: str = typer.Option(None, "--search", "-q", help="Only prompts whose text or id contains this."),
    source: str = typer.Option(None, "--source", help="Only prompts of this source (e.g. synthetic/level3)."),
    sort: str = typer.Option("-score", help="score, -score or prompt_id"),
    limit: int = typer.Option(20),
    as_json: JsonOpt = False,
) -> None:
    """A run's LIM scores (completed epochs) with prompt text and source, filtered and sorted."""
    params = {"min_score": min_score, "max_score": max_score, "q": search, "source": source, "sort": sort}
    params["limit"] = limit
    page = ctx.obj.call("GET", f"/v1/runs/{run_id}/scores", params={k: v for k, v in params.items() if v is not None})

    def table(p: dict[str, Any]) -> Table:
        shown = f"{len(p['items'])} of {p['total']}"
        title = f"LIM scores of run {p['run_id']} ({p['epochs']} epochs; {shown})"
        rows = [{**i, "prompt": _short(i.get("prompt"))} for i in p["items"]]
        columns = {"prompt_id": "ID", "score": "SCORE", "source": "SOURCE", "prompt": "PROMPT", "left_out": "LEFT OUT"}
        return _table(rows, columns, title)

    _show(page.json(), as_json, table)


def _short(text: str | None, width: int = 60) -> str | None:
    """One line of at most `width` characters (prompt texts can be pages long)."""
    if text is None:
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@group.command("trajectory")
def trajectory(ctx: typer.Context, run_id: str, prompt_id: str, as_json: JsonOpt = False) -> None:
    """One prompt's learning trajectory: accuracy per epoch against the run's average (r_avg), its LIM score,
    text and source."""
    t = ctx.obj.call("GET", f"/v1/runs/{run_id}/prompts/{prompt_id}").json()

    def table(t: dict[str, Any]) -> Table:
        r_avg = t.get("r_avg") or []
        rows = [
            {"epoch": e, "correct": c, "total": n, "accuracy": a, "r_avg": r_avg[e] if e < len(r_avg) else None}
            for e, (c, n, a) in enumerate(zip(t["correct"], t["total"], t["accuracy"], strict=True))
        ]
        score = "left out: " + str(t["left_out"]) if t.get("score") is None else f"LIM score {t['score']:.4f}"
        title = f"{t['prompt_id']} of run {t['run_id']} ({score}; source {t.get('source') or '-'})\n{t.get('prompt')}"
        cols = {"epoch": "EPOCH", "correct": "CORRECT", "total": "SAMPLES", "accuracy": "ACCURACY", "r_avg": "R_AVG"}
        return _table(rows, cols, title)

    _show(t, as_json, table)
