"""Run a deployment plan with the Docker CLI: one internal network, fixed addresses, files from the chart's
ConfigMaps and Secrets mounted read-only, and chosen ports published on the host's loopback (docs/deploy.md).

Docker does not publish ports of containers on `internal` networks, so one container, `<project>-ports`, shares
the host's network namespace, listens on 127.0.0.1 only and forwards to fixed addresses on the internal bridge
(deploy/portproxy.py). Nothing in the deployment has a route off this machine.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from limr.deploy.pods import Container

LABEL = "io.limr.deploy"
UID = 10001


class DeployError(RuntimeError):
    """A step of `limr deploy` failed (the message says which, and where its log is)."""


def docker(*args: str, check: bool = True, input: str | None = None, timeout: float = 600) -> str:  # noqa: A002
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, input=input, timeout=timeout)
    if check and proc.returncode != 0:
        raise DeployError(f"docker {' '.join(args[:3])} ...: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def _chown(path: Path) -> None:
    """Files and directories the containers' user (uid/gid 10001, the chart's) reads or writes."""
    if os.geteuid() == 0:
        os.chown(path, 0 if path.is_file() else UID, UID)
    else:  # not root: nobody can hand the file to uid 10001, so let everyone read (and write dirs)
        path.chmod(0o444 if path.is_file() else 0o777)


def materialize(c: Container, state: Path) -> list[str]:
    """Write the container's files (ConfigMap, Secret) under `state` and return its `docker run` mount flags."""
    flags: list[str] = []
    for i, m in enumerate(c.mounts):
        if m.kind == "tmpfs":
            opts = ["exec", "mode=1777", *([f"size={m.size}"] if m.size else [])]
            flags += ["--tmpfs", f"{m.target}:{','.join(opts)}"]
            continue
        if m.kind == "dir":
            host = state / "volumes" / m.volume
            if not host.exists():
                host.mkdir(parents=True)
                _chown(host)
        else:
            host = state / "files" / c.name / str(i)
            shutil.rmtree(host, ignore_errors=True)
            for rel, content in m.files:
                f = host / rel
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_text(content)
                f.chmod(m.mode)
                _chown(f)
            for d in [host, *(p for p in host.rglob("*") if p.is_dir())]:
                d.chmod(0o755)
        flags += ["--mount", f"type=bind,source={host},target={m.target}{',readonly' if m.read_only else ''}"]
    return flags


def run_args(c: Container, project: str, network: str, ip: str, mounts: Sequence[str]) -> list[str]:
    """`docker run` arguments of one container (pure: tests compare them with the chart)."""
    args = ["run", "--name", c.name, "--hostname", c.name, "--label", f"{LABEL}={project}"]
    if network == "host":  # the port forwarder: the host's namespace, no address on the internal network
        args += ["--network", "host"]
    else:
        args += ["--network", network, "--ip", ip, *(f"--network-alias={a}" for a in c.aliases)]
    args += ["--init"]  # a PID 1 that reaps children (Ray's processes), as the pod's pause/tini would
    args += ["--restart", c.restart] if not c.one_shot else ["--rm"]
    if c.user:
        args += ["--user", c.user, *(f"--group-add={g}" for g in c.group_add)]
    if c.read_only:
        args += ["--read-only"]
    if c.drop_all_caps:
        args += ["--cap-drop", "ALL"]
    if c.no_new_privileges:
        args += ["--security-opt", "no-new-privileges"]
    if c.memory:
        args += ["--memory", str(c.memory)]
    if c.cpus:
        args += ["--cpus", f"{c.cpus:g}"]
    if c.shm_size:
        args += ["--shm-size", str(c.shm_size)]
    for k, v in sorted(c.env.items()):
        args += ["--env", f"{k}={v}"]
    if c.health:
        path, port, period = c.health
        probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=4)"
        # every image of the deployment has python3 (the bootstrapped base)
        args += ["--health-cmd", f'python3 -c "{probe}"', "--health-interval", f"{period}s"]
        args += ["--health-retries", "3", "--health-timeout", "5s"]
    args += [*mounts]
    if c.entrypoint:
        args += ["--entrypoint", c.entrypoint[0]]
    args += [c.image, *c.entrypoint[1:], *c.args]
    return args


def create_network(name: str, project: str) -> ipaddress.IPv4Network:
    """An internal bridge network with a subnet Docker chose as free, recreated as user-configured so that
    containers keep fixed addresses across restarts (the port forwarder targets them)."""
    docker("network", "create", "--internal", "--label", f"{LABEL}={project}", name)
    subnet = json.loads(docker("network", "inspect", name))[0]["IPAM"]["Config"][0]["Subnet"]
    docker("network", "rm", name)
    docker("network", "create", "--internal", "--subnet", subnet, "--label", f"{LABEL}={project}", name)
    return ipaddress.IPv4Network(subnet)


def remove_project(project: str) -> list[str]:
    """Remove every container and network labelled with the project; returns the containers removed."""
    ids = docker("ps", "-aq", "--filter", f"label={LABEL}={project}").split()
    names = [docker("inspect", "--format", "{{.Name}}", i).strip().lstrip("/") for i in ids]
    if ids:
        docker("rm", "-f", *ids)
    for net in docker("network", "ls", "-q", "--filter", f"label={LABEL}={project}").split():
        docker("network", "rm", net)
    return names


def wait(what: str, ok: Callable[[], bool], timeout_s: float, log: Callable[[], str] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(2)
    tail = f"\n{log()}" if log else ""
    raise DeployError(f"timed out after {timeout_s:.0f} s waiting for {what}{tail}")


def exec_ok(container: str, *cmd: str, timeout: float = 60) -> bool:
    try:
        return (
            subprocess.run(["docker", "exec", container, *cmd], capture_output=True, timeout=timeout).returncode == 0
        )
    except subprocess.TimeoutExpired:
        return False


def logs(container: str, lines: int = 30) -> str:
    proc = subprocess.run(["docker", "logs", "--tail", str(lines), container], capture_output=True, text=True)
    return proc.stdout + proc.stderr


def health(container: str) -> str:
    """Docker's health status of a container ("healthy", "starting", ...), or its state when it has no check."""
    out = docker("inspect", "--format", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
                 container, check=False).split()  # fmt: skip
    return out[-1] if out else "absent"
