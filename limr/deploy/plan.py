"""`helm template` output -> the container deployment: every container, the Serve config, the training job's
entrypoint and Prometheus' scrape targets, all read from the chart's objects (docs/deploy.md).

- RayCluster: one container per head and worker replica, with KubeRay's `ray start` (pods.ray_start); the head
  answers as `<cluster>-head-svc`, the name KubeRay gives its Service. Init containers run once, in order. Its
  `authOptions` (token mode) become what KubeRay injects into every Ray container: RAY_AUTH_MODE=token and the
  token of the Secret `authOptions.secretName` (key `auth_token`), here as a file (RAY_AUTH_TOKEN_PATH) rather
  than KubeRay's env variable, so that the token shows in no `docker inspect`.
- RayService: its `serveConfigV2` is deployed onto that cluster (one Ray cluster here, two on Kubernetes).
- RayJob: its `entrypoint` is what `ray job submit` runs.
- Deployments: one container per replica, named like the Services that select them.
- ServiceMonitor/PodMonitor: Prometheus scrape targets (container:port/path).
The S3 server and Prometheus are this deployment's own (MinIO and the Prometheus operator on Kubernetes); they
run with the same user and security settings as the chart's pods.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import yaml

from limr.deploy.pods import (
    Container,
    Mount,
    Obj,
    PlanError,
    Secrets,
    apply_resources,
    apply_security,
    env_of,
    mounts_of,
    ports_of,
    ray_start,
    readiness_of,
    secret_files,
)

S3_PORT = 8333
PROMETHEUS_PORT = 9090
RAY_TOKEN_KEY = "auth_token"  # KubeRay's key in the Secret of authOptions (utils.RAY_AUTH_TOKEN_SECRET_KEY)
RAY_TOKEN_FILE = "/var/run/secrets/ray/auth-token"


@dataclass
class Plan:
    """Everything `limr deploy up` starts, in start order."""

    s3: Container
    init: list[Container]
    ray: list[Container]  # head first
    services: list[Container]
    prometheus: Container
    serve_config: dict[str, Any]
    job_entrypoint: str
    scrape: list[dict[str, Any]] = field(default_factory=list)  # Prometheus scrape_configs
    bucket: str = "limr"

    def containers(self) -> list[Container]:
        return [self.s3, *self.init, *self.ray, *self.services, self.prometheus]

    def get(self, name: str) -> Container:
        for c in self.containers():
            if c.name == name:
                return c
        raise KeyError(name)


def kinds(objects: Iterable[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o.get("kind") == kind]


def secret_refs(objects: Iterable[Obj]) -> dict[str, set[str]]:
    """Secret name -> keys, for every Secret a pod of the chart mounts (rendered by it or expected to exist)."""
    refs: dict[str, set[str]] = {}

    def note(src: Obj) -> None:
        name = src.get("name") or src.get("secretName")
        keys = {i["key"] for i in src.get("items") or []}
        refs.setdefault(name, set()).update(keys)

    for cluster in kinds(objects, "RayCluster"):
        auth = cluster["spec"].get("authOptions") or {}
        if auth.get("mode") == "token":
            note({"secretName": auth["secretName"], "items": [{"key": RAY_TOKEN_KEY}]})
    for pod in _pod_specs(objects):
        for vol in pod.get("volumes") or []:
            if "secret" in vol:
                note(vol["secret"])
            for src in (vol.get("projected") or {}).get("sources") or []:
                if "secret" in src:
                    note(src["secret"])
    return refs


def rendered_secrets(objects: Iterable[Obj]) -> dict[str, dict[str, str]]:
    """The Secrets the chart renders, decoded (helm template generates fresh random values each time)."""
    return {
        s["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()}
        for s in kinds(objects, "Secret")
    }


def _pod_specs(objects: Iterable[Obj]) -> list[Obj]:
    pods = []
    for o in objects:
        if o.get("kind") == "Deployment":
            pods.append(o["spec"]["template"]["spec"])
        elif o.get("kind") == "RayCluster":
            pods.append(o["spec"]["headGroupSpec"]["template"]["spec"])
            pods += [g["template"]["spec"] for g in o["spec"].get("workerGroupSpecs") or []]
    return pods


def _container(
    name: str, pod_tpl: Obj, spec: Obj, secrets: Secrets, configmaps: Mapping[str, Mapping[str, str]]
) -> Container:
    pod = pod_tpl["spec"]
    ports = ports_of(spec)
    mounts, shm = mounts_of(pod, spec, secrets, configmaps, f"{name}/{spec['name']}")
    c = Container(
        name=name,
        image=spec["image"],
        entrypoint=list(spec.get("command") or []),
        args=[str(a) for a in spec.get("args") or []],
        env=env_of(spec),
        ports=ports,
        labels=dict((pod_tpl.get("metadata") or {}).get("labels") or {}),
        mounts=mounts,
        shm_size=shm,
        health=readiness_of(spec, ports),
    )
    apply_security(c, pod, spec)
    apply_resources(c, spec)
    return c


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        if e["operator"] != "In":
            raise PlanError(f"selector operator {e['operator']!r} is not supported")
        if labels.get(e["key"]) not in e["values"]:
            return False
    return True


def _ray(cluster: Obj, secrets: Secrets, configmaps: Mapping[str, Mapping[str, str]]) -> tuple[list[Container], ...]:
    name = cluster["metadata"]["name"]
    head_host = f"{name}-head-svc"
    groups = [("head", "head", 1, cluster["spec"]["headGroupSpec"])]
    groups += [
        (g["groupName"], "worker", int(g["replicas"]), g) for g in cluster["spec"].get("workerGroupSpecs") or []
    ]
    ray: list[Container] = []
    init: list[Container] = []
    seen_init: set[tuple[str, ...]] = set()
    for group, node_type, replicas, spec in groups:
        tpl = spec["template"]
        (main,) = tpl["spec"]["containers"][:1]
        for i in range(replicas):
            cname = f"{name}-head" if node_type == "head" else f"{name}-{group}-worker-{i + 1}"
            c = _container(cname, tpl, main, secrets, configmaps)
            cmd = ray_start(spec.get("rayStartParams") or {}, node_type, head_host, main)
            # As KubeRay: `ulimit -n 65536; ray start ...` through a shell.
            c.entrypoint = ["/bin/bash", "-c"]
            c.args = ['ulimit -n 65536; exec "$@" --node-ip-address="$(hostname -i)"', "ray-start", *cmd]
            c.env.setdefault("RAY_CLUSTER_NAME", name)
            _ray_auth(c, cluster, secrets)
            if node_type == "head":
                c.aliases = [head_host]
            # The RayService's app is deployed onto this cluster: its pods' monitors select these containers.
            c.also_labels = [{**c.labels, "limr.io/ray-role": "rollout"}]
            ray.append(c)
            for ic in tpl["spec"].get("initContainers") or []:
                key = (ic["name"], *ic.get("command", []), *map(str, ic.get("args", [])))
                if key not in seen_init:
                    seen_init.add(key)
                    one = _container(f"{name}-init-{ic['name']}", tpl, ic, secrets, configmaps)
                    one.one_shot, one.restart = True, "no"
                    init.append(one)
    return ray, init


def _ray_auth(c: Container, cluster: Obj, secrets: Secrets) -> None:
    """What KubeRay's authOptions inject into a Ray container: token mode and the cluster's token (a file here)."""
    auth = cluster["spec"].get("authOptions") or {}
    mode = auth.get("mode", "disabled")
    if mode == "disabled":
        return
    if mode != "token":
        raise PlanError(f"RayCluster {cluster['metadata']['name']}: authOptions.mode {mode!r} is not supported")
    items = [{"key": RAY_TOKEN_KEY, "path": RAY_TOKEN_FILE.rsplit("/", 1)[1]}]
    files = secret_files({"secretName": auth["secretName"]}, secrets, f"{c.name}/authOptions", items)
    c.env["RAY_AUTH_MODE"] = "token"
    c.env["RAY_AUTH_TOKEN_PATH"] = RAY_TOKEN_FILE
    c.mounts.append(Mount(RAY_TOKEN_FILE.rsplit("/", 1)[0], "files", files=tuple(files)))


def _services(objects: list[Obj], secrets: Secrets, configmaps: Mapping[str, Mapping[str, str]]) -> list[Container]:
    out = []
    for d in kinds(objects, "Deployment"):
        tpl = d["spec"]["template"]
        labels = (tpl.get("metadata") or {}).get("labels") or {}
        aliases = [
            s["metadata"]["name"]
            for s in kinds(objects, "Service")
            if _selects({"matchLabels": s["spec"]["selector"]}, labels)
        ]
        replicas = int(d["spec"].get("replicas", 1))
        for i in range(replicas):
            name = d["metadata"]["name"] if replicas == 1 else f"{d['metadata']['name']}-{i + 1}"
            c = _container(name, tpl, tpl["spec"]["containers"][0], secrets, configmaps)
            c.aliases = aliases
            out.append(c)
    return out


def scrape_configs(objects: list[Obj], pods: list[Container]) -> list[dict[str, Any]]:
    """Prometheus scrape_configs from the chart's ServiceMonitors and PodMonitors, over the containers."""
    jobs = []
    for sm in kinds(objects, "ServiceMonitor"):
        services = [s for s in kinds(objects, "Service") if _selects(sm["spec"]["selector"], s["metadata"]["labels"])]
        for ep in sm["spec"]["endpoints"]:
            targets = []
            for svc in services:
                port = next(p for p in svc["spec"]["ports"] if p.get("name") == ep["port"])
                for c in pods:
                    if _selects({"matchLabels": svc["spec"]["selector"]}, c.labels):
                        tp = port["targetPort"]
                        targets.append((c.name, c.ports[tp] if isinstance(tp, str) else int(tp)))
            jobs.append(_job(f"{sm['metadata']['name']}/{ep['port']}", ep, targets))
    for pm in kinds(objects, "PodMonitor"):
        for ep in pm["spec"]["podMetricsEndpoints"]:
            targets = [
                (c.name, c.ports[ep["port"]])
                for c in pods
                if any(_selects(pm["spec"]["selector"], ls) for ls in (c.labels, *c.also_labels))
                and ep["port"] in c.ports
            ]
            jobs.append(_job(f"{pm['metadata']['name']}/{ep['port']}", ep, targets))
    return jobs


def _job(name: str, ep: Mapping[str, Any], targets: list[tuple[str, int]]) -> dict[str, Any]:
    if not targets:
        raise PlanError(f"monitor {name} selects no container of the deployment")
    return {
        "job_name": name,
        "metrics_path": ep.get("path", "/metrics"),
        "scrape_interval": ep.get("interval", "30s"),
        "scrape_timeout": ep.get("scrapeTimeout", "10s"),
        "static_configs": [{"targets": [f"{n}:{p}"], "labels": {"container": n}} for n, p in targets],
    }


def plan(objects: list[Obj], secrets: Secrets, images: Mapping[str, str]) -> Plan:
    """The deployment of rendered chart `objects`; `secrets` holds every Secret the pods mount (secret_refs)."""
    configmaps = {cm["metadata"]["name"]: dict(cm.get("data") or {}) for cm in kinds(objects, "ConfigMap")}
    clusters = kinds(objects, "RayCluster")
    if len(clusters) != 1:
        raise PlanError(f"the values must render exactly one RayCluster (ray.cluster.enabled), got {len(clusters)}")
    ray, init = _ray(clusters[0], secrets, configmaps)
    services = _services(objects, secrets, configmaps)
    services_, jobs = kinds(objects, "RayService"), kinds(objects, "RayJob")
    if len(services_) != 1 or len(jobs) != 1:
        raise PlanError("the values must enable rollout (one RayService) and train (one RayJob)")
    svc_rollout, job = services_[0], jobs[0]
    store_env = ray[0].env
    endpoint, bucket = store_env.get("LIMR_S3_ENDPOINT", ""), store_env["LIMR_STORE"].removeprefix("s3://")
    s3_host = endpoint.split("://")[-1].split(":")[0]
    template = services[0]  # the chart's security settings, for the two containers it does not render
    s3 = _own(template, f"{s3_host}", images["s3"], ["/usr/local/bin/weed"], [
        "mini", "-dir=/data", "-ip=127.0.0.1", "-ip.bind=0.0.0.0", "-admin.ui=false", "-webdav=false",
        f"-s3.port={S3_PORT}", "-s3.config=/etc/limr-s3/s3.json",
    ])  # fmt: skip
    s3.ports = {"s3": S3_PORT}
    s3.mounts.append(Mount("/data", "dir", read_only=False, volume="s3-data"))
    identities = _s3_identities([*ray, *services], store_env["LIMR_STORE"])
    s3.mounts.append(Mount("/etc/limr-s3", "files", files=(("s3.json", identities),)))
    pods = [*ray, *services]
    scrape = scrape_configs(objects, pods)
    prom = _own(template, "prometheus", images["prometheus"], ["/usr/bin/prometheus"], [
        "--config.file=/etc/limr-prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
        f"--web.listen-address=:{PROMETHEUS_PORT}",
    ])  # fmt: skip
    prom.ports = {"http": PROMETHEUS_PORT}
    prom.mounts.append(Mount("/prometheus", "tmpfs", read_only=False, size=str(512 * 2**20)))
    prom.mounts.append(
        Mount(
            "/etc/limr-prometheus",
            "files",
            files=(("prometheus.yml", yaml.safe_dump({"scrape_configs": scrape})),),
            mode=0o444,
        )
    )
    prom.health = ("/-/ready", PROMETHEUS_PORT, 5)
    serve = yaml.safe_load(svc_rollout["spec"]["serveConfigV2"])
    return Plan(s3, init, ray, services, prom, serve, job["spec"]["entrypoint"], scrape, bucket)


def _own(template: Container, name: str, image: str, entrypoint: list[str], args: list[str]) -> Container:
    c = Container(name=name, image=image, entrypoint=entrypoint, args=args, aliases=[name])
    c.user, c.group_add, c.read_only = template.user, template.group_add, template.read_only
    c.drop_all_caps, c.no_new_privileges = template.drop_all_caps, template.no_new_privileges
    c.mounts = [Mount("/tmp", "tmpfs", read_only=False, size=str(256 * 2**20))]
    return c


def _store_keys(c: Container) -> tuple[str, str]:
    """A container's store key pair, read from the files the chart mounts for it."""
    want = {c.env.get("LIMR_S3_ACCESS_KEY_FILE", ""): "", c.env.get("LIMR_S3_SECRET_KEY_FILE", ""): ""}
    for m in c.mounts:
        for path, content in m.files:
            full = f"{m.target.rstrip('/')}/{path}"
            if full in want:
                want[full] = content
    access, secret = (list(want.values()) + [""])[:2]
    if not access or not secret:
        raise PlanError(f"{c.name} mounts no store credentials (LIMR_S3_ACCESS_KEY_FILE/LIMR_S3_SECRET_KEY_FILE)")
    return access, secret


def _s3_identities(containers: Iterable[Container], store_uri: str) -> str:
    """SeaweedFS' identity file: one identity per store role the containers hold (their `limr.io/store-role`
    label and mounted key pair), allowed what limr.curation.roles gives that role, as the chart's store-setup Job
    does on MinIO. The API may write datasets/ when it publishes (it holds the writer token)."""
    from limr.curation.roles import ROLES, Role, role_access, seaweed_actions

    bucket, _, root = store_uri.removeprefix("s3://").partition("/")
    identities: dict[str, dict[str, Any]] = {}
    for c in containers:
        role = c.labels.get("limr.io/store-role", "")
        if role not in ROLES:
            raise PlanError(f"{c.name}: store role label limr.io/store-role={role!r} is not one of {ROLES}")
        access, secret = _store_keys(c)
        access_rules = role_access(cast(Role, role), publishing="LIMR_API_TOKEN_FILE" in c.env)
        ident = {"name": role, "credentials": [{"accessKey": access, "secretKey": secret}],
                 "actions": seaweed_actions(access_rules, bucket, root)}  # fmt: skip
        if identities.setdefault(access, ident) != ident:
            raise PlanError(f"{c.name}: store key pair {access!r} is also another role's; each role needs its own")
    return json.dumps({"identities": list(identities.values())})
