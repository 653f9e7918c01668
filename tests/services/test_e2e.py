"""End to end on the real S3 server and a real Prometheus: a writer emits events while `limr serve scorer`
runs; a dataset version appears, is downloadable over HTTP from `limr serve datasets`, and equals
`limr select` on the same events; Prometheus scrapes both services."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from limr.store import open_store
from tests.services.conftest import REPO, Service, service_env
from tests.support.prometheus import prometheus_binary, start_prometheus

pytestmark = pytest.mark.slow
TOKEN = "e2e-token"


def _wait(fn, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(what)


def _limr(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "limr.cli.main", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_writer_scorer_datasets_prometheus(s3_uri, run_writer, tmp_path):
    if prometheus_binary() is None:
        pytest.skip("prometheus is not installed")
    env = service_env({"LIMR_API_TOKEN": TOKEN})
    policies = [
        "--policy",
        "name={run}-lim,threshold=0.6",
        "--policy",
        "name={run}-rand,strategy=rand,threshold=0.6,seed=3",
    ]
    scorer = Service(["scorer", "--store", s3_uri, "--poll-interval", "0.2", *policies], env, tmp_path / "scorer.log")
    api = Service(["datasets", "--store", s3_uri], env, tmp_path / "datasets.log")
    prom = None
    try:
        scorer.wait_ready()
        api.wait_ready()
        prom = start_prometheus({"scorer": [f"127.0.0.1:{scorer.port}"], "datasets": [f"127.0.0.1:{api.port}"]})
        store = open_store(s3_uri)
        w = run_writer(store, "e2e", prompts=40, epochs=3, steps_per_epoch=4, seed=5)
        w.write_all(delay_s=0.15)  # the scorer ingests while the writer writes

        def latest_complete():
            r = httpx.get(f"{api.url}/v1/datasets/e2e-lim/versions/latest", timeout=5)
            return r.json() if r.status_code == 200 and r.json()["epochs_used"] == 3 else None

        manifest = _wait(latest_complete, 60, "no dataset version over 3 epochs appeared")
        assert manifest["run"] == "e2e" and manifest["version"] >= 2  # one version per completed epoch
        assert httpx.get(f"{scorer.url}/readyz").status_code == 200

        # Download over HTTP (the client CLI, streamed to a file) and compare with `limr select`.
        cli_env = service_env({"LIMR_DATASETS_URL": api.url, "LIMR_API_TOKEN": TOKEN})
        got = tmp_path / "got.jsonl"
        _limr("datasets", "download", "e2e-lim", "--out", str(got), env=cli_env)
        prompts = tmp_path / "prompts.jsonl"
        prompts.write_text("".join(json.dumps({"id": r.prompt_id, "prompt": r.prompt, "answer": r.answer}) + "\n"
                                   for r in w.records()))  # fmt: skip
        selected = {}
        for policy, flags in (("e2e-lim", []), ("e2e-rand", ["--strategy", "rand", "--seed", "3"])):
            ref = tmp_path / f"{policy}.select.jsonl"
            _limr("select", "--run", "e2e", "--store", s3_uri, "--prompts", str(prompts), "--threshold", "0.6",
                  *flags, "--out", str(ref), env=cli_env)  # fmt: skip
            want = [(r["id"], r["prompt"], r["answer"]) for r in map(json.loads, ref.read_text().splitlines())]
            body = httpx.get(f"{api.url}/v1/datasets/{policy}/versions/latest/data", timeout=10).text
            have = [(r["prompt_id"], r["prompt"], r["answer"]) for r in map(json.loads, body.splitlines())]
            assert have == want and len(want) > 0, policy
            selected[policy] = [x[0] for x in want]
        assert [json.loads(x)["prompt_id"] for x in got.read_text().splitlines()] == selected["e2e-lim"]
        assert got.read_bytes() == httpx.get(f"{api.url}/v1/datasets/e2e-lim/versions/latest/data").content

        # Prometheus scraped both services; its queries return their metrics.
        events = 40 * 3 * 4
        res = prom.wait_for(f'limr_scorer_events_ingested_total{{run="e2e"}} == {events}')
        assert res and res[0]["metric"]["job"] == "scorer"
        assert prom.wait_for('limr_scorer_datasets_published_total{dataset="e2e-lim"} >= 2')
        assert prom.wait_for('limr_scorer_ingestion_lag_seconds{run="e2e"} == 0')
        res = prom.wait_for(
            'sum by (job) (limr_datasets_requests_total{route="/v1/datasets/{name}/versions/{version}"})'
        )
        assert res and res[0]["metric"]["job"] == "datasets" and float(res[0]["value"][1]) > 0
        assert prom.wait_for("limr_datasets_request_seconds_count")
        up = {r["metric"]["job"]: r["value"][1] for r in prom.query("up")}
        assert up == {"scorer": "1", "datasets": "1"}
    finally:
        if prom:
            prom.stop()
        scorer.stop()
        api.stop()
