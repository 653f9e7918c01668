"""CustomResourceDefinition -> strict JSON Schema.

The API server prunes fields a structural CRD schema does not declare, so a typo in a RayJob silently
disappears at `kubectl apply` time. Offline we do better: every object schema gets
`additionalProperties: false` unless the CRD allows unknown fields (`x-kubernetes-preserve-unknown-fields`)
or declares a map (`additionalProperties: {...}`), so such a typo fails validation instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# The root `metadata` of a CRD schema is just `type: object`: the API server validates it as ObjectMeta.
# We check the fields a manifest may set (status-like fields such as uid or resourceVersion are not for
# manifests).
_OBJECT_META: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
        "namespace": {"type": "string"},
        "generateName": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
    },
}

# OpenAPI v3 keywords with the same meaning in JSON Schema (draft 2020-12); everything else is dropped.
_KEEP = {
    "description",
    "enum",
    "format",
    "maximum",
    "minimum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "maxItems",
    "minItems",
    "maxLength",
    "minLength",
    "maxProperties",
    "minProperties",
    "pattern",
    "required",
    "uniqueItems",
}


def strict_schema(node: dict[str, Any]) -> dict[str, Any]:
    """Convert one openAPIV3Schema node (recursively) into a strict JSON Schema node."""
    out: dict[str, Any] = {k: v for k, v in node.items() if k in _KEEP}
    preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    int_or_string = bool(node.get("x-kubernetes-int-or-string"))
    typ = node.get("type")
    if int_or_string:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    elif typ:
        out["type"] = [typ, "null"] if node.get("nullable") else typ
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node and not int_or_string:
            out[key] = [strict_schema(n) for n in node[key]]
    if "not" in node:
        out["not"] = strict_schema(node["not"])
    if "items" in node:
        out["items"] = strict_schema(node["items"])
    if typ == "object" or "properties" in node:
        props = node.get("properties", {})
        out["properties"] = {name: strict_schema(sub) for name, sub in props.items()}
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            out["additionalProperties"] = strict_schema(extra)
        elif extra is True or preserve:
            out["additionalProperties"] = True
        else:
            # No declared field and no map: the API server would prune anything set here.
            out["additionalProperties"] = False
    return out


def crd_schemas(crd_file: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Strict JSON Schemas of every served version in a CRD file, keyed by (apiVersion, kind)."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in yaml.load_all(crd_file.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
        for version in doc["spec"]["versions"]:
            if not version.get("served", False):
                continue
            api_version = f"{group}/{version['name']}"
            root = strict_schema(version["schema"]["openAPIV3Schema"])
            root["properties"]["apiVersion"] = {"const": api_version}
            root["properties"]["kind"] = {"const": kind}
            root["properties"]["metadata"] = _OBJECT_META
            root["properties"].pop("status", None)  # never part of a manifest
            root["required"] = sorted({"apiVersion", "kind", "metadata", *root.get("required", [])})
            schemas[(api_version, kind)] = root
    return schemas


def load_crd_dir(directory: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """All CRD schemas found (recursively) under `directory`."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(directory.rglob("*.yaml")):
        schemas.update(crd_schemas(path))
    return schemas
