"""`limr datasets ...`: a small client of the curated-dataset query API (`limr serve datasets`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from limr.cli.common import JsonOpt, fields_table, print_result, rows_table, when
from limr.data.api_client import DEFAULT_URL, DatasetAPIError, DatasetsClient


def _call(ctx: typer.Context, method: str, path: str, **kw: Any) -> Any:
    """One API call of a command: its response, or the client's error on stderr and exit code 1."""
    client: DatasetsClient = ctx.obj
    try:
        return client.call(method, path, **kw)
    except DatasetAPIError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None


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
    # no --token: LIMR_API_TOKEN, else LIMR_READ_TOKEN, or the Secret files their _FILE twins name (limr.secrets)
    ctx.obj = DatasetsClient(url, token, write=True)
    ctx.call_on_close(ctx.obj.close)


@group.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Datasets with their version counts."""
    items = _call(ctx, "GET", "/v1/datasets", params={"limit": 1000}).json()["items"]
    print_result(items, as_json, lambda v: rows_table(v, {"name": "NAME", "versions": "VERSIONS", "latest": "LATEST"}))


@group.command("versions")
def versions(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Published versions of a dataset: provisional (predicted by early LIM), interim or final."""
    body = _call(ctx, "GET", f"/v1/datasets/{name}/versions").json()
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
    print_result(items, as_json, lambda v: rows_table(v, columns, name))


@group.command("show")
def show(ctx: typer.Context, name: str, version: str = typer.Argument("latest"), as_json: JsonOpt = False) -> None:
    """A version's manifest (run, epochs, policy, counts, histogram, content hash)."""
    m = _call(ctx, "GET", f"/v1/datasets/{name}/versions/{version}").json()

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
        return fields_table(pairs, f"{m.get('name')} v{m.get('version')}")

    print_result(m, as_json, table)


@group.command("download")
def download(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="NAME or NAME@VERSION (a number or latest)."),
    version: str = typer.Option(None, "--version", "-v", help="Version (default: latest, or NAME@VERSION)."),
    fmt: str = typer.Option(
        "jsonl",
        "--format",
        help="jsonl | parquet (the version's files), verl (verl's RL parquet), hf (a datasets folder)",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output file or, for hf, folder (written atomically)."),  # noqa: B008
) -> None:
    """Download a version's records, in limr's formats or the trainer's (streamed; nothing appears until complete)."""
    from limr.curation.export import EXPORT_FORMATS, ExportError, write_hf, write_verl

    if "@" in name:
        name, at = name.rsplit("@", 1)
        if version is not None and version != at:
            typer.echo(f"error: NAME@{at} and --version {version} disagree", err=True)
            raise typer.Exit(2)
        version = at
    version = version or "latest"
    if fmt not in ("jsonl", "parquet", *EXPORT_FORMATS):
        typer.echo(f"error: --format must be jsonl, parquet, verl or hf, got {fmt!r}", err=True)
        raise typer.Exit(2)
    client: DatasetsClient = ctx.obj
    target = out if fmt in ("jsonl", "parquet") else out.with_name(f".{out.name}.jsonl.part")
    tmp = target.with_name(f".{target.name}.part")
    path = f"/v1/datasets/{name}/versions/{version}/data"
    try:
        with client.stream("GET", path, params={"format": "jsonl" if fmt in EXPORT_FORMATS else fmt}) as resp:
            with open(tmp, "wb") as f:
                for chunk in resp.iter_bytes():
                    f.write(chunk)
        tmp.replace(target)
        if fmt in EXPORT_FORMATS:
            records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines() if line.strip()]
            if fmt == "verl":
                write_verl(records, out, name)
            else:
                write_hf(records, out)
    except DatasetAPIError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    except ExportError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    finally:
        tmp.unlink(missing_ok=True)
        if target != out:
            target.unlink(missing_ok=True)
    typer.echo(f"wrote {out}")


@group.command("diff")
def diff(ctx: typer.Context, name: str, a: int, b: int, as_json: JsonOpt = False) -> None:
    """Prompts added/removed from version A to version B."""
    d = _call(ctx, "GET", f"/v1/datasets/{name}/diff", params={"from": a, "to": b}).json()

    def table(d: dict[str, Any]) -> Table:
        more = " (lists truncated)" if d.get("truncated") else ""
        pairs = [("added", d["added_count"]), ("removed", d["removed_count"]), ("kept", d["kept_count"])]
        pairs += [("added ids", " ".join(d["added"][:20])), ("removed ids", " ".join(d["removed"][:20]))]
        return fields_table(pairs, f"{d['name']} v{d['from_version']} -> v{d['to_version']}{more}")

    print_result(d, as_json, table)


@group.command("publish")
def publish(
    ctx: typer.Context,
    name: str,
    run: str = typer.Option(..., "--run"),
    strategy: str = typer.Option("lim", help="lim, rand, linear, variance, learnability or pass-band"),
    threshold: float = typer.Option(None),
    top_k: int = typer.Option(None, "--top-k"),
    fraction: float = typer.Option(None),
    seed: int = typer.Option(0),
    max_epochs: int = typer.Option(None, "--max-epochs"),
    band_lo: float = typer.Option(None, "--band-lo", help="pass-band: lower edge (default 0.1)."),
    band_hi: float = typer.Option(None, "--band-hi", help="pass-band: upper edge (default 0.95)."),
    band_epochs: int = typer.Option(None, "--band-epochs", help="pass-band: epochs averaged (default 1)."),
) -> None:
    """Publish a new version from a run's scores (needs LIMR_API_TOKEN)."""
    body = {"run": run, "strategy": strategy, "threshold": threshold, "top_k": top_k, "fraction": fraction}
    body |= {"seed": seed, "max_epochs": max_epochs, "band_lo": band_lo, "band_hi": band_hi}
    body |= {"band_epochs": band_epochs}
    resp = _call(ctx, "POST", f"/v1/datasets/{name}/versions", json={k: v for k, v in body.items() if v is not None})
    m = resp.json()
    what = "published" if resp.status_code == 201 else "unchanged, existing"
    typer.echo(f"{what} {m['name']} v{m['version']}: {m['counts']['selected']} prompts ({m['content_hash']})")


@group.command("runs")
def runs(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Runs in the store."""
    items = _call(ctx, "GET", "/v1/runs", params={"limit": 1000}).json()["items"]
    cols = {"run_id": "RUN", "created_at": "CREATED", "model": "MODEL", "source": "SOURCE"}
    print_result(items, as_json, lambda v: rows_table(v, cols))


@group.command("run")
def run(ctx: typer.Context, run_id: str, as_json: JsonOpt = False) -> None:
    """One run's progress (events, epochs, prompts, last update)."""
    p = _call(ctx, "GET", f"/v1/runs/{run_id}").json()
    keys = ("scored", "events", "objects", "quarantined", "prompts", "epochs_seen", "epochs_complete")
    pairs = [(k.replace("_", " "), p.get(k)) for k in keys]
    pairs += [("last update", when(p.get("last_update"))), ("model", p.get("model")), ("source", p.get("source"))]
    print_result(p, as_json, lambda p: fields_table(pairs, f"run {p['run_id']}"))


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
    page = _call(ctx, "GET", f"/v1/runs/{run_id}/scores", params={k: v for k, v in params.items() if v is not None})

    def table(p: dict[str, Any]) -> Table:
        shown = f"{len(p['items'])} of {p['total']}"
        title = f"LIM scores of run {p['run_id']} ({p['epochs']} epochs; {shown})"
        rows = [{**i, "prompt": _short(i.get("prompt"))} for i in p["items"]]
        columns = {"prompt_id": "ID", "score": "SCORE", "source": "SOURCE", "prompt": "PROMPT", "left_out": "LEFT OUT"}
        return rows_table(rows, columns, title)

    print_result(page.json(), as_json, table)


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
    t = _call(ctx, "GET", f"/v1/runs/{run_id}/prompts/{prompt_id}").json()

    def table(t: dict[str, Any]) -> Table:
        r_avg = t.get("r_avg") or []
        rows = [
            {"epoch": e, "correct": c, "total": n, "accuracy": a, "r_avg": r_avg[e] if e < len(r_avg) else None}
            for e, (c, n, a) in enumerate(zip(t["correct"], t["total"], t["accuracy"], strict=True))
        ]
        score = "left out: " + str(t["left_out"]) if t.get("score") is None else f"LIM score {t['score']:.4f}"
        title = f"{t['prompt_id']} of run {t['run_id']} ({score}; source {t.get('source') or '-'})\n{t.get('prompt')}"
        cols = {"epoch": "EPOCH", "correct": "CORRECT", "total": "SAMPLES", "accuracy": "ACCURACY", "r_avg": "R_AVG"}
        return rows_table(rows, cols, title)

    print_result(t, as_json, table)
