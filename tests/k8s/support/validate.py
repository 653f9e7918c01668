"""Strict offline validation of Kubernetes objects: the chart's rendered output and manifests/.

- built-in kinds: kubernetes-validate's strict schemas (unknown fields rejected) for a pinned version;
- custom resources: the real CRDs in ../shared/schemas (KubeRay, prometheus-operator) made strict by
  `crd.py` (PrometheusRule included); the client-side kind/kustomize configs by `schemas.py`;
- PrometheusRule expressions: `promtool check rules`;
- anything else is an error ("unknown kind"), never a silent pass.

CLI (used by scripts/validate-k8s.sh and CI):
    python -m tests.k8s.support.validate [--values FILE]... [--manifests DIR] [--set K=V]...
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.k8s.support import crd as crd_module
from tests.k8s.support.crd import load_crd_dir
from tests.k8s.support.schemas import EXTRA_SCHEMAS

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "limr"
MANIFESTS = REPO / "manifests"
CRD_DIR = REPO.parent / "shared" / "schemas"
# The cluster version we validate against and render for (helm --kube-version); KubeRay 1.7 supports it.
KUBE_VERSION = "1.34.0"
# API groups the chart gates optional objects on (.Capabilities.APIVersions.Has).
API_VERSIONS = ("monitoring.coreos.com/v1",)


class ValidationFailed(Exception):
    """Raised by `check_objects` with every error found."""


def helm_bin() -> str | None:
    local = REPO / ".tools" / "bin" / "helm"
    return str(local) if local.exists() else shutil.which("helm")


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    exe = helm_bin()
    if exe is None:
        raise FileNotFoundError("helm not found (run scripts/fetch-helm.sh)")
    return subprocess.run([exe, *args], capture_output=True, text=True, check=False)


def render_chart(
    values: Iterable[str | Path] = (),
    set_values: Iterable[str] = (),
    api_versions: Iterable[str] = API_VERSIONS,
    release: str = "limr",
    namespace: str = "limr",
) -> list[dict[str, Any]]:
    """`helm template` the chart; returns the rendered objects (raises on a helm error)."""
    args = ["template", release, str(CHART), "--namespace", namespace, "--kube-version", KUBE_VERSION]
    for f in values:
        args += ["--values", str(f)]
    for s in set_values:
        args += ["--set", s]
    for api in api_versions:
        args += ["--api-versions", api]
    proc = helm(*args)
    if proc.returncode != 0:
        raise RuntimeError(f"helm template failed:\n{proc.stderr}")
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def lint_chart(values: str | Path | None = None) -> subprocess.CompletedProcess[str]:
    args = ["lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION]
    if values:
        args += ["--values", str(values)]
    return helm(*args)


@functools.cache
def _builtin_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator | None:
    """Validator for a built-in kind from kubernetes-validate's strict schemas (loaded once)."""
    import kubernetes_validate.utils as kv
    from referencing import Registry, Resource

    # Same file naming as kubernetes-validate: rbac.authorization.k8s.io/v1 -> rbac-v1, v1 -> v1.
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema_dir = f"kubernetes-json-schema/v{KUBE_VERSION}-local-strict"
    try:
        schema = kv.schema_contents(f"{schema_dir}/{kind.lower()}-{group_version}.json", KUBE_VERSION)
    except FileNotFoundError:
        return None
    definitions = _definitions(schema_dir)
    registry = Resource.from_contents(schema) @ Registry()
    registry = definitions @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


@functools.cache
def _definitions(schema_dir: str):  # type: ignore[no-untyped-def]
    import kubernetes_validate.utils as kv
    from referencing import Resource

    return Resource.from_contents(kv.schema_contents(f"{schema_dir}/_definitions.json", KUBE_VERSION))


@functools.cache
def _custom_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = dict(EXTRA_SCHEMAS)
    if CRD_DIR.is_dir():
        schemas.update(_crd_schemas_cached())
    return schemas


def _crd_schemas_cached() -> dict[tuple[str, str], dict[str, Any]]:
    """The converted CRD schemas, cached as JSON under .tools/cache: parsing the CRD YAML (MBs) takes seconds,
    reading the JSON milliseconds. Keyed by the CRD files and the converter's source, so either change rebuilds."""
    digest = hashlib.sha256(Path(crd_module.__file__).read_bytes())
    for path in sorted(CRD_DIR.rglob("*.yaml")):
        digest.update(path.name.encode() + path.read_bytes())
    cache = REPO / ".tools" / "cache" / f"k8s-crd-schemas-{digest.hexdigest()[:16]}.json"
    if cache.exists():
        return {(a, k): s for a, k, s in json.loads(cache.read_text())}
    schemas = load_crd_dir(CRD_DIR)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps([[a, k, s] for (a, k), s in schemas.items()]))
        tmp.replace(cache)
    except OSError:  # a read-only checkout still validates, just slower
        pass
    return schemas


@functools.cache
def _validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator | None:
    custom = _custom_schemas().get((api_version, kind))
    if custom is not None:
        return jsonschema.Draft202012Validator(custom)
    return _builtin_validator(api_version, kind)


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('name', obj.get('name', '?'))}"


def validate_object(obj: dict[str, Any]) -> list[str]:
    """All schema errors of one object (empty list: valid)."""
    if not isinstance(obj, dict) or "apiVersion" not in obj or "kind" not in obj:
        return [f"{obj!r:.80}: not a Kubernetes object (no apiVersion/kind)"]
    key = (obj["apiVersion"], obj["kind"])
    validator = _validator(*key)
    if validator is None:
        return [f"{_name(obj)}: unknown kind {key[1]} ({key[0]}): no schema, refusing to pass it"]
    errors = []
    for err in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
        path = ".".join(str(p) for p in err.absolute_path) or "<root>"
        errors.append(f"{_name(obj)}: {path}: {err.message[:300]}")
    return errors


def check_prometheus_rules(objects: Iterable[dict[str, Any]]) -> list[str]:
    """`promtool check rules` over every PrometheusRule's groups (PromQL syntax, durations, templates)."""
    rules = [o for o in objects if o.get("kind") == "PrometheusRule"]
    if not rules:
        return []
    promtool = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    if promtool is None:
        return ["promtool not found: cannot check PrometheusRule expressions"]
    errors = []
    for obj in rules:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            yaml.safe_dump({"groups": obj["spec"]["groups"]}, f)
        try:
            proc = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
        finally:
            Path(f.name).unlink()
        if proc.returncode != 0:
            errors.append(f"{_name(obj)}: promtool: {(proc.stdout + proc.stderr).strip()}")
    return errors


def validate_objects(objects: Iterable[dict[str, Any]]) -> list[str]:
    objects = list(objects)
    errors = [e for obj in objects for e in validate_object(obj)]
    return errors + check_prometheus_rules(objects)


def check_objects(objects: Iterable[dict[str, Any]]) -> None:
    errors = validate_objects(objects)
    if errors:
        raise ValidationFailed("\n".join(errors))


def manifest_files(directory: Path = MANIFESTS) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml"))


def load_manifests(directory: Path = MANIFESTS) -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p in manifest_files(directory) for d in yaml.safe_load_all(p.read_text()) if d]


def values_files() -> list[Path]:
    """The chart's values files: values.yaml plus every values-*.yaml example."""
    return [CHART / "values.yaml", *sorted(CHART.glob("values-*.yaml"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", action="append", default=[], help="values file (repeatable; default: all)")
    parser.add_argument("--set", action="append", default=[], dest="set_values", help="helm --set K=V")
    parser.add_argument("--manifests", type=Path, default=MANIFESTS, help="directory of raw manifests")
    args = parser.parse_args(argv)
    if not CRD_DIR.is_dir():
        print(f"warning: {CRD_DIR} missing: custom resources have no schema and will fail", file=sys.stderr)
    failed = 0
    for values in args.values or [str(p) for p in values_files()]:
        objects = render_chart([values], args.set_values)
        errors = validate_objects(objects)
        failed += len(errors)
        print(f"{values}: {len(objects)} objects, {len(errors)} errors")
        for e in errors:
            print(f"  ERROR {e}")
    manifests = load_manifests(args.manifests)
    errors = validate_objects(d for _, d in manifests)
    failed += len(errors)
    print(f"{args.manifests}: {len(manifests)} objects, {len(errors)} errors")
    for e in errors:
        print(f"  ERROR {e}")
    print(json.dumps({"errors": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
