"""Small queries over rendered Kubernetes objects, shared by the chart tests."""

from __future__ import annotations

from typing import Any

from tests.k8s.support import validate as v

Objects = list[dict[str, Any]]


def find(objects: Objects, kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: Objects, kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def pod_templates(objects: Objects) -> list[tuple[str, dict[str, Any]]]:
    """Every pod template in the output as (where, template): workloads, Jobs, and all Ray node groups."""
    out: list[tuple[str, dict[str, Any]]] = []
    for o in objects:
        name = f"{o['kind']}/{o['metadata']['name']}"
        spec = o.get("spec") or {}
        if o["kind"] in ("Deployment", "StatefulSet", "Job"):
            out.append((name, spec["template"]))
        cluster = {
            "RayCluster": spec,
            "RayService": spec.get("rayClusterConfig"),
            "RayJob": spec.get("rayClusterSpec"),
        }
        rc = cluster.get(o["kind"])
        if rc:
            out.append((f"{name}/head", rc["headGroupSpec"]["template"]))
            out += [(f"{name}/{g['groupName']}", g["template"]) for g in rc.get("workerGroupSpecs", [])]
        if o["kind"] == "RayJob" and "submitterPodTemplate" in spec:
            out.append((f"{name}/submitter", spec["submitterPodTemplate"]))
    return out


VALUES_FILES = [p.name for p in v.values_files()]
