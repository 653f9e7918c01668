"""Strict JSON Schemas for the kinds that have no CRD file in ../shared/schemas.

kind's `Cluster` config and kustomize's `Kustomization` are client-side files in manifests/, not API objects,
so they get their own (small, strict) schemas here: an unknown kind or field still fails. Every API object,
PrometheusRule included, is checked against its real CRD (prometheus-operator v0.93.0, KubeRay v1.7.0).
"""

from __future__ import annotations

from typing import Any

_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}


def _strict(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": properties, "required": required or []}


_PORT_MAPPING = _strict(
    {
        "containerPort": {"type": "integer"},
        "hostPort": {"type": "integer"},
        "listenAddress": {"type": "string"},
        "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
    },
    ["containerPort"],
)
_MOUNT = _strict(
    {
        "hostPath": {"type": "string"},
        "containerPath": {"type": "string"},
        "readOnly": {"type": "boolean"},
        "selinuxRelabel": {"type": "boolean"},
        "propagation": {"enum": ["None", "HostToContainer", "Bidirectional"]},
    },
    ["hostPath", "containerPath"],
)

KIND_CLUSTER = _strict(
    {
        "apiVersion": {"const": "kind.x-k8s.io/v1alpha4"},
        "kind": {"const": "Cluster"},
        "name": {"type": "string"},
        "featureGates": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "runtimeConfig": _STR_MAP,
        "containerdConfigPatches": {"type": "array", "items": {"type": "string"}},
        "networking": _strict(
            {
                "ipFamily": {"enum": ["ipv4", "ipv6", "dual"]},
                "apiServerAddress": {"type": "string"},
                "apiServerPort": {"type": "integer"},
                "podSubnet": {"type": "string"},
                "serviceSubnet": {"type": "string"},
                "disableDefaultCNI": {"type": "boolean"},
                "kubeProxyMode": {"enum": ["iptables", "ipvs", "nftables", "none"]},
            }
        ),
        "nodes": {
            "type": "array",
            "minItems": 1,
            "items": _strict(
                {
                    "role": {"enum": ["control-plane", "worker"]},
                    "image": {"type": "string"},
                    "labels": _STR_MAP,
                    "extraPortMappings": {"type": "array", "items": _PORT_MAPPING},
                    "extraMounts": {"type": "array", "items": _MOUNT},
                    "kubeadmConfigPatches": {"type": "array", "items": {"type": "string"}},
                },
                ["role"],
            ),
        },
    },
    ["apiVersion", "kind"],
)

KUSTOMIZATION = _strict(
    {
        "apiVersion": {"const": "kustomize.config.k8s.io/v1beta1"},
        "kind": {"const": "Kustomization"},
        "namespace": {"type": "string"},
        "resources": {"type": "array", "items": {"type": "string"}},
        "labels": {
            "type": "array",
            "items": _strict({"pairs": _STR_MAP, "includeSelectors": {"type": "boolean"}}, ["pairs"]),
        },
        "images": {
            "type": "array",
            "items": _strict(
                {"name": {"type": "string"}, "newName": {"type": "string"}, "newTag": {"type": "string"}},
                ["name"],
            ),
        },
        "patches": {
            "type": "array",
            "items": _strict({"path": {"type": "string"}, "patch": {"type": "string"}, "target": {"type": "object"}}),
        },
    },
    ["apiVersion", "kind", "resources"],
)

# (apiVersion, kind) -> schema, for the kinds above.
EXTRA_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("kind.x-k8s.io/v1alpha4", "Cluster"): KIND_CLUSTER,
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"): KUSTOMIZATION,
}
