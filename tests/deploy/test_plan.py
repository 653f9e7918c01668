"""The container deployment cannot drift from the chart: every container's command, env, ports, mounts and
security come from `helm template` (no Docker engine needed here; tests/deploy/test_containers.py runs them)."""

from __future__ import annotations

import json
import shlex

import pytest
import yaml

from limr.curation.roles import role_access, seaweed_actions
from limr.deploy.docker import run_args
from limr.deploy.plan import Plan, kinds, plan, rendered_secrets, secret_refs
from limr.deploy.pods import PlanError, quantity_bytes, quantity_cpus
from limr.deploy.up import IMAGES, VALUES, published_ports, render


@pytest.fixture(scope="module")
def objects(helm):
    return render(VALUES)


def _secrets(objects) -> dict[str, dict[str, str]]:
    rendered = rendered_secrets(objects)
    return {n: {k: rendered.get(n, {}).get(k, f"generated-{n}-{k}") for k in keys | set(rendered.get(n, {}))}
            for n, keys in secret_refs(objects).items()}  # fmt: skip


@pytest.fixture(scope="module")
def deployment(objects) -> Plan:
    return plan(objects, _secrets(objects), IMAGES)


def _pods(objects):
    """(pod template, container, rayStartParams or None, node type) of every Deployment and Ray group."""
    for dep in kinds(objects, "Deployment"):
        yield dep["spec"]["template"], dep["spec"]["template"]["spec"]["containers"][0], None, None
    (cluster,) = kinds(objects, "RayCluster")
    head = cluster["spec"]["headGroupSpec"]
    yield head["template"], head["template"]["spec"]["containers"][0], head["rayStartParams"], "head"
    for g in cluster["spec"]["workerGroupSpecs"]:
        yield g["template"], g["template"]["spec"]["containers"][0], g["rayStartParams"], "worker"


def _containers_for(deployment: Plan, tpl):
    labels = tpl["metadata"]["labels"]
    return [c for c in [*deployment.ray, *deployment.services] if c.labels == labels]


def test_should_run_every_pod_with_the_charts_command_env_ports_and_security(objects, deployment):
    seen = 0
    for tpl, spec, params, node_type in _pods(objects):
        containers = _containers_for(deployment, tpl)
        assert containers, tpl["metadata"]["labels"]
        for c in containers:
            args = run_args(c, "limr", "limr-net", "10.0.0.10", [])
            env = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--env")
            for item in spec["env"]:
                assert env[item["name"]] == str(item["value"]), (c.name, item["name"])
            assert {p["name"]: p["containerPort"] for p in spec["ports"]} == c.ports
            if params is None:  # a Deployment: the container's command and args, verbatim
                tail = args[args.index(c.image) :]
                assert tail == [c.image, *spec["args"]] and args[args.index("--entrypoint") + 1] == spec["command"][0]
            else:  # a Ray group: KubeRay's `ray start` with every rayStartParam
                line = " ".join(c.args[2:])
                assert line.startswith("ray start --block " + ("--head" if node_type == "head" else "--address="))
                for k, val in params.items():
                    assert f"--{k}={val}" in shlex.split(line), (c.name, k)
            # the chart's securityContext: non-root uid/gid, fsGroup, read-only root, no capabilities
            psc, csc = tpl["spec"]["securityContext"], spec["securityContext"]
            assert args[args.index("--user") + 1] == f"{psc['runAsUser']}:{psc['runAsGroup']}"
            assert f"--group-add={psc['fsGroup']}" in args
            assert csc["readOnlyRootFilesystem"] and "--read-only" in args
            assert args[args.index("--cap-drop") + 1] == "ALL" and "no-new-privileges" in args
            limits = spec["resources"]["limits"]
            assert c.memory == quantity_bytes(limits["memory"]) and c.cpus == quantity_cpus(limits["cpu"])
            seen += 1
    assert seen == len(deployment.ray) + len(deployment.services) == 5  # head, 2 workers, scorer, API


def test_should_mount_every_file_the_pod_mounts_and_never_pass_a_secret_in_env_or_args(objects, deployment):
    secrets = _secrets(objects)
    values = {val for s in secrets.values() for val in s.values()}
    for c in deployment.containers():
        args = " ".join(run_args(c, "limr", "limr-net", "10.0.0.10", []))
        assert not any(val in args for val in values), c.name
    head = deployment.ray[0]
    files = {f"{m.target}/{p}": content for m in head.mounts for p, content in m.files}
    assert files[head.env["LIMR_S3_ACCESS_KEY_FILE"]] == secrets["limr-store-learner"]["AWS_ACCESS_KEY_ID"]
    (cm,) = [o for o in kinds(objects, "ConfigMap") if "train.yaml" in o["data"]]
    assert files["/etc/limr/train.yaml"] == cm["data"]["train.yaml"]
    api = next(c for c in deployment.services if c.args[:2] == ["serve", "datasets"])
    api_files = {f"{m.target}/{p}" for m in api.mounts for p, _ in m.files}
    assert api.env["LIMR_API_TOKEN_FILE"] in api_files
    scorer = next(c for c in deployment.services if c.args[:2] == ["serve", "scorer"])
    assert not any("token" in p for m in scorer.mounts for p, _ in m.files)  # the scorer holds no token


def test_should_run_ray_with_the_token_auth_kuberay_injects_from_the_clusters_authoptions(objects, deployment):
    (cluster,) = kinds(objects, "RayCluster")
    auth = cluster["spec"]["authOptions"]
    assert auth["mode"] == "token"
    token = rendered_secrets(objects)[auth["secretName"]]["auth_token"]  # the chart's own Secret, as KubeRay reads it
    for c in deployment.ray:  # every node, as KubeRay: RAY_AUTH_MODE=token and the token (a file here, not env)
        files = {f"{m.target}/{p}": body for m in c.mounts for p, body in m.files}
        assert c.env["RAY_AUTH_MODE"] == "token" and files[c.env["RAY_AUTH_TOKEN_PATH"]] == token, c.name
        assert "RAY_AUTH_TOKEN" not in c.env
    for _, spec, _params, _ in _pods(objects):  # the pods carry no auth env of their own: it is KubeRay's to add
        assert not {e["name"] for e in spec["env"]} & {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"}


def test_should_run_ray_without_auth_when_the_chart_disables_it(objects):
    bad = json.loads(json.dumps(objects))
    for o in kinds(bad, "RayCluster"):
        o["spec"].pop("authOptions")
    p = plan(bad, _secrets(bad), IMAGES)
    assert all("RAY_AUTH_MODE" not in c.env for c in p.ray)


def test_should_keep_the_kind_values_ray_env_that_the_deploy_values_repeat(deployment):
    kind = yaml.safe_load((VALUES[0]).read_text())["ray"]["env"]
    for c in deployment.ray:
        assert {e["name"]: e["value"] for e in kind}.items() <= c.env.items(), c.name  # Helm replaces lists


def test_should_deploy_the_rayservice_app_and_submit_the_rayjob_entrypoint(objects, deployment):
    (svc,) = kinds(objects, "RayService")
    assert deployment.serve_config == yaml.safe_load(svc["spec"]["serveConfigV2"])
    assert deployment.serve_config["applications"][0]["import_path"] == "limr.rollout.app:build_app"
    (job,) = kinds(objects, "RayJob")
    assert deployment.job_entrypoint == job["spec"]["entrypoint"]
    train = yaml.safe_load(
        next(o for o in kinds(objects, "ConfigMap") if "train.yaml" in o["data"])["data"]["train.yaml"]
    )
    assert train["rollout"]["app_name"] == deployment.serve_config["applications"][0]["name"]  # the standing app
    assert train["trainer"]["num_workers"] == 2


def test_should_scrape_every_monitored_port_of_every_container(objects, deployment):
    jobs = {j["job_name"]: j for j in deployment.scrape}
    targets = {t for j in deployment.scrape for s in j["static_configs"] for t in s["targets"]}
    for c in deployment.ray:
        assert {f"{c.name}:{c.ports['metrics']}", f"{c.name}:{c.ports['train-metrics']}"} <= targets
    for c in deployment.services:
        assert f"{c.name}:{c.ports['http']}" in targets
    (rollout,) = [j for n, j in jobs.items() if n.endswith("/serve")]
    assert rollout["static_configs"][0]["targets"] == [f"{deployment.ray[0].name}:8000"]
    assert len(jobs) == sum(len(m["spec"].get("endpoints") or m["spec"].get("podMetricsEndpoints"))
                            for m in kinds(objects, "ServiceMonitor") + kinds(objects, "PodMonitor"))  # fmt: skip


def test_should_publish_only_on_loopback_with_env_overrides(monkeypatch):
    assert published_ports() == {"api": 18080, "prometheus": 19090, "ray": 18265}
    monkeypatch.setenv("LIMR_DEPLOY_API_PORT", "28080")
    assert published_ports()["api"] == 28080


def test_should_name_the_missing_secret_when_a_pod_mounts_one_nobody_creates(objects):
    secrets = _secrets(objects)
    del secrets["limr-store-scorer"]
    with pytest.raises(PlanError, match="limr-store-scorer"):
        plan(objects, secrets, IMAGES)


def test_should_reject_env_from_a_secret_reference(objects):
    bad = json.loads(json.dumps(objects))
    dep = kinds(bad, "Deployment")[0]
    dep["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "X", "valueFrom": {"secretKeyRef": {}}})
    with pytest.raises(PlanError, match="env X has no plain value"):
        plan(bad, _secrets(bad), IMAGES)


def test_should_give_the_s3_server_one_identity_per_store_role_as_the_charts_job_gives_minio(objects, deployment):
    secrets = _secrets(objects)
    (s3_json,) = [content for m in deployment.s3.mounts for name, content in m.files if name == "s3.json"]
    identities = {i["name"]: i for i in json.loads(s3_json)["identities"]}
    assert set(identities) == {"learner", "scorer", "api"}  # one Ray cluster: the rollout app runs on the learner's
    for role, ident in identities.items():
        pair = secrets[f"limr-store-{role}"]
        (cred,) = ident["credentials"]
        assert cred == {"accessKey": pair["AWS_ACCESS_KEY_ID"], "secretKey": pair["AWS_SECRET_ACCESS_KEY"]}
        assert "Admin" not in ident["actions"]
    assert identities["learner"]["actions"] == seaweed_actions(role_access("learner"), "limr")
    assert identities["api"]["actions"] == seaweed_actions(role_access("api", publishing=True), "limr")
    assert "Write:limr/runs/*" not in identities["scorer"]["actions"] + identities["api"]["actions"]
    assert "limr-store" not in secret_refs(objects)  # no container holds a key pair that may do everything


def test_should_refuse_two_roles_sharing_one_key_pair(objects):
    secrets = _secrets(objects)
    secrets["limr-store-api"] = dict(secrets["limr-store-scorer"])
    with pytest.raises(PlanError, match="also another role's"):
        plan(objects, secrets, IMAGES)
