"""limr deployed for real: images built here (`scripts/images.sh`, what `make images` runs), the chart's pods as
containers (`limr deploy up`), the tiny training job submitted with `ray job submit` over the network as the README
says, and the whole pipeline checked from outside: where the Ray Train workers ran, the scorer's final dataset
against `limr select`, and Prometheus' `limr_*` series of every component.

The suite runs in a loopback-only network namespace (scripts/test.sh); the deployment publishes its ports on the
host's loopback and builds images with the host's network, so those commands run in the host's namespace
(`nsenter`, limr.deploy.client.host), as a user on this machine would type them. Time: images (cached: about a
minute; from an empty Docker: docs/deploy.md), `up` (2-4 min), training (3-6 min)."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from limr.deploy import client as c

# images + up + training on a 2-core machine: minutes each (docs/deploy.md), far over the suite's 900 s default
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]
RUN = f"e2e-{int(time.time())}"
WORKERS = {"limr-ray-cpu-worker-1", "limr-ray-cpu-worker-2"}


@pytest.fixture(scope="module")
def deployment():
    if os.geteuid() != 0:
        pytest.skip("the deployment test enters the host's network namespace (root)")
    engine = subprocess.run(c.host(["bash", "scripts/docker-engine.sh"]), cwd=c.REPO, capture_output=True, text=True)
    if engine.returncode != 0:  # it installs docker.io/debootstrap and starts dockerd when it can
        pytest.skip(f"no Docker engine: {engine.stderr.strip()}")
    t0 = time.monotonic()
    built = c.run(c.host(["bash", "scripts/images.sh"]), timeout=3600)
    images_s = time.monotonic() - t0
    c.run(c.limr_cmd("deploy", "down", "--volumes"), timeout=300, env=c.limr_env())
    up = c.run(c.limr_cmd("deploy", "up", "--json"), timeout=1800, env=c.limr_env())
    summary = json.loads(up.stdout.strip().splitlines()[-1])
    summary["images_seconds"] = round(images_s, 1)
    summary["images"] = json.loads(built.stdout.strip().splitlines()[-1])  # its phases' seconds and the sizes
    try:
        yield summary
    finally:
        subprocess.run(c.limr_cmd("deploy", "down", "--volumes"), env=c.limr_env(), cwd=c.REPO, capture_output=True)


def test_train_on_the_container_cluster_then_curate_query_and_scrape(deployment, tmp_path):
    s = deployment
    # 1. The README's command: the job API over the network (published on 127.0.0.1), Ray token auth.
    started, t0 = time.time(), time.monotonic()
    out = c.submit(s, RUN, wait=True)
    train_s = time.monotonic() - t0
    assert c.job_status(s, RUN) == "SUCCEEDED", out[-3000:]
    # 2. The Ray Train workers ran on the worker containers, never on the head (the head has num-cpus 0).
    ran_on = {where for _, where in c.train_workers()}
    assert ran_on and ran_on <= WORKERS, ran_on

    # 3. The scorer publishes the final LIM version (both epochs of values-kind's run); the published API serves it.
    manifest = c.final_dataset(s, RUN, epochs=2)
    # 4. `limr datasets` against the published API returns it, equal to `limr select` on the same events.
    have = c.downloaded_ids(s, manifest["name"], tmp_path / "got.jsonl")
    want = c.selected_ids(RUN)
    assert have == want and want, (len(have), len(want))

    # 5. Prometheus scraped every component over the network, during this test.
    jobs = {}
    for prefix in ("limr_rollout_", "limr_train_", "limr_scorer_", "limr_datasets_"):
        res = c.prom_series(s, f'{{__name__=~"{prefix}.+"}}', since=started)
        jobs[prefix] = sorted({r["job"] for r in res})
        assert res, (prefix, jobs)
    print(json.dumps({"images_s": s["images_seconds"], "images": s["images"], "up_s": s["seconds"],
                      "train_s": round(train_s, 1), "train_workers_on": sorted(ran_on), "version": manifest["version"],
                      "selected": len(want), "series_by_job": jobs}))  # fmt: skip
