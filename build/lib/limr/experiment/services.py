"""The curation services of the experiment, run as in production: `limr serve scorer` and `limr serve datasets`
as their own processes following the same store, and the dataset API's client calls the harness makes.

The scorer publishes LIM versions of the FULL source run by itself (a publish policy for that run only); the
harness publishes RAND through the API's authenticated publish endpoint and never reads a version but
through the API. Both services log to one file under the experiment's output directory.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


class ServiceError(RuntimeError):
    """A service that did not come up, or an API call that failed; the message says which and why."""


@dataclass
class Services:
    datasets_url: str
    scorer_url: str
    token: str  # the API's write token (LIMR_API_TOKEN of the datasets process)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.datasets_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=60)

    def versions(self, name: str) -> list[int]:
        with self.client() as c:
            r = c.get(f"/v1/datasets/{name}/versions")
        if r.status_code == 404:
            return []
        _check(r, f"versions of {name}")
        return list(r.json()["versions"])

    def manifest(self, name: str, version: int | str) -> dict[str, Any]:
        with self.client() as c:
            r = c.get(f"/v1/datasets/{name}/versions/{version}")
        _check(r, f"manifest of {name} v{version}")
        return r.json()

    def publish(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/datasets/{name}/versions (the authenticated publish endpoint); returns the manifest."""
        with self.client() as c:
            r = c.post(f"/v1/datasets/{name}/versions", json=body)
        _check(r, f"publish {name}")
        return r.json()

    def data_downloads(self) -> int:
        """Successful downloads of a version's data served by the API so far (its limr_datasets_requests)."""
        from prometheus_client.parser import text_string_to_metric_families

        r = httpx.get(f"{self.datasets_url}/metrics", timeout=10)
        _check(r, "datasets /metrics")
        n = 0.0
        for family in text_string_to_metric_families(r.text):
            for sample in family.samples:
                lab = sample.labels
                if (
                    sample.name == "limr_datasets_requests_total"
                    and lab.get("route", "").endswith("/versions/{version}/data")
                    and lab.get("status") == "200"
                ):
                    n += sample.value
        return int(n)

    def wait_for_version(self, name: str, ready, timeout_s: float, poll_s: float = 0.5) -> dict[str, Any]:
        """The newest manifest of `name` for which `ready(manifest)` holds, waiting up to `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            for v in reversed(self.versions(name)):
                m = self.manifest(name, v)
                if ready(m):
                    return m
            if time.monotonic() > deadline:
                raise ServiceError(f"no ready version of dataset {name!r} after {timeout_s:.0f} s (scorer log)")
            time.sleep(poll_s)


def _check(r: httpx.Response, what: str) -> None:
    if r.status_code >= 400:
        raise ServiceError(f"{what}: HTTP {r.status_code}: {r.text[:300]}")


def free_port() -> int:
    """A loopback port nobody listens on now (port 0 in the config: pick one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen, name: str, log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{name} exited with code {proc.returncode}; see {log}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise ServiceError(f"{name} not healthy at {url} after {timeout_s:.0f} s; see {log}")


def reachable_host(host: str) -> str:
    """The address other processes use for a server listening on `host`: loopback stays loopback; a server on
    all interfaces (0.0.0.0: a multi-node cluster) is reached at this node's IP, as Ray itself reaches it."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return "127.0.0.1"
    if host in ("0.0.0.0", "::", ""):
        import ray.util

        return ray.util.get_node_ip_address()
    return host


@contextmanager
def curation_services(
    store: str, source_run: str, lim_name: str, threshold: float, scorer_port: int, datasets_port: int,
    poll_interval_s: float, log: Path, host: str = "127.0.0.1", early_runs: list[str] | None = None,
    early_epochs: int = 2,
) -> Iterator[Services]:  # fmt: skip
    """Start scorer and dataset API on `host`, yield their URLs, stop them (SIGTERM) at the end.

    The scorer ingests the source run and publishes its LIM selection as dataset `lim_name`; with `early_runs`
    (the early-lim arms' run ids) it also follows those and publishes their provisional early-LIM versions
    (`{run}-early-lim`, a policy with `early_epochs`) for the learner to switch to.
    """
    token = secrets.token_urlsafe(24)
    scorer_port, datasets_port = scorer_port or free_port(), datasets_port or free_port()
    policies = [json.dumps({"name": lim_name, "strategy": "lim", "threshold": threshold, "runs": source_run})]
    follow = source_run
    if early_runs:
        common = os.path.commonprefix([source_run, *early_runs])
        follow = f"{common}*"  # one glob for the scorer: the source run and the early-lim runs
        policies += [
            json.dumps({"name": "{run}-early-lim", "strategy": "lim", "threshold": threshold, "runs": run,
                        "early_epochs": early_epochs})
            for run in early_runs
        ]  # fmt: skip
    env = {**os.environ, "LIMR_API_TOKEN": token}
    for name in ("LIMR_READ_TOKEN", "LIMR_READ_TOKEN_FILE", "LIMR_API_TOKEN_FILE"):  # only this run's token
        env.pop(name, None)
    limr = [sys.executable, "-m", "limr"]
    log.parent.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    with open(log, "ab") as f:
        try:
            scorer = subprocess.Popen(
                [*limr, "serve", "scorer", "--store", store, "--host", host, "--port", str(scorer_port),
                 *[a for p in policies for a in ("--policy", p)], "--runs", follow,
                 "--poll-interval", str(poll_interval_s)],
                stdout=f, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
            procs.append(scorer)
            datasets = subprocess.Popen(
                [*limr, "serve", "datasets", "--store", store, "--host", host, "--port", str(datasets_port)],
                stdout=f, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
            procs.append(datasets)
            at = reachable_host(host)
            scorer_url, datasets_url = f"http://{at}:{scorer_port}", f"http://{at}:{datasets_port}"
            _wait_healthy(scorer_url, scorer, "limr serve scorer", log)
            _wait_healthy(datasets_url, datasets, "limr serve datasets", log)
            yield Services(datasets_url, scorer_url, token)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
