"""`limr deploy up|down|status`: the chart's pods as Docker containers on this machine (docs/deploy.md).

`up` renders the chart (`helm template` with charts/limr/values-kind.yaml and deploy/values.yaml), plans the
containers (limr.deploy.plan) and starts them in order: S3 and its bucket, the init containers, the Ray head and
workers, the scorer and the dataset API, Prometheus, the loopback port forwarder; then it deploys the RayService's
Serve app onto the Ray cluster and waits until everything answers.
"""

from __future__ import annotations

import json
import os
import secrets as pysecrets
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from limr.deploy import docker as d
from limr.deploy.plan import Plan, plan, rendered_secrets, secret_refs
from limr.deploy.pods import Container, Mount

REPO = Path(__file__).resolve().parents[2]
VALUES = (REPO / "charts" / "limr" / "values-kind.yaml", REPO / "deploy" / "values.yaml")
IMAGES = {"s3": "limr-s3:dev", "prometheus": "limr-prometheus:dev"}
# Published on 127.0.0.1 only: (env override, default port, plan container getter, container port name)
PUBLISHED = {
    "api": ("LIMR_DEPLOY_API_PORT", 18080),
    "prometheus": ("LIMR_DEPLOY_PROMETHEUS_PORT", 19090),
    "ray": ("LIMR_DEPLOY_RAY_PORT", 18265),
}


@dataclass(frozen=True)
class Settings:
    project: str = "limr"
    state: Path = REPO / ".deploy"
    values: tuple[Path, ...] = VALUES

    @property
    def network(self) -> str:
        return f"{self.project}-net"


def published_ports() -> dict[str, int]:
    return {k: int(os.environ.get(env, default)) for k, (env, default) in PUBLISHED.items()}


def helm_bin() -> str:
    local = REPO / ".tools" / "bin" / "helm"
    exe = str(local) if local.exists() else shutil.which("helm")
    if not exe:
        raise d.DeployError("helm not found: run scripts/fetch-helm.sh (scripts/setup.sh does)")
    return exe


def render(values: tuple[Path, ...], release: str = "limr") -> list[dict[str, Any]]:
    """`helm template` of the chart, with the monitoring API present (its monitors become scrape targets)."""
    args = [
        helm_bin(),
        "template",
        release,
        str(REPO / "charts" / "limr"),
        "--api-versions",
        "monitoring.coreos.com/v1",
    ]
    for v in values:
        args += ["--values", str(v)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise d.DeployError(f"helm template failed:\n{proc.stderr}")
    return [o for o in yaml.safe_load_all(proc.stdout) if o]


def load_secrets(objects: list[dict[str, Any]], state: Path) -> dict[str, dict[str, str]]:
    """Every Secret the pods mount, kept in `state/secrets.json` across `up`s: the chart's generated ones (as
    `helm install` keeps them across upgrades) and the ones it expects to exist, generated here as you would
    with `kubectl create secret`."""
    path = state / "secrets.json"
    kept: dict[str, dict[str, str]] = json.loads(path.read_text()) if path.exists() else {}
    rendered = rendered_secrets(objects)
    for name, keys in secret_refs(objects).items():
        entry = kept.setdefault(name, {})
        for key in sorted(keys | set(rendered.get(name, {}))):
            entry.setdefault(key, rendered.get(name, {}).get(key) or pysecrets.token_hex(20))
    state.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(kept, indent=1))
    path.chmod(0o600)
    return kept


def build_plan(settings: Settings) -> Plan:
    objects = render(settings.values)
    return plan(objects, load_secrets(objects, settings.state), IMAGES)


def _say(msg: str) -> None:
    print(f"limr deploy: {msg}", flush=True)


def up(settings: Settings, log: Callable[[str], None] = _say) -> dict[str, Any]:
    """Start the whole deployment (replacing a running one; S3 data and the model volume are kept)."""
    t0 = time.monotonic()
    p = build_plan(settings)
    missing = [i for i in {c.image for c in p.containers()} if not d.docker("image", "inspect", i, check=False)]
    if missing:
        raise d.DeployError(f"images {sorted(missing)} are not built: run `make images`")
    d.remove_project(settings.project)
    subnet = d.create_network(settings.network, settings.project)
    hosts = subnet.hosts()
    for _ in range(9):  # .1 is the bridge; the deployment starts at .10
        next(hosts)
    ips = {c.name: str(next(hosts)) for c in p.containers()}

    def start(c: Container, detach: bool = True) -> None:
        mounts = d.materialize(c, settings.state)
        args = d.run_args(c, settings.project, settings.network, ips[c.name], mounts)
        if detach:
            d.docker(*args[:1], "-d", *args[1:])
            return
        proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise d.DeployError(f"{c.name} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")

    log(f"network {settings.network} (internal, {subnet})")
    start(p.s3)
    d.wait("S3", lambda: d.exec_ok(p.s3.name, "python3", "-c", _tcp_probe(8333)), 120, lambda: d.logs(p.s3.name))
    d.wait(f"bucket {p.bucket}", lambda: _make_bucket(p), 120, lambda: d.logs(p.s3.name))
    for c in p.init:
        log(f"init {c.name}: {' '.join(c.entrypoint + c.args)}")
        start(c, detach=False)
    head, workers = p.ray[0], p.ray[1:]
    start(head)
    # Generous: on a loaded 2-core machine GCS and raylets start slowly (measured: a head restarted once by its
    # restart policy after its client server timed out, and the workers took minutes to rejoin).
    d.wait("the Ray head", lambda: d.exec_ok(head.name, "ray", "status"), 600, lambda: d.logs(head.name))
    for c in workers:
        start(c)
    d.wait(
        f"{len(p.ray)} Ray nodes", lambda: _ray_nodes(head.name) >= len(p.ray), 600, lambda: d.logs(workers[-1].name)
    )
    log(f"Ray cluster up: {head.name} + {len(workers)} workers")
    for c in p.services:
        start(c)
    start(p.prometheus)
    ports = published_ports()
    api = _api(p)
    forward = {"api": (api, api.ports["http"]), "prometheus": (p.prometheus, p.prometheus.ports["http"]),
               "ray": (head, head.ports["dashboard"])}  # fmt: skip
    rules = [f"127.0.0.1:{ports[k]}={ips[c.name]}:{port}" for k, (c, port) in forward.items()]
    proxy = Container(name=f"{settings.project}-ports", image=head.image, entrypoint=["python3"],
                      args=["/etc/limr-ports/portproxy.py", *rules], user=head.user, read_only=True,
                      drop_all_caps=True, no_new_privileges=True)  # fmt: skip
    code = (REPO / "deploy" / "portproxy.py").read_text()
    proxy.mounts = [Mount("/etc/limr-ports", "files", files=(("portproxy.py", code),), mode=0o444)]
    args = d.run_args(proxy, settings.project, "host", "", d.materialize(proxy, settings.state))
    d.docker(args[0], "-d", *args[1:])
    log("deploying the rollout Serve app onto the cluster (vLLM engine start: a minute or two)")
    d.docker(
        "exec", "-i", head.name, "bash", "-c", "cat > /tmp/rollout-serve.yaml", input=yaml.safe_dump(p.serve_config)
    )
    d.docker("exec", head.name, "serve", "deploy", "/tmp/rollout-serve.yaml")
    for c in [*p.services, p.prometheus]:
        d.wait(f"{c.name} healthy", lambda c=c: d.health(c.name) == "healthy", 240, lambda c=c: d.logs(c.name))
    d.wait("the rollout app RUNNING", lambda: _serve_running(head.name), 900, lambda: d.logs(head.name))
    summary = {
        "seconds": round(time.monotonic() - t0, 1),
        "containers": [c.name for c in p.containers() if not c.one_shot] + [proxy.name],
        "api": f"http://127.0.0.1:{ports['api']}",
        "prometheus": f"http://127.0.0.1:{ports['prometheus']}",
        "ray": f"http://127.0.0.1:{ports['ray']}",
        "ray_token_file": str(ray_token_file(settings, p)),
        "job": p.job_entrypoint,
    }
    log(f"up in {summary['seconds']} s")
    return summary


def ray_token_file(settings: Settings, p: Plan) -> Path:
    """The Ray cluster token as a file on the host (what `ray job submit` reads through RAY_AUTH_TOKEN_PATH): the
    file the Ray head mounts, as `kubectl get secret <cluster>-ray-token` gives it on Kubernetes."""
    head = p.ray[0]
    want = head.env.get("RAY_AUTH_TOKEN_PATH")
    token = next((body for m in head.mounts for f, body in m.files if f"{m.target}/{f}" == want), None)
    if token is None:
        raise d.DeployError("the Ray head runs without token authentication (ray.auth.enabled is false)")
    path = settings.state / "ray-auth-token"
    path.write_text(token)
    path.chmod(0o600)
    return path


def _api(p: Plan) -> Container:
    return next(c for c in p.services if c.args[:2] == ["serve", "datasets"])


def _tcp_probe(port: int) -> str:
    return f"import socket; socket.create_connection(('127.0.0.1', {port}), 2).close()"


def _make_bucket(p: Plan) -> bool:
    """The bucket, created with SeaweedFS' shell (the chart's MinIO does this in a hook Job)."""
    cmd = f"echo 's3.bucket.create -name {p.bucket}' | HOME=/tmp weed shell -master=127.0.0.1:9333"
    out = subprocess.run(["docker", "exec", p.s3.name, "bash", "-c", cmd], capture_output=True, text=True)
    listed = subprocess.run(["docker", "exec", p.s3.name, "bash", "-c",
                             "echo 's3.bucket.list' | HOME=/tmp weed shell -master=127.0.0.1:9333"],
                            capture_output=True, text=True)  # fmt: skip
    return out.returncode == 0 and f"  {p.bucket}" in listed.stdout


def _ray_nodes(head: str) -> int:
    out = subprocess.run(["docker", "exec", head, "ray", "status"], capture_output=True, text=True).stdout
    active = out.split("Active:", 1)[-1].split("Pending:", 1)[0] if "Active:" in out else ""
    return sum(1 for line in active.splitlines() if "node_" in line)


def _serve_running(head: str) -> bool:
    out = subprocess.run(["docker", "exec", head, "serve", "status"], capture_output=True, text=True).stdout
    try:
        apps = (yaml.safe_load(out) or {}).get("applications") or {}
    except yaml.YAMLError:
        return False
    return bool(apps) and all(a.get("status") == "RUNNING" for a in apps.values())


def down(settings: Settings, volumes: bool = False) -> list[str]:
    """Remove the containers and the network; with `volumes`, also the S3 data, models and secrets."""
    removed = d.remove_project(settings.project)
    if volumes and settings.state.exists():
        shutil.rmtree(settings.state)
    return removed
