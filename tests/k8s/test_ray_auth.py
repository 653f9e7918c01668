"""Ray clusters of the chart are authenticated and kept on the cluster network ("Should ... when ...")."""

from __future__ import annotations

import base64

import pytest

from tests.k8s.support import validate as v
from tests.k8s.support.objects import VALUES_FILES, find

_CLUSTER_SPEC = {"RayCluster": None, "RayService": "rayClusterConfig", "RayJob": "rayClusterSpec"}
OWN_JOB_CLUSTER = ("train.enabled=true", "train.useExistingCluster=false", "train.prompts=/models/pool.json")


def _clusters(objects) -> dict[str, dict]:
    """Ray object name -> the cluster spec it brings (a RayJob on an existing cluster brings none)."""
    out = {}
    for kind, field in _CLUSTER_SPEC.items():
        for o in find(objects, kind):
            spec = o["spec"] if field is None else o["spec"].get(field)
            if spec is not None:
                out[o["metadata"]["name"]] = spec
    return out


@pytest.mark.parametrize("values", VALUES_FILES)
def test_should_run_every_ray_cluster_with_its_own_token_when_rendered(render, values):
    objects = render(values, set=OWN_JOB_CLUSTER)
    clusters = _clusters(objects)
    assert {"RayCluster", "RayService", "RayJob"} <= {o["kind"] for o in objects}
    assert len(clusters) == 3  # the long-lived cluster, the rollout service's, the training job's own
    secrets = {s["metadata"]["name"]: s for s in find(objects, "Secret")}
    tokens = []
    for name, spec in clusters.items():
        assert spec["authOptions"]["mode"] == "token", name
        secret = secrets[spec["authOptions"]["secretName"]]  # rendered by the chart, one per cluster
        token = base64.b64decode(secret["data"]["auth_token"]).decode()
        assert len(token) >= 32, name
        tokens.append(token)
        # the token is KubeRay's to inject: never a literal in a pod template
        for group in [spec["headGroupSpec"], *spec.get("workerGroupSpecs", [])]:
            for c in group["template"]["spec"]["containers"]:
                assert not {e["name"] for e in c.get("env", [])} & {"RAY_AUTH_TOKEN", "RAY_AUTH_MODE"}, name
    assert len(set(tokens)) == len(tokens)  # one token per cluster
    assert v.validate_objects(objects) == []  # authOptions as KubeRay v1.7's CRDs define it


def test_should_share_the_clusters_token_when_a_job_reuses_the_cluster(render):
    objects = render("values.yaml", set=("train.enabled=true", "train.prompts=/models/pool.json"))
    assert set(_clusters(objects)) == {o["metadata"]["name"] for o in find(objects, "RayCluster")} | {
        o["metadata"]["name"] for o in find(objects, "RayService")
    }
    assert not [s for s in find(objects, "Secret") if s["metadata"]["name"].endswith("-train-ray-token")]


@pytest.mark.parametrize("values", VALUES_FILES)
def test_should_keep_the_dashboard_and_job_api_on_the_cluster_network_when_rendered(render, values):
    objects = render(values, set=OWN_JOB_CLUSTER)
    for name, spec in _clusters(objects).items():
        assert spec["headGroupSpec"]["serviceType"] == "ClusterIP", name
    for svc in find(objects, "Service"):
        assert svc["spec"].get("type", "ClusterIP") == "ClusterIP", svc["metadata"]["name"]
    for ing in find(objects, "Ingress"):  # only the dataset API is published
        backends = [p["backend"]["service"]["name"] for r in ing["spec"]["rules"] for p in r["http"]["paths"]]
        assert all(b.endswith("-datasets") for b in backends), backends
    policies = {p["metadata"]["name"]: p for p in find(objects, "NetworkPolicy")}
    ray = next(p for n, p in policies.items() if n.endswith("-ray"))
    assert ray["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "ray"
    for rule in ray["spec"]["ingress"]:
        ports = {p["port"] for p in rule.get("ports", [])}
        for peer in rule["from"]:
            if "podSelector" in peer and "namespaceSelector" not in peer:  # this release's Ray pods, submitters
                (expr,) = peer["podSelector"]["matchExpressions"]
                assert set(expr["values"]) == {"ray", "ray-submitter"}
            else:  # another namespace: the KubeRay operator (dashboard, Serve, GCS) or Prometheus (metrics)
                assert ports and ports <= {8265, 8000, 6379, 8080}, rule


def test_should_render_no_ray_token_when_auth_is_off(render):
    objects = render("values.yaml", set=("ray.auth.enabled=false",))
    assert all("authOptions" not in spec for spec in _clusters(objects).values())
    assert not [s for s in find(objects, "Secret") if s["metadata"]["name"].endswith("-ray-token")]


def test_should_tell_users_how_to_pass_the_token_when_notes_show_ray_job_submit(helm, tmp_path):
    import shutil

    import yaml

    chart = tmp_path / "limr"
    shutil.copytree(v.CHART, chart)
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data:\n  notes: {{ include "limr.notes" . | quote }}\n'
    )
    docs = list(yaml.safe_load_all(v.helm("template", "limr", str(chart)).stdout))
    notes = next(d for d in docs if d and d["metadata"]["name"] == "notes")["data"]["notes"]
    (cluster,) = [d for d in docs if d and d["kind"] == "RayCluster"]
    secret = cluster["spec"]["authOptions"]["secretName"]
    assert f'RAY_AUTH_MODE=token RAY_AUTH_TOKEN="$(kubectl -n default get secret {secret} ' in notes
    assert notes.index("RAY_AUTH_TOKEN") < notes.index("ray job submit")
