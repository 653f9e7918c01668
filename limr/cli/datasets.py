"""`limr datasets ...`: a small client of the curated-dataset query API (`limr serve datasets`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

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


def _echo(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2))


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Query and publish curated datasets (client of `limr serve datasets`).", no_args_is_help=True
    )
    app.add_typer(group, name="datasets")
    state: dict[str, _Client] = {}

    @group.callback()
    def main(
        url: str = typer.Option(DEFAULT_URL, envvar="LIMR_DATASETS_URL", help="Base URL of the datasets API."),
        token: str = typer.Option(
            None, envvar="LIMR_API_TOKEN", show_default=False, help="Bearer token (env LIMR_API_TOKEN)."
        ),
    ) -> None:
        state["client"] = _Client(url, token or os.environ.get("LIMR_READ_TOKEN"))

    def client() -> _Client:
        return state["client"]

    @group.command("list")
    def list_() -> None:
        """Datasets with their version counts."""
        _echo(client().call("GET", "/v1/datasets", params={"limit": 1000}).json()["items"])

    @group.command("versions")
    def versions(
        name: str, as_json: bool = typer.Option(False, "--json", help="The API's JSON instead of a table.")
    ) -> None:
        """Published versions of a dataset: provisional (early LIM), interim or final, with epochs used."""
        body = client().call("GET", f"/v1/datasets/{name}/versions").json()
        if as_json:
            _echo(body)
            return
        typer.echo(f"{'version':>7}  {'status':<11}  {'epochs':>6}  {'selected':>8}  {'predicted precision':<19}  run")
        for v in body.get("items") or [{"version": n} for n in body["versions"]]:
            pp = v.get("predicted_precision")
            precision = "" if pp is None else f"{pp:.3f} ({v.get('predictor')})"
            selected = "" if v.get("selected") is None else v["selected"]
            typer.echo(
                f"{v['version']:>7}  {v.get('status') or '?':<11}  {v.get('epochs_used') or '':>6}"
                f"  {selected:>8}  {precision:<19}  {v.get('run') or ''}"
            )

    @group.command("show")
    def show(name: str, version: str = typer.Argument("latest")) -> None:
        """A version's manifest (run, epochs, policy, counts, histogram, content hash)."""
        _echo(client().call("GET", f"/v1/datasets/{name}/versions/{version}").json())

    @group.command("download")
    def download(
        name: str,
        version: str = typer.Option("latest", "--version", "-v"),
        fmt: str = typer.Option("jsonl", "--format", help="jsonl or parquet"),
        out: Path = typer.Option(..., "--out", "-o", help="Output file (written atomically)."),  # noqa: B008
    ) -> None:
        """Download a version's records (streamed; the file appears only when complete)."""
        c = client()
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
    def diff(name: str, a: int, b: int) -> None:
        """Prompts added/removed from version A to version B."""
        _echo(client().call("GET", f"/v1/datasets/{name}/diff", params={"from": a, "to": b}).json())

    @group.command("publish")
    def publish(
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
        resp = client().call(
            "POST", f"/v1/datasets/{name}/versions", json={k: v for k, v in body.items() if v is not None}
        )
        m = resp.json()
        what = "published" if resp.status_code == 201 else "unchanged, existing"
        typer.echo(f"{what} {m['name']} v{m['version']}: {m['counts']['selected']} prompts ({m['content_hash']})")

    @group.command("runs")
    def runs() -> None:
        """Runs in the store."""
        _echo(client().call("GET", "/v1/runs", params={"limit": 1000}).json()["items"])

    @group.command("run")
    def run(run_id: str) -> None:
        """One run's progress (events, epochs, prompts, last update)."""
        _echo(client().call("GET", f"/v1/runs/{run_id}").json())

    @group.command("scores")
    def scores(
        run_id: str,
        min_score: float = typer.Option(None, "--min"),
        max_score: float = typer.Option(None, "--max"),
        sort: str = typer.Option("-score", help="score, -score or prompt_id"),
        limit: int = typer.Option(20),
    ) -> None:
        """A run's LIM scores (completed epochs), filtered and sorted."""
        params = {"min_score": min_score, "max_score": max_score, "sort": sort, "limit": limit}
        page = client().call(
            "GET", f"/v1/runs/{run_id}/scores", params={k: v for k, v in params.items() if v is not None}
        )
        _echo(page.json())
