"""Kubernetes pod specs -> container specs, as the kubelet runs them (command, env, ports, mounts, security).

Pure functions over `helm template` output: no Docker here, so tests compare the deployment with the chart
without an engine. Volumes map as follows: an `emptyDir` at /tmp is a tmpfs of the container; a memory
`emptyDir` at /dev/shm is the container's shared-memory size; any other `emptyDir` is one host directory per
volume name, shared by every pod of the deployment (the chart's model volume: the tiny model is built once);
`configMap`, `secret` and projected-secret volumes are read-only files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
Secrets = Mapping[str, Mapping[str, str]]


class PlanError(ValueError):
    """The chart rendered something this deployment cannot run (named in the message)."""


@dataclass(frozen=True)
class Mount:
    """One mount of a container: a tmpfs, read-only files, or a shared host directory."""

    target: str
    kind: str  # "tmpfs" | "files" | "dir"
    read_only: bool = True
    size: str | None = None  # tmpfs size (bytes)
    files: tuple[tuple[str, str], ...] = ()  # files: (relative path, content)
    volume: str = ""  # dir: name of the shared host directory
    mode: int = 0o440  # files: permission bits (owner root, group = the pod's fsGroup)


@dataclass
class Container:
    """What `docker run` needs for one container of the deployment."""

    name: str
    image: str
    entrypoint: list[str]
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)  # port name -> container port
    labels: dict[str, str] = field(default_factory=dict)  # the pod's labels (monitors select on them)
    # The labels of the other pods this container also stands for (the RayService's, whose app runs here).
    also_labels: list[dict[str, str]] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    user: str | None = None  # "uid:gid"
    group_add: list[str] = field(default_factory=list)  # the pod's fsGroup
    read_only: bool = False
    drop_all_caps: bool = False
    no_new_privileges: bool = False
    memory: int | None = None  # bytes
    cpus: float | None = None
    shm_size: int | None = None  # bytes
    aliases: list[str] = field(default_factory=list)  # DNS names on the deployment's network
    restart: str = "unless-stopped"
    health: tuple[str, int, int] | None = None  # (HTTP path, port, period seconds) of the readiness probe
    one_shot: bool = False  # an init container: runs to completion before the pod's containers


_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity_bytes(q: str | int) -> int:
    """A Kubernetes memory quantity ("3Gi", "512Mi", 1000) in bytes."""
    m = re.fullmatch(r"([0-9.]+)([kMGT]i?|)", str(q))
    if not m:
        raise PlanError(f"memory quantity {q!r} is not of the form N[Ki|Mi|Gi|k|M|G]")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def quantity_cpus(q: str | int | float) -> float:
    """A Kubernetes CPU quantity ("500m", "2", 1.5) in CPUs."""
    s = str(q)
    return int(s[:-1]) / 1000 if s.endswith("m") else float(s)


def env_of(container: Obj) -> dict[str, str]:
    """Plain `value` env variables (the chart puts credentials in files, never in `valueFrom` env)."""
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        if "value" not in item:
            raise PlanError(f"container {container['name']}: env {item['name']} has no plain value")
        env[item["name"]] = str(item["value"])
    return env


def secret_files(source: Obj, secrets: Secrets, where: str, items: list[Obj] | None = None) -> list[tuple[str, str]]:
    name = source.get("name") or source.get("secretName")
    if name not in secrets:
        raise PlanError(f"{where}: Secret {name!r} is neither rendered by the chart nor created by the deployment")
    data = secrets[name]
    pairs = [(i["key"], i["path"]) for i in items] if items else [(k, k) for k in sorted(data)]
    missing = [k for k, _ in pairs if k not in data]
    if missing:
        raise PlanError(f"{where}: Secret {name!r} has no key {missing[0]!r}")
    return [(path, data[key]) for key, path in pairs]


def mounts_of(
    pod: Obj, container: Obj, secrets: Secrets, configmaps: Mapping[str, Mapping[str, str]], where: str
) -> tuple[list[Mount], int | None]:
    """The container's mounts and its shared-memory size (a memory emptyDir at /dev/shm)."""
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    mounts: list[Mount] = []
    shm: int | None = None
    for vm in container.get("volumeMounts") or []:
        vol = volumes.get(vm["name"])
        if vol is None:
            raise PlanError(f"{where}: volumeMount {vm['name']!r} names no volume of the pod")
        target, ro = vm["mountPath"], bool(vm.get("readOnly", False))
        if "emptyDir" in vol:
            size = (vol["emptyDir"] or {}).get("sizeLimit")
            if (vol["emptyDir"] or {}).get("medium") == "Memory" and target == "/dev/shm":
                shm = quantity_bytes(size) if size else None
            elif target == "/tmp":
                mounts.append(
                    Mount(target, "tmpfs", read_only=False, size=str(quantity_bytes(size)) if size else None)
                )
            else:
                mounts.append(Mount(target, "dir", read_only=ro, volume=vm["name"]))
        elif "configMap" in vol:
            cm = vol["configMap"]["name"]
            if cm not in configmaps:
                raise PlanError(f"{where}: ConfigMap {cm!r} is not rendered by the chart")
            files = tuple(sorted(configmaps[cm].items()))
            mounts.append(Mount(target, "files", files=files, mode=0o444))
        elif "secret" in vol:
            s = vol["secret"]
            files = tuple(secret_files(s, secrets, where, s.get("items")))
            mounts.append(Mount(target, "files", files=files, mode=s.get("defaultMode", 0o440)))
        elif "projected" in vol:
            files_l: list[tuple[str, str]] = []
            for src in vol["projected"].get("sources") or []:
                if "secret" not in src:
                    raise PlanError(f"{where}: projected volume {vm['name']!r} has a non-secret source")
                files_l += secret_files(src["secret"], secrets, where, src["secret"].get("items"))
            mounts.append(
                Mount(target, "files", files=tuple(files_l), mode=vol["projected"].get("defaultMode", 0o440))
            )
        else:
            raise PlanError(f"{where}: volume {vm['name']!r} has a type this deployment does not run ({sorted(vol)})")
    return mounts, shm


def apply_security(c: Container, pod: Obj, container: Obj) -> None:
    """Pod and container securityContext -> user, fsGroup, read-only root, capabilities, no-new-privileges."""
    psc, csc = pod.get("securityContext") or {}, container.get("securityContext") or {}
    uid, gid = csc.get("runAsUser", psc.get("runAsUser")), csc.get("runAsGroup", psc.get("runAsGroup"))
    if (csc.get("runAsNonRoot") or psc.get("runAsNonRoot")) and not uid:
        raise PlanError(f"{c.name}: runAsNonRoot without a runAsUser (the image's user is not checked here)")
    if uid is not None:
        c.user = f"{uid}:{gid if gid is not None else uid}"
    if psc.get("fsGroup") is not None:
        c.group_add = [str(psc["fsGroup"])]
    c.read_only = bool(csc.get("readOnlyRootFilesystem"))
    c.drop_all_caps = "ALL" in ((csc.get("capabilities") or {}).get("drop") or [])
    c.no_new_privileges = csc.get("allowPrivilegeEscalation") is False


def apply_resources(c: Container, container: Obj) -> None:
    """Resource limits -> the container's memory and CPU limits (requests are a scheduler's business)."""
    limits = (container.get("resources") or {}).get("limits") or {}
    if "memory" in limits:
        c.memory = quantity_bytes(limits["memory"])
    if "cpu" in limits:
        c.cpus = quantity_cpus(limits["cpu"])


def ports_of(container: Obj) -> dict[str, int]:
    return {p["name"]: int(p["containerPort"]) for p in container.get("ports") or [] if "name" in p}


def readiness_of(container: Obj, ports: Mapping[str, int]) -> tuple[str, int, int] | None:
    probe = container.get("readinessProbe") or {}
    get = probe.get("httpGet")
    if not get:
        return None
    port = get["port"]
    return get["path"], int(ports[port] if isinstance(port, str) else port), int(probe.get("periodSeconds", 10))


def ray_start(params: Mapping[str, Any], node_type: str, head_host: str, container: Obj) -> list[str]:
    """The `ray start` command KubeRay generates for a group: its rayStartParams, num-cpus and memory from the
    container's limits when not given, `--block`, and the head's address for workers. The node advertises its
    own address on the network (`hostname -i`): an internal network has no default route to guess it from."""
    p = {str(k): str(v) for k, v in params.items()}
    limits = (container.get("resources") or {}).get("limits") or {}
    if "num-cpus" not in p and "cpu" in limits:
        p["num-cpus"] = str(math.ceil(quantity_cpus(limits["cpu"])))
    if "memory" not in p and "memory" in limits:
        p["memory"] = str(quantity_bytes(limits["memory"]))
    cmd = ["ray", "start", "--block"]
    cmd += ["--head"] if node_type == "head" else [f"--address={head_host}:6379"]
    cmd += [f"--{k}={v}" for k, v in sorted(p.items())]
    return cmd
