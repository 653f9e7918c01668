"""One real run seen everywhere: a tiny `limr train --local` run (3 epochs of 2 steps, evaluated every 3 steps,
metrics served, `--tracking` to a real MLflow server), `limr serve scorer` scoring and publishing it, and a real
Prometheus scraping both. Every panel of the LIM dashboard returns series (its PromQL sent as Grafana sends it:
range queries over the run's window), and one run id links the store, the Prometheus `run` label and the MLflow
run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from limr.curation.publish import wait_for_final
from limr.store import open_store
from tests.learner.conftest import synthetic_pool, tiny_model, write_config  # noqa: F401 - fixtures
from tests.services.conftest import REPO, Service, service_env
from tests.support.mlflow_server import mlflow_server
from tests.support.prometheus import prometheus_binary, start_prometheus
from tests.support.s3server import free_port

DASHBOARDS = REPO / "charts" / "limr" / "dashboards"
NAMESPACE = "limr-test"

pytestmark = pytest.mark.slow


def _panel_queries(path: Path) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target, with the dashboard variables as Grafana fills them."""
    dash = json.loads(path.read_text())
    fill = {"$namespace": NAMESPACE, "$run": ".+", "$__rate_interval": "1m"}
    out = []
    for p in dash["panels"]:
        for t in p["targets"]:
            expr = t["expr"]
            for var, value in fill.items():
                expr = expr.replace(var, value)
            out.append((p["title"], expr))
    return out


def test_one_real_run_on_every_lim_panel_and_in_mlflow(tmp_path, tiny_model, synthetic_pool):  # noqa: F811
    if prometheus_binary() is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus; scripts/setup.sh does)")
    train, test = synthetic_pool
    store_dir = tmp_path / "store"
    train_port = free_port()
    cfg = write_config(
        tmp_path / "dash.yaml", tiny_model, train,
        data={"eval_prompts": str(test)}, run={"epochs": 3, "eval_every": 3, "seed": 5},
        metrics={"progress": False, "port": train_port},
        batch={"rollout_batch_size": 6, "train_batch_size": 6, "micro_batch_size": 6},  # 6 steps
    )  # fmt: skip
    scorer = Service(
        ["scorer", "--store", str(store_dir), "--notifications", "off"],
        service_env({"LIMR_POLL_INTERVAL_S": "0.2", "LIMR_RUNS_REFRESH_S": "0.5"}),
        tmp_path / "scorer.log",
    )
    with mlflow_server() as tracking_url:
        try:
            _run_and_check(tmp_path, cfg, store_dir, train_port, scorer, tracking_url)
        finally:
            scorer.stop()


def _run_and_check(tmp_path, cfg, store_dir, train_port, scorer, tracking_url):  # noqa: ANN001
    from mlflow.tracking import MlflowClient

    from limr.events.run import read_run_meta

    env = service_env()
    prom = None
    try:
        scorer.wait_ready("/healthz")
        prom = start_prometheus(
            {"train": [f"127.0.0.1:{train_port}"], "scorer": [f"127.0.0.1:{scorer.port}"]},
            labels={"namespace": NAMESPACE},
        )
        t0 = time.time()
        cmd = [sys.executable, "-m", "limr.cli.main", "train", "--config", str(cfg), "--store", str(store_dir),
               "--local", "--run-id", "dash", "--log-file", str(tmp_path / "train.log"),
               "--tracking", f"mlflow:{tracking_url}"]  # fmt: skip
        done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        wait_for_final(open_store(str(store_dir)), "dash-lim-0.6", timeout_s=120)
        time.sleep(3)  # a few scrapes of the final state
        queries = _panel_queries(DASHBOARDS / "lim.json")
        assert len(queries) >= 8
        empty = []
        for title, expr in queries:
            result = prom.query_range(expr, t0, time.time(), step=1.0)
            if not result:
                empty.append((title, expr))
            elif "run" in expr and "by (le)" not in expr and "by (dataset, status)" not in expr:
                assert {r["metric"].get("run") for r in result} == {"dash"}, (title, result)
        assert not empty, f"panels without series: {empty}\n{prom.log()}"
        statuses = {
            r["metric"]["status"]
            for r in prom.query_range(
                f'limr_scorer_dataset_selected{{namespace="{NAMESPACE}"}}', t0, time.time(), step=1.0
            )
        }
        assert "final" in statuses  # the final selection reached the dashboard
        # the run is over: the learner's series are gone from the live view (only active runs are exported)
        assert prom.query(f'limr_train_step{{namespace="{NAMESPACE}"}}') == []
    finally:
        if prom is not None:
            prom.stop()
    # the tracker: run.json names the MLflow run, which is named and tagged with the same run id
    tracking = read_run_meta(open_store(str(store_dir)), "dash").model_extra["tracking"]
    client = MlflowClient(tracking_url)
    run = client.get_run(tracking["run_id"])
    assert (tracking["backend"], run.info.run_name, run.data.tags["limr.run_id"]) == ("mlflow", "dash", "dash")
    assert run.info.status == "FINISHED" and run.data.params["run.epochs"] == "3"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/reward_mean")]
    assert steps == list(range(1, 7))  # every step
    assert "eval/accuracy" in run.data.metrics and "lim/r_avg_epoch_3" in run.data.metrics
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {"plots/dash-lim-trajectories.png", "plots/dash-lim-scores.png"}
