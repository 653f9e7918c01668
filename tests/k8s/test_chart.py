"""Chart behaviour, asserted on rendered objects ("Should ... when ...")."""

from __future__ import annotations

import shutil

import pytest
import yaml

from tests.k8s.support import validate as v
from tests.k8s.support.objects import VALUES_FILES, find, one, pod_templates

GPU = "nvidia.com/gpu"


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == val for k, val in selector.items())


def _match_expr(selector: dict, labels: dict[str, str]) -> bool:
    if not _matches(selector.get("matchLabels", {}), labels):
        return False
    for e in selector.get("matchExpressions", []):
        present = e["key"] in labels
        if e["operator"] == "In" and (not present or labels[e["key"]] not in e["values"]):
            return False
        if e["operator"] == "Exists" and not present:
            return False
    return True


def _containers(template: dict) -> list[dict]:
    spec = template["spec"]
    return spec.get("initContainers", []) + spec["containers"]


@pytest.mark.parametrize("values", VALUES_FILES)
def test_should_select_the_pods_of_each_workload_when_rendered(render, values):
    objects = render(values)
    for o in find(objects, "Deployment") + find(objects, "StatefulSet"):
        labels = o["spec"]["template"]["metadata"]["labels"]
        assert _matches(o["spec"]["selector"]["matchLabels"], labels), o["metadata"]["name"]
    pod_labels = [t["metadata"]["labels"] for _, t in pod_templates(objects)]
    for svc in find(objects, "Service"):
        sel = svc["spec"]["selector"]
        assert sum(_matches(sel, lab) for lab in pod_labels) >= 1, f"Service {svc['metadata']['name']} selects no pod"
    for pdb in find(objects, "PodDisruptionBudget"):
        assert any(_match_expr(pdb["spec"]["selector"], lab) for lab in pod_labels), pdb["metadata"]["name"]
    deployments = {d["metadata"]["name"] for d in find(objects, "Deployment")}
    for hpa in find(objects, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
        assert "replicas" not in one(objects, "Deployment", hpa["spec"]["scaleTargetRef"]["name"])["spec"]


def test_should_point_monitors_at_services_and_every_ray_pod_when_the_operator_api_exists(render):
    objects = render("values-gpu.yaml")
    sm = one(objects, "ServiceMonitor")
    selected = [s for s in find(objects, "Service") if _match_expr(sm["spec"]["selector"], s["metadata"]["labels"])]
    assert sorted(s["metadata"]["name"] for s in selected) == ["limr-datasets", "limr-scorer"]
    assert all(s["spec"]["ports"][0]["name"] == sm["spec"]["endpoints"][0]["port"] for s in selected)
    ray_pm = one(objects, "PodMonitor", "limr-ray")
    ray_pods = [(w, t) for w, t in pod_templates(objects) if w.startswith(("RayCluster", "RayService", "RayJob"))]
    ray_pods = [(w, t) for w, t in ray_pods if not w.endswith("/submitter")]
    assert len(ray_pods) == 4  # RayCluster head + gpu-8x, RayService head + gpu-rollout
    for where, t in ray_pods:
        assert _match_expr(ray_pm["spec"]["selector"], t["metadata"]["labels"]), where
        ports = {p["name"] for p in t["spec"]["containers"][0]["ports"]}
        assert {e["port"] for e in ray_pm["spec"]["podMetricsEndpoints"]} <= ports, where
    rollout_pm = one(objects, "PodMonitor", "limr-rollout")
    picked = [w for w, t in ray_pods if _match_expr(rollout_pm["spec"]["selector"], t["metadata"]["labels"])]
    assert picked == ["RayService/limr-rollout/head"]


def test_should_not_render_operator_objects_when_the_monitoring_api_is_absent(render):
    objects = render("values.yaml", api_versions=())
    assert not find(objects, "ServiceMonitor") + find(objects, "PodMonitor") + find(objects, "PrometheusRule")
    assert find(objects, "ConfigMap", "limr-dashboard")  # plain ConfigMap: always shipped


def _secret_files(template: dict) -> dict[str, tuple[str, str]]:
    """{<NAME>_FILE variable: (Secret, key)} of a pod: each variable must point at a file of the projected
    `secrets` volume, mounted into the container that has the variable."""
    spec = template["spec"]
    volume = next((vol for vol in spec.get("volumes", []) if vol["name"] == "secrets"), None)
    items = {}
    if volume:
        for src in volume["projected"]["sources"]:
            for item in src["secret"]["items"]:
                items[item["path"]] = (src["secret"]["name"], item["key"])
    found = {}
    for c in _containers(template):
        mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
        for e in c.get("env", []):
            if e["name"].endswith("_FILE"):
                mount = mounts["secrets"]
                assert mount["readOnly"] is True and e["value"].startswith(mount["mountPath"] + "/")
                found[e["name"]] = items[e["value"].removeprefix(mount["mountPath"] + "/")]
    return found


@pytest.mark.parametrize("values", VALUES_FILES)
def test_should_mount_only_secrets_that_exist_as_files_when_rendered(render, values):
    objects = render(values)
    secrets = {s["metadata"]["name"]: set(s["data"]) for s in find(objects, "Secret")}
    refs = []
    for where, t in pod_templates(objects):
        refs += [(where, name, key) for name, key in _secret_files(t).values()]
        for c in _containers(t):
            assert not c.get("envFrom"), where
            assert not [e for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})], where
    assert refs
    for where, name, key in refs:
        assert key in secrets.get(name, set()), f"{where} references missing secret {name}/{key}"


def _mounted_secrets(template: dict) -> set[str]:
    """Names of the Secrets a pod's projected `secrets` volume holds."""
    volume = next((v for v in template["spec"].get("volumes", []) if v["name"] == "secrets"), None)
    return {src["secret"]["name"] for src in volume["projected"]["sources"]} if volume else set()


def test_should_give_each_pod_only_the_credentials_it_uses(render):
    store = {"LIMR_S3_ACCESS_KEY_FILE", "LIMR_S3_SECRET_KEY_FILE"}
    for values, sets in (("values-gpu.yaml", ()), ("values.yaml", ("auth.reader.enabled=true",))):
        objects = render(values, set=sets)
        seen, store_secret = {}, {}
        for _, t in pod_templates(objects):
            component = t["metadata"]["labels"]["app.kubernetes.io/component"]
            role = t["metadata"]["labels"].get("limr.io/ray-role")
            files = _secret_files(t)
            seen[(component, role)] = set(files)
            if "LIMR_S3_ACCESS_KEY_FILE" in files:
                store_secret[(component, role)] = files["LIMR_S3_ACCESS_KEY_FILE"][0]
                assert t["metadata"]["labels"].get("limr.io/store-role") or component == "store-setup"
        locked = bool(sets) or values == "values-gpu.yaml"  # values-gpu exposes the API through an Ingress
        reader = {"LIMR_READ_TOKEN_FILE"} if locked else set()
        assert seen.pop(("datasets", None)) == store | {"LIMR_API_TOKEN_FILE"} | reader
        assert seen.pop(("scorer", None)) == store  # the scorer writes to the store only, no API token
        assert seen.pop(("ray", "rollout")) == store | {"LIMR_ROLLOUT_ADMIN_TOKEN_FILE"}
        assert seen.pop(("ray", "cluster")) == store | reader  # training pods: at most the reader token
        assert seen.pop(("ray-submitter", None), set()) == set()
        assert seen.pop(("store-setup", None)) == store  # root; the roles' pairs as plain files (below)
        (minio,) = [f for f in find(objects, "StatefulSet")]
        assert seen == {("minio", None): {"MINIO_ROOT_USER_FILE", "MINIO_ROOT_PASSWORD_FILE"}}
        assert set(_secret_files(minio["spec"]["template"]).values()) == {
            ("limr-store", "AWS_ACCESS_KEY_ID"),
            ("limr-store", "AWS_SECRET_ACCESS_KEY"),
        }
        # least privilege in the store: each role's pods hold its own key pair; root only in MinIO and the Job
        assert store_secret == {("datasets", None): "limr-store-api", ("scorer", None): "limr-store-scorer",
                                ("ray", "rollout"): "limr-store-rollout", ("ray", "cluster"): "limr-store-learner",
                                ("store-setup", None): "limr-store"}  # fmt: skip
        roles = {f"limr-store-{r}" for r in ("learner", "scorer", "api", "rollout")}
        for where, t in pod_templates(objects):
            held = _mounted_secrets(t)
            if where.endswith("store-setup-1"):
                assert held == {"limr-store"} | roles, where
            elif not where.startswith("StatefulSet"):
                assert "limr-store" not in held and len(held & roles) <= 1, where
        tokens = {s["metadata"]["name"] for s in find(objects, "Secret")}
        ray_tokens = {"limr-ray-ray-token", "limr-rollout-ray-token"}  # KubeRay's, never mounted (test_ray_auth.py)
        expected = {"limr-store", "limr-api", "limr-rollout-admin"} | ({"limr-api-read"} if locked else set())
        assert tokens == expected | ray_tokens | roles


def test_should_provision_every_roles_minio_user_from_a_job_with_the_root_credentials(render):
    objects = render("values.yaml", set=("store.prefix=team", "store.roleSecrets.api=my-api-keys"))
    (job,) = find(objects, "Job")
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["limr"] and c["args"][:2] == ["store", "provision"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["LIMR_STORE"] == "s3://limr/team" and env["LIMR_S3_ENDPOINT"] == "http://limr-minio:9000"
    sources = job["spec"]["template"]["spec"]["volumes"][-1]["projected"]["sources"]
    files = {item["path"]: src["secret"]["name"] for src in sources for item in src["secret"]["items"]}
    assert files["store-api/access-key-id"] == "my-api-keys"  # a given Secret is used as it is, not generated
    assert files["store-learner/secret-access-key"] == "limr-store-learner"
    assert "limr-store-api" not in {s["metadata"]["name"] for s in find(objects, "Secret")}
    (api,) = [d for d in find(objects, "Deployment") if d["metadata"]["name"] == "limr-datasets"]
    assert _secret_files(api["spec"]["template"])["LIMR_S3_ACCESS_KEY_FILE"] == ("my-api-keys", "AWS_ACCESS_KEY_ID")


def test_should_use_existing_secrets_and_render_none_when_given(render):
    sets = (
        "store.existingSecret=s3-creds",
        "store.secretKeys.accessKey=id",
        "auth.writer.existingSecret=api-token",
        "auth.rolloutAdmin.existingSecret=admin-token",
        "auth.rolloutAdmin.secretKey=token",
        *(f"store.roleSecrets.{r}=s3-{r}" for r in ("learner", "scorer", "api", "rollout")),
    )
    objects = render("values.yaml", set=sets)
    # only the per-cluster Ray tokens remain (tests/k8s/test_ray_auth.py)
    assert all(s["metadata"]["name"].endswith("-ray-token") for s in find(objects, "Secret"))
    names = set()
    for _, t in pod_templates(objects):
        names |= set(_secret_files(t).values())
    assert names == {
        ("s3-creds", "id"),  # the root pair: MinIO and the store-setup Job
        ("s3-creds", "AWS_SECRET_ACCESS_KEY"),
        *((f"s3-{r}", k) for r in ("learner", "scorer", "api", "rollout") for k in ("id", "AWS_SECRET_ACCESS_KEY")),
        ("api-token", "LIMR_API_TOKEN"),
        ("admin-token", "token"),
    }


@pytest.mark.parametrize("values", VALUES_FILES)
def test_should_never_put_credentials_in_plain_env_or_config_when_rendered(render, values):
    objects = render(values)
    secret_vars = {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "LIMR_API_TOKEN",
        "LIMR_READ_TOKEN",
        "LIMR_ROLLOUT_ADMIN_TOKEN",
        "MINIO_ROOT_USER",
        "MINIO_ROOT_PASSWORD",
    }
    for where, t in pod_templates(objects):
        for c in _containers(t):
            assert not {e["name"] for e in c.get("env", [])} & secret_vars, where
    for cm in find(objects, "ConfigMap"):
        text = yaml.safe_dump(cm["data"]).lower()
        assert "secret_access_key" not in text and "admin_token" not in text
    rayservice = find(objects, "RayService")
    assert all("admin_token" not in r["spec"]["serveConfigV2"] for r in rayservice)


def test_should_refuse_an_admin_token_in_values(helm):
    proc = v.helm("template", "limr", str(v.CHART), "--set", "rollout.args.admin_token=hunter2")
    assert proc.returncode != 0 and "credentials belong in Secrets" in proc.stderr


@pytest.mark.parametrize("values", VALUES_FILES)
def test_should_set_image_resources_and_a_locked_down_security_context_on_every_container(render, values):
    objects = render(values)
    templates = pod_templates(objects)
    assert len(templates) >= 6
    for where, t in templates:
        pod = t["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert pod.get("automountServiceAccountToken") in (False, True), where
        for c in _containers(t):
            name = f"{where}/{c['name']}"
            assert ":" in c["image"] and not c["image"].endswith(":latest"), name
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]) and {"cpu", "memory"} <= set(res["limits"]), name
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            # a read-only root needs a writable /tmp
            assert any(m["mountPath"] == "/tmp" for m in c.get("volumeMounts", [])), name


def test_should_mount_a_service_account_token_only_for_the_ray_autoscaler(render):
    plain = pod_templates(render("values.yaml"))
    assert all(t["spec"]["automountServiceAccountToken"] is False for _, t in plain)
    objects = render("values-gpu.yaml")  # autoscaling on
    role = one(objects, "Role")
    assert {r["apiGroups"][0]: sorted(r["resources"]) for r in role["rules"]} == {
        "": ["pods"],
        "ray.io": ["rayclusters"],
    }
    assert all("delete" not in r["verbs"] and "*" not in r["verbs"] for r in role["rules"])
    for where, t in pod_templates(objects):
        head = where.startswith(("RayCluster", "RayService")) and where.endswith("/head")
        assert t["spec"]["automountServiceAccountToken"] is head, where  # the autoscaler runs in the head only
    assert one(objects, "RayCluster")["spec"]["enableInTreeAutoscaling"] is True
    assert one(objects, "ServiceAccount")["automountServiceAccountToken"] is False


def test_should_request_gpus_with_tolerations_and_shared_memory_when_gpu_values(render):
    objects = render("values-gpu.yaml")
    cluster = one(objects, "RayCluster")["spec"]
    (group,) = cluster["workerGroupSpecs"]
    pod = group["template"]["spec"]
    res = pod["containers"][0]["resources"]
    assert res["limits"][GPU] == 8 and res["requests"][GPU] == 8
    assert {"key": GPU, "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    shm = next(vol for vol in pod["volumes"] if vol["name"] == "dshm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Gi"}
    head = cluster["headGroupSpec"]["template"]["spec"]
    assert GPU not in head["containers"][0]["resources"]["limits"] and "tolerations" not in head
    assert cluster["headGroupSpec"]["rayStartParams"]["num-gpus"] == "0"
    rollout = one(objects, "RayService")["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    assert [(g["groupName"], g["template"]["spec"]["containers"][0]["resources"]["limits"][GPU]) for g in rollout] == [
        ("gpu-rollout", 8)
    ]


def test_should_request_no_gpu_when_cpu_values(render):
    for values in ("values.yaml", "values-kind.yaml"):
        for where, t in pod_templates(render(values)):
            for c in _containers(t):
                assert GPU not in c["resources"].get("limits", {}), where
            assert "tolerations" not in t["spec"], where


def test_should_render_every_worker_group_from_one_pod_template(render):
    groups = (
        "ray.workerGroups[0].name=a,ray.workerGroups[0].replicas=1,ray.workerGroups[0].gpus=1,"
        "ray.workerGroups[0].resources.limits.cpu=2,ray.workerGroups[0].resources.limits.memory=1Gi,"
        "ray.workerGroups[1].name=b,ray.workerGroups[1].replicas=3,ray.workerGroups[1].gpus=0,"
        "ray.workerGroups[1].resources.limits.cpu=4,ray.workerGroups[1].resources.limits.memory=2Gi,"
        "ray.workerGroups[1].nodeSelector.pool=cpu,"
        "train.enabled=true,train.prompts=/p.jsonl,train.useExistingCluster=false"
    )
    objects = render("values.yaml", set=(groups,))
    specs = [one(objects, "RayCluster")["spec"], one(objects, "RayService")["spec"]["rayClusterConfig"]]
    specs.append(one(objects, "RayJob")["spec"]["rayClusterSpec"])
    group_specific = ("resources", "nodeSelector", "tolerations")

    def normalised(t: dict) -> dict:
        # which credential files a pod gets depends on its role (test_should_give_each_pod_only_the_credentials...)
        spec = {k: val for k, val in t["spec"].items() if k not in group_specific}
        spec["volumes"] = [vol for vol in spec["volumes"] if vol["name"] != "secrets"]
        container = {k: val for k, val in spec["containers"][0].items() if k not in ("resources", "name", "ports")}
        container["env"] = [e for e in container["env"] if not e["name"].endswith("_FILE")]
        labels = {k: val for k, val in t["metadata"]["labels"].items() if k not in ("limr.io/ray-node-type",)}
        labels.pop("limr.io/ray-role")
        labels.pop("limr.io/store-role")  # learner or rollout, with the role
        return {**spec, "containers": [container], "labels": labels}

    shapes = [normalised(g["template"]) for s in specs for g in [s["headGroupSpec"], *s["workerGroupSpecs"]]]
    assert len(shapes) == 9 and all(s == shapes[0] for s in shapes)
    a, b = specs[0]["workerGroupSpecs"]
    assert a["template"]["spec"]["containers"][0]["resources"]["limits"] == {"cpu": 2, "memory": "1Gi", GPU: 1}
    assert b["template"]["spec"]["nodeSelector"] == {"pool": "cpu"} and b["replicas"] == 3
    assert (b["minReplicas"], b["maxReplicas"]) == (3, 3)


def test_should_reuse_the_running_cluster_when_use_existing_cluster(render):
    objects = render("values-kind.yaml")
    job = one(objects, "RayJob")["spec"]
    assert job["clusterSelector"] == {"ray.io/cluster": one(objects, "RayCluster")["metadata"]["name"]}
    assert "rayClusterSpec" not in job and "shutdownAfterJobFinishes" not in job
    assert job["submissionMode"] == "K8sJobMode" and job["backoffLimit"] == 0 and job["activeDeadlineSeconds"] == 3600
    sub = job["submitterPodTemplate"]
    assert sub["spec"]["restartPolicy"] == "Never"
    assert sub["metadata"]["labels"]["app.kubernetes.io/component"] == "ray-submitter"


def test_should_bring_its_own_cluster_with_ttl_when_not_reusing(render):
    sets = "train.useExistingCluster=false,train.ttlSecondsAfterFinished=120,train.submissionMode=HTTPMode"
    job = one(render("values-kind.yaml", set=(sets,)), "RayJob")["spec"]
    assert "clusterSelector" not in job
    assert job["shutdownAfterJobFinishes"] is True and job["ttlSecondsAfterFinished"] == 120
    assert job["rayClusterSpec"]["headGroupSpec"]["template"]["metadata"]["labels"]["limr.io/ray-role"] == "job"
    assert job["submissionMode"] == "HTTPMode" and "submitterPodTemplate" not in job


@pytest.mark.parametrize("values", ["values-kind.yaml", "values-gpu.yaml"])
def test_should_keep_ray_train_state_in_the_store_where_every_ray_pod_reaches_it(render, values):
    # Ray Train refuses a node-local storage path at the first checkpoint report of a multi-node run: the chart's
    # default puts it under each run in the store (limr.learner.launch.ray_storage), which every pod reaches.
    objects = render(values)
    config = yaml.safe_load(one(objects, "ConfigMap", "limr-config")["data"]["train.yaml"])
    assert config["trainer"]["ray_storage_path"] == "store"


def test_should_refuse_training_without_a_prompt_pool(helm):
    proc = v.helm("template", "limr", str(v.CHART), "--set", "train.enabled=true")
    assert proc.returncode != 0 and "needs a prompt pool" in proc.stderr


def test_should_mount_the_train_config_the_entrypoint_names(render):
    objects = render("values-kind.yaml")
    cm = one(objects, "ConfigMap", "limr-config")
    config = yaml.safe_load(cm["data"]["train.yaml"])
    assert config["name"] == "limr" and config["model"]["actor"] == "/models/tiny"
    assert config["metrics"] == {"port": 9464, "progress": False}
    assert "--config /etc/limr/train.yaml" in one(objects, "RayJob")["spec"]["entrypoint"]
    for where, t in pod_templates([one(objects, "RayCluster")]):
        mounts = {m["mountPath"]: m for m in t["spec"]["containers"][0]["volumeMounts"]}
        assert mounts["/etc/limr"]["readOnly"] is True, where
        vols = {vol["name"]: vol for vol in t["spec"]["volumes"]}
        assert vols[mounts["/etc/limr"]["name"]]["configMap"]["name"] == "limr-config", where
        # kind builds the tiny model and the pool in init containers, into the writable model volume
        assert [c["name"] for c in t["spec"]["initContainers"]] == ["tiny-model", "synthetic-pool"], where
        assert mounts["/models"]["readOnly"] is False, where


def test_should_run_a_single_scorer_that_never_overlaps_itself(render):
    scorer = one(render("values.yaml"), "Deployment", "limr-scorer")["spec"]
    assert scorer["replicas"] == 1 and scorer["strategy"] == {"type": "Recreate"}


def test_should_probe_the_services_health_and_readiness_endpoints(render):
    for d in find(render("values.yaml"), "Deployment"):
        c = d["spec"]["template"]["spec"]["containers"][0]
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_should_let_only_store_clients_reach_minio_and_only_ingress_reach_the_query_api(render):
    objects = render("values.yaml")
    minio_np = one(objects, "NetworkPolicy", "limr-minio")
    allowed = minio_np["spec"]["ingress"][0]["from"][0]["podSelector"]
    clients = sorted(
        {
            t["metadata"]["labels"]["app.kubernetes.io/component"]
            for _, t in pod_templates(objects)
            if _match_expr(allowed, t["metadata"]["labels"])
        }
    )
    assert clients == ["datasets", "ray", "scorer", "store-setup"]
    api_np = one(objects, "NetworkPolicy", "limr-datasets")
    (rule,) = api_np["spec"]["ingress"]
    assert [list(peer) for peer in rule["from"]] == [["namespaceSelector"], ["podSelector"], ["namespaceSelector"]]
    ray_clients = {  # Ray pods read prompt pools through the API (dataset://NAME@VERSION)
        t["metadata"]["labels"]["app.kubernetes.io/component"]
        for _, t in pod_templates(objects)
        if _match_expr(rule["from"][1]["podSelector"], t["metadata"]["labels"])
    }
    assert ray_clients == {"ray"}
    svc = one(objects, "Service", "limr-datasets")
    for where, t in pod_templates(objects):
        if t["metadata"]["labels"]["app.kubernetes.io/component"] == "ray":  # dataset:// resolves at this API
            env = {e["name"]: e.get("value") for e in t["spec"]["containers"][0]["env"]}
            assert env["LIMR_DATASETS_URL"] == f"http://limr-datasets:{svc['spec']['ports'][0]['port']}", where
    assert rule["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress-nginx"}
    assert rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
    for np in find(objects, "NetworkPolicy"):
        assert np["spec"]["policyTypes"] == ["Ingress"]
        pods = [
            t for _, t in pod_templates(objects) if _match_expr(np["spec"]["podSelector"], t["metadata"]["labels"])
        ]
        assert pods, f"NetworkPolicy {np['metadata']['name']} selects no pod"


def test_should_alert_on_the_metrics_the_services_export(render):
    rule = one(render("values.yaml"), "PrometheusRule")
    alerts = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {
        "LimrScorerLagging",
        "LimrObjectsQuarantined",
        "LimrScorerLoopErrors",
        "LimrScorerDown",
        "LimrRolloutErrors",
        "LimrTrainingStalled",
    }
    assert all('namespace="limr"' in e for e in alerts.values())
    assert "> 600" in alerts["LimrScorerLagging"]
    assert "limr_scorer_loop_errors_total" in alerts["LimrScorerLoopErrors"]  # the name ScorerMetrics exports


def test_should_ship_a_grafana_dashboard_with_valid_queries(render, tmp_path):
    import json

    cm = one(render("values.yaml"), "ConfigMap", "limr-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = json.loads(cm["data"]["limr.json"])
    lim = json.loads(cm["data"]["limr-lim.json"])  # the LIM dashboard, next to the ops one
    assert lim["uid"] == "limr-lim" and {v["name"] for v in lim["templating"]["list"]} >= {"namespace", "run"}
    exprs = [t["expr"] for d in (dash, lim) for p in d["panels"] for t in p["targets"]]
    assert len(exprs) >= 18
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    if not shutil.os.path.exists(promtool):
        pytest.skip("promtool not installed")
    rules = [
        {"record": f"limr:panel{i}", "expr": e.replace("$namespace", "limr").replace("$run", ".+")
         .replace("$__rate_interval", "1m")}
        for i, e in enumerate(exprs)
    ]  # fmt: skip
    f = tmp_path / "panels.yaml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    proc = v.subprocess.run([promtool, "check", "rules", str(f)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_should_keep_all_names_within_63_characters_when_the_release_name_is_long(helm):
    release = "a-very-long-release-name-for-a-team-that-keeps-going"  # helm's maximum: 53
    sets = ("train.enabled=true", "train.prompts=/p.jsonl")
    objects = v.render_chart([v.CHART / "values-gpu.yaml"], sets, v.API_VERSIONS, release=release)
    for o in objects:
        assert len(o["metadata"]["name"]) <= 63, o["metadata"]["name"]
        assert all(len(val) <= 63 for val in o["metadata"].get("labels", {}).values())
        if o["kind"] == "StatefulSet":  # pods get a controller-revision-hash label of name + 11 characters
            assert len(o["metadata"]["name"]) <= 52
        if o["apiVersion"].startswith("ray.io/"):  # KubeRay derives longer names from these
            assert len(o["metadata"]["name"]) <= 40, o["metadata"]["name"]
    job = next(o for o in objects if o["kind"] == "RayJob")
    cluster = next(o for o in objects if o["kind"] == "RayCluster")
    assert job["spec"]["clusterSelector"]["ray.io/cluster"] == cluster["metadata"]["name"]


def test_should_tell_the_user_how_to_submit_a_job_and_query_datasets(helm, tmp_path):
    chart = tmp_path / "limr"
    shutil.copytree(v.CHART, chart)
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data:\n  notes: {{ include "limr.notes" . | quote }}\n'
    )
    proc = v.helm("template", "limr", str(chart), "-n", "team", "-f", str(chart / "values-kind.yaml"))
    assert proc.returncode == 0, proc.stderr
    notes = next(d for d in yaml.safe_load_all(proc.stdout) if d and d["metadata"]["name"] == "notes")["data"]["notes"]
    assert "kubectl -n team get rayjob limr-train" in notes
    assert "ray job submit --address http://127.0.0.1:8265 -- limr train --config /etc/limr/train.yaml" in notes
    assert "port-forward svc/limr-ray-head-svc 8265:8265" in notes
    assert "port-forward svc/limr-datasets 8080:8080" in notes and "curl $LIMR_DATASETS_URL/v1/datasets" in notes
    assert "get secret limr-api" in notes


def test_should_keep_the_learner_metrics_port_and_the_scraped_port_equal(helm, render):
    proc = v.helm("template", "limr", str(v.CHART), "--set", "train.config.metrics.port=9400")
    assert proc.returncode != 0 and "must equal ray.trainMetricsPort" in proc.stderr
    objects = render("values-kind.yaml", set=("ray.trainMetricsPort=9400", "train.config.metrics.port=9400"))
    assert yaml.safe_load(one(objects, "ConfigMap", "limr-config")["data"]["train.yaml"])["metrics"]["port"] == 9400
    head = one(objects, "RayCluster")["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert {"name": "train-metrics", "containerPort": 9400} in head["ports"]


def test_should_require_reader_auth_when_an_ingress_is_enabled_unless_turned_off(render):
    def reader_files(*sets: str) -> set[str]:
        objects = render("values.yaml", set=sets)
        (api,) = [d for d in find(objects, "Deployment") if d["metadata"]["name"].endswith("datasets")]
        return set(_secret_files(api["spec"]["template"])) & {"LIMR_READ_TOKEN_FILE"}

    assert reader_files() == set()  # inside the cluster only: reads open by default
    assert reader_files("datasets.ingress.enabled=true") == {"LIMR_READ_TOKEN_FILE"}
    assert reader_files("datasets.ingress.enabled=true", "auth.reader.enabled=false") == set()
    assert reader_files("auth.reader.enabled=true") == {"LIMR_READ_TOKEN_FILE"}
