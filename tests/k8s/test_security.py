"""Least privilege, checked on the rendered chart: checkov's Kubernetes policies pass for every values file
(0 failed; the few skips carry their reason in the chart), every pod sits behind a NetworkPolicy, images can
be pinned by digest, pods run as UID/GID >= 10000.

checkov does not know KubeRay's kinds, so each Ray group's pod template is scanned as the Pod KubeRay makes
of it (and each RayJob submitter as its Job), with the Ray object's annotations (its skips) carried over.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.k8s.support import validate as v
from tests.k8s.support.objects import VALUES_FILES, find, pod_templates

CHECKOV = v.REPO / ".tools" / "bin" / "checkov"
# The checks the chart deliberately does not meet in some configuration, each skipped with a reason in the
# chart (limr.checkovSkips / limr.rayCheckovSkips): no digest in values, kind's side-loaded image, KubeRay's
# injected probes, the autoscaler's token in the head pod. Nothing else may be skipped.
ALLOWED_SKIPS = {"CKV_K8S_43", "CKV_K8S_15", "CKV_K8S_8", "CKV_K8S_9", "CKV_K8S_38"}
_RAY_KINDS = {"RayCluster": None, "RayService": "rayClusterConfig", "RayJob": "rayClusterSpec"}


def _checkov() -> str:
    exe = str(CHECKOV) if CHECKOV.exists() else shutil.which("checkov")
    if exe is None:
        pytest.skip("checkov not installed: run scripts/fetch-checkov.sh (scripts/setup.sh does)")
    return exe


def scan_objects(objects: list[dict]) -> list[dict]:
    """The rendered objects plus each Ray group as a Pod and each RayJob submitter as a Job."""
    out = list(objects)
    for o in objects:
        if o["kind"] not in _RAY_KINDS:
            continue
        annotations = o["metadata"].get("annotations", {})
        for where, t in pod_templates([o]):
            kind = "Job" if where.endswith("/submitter") else "Pod"
            meta = {
                "name": where.replace("/", "-").lower()[-63:].lstrip("-"),
                "namespace": o["metadata"]["namespace"],
                "labels": t["metadata"]["labels"],
                "annotations": {**t["metadata"].get("annotations", {}), **annotations},
            }
            body = {"template": t} if kind == "Job" else t["spec"]
            out.append(
                {"apiVersion": "batch/v1" if kind == "Job" else "v1", "kind": kind, "metadata": meta, "spec": body}
            )
    return out


@functools.cache
def _scan(files: tuple[tuple[str, str], ...]) -> dict[str, dict]:
    """checkov over several rendered files in one run (it takes seconds to start): {file name: results}."""
    exe = _checkov()
    tmp = Path(subprocess.check_output(["mktemp", "-d"], text=True).strip())
    args = [exe, "--framework", "kubernetes", "--output", "json", "--compact", "--skip-download"]
    for name, text in files:
        (tmp / name).write_text(text)
        args += ["--file", str(tmp / name)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    shutil.rmtree(tmp)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    reports = json.loads(proc.stdout)
    report = reports[0] if isinstance(reports, list) else reports
    out: dict[str, dict] = {name: {"passed": 0, "failed": [], "skipped": []} for name, _ in files}
    results = report.get("results", {})
    for status, key in (("failed_checks", "failed"), ("skipped_checks", "skipped")):
        for r in results.get(status, []):
            out[Path(r["file_path"]).name][key].append(r)
    for r in results.get("passed_checks", []):
        out[Path(r["file_path"]).name]["passed"] += 1
    return out


def _rendered(render, values: str, sets: tuple[str, ...] = ()) -> str:
    return yaml.safe_dump_all(scan_objects(render(values, set=sets)))


@pytest.fixture(scope="module")
def scans(render) -> dict[str, dict]:
    files = [(name, _rendered(render, name)) for name in VALUES_FILES]
    # a broken variant in the same run proves the gate bites: a token as an env var, a low UID
    bad = (
        "datasets.env[0].name=T,datasets.env[0].valueFrom.secretKeyRef.name=x,datasets.env[0].valueFrom.secretKeyRef.key=k",
        "podSecurityContext.runAsUser=1000",
    )
    files.append(("broken.yaml", _rendered(render, "values.yaml", bad)))
    return _scan(tuple(files))


@pytest.mark.parametrize("values", VALUES_FILES)
def test_should_pass_every_checkov_check_when_rendered_with_each_values_file(scans, values):
    result = scans[values]
    failed = sorted({(r["check_id"], r["resource"]) for r in result["failed"]})
    assert failed == [], failed
    assert result["passed"] > 300  # the scan saw the workloads, Ray pods included
    ray_pods = {r["resource"] for r in result["skipped"] if r["resource"].startswith("Pod.")}
    assert ray_pods, "Ray groups are scanned as pods"
    for r in result["skipped"]:
        assert r["check_id"] in ALLOWED_SKIPS, (r["check_id"], r["resource"])
        if r["check_id"] == "CKV_K8S_38":  # only the autoscaler's head pod mounts a token; workers are checked
            assert r["resource"].startswith("Pod.") and "-head" in r["resource"], r["resource"]
        assert len(r["check_result"].get("suppress_comment", "")) > 30, r  # a written reason


def test_should_fail_the_scan_when_a_token_is_an_env_var_or_the_uid_is_low(scans):
    failed = {r["check_id"] for r in scans["broken.yaml"]["failed"]}
    assert {"CKV_K8S_35", "CKV_K8S_40"} <= failed


def test_should_skip_the_digest_check_only_while_no_digest_is_set(render):
    digest = "sha256:" + "ab" * 32
    sets = (f"image.digest={digest}", f"minio.image.digest={digest}")
    objects = render("values.yaml", set=sets)
    for where, t in pod_templates(objects):
        for c in t["spec"].get("initContainers", []) + t["spec"]["containers"]:
            assert c["image"].endswith("@" + digest), f"{where}/{c['name']}: {c['image']}"
    assert "limr:0.1.0@" + digest in one_image(objects)
    for o in objects:
        notes = " ".join((o["metadata"].get("annotations") or {}).values())
        assert "CKV_K8S_43" not in notes, o["metadata"]["name"]
    plain = render("values.yaml")
    assert all("CKV_K8S_43" in o["metadata"]["annotations"]["checkov.io/skip1"] for o in find(plain, "Deployment"))
    proc = v.helm("template", "limr", str(v.CHART), "--set", "image.digest=latest")
    assert proc.returncode != 0 and "/image/digest" in proc.stderr


def one_image(objects: list[dict]) -> str:
    return next(iter(find(objects, "Deployment")))["spec"]["template"]["spec"]["containers"][0]["image"]


@pytest.mark.parametrize("values", VALUES_FILES)
def test_should_cover_every_pod_with_a_network_policy_and_a_high_uid(render, values):
    objects = render(values, set=("train.enabled=true", "train.prompts=/p.jsonl"))
    policies = [np["spec"]["podSelector"] for np in find(objects, "NetworkPolicy")]
    for where, t in pod_templates(objects):
        labels = t["metadata"]["labels"]
        assert any(_selects(sel, labels) for sel in policies), f"{where}: no NetworkPolicy selects it"
        sc = t["spec"]["securityContext"]
        assert sc["runAsUser"] >= 10000 and sc["runAsGroup"] >= 10000 and sc["fsGroup"] >= 10000, where


def _selects(selector: dict, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != val for k, val in selector.get("matchLabels", {}).items()):
        return False
    return all(labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", []))


def test_should_give_worker_groups_extra_env_volumes_mounts_and_sidecars(render):
    group = "ray.workerGroups[0]"
    sets = (
        f"{group}.env[0].name=EXTRA,{group}.env[0].value=yes",
        f"{group}.volumes[0].name=scratch,{group}.volumes[0].emptyDir.sizeLimit=1Gi",
        f"{group}.volumeMounts[0].name=scratch,{group}.volumeMounts[0].mountPath=/scratch",
        f"{group}.sidecars[0].name=logs,{group}.sidecars[0].image=busybox:1.37",
        f"{group}.podAnnotations.team=rl",
    )
    objects = render("values.yaml", set=sets)
    cluster = next(o for o in objects if o["kind"] == "RayCluster")["spec"]
    (worker,) = cluster["workerGroupSpecs"]
    pod = worker["template"]["spec"]
    ray = pod["containers"][0]
    assert {"name": "EXTRA", "value": "yes"} in ray["env"]
    assert {"name": "scratch", "mountPath": "/scratch"} in ray["volumeMounts"]
    assert {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}} in pod["volumes"]
    assert [c["name"] for c in pod["containers"]] == ["ray-worker", "logs"]
    assert worker["template"]["metadata"]["annotations"] == {"team": "rl"}
    head = cluster["headGroupSpec"]["template"]["spec"]
    assert len(head["containers"]) == 1 and "EXTRA" not in {e["name"] for e in head["containers"][0]["env"]}
    assert v.validate_objects([o for o in objects if o["kind"] == "RayCluster"]) == []
    proc = v.helm("template", "limr", str(v.CHART), "--set", f"{group}.volumeMounts[0].name=x")
    assert proc.returncode != 0 and "mountPath" in proc.stderr
