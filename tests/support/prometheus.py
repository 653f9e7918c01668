"""Debian's `prometheus` run as a child process on 127.0.0.1, scraping given targets every second."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support.s3server import free_port

PROMETHEUS = "/usr/bin/prometheus"


def prometheus_binary() -> str | None:
    return shutil.which("prometheus") or (PROMETHEUS if Path(PROMETHEUS).exists() else None)


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen
    workdir: Path

    def query(self, promql: str) -> list[dict]:
        """Instant query; returns the result vector (list of {metric, value})."""
        qs = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{qs}", timeout=10) as resp:
            body = json.load(resp)
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus query {promql!r} failed: {body}")
        return body["data"]["result"]

    def query_range(self, promql: str, start: float, end: float, step: float = 1.0) -> list[dict]:
        """Range query (what Grafana's time-series panels send); returns the result matrix."""
        qs = urllib.parse.urlencode({"query": promql, "start": start, "end": end, "step": step})
        with urllib.request.urlopen(f"{self.url}/api/v1/query_range?{qs}", timeout=30) as resp:
            body = json.load(resp)
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus query {promql!r} failed: {body}")
        return body["data"]["result"]

    def wait_for(self, promql: str, timeout_s: float = 30.0) -> list[dict]:
        """Poll until the query returns a non-empty vector."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(promql)
            if result or time.monotonic() > deadline:
                return result
            time.sleep(0.5)

    def targets(self) -> list[dict]:
        with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=10) as resp:
            return json.load(resp)["data"]["activeTargets"]

    def log(self) -> str:
        return (self.workdir / "prometheus.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_prometheus(
    jobs: dict[str, list[str]], timeout_s: float = 60.0, labels: dict[str, str] | None = None
) -> Prometheus:
    """Start Prometheus scraping `jobs` ({job name: ["127.0.0.1:port", ...]}) at 1 s intervals; `labels` are
    added to every target (e.g. the `namespace` a Kubernetes scrape config would attach)."""
    exe = prometheus_binary()
    if exe is None:
        raise FileNotFoundError("prometheus is not installed (apt-get install prometheus; scripts/setup.sh does)")
    workdir = Path(tempfile.mkdtemp(prefix="limr-prom-"))
    scrape = [
        {"job_name": name, "static_configs": [{"targets": targets, "labels": labels or {}}]}
        for name, targets in jobs.items()
    ]
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": scrape}
    (workdir / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    cmd = [
        exe,
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
    ]
    log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
    prom = Prometheus(f"http://127.0.0.1:{port}", proc, workdir)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log_text = prom.log()
            prom.stop()
            raise RuntimeError(f"prometheus exited early:\n{log_text}")
        try:
            with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=2) as resp:
                if resp.status == 200:
                    return prom
        except OSError:
            pass
        time.sleep(0.3)
    prom.stop()
    raise RuntimeError(f"prometheus did not become ready in {timeout_s}s")
