"""Every panel of the Grafana dashboards returns series from a real Prometheus that scraped a real run: a tiny
`limr train --local` run (3 epochs, evaluated every step, metrics served) and `limr serve scorer` scoring and
publishing it. The panels' PromQL is sent as Grafana sends it (range queries over the run's time window)."""

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


def test_every_lim_panel_returns_series_from_a_real_run(tmp_path, tiny_model, synthetic_pool):  # noqa: F811
    if prometheus_binary() is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus; scripts/setup.sh does)")
    train, test = synthetic_pool
    store_dir = tmp_path / "store"
    train_port = free_port()
    cfg = write_config(
        tmp_path / "dash.yaml", tiny_model, train,
        data={"eval_prompts": str(test)}, run={"epochs": 3, "eval_every": 1, "seed": 5},
        metrics={"progress": False, "port": train_port},
    )  # fmt: skip
    env = service_env()
    scorer = Service(
        ["scorer", "--store", str(store_dir), "--notifications", "off"],
        service_env({"LIMR_POLL_INTERVAL_S": "0.2", "LIMR_RUNS_REFRESH_S": "0.5"}),
        tmp_path / "scorer.log",
    )
    prom = None
    try:
        scorer.wait_ready("/healthz")
        prom = start_prometheus(
            {"train": [f"127.0.0.1:{train_port}"], "scorer": [f"127.0.0.1:{scorer.port}"]},
            labels={"namespace": NAMESPACE},
        )
        t0 = time.time()
        cmd = [sys.executable, "-m", "limr.cli.main", "train", "--config", str(cfg), "--store", str(store_dir),
               "--local", "--run-id", "dash", "--log-file", str(tmp_path / "train.log")]  # fmt: skip
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
        scorer.stop()
