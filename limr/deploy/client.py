"""The user's side of the container deployment, for its end-to-end test and fault experiments: commands run in
the host's network namespace (where the deployment publishes its ports), the job API, the store seen from the
Ray head, Prometheus queries and where Ray Train's workers ran."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from limr.deploy.docker import LABEL

HEAD = "limr-ray-head"
REPO = Path(__file__).resolve().parents[2]


def _daemon_netns() -> str:
    """The network namespace of the Docker daemon: where `--network host` containers and so the deployment's
    published ports live (the host's own namespace)."""
    pids = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True).stdout.split()
    return f"/proc/{pids[0]}/ns/net" if pids else "/proc/1/ns/net"


def host(cmd: list[str]) -> list[str]:
    """`cmd` in the Docker daemon's network namespace (published ports live on its loopback), from wherever we run:
    the test suite runs in a loopback-only namespace of its own (scripts/test.sh). Entering it needs root."""
    ns = _daemon_netns()
    try:
        if os.readlink("/proc/self/ns/net") == os.readlink(ns):
            return cmd
    except OSError:  # no daemon yet and PID 1's namespace hidden from us: run here
        return cmd
    return ["nsenter", f"--net={ns}", *cmd]


def run(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} -> {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def limr_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def limr_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "limr.cli.main", *args]


def submit(summary: dict[str, Any], run_id: str, wait: bool, timeout: float = 2400) -> str:
    """`ray job submit` of the RayJob's entrypoint to the published job API, with the cluster's token."""
    ray = str(Path(sys.executable).parent / "ray")
    cmd = [ray, "job", "submit", "--address", summary["ray"], "--submission-id", run_id]
    cmd += [*([] if wait else ["--no-wait"]), "--", *shlex.split(summary["job"]), "--run-id", run_id, "--verbose"]
    env = limr_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=summary["ray_token_file"])
    proc = run(host(cmd), timeout=timeout, env=env)
    return proc.stdout + proc.stderr


def job_status(summary: dict[str, Any], run_id: str) -> str:
    ray = str(Path(sys.executable).parent / "ray")
    env = limr_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=summary["ray_token_file"])
    out = run(host([ray, "job", "status", "--address", summary["ray"], run_id]), timeout=60, env=env).stdout
    for word in ("SUCCEEDED", "FAILED", "STOPPED", "RUNNING", "PENDING"):
        if word.lower() in out.lower():  # the CLI words it "succeeded", "failed", ...
            return word
    return "UNKNOWN"


def http_json(url: str) -> Any:
    code = f"import sys, urllib.request; sys.stdout.write(urllib.request.urlopen({url!r}, timeout=10).read().decode())"
    return json.loads(run(host([sys.executable, "-c", code]), timeout=60).stdout)


def prom_series(summary: dict[str, Any], match: str, since: float) -> list[dict[str, str]]:
    """Label sets of the series matching `match` with samples since the unix time `since`. Over a window, not an
    instant query: Prometheus marks a target's series stale at its first failed scrape (the learner's rank 0
    stops serving when the job ends), and an instant query no longer returns them."""
    query = urllib.parse.urlencode({"match[]": match, "start": f"{since:.0f}", "end": f"{time.time():.0f}"})
    return list(http_json(f"{summary['prometheus']}/api/v1/series?{query}")["data"])


def store_keys(prefix: str) -> list[str]:
    """Keys under `prefix` in the deployment's store, listed from the Ray head (it holds the store's files)."""
    code = (
        "import json, sys; from limr.store import open_store; "
        f"print(json.dumps(sorted(open_store().list_keys({prefix!r}))))"
    )
    return list(json.loads(run(["docker", "exec", HEAD, "python3", "-c", code], timeout=120).stdout))


def container_ips() -> dict[str, str]:
    ids = run(["docker", "ps", "-q", "--filter", f"label={LABEL}=limr"], timeout=30).stdout.split()
    out = {}
    for i in ids:
        info = json.loads(run(["docker", "inspect", i], timeout=30).stdout)[0]
        for net in info["NetworkSettings"]["Networks"].values():
            if net.get("IPAddress"):
                out[net["IPAddress"]] = info["Name"].lstrip("/")
    return out


_PLACEMENT = """
import json, ray
from ray.util.state import list_actors, list_nodes
ray.init(address="auto", logging_level="ERROR")
nodes = {n.node_id: n.node_ip for n in list_nodes(limit=100)}
actors = list_actors(filters=[("class_name", "=", "RayTrainWorker")], detail=True, limit=1000)
print(json.dumps([[a.state, nodes.get(a.node_id, "?")] for a in actors]))
"""


def train_workers() -> list[tuple[str, str]]:
    """(state, container) of every Ray Train worker actor the cluster has seen, from Ray's state API."""
    ips = container_ips()
    pairs = json.loads(run(["docker", "exec", HEAD, "python3", "-c", _PLACEMENT], timeout=120).stdout)
    return [(state, ips.get(ip, ip)) for state, ip in pairs]


def wait_for(what: str, ok: Callable[[], Any], timeout_s: float, every_s: float = 5) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = ok()
        if value:
            return value
        time.sleep(every_s)
    raise TimeoutError(what)


def final_dataset(summary: dict[str, Any], run_id: str, epochs: int, timeout_s: float = 300) -> dict[str, Any]:
    """The manifest of the scorer's default LIM dataset of `run_id` once it covers `epochs` epochs."""
    name = f"{run_id}-lim-0.6"

    def final() -> dict[str, Any] | None:
        names = [d["name"] for d in http_json(f"{summary['api']}/v1/datasets?limit=1000")["items"]]
        if name in names:
            m = http_json(f"{summary['api']}/v1/datasets/{name}/versions/latest")
            return {**m, "name": name} if m["epochs_used"] == epochs else None
        return None

    return dict(wait_for(f"the final version of {name}", final, timeout_s))


def downloaded_ids(summary: dict[str, Any], name: str, out: Path) -> list[str]:
    """Prompt ids of a dataset's latest version, downloaded with `limr datasets` from the published API."""
    run(host(limr_cmd("datasets", "download", name, "--out", str(out))), timeout=120,
        env=limr_env(LIMR_DATASETS_URL=summary["api"]))  # fmt: skip
    return [json.loads(x)["prompt_id"] for x in out.read_text().splitlines()]


def selected_ids(run_id: str) -> list[str]:
    """`limr select` at the scorer's default policy on the run's events, run on the Ray head (store, pool)."""
    select = ["limr", "select", "--run", run_id, "--prompts", "/models/data/train.jsonl", "--threshold", "0.6",
              "--out", "/tmp/select.jsonl"]  # fmt: skip
    run(["docker", "exec", HEAD, *select], timeout=300)
    lines = run(["docker", "exec", HEAD, "cat", "/tmp/select.jsonl"], timeout=60).stdout.splitlines()
    return [json.loads(x)["id"] for x in lines]
