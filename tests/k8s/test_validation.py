"""CI's offline gate: lint and render the chart with every values file, validate every object strictly, and
prove the gate bites (wrong types, unknown fields, unknown kinds, bad PromQL all fail)."""

from __future__ import annotations

import copy
import subprocess

import pytest
import yaml

from tests.k8s.support import validate as v
from tests.k8s.support.objects import VALUES_FILES, one


@pytest.mark.parametrize("values", VALUES_FILES)
def test_should_pass_helm_lint_strict_with_each_values_file(helm, values):
    proc = v.lint_chart(v.CHART / values)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("values", VALUES_FILES)
def test_should_validate_every_rendered_object_with_zero_errors(render, crds, values):
    objects = render(values)
    assert len(objects) > 15
    assert v.validate_objects(objects) == []


def test_should_validate_the_raw_manifests_with_zero_errors(crds):
    docs = v.load_manifests()
    kinds = {d["kind"] for _, d in docs}
    assert {"RayJob", "Cluster", "Kustomization", "Namespace"} <= kinds
    assert v.validate_objects(d for _, d in docs) == []


def test_should_validate_variants_when_optional_paths_are_switched(render, crds):
    """Own-cluster RayJob, external S3 with existing Secrets, autoscaling, ingress, no monitoring CRDs."""
    objects = render(
        "values.yaml",
        set=(
            "train.enabled=true",
            "train.prompts=/models/pool.jsonl",
            "train.useExistingCluster=false",
            "train.activeDeadlineSeconds=3600",
            "minio.enabled=false",
            "store.endpoint=https://s3.example.com",
            "store.existingSecret=my-s3",
            "auth.writer.existingSecret=my-token",
            "auth.reader.enabled=true",
            "ray.workerGroups[0].env[0].name=X,ray.workerGroups[0].env[0].value=on",
            "ray.autoscaling.enabled=true",
            "datasets.ingress.enabled=true",
            "train.submissionMode=HTTPMode",
        ),
        api_versions=(),
    )
    assert v.validate_objects(objects) == []


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("scorer.replicas=two", "want integer"),
        ("train.submissionMode=Batch", "train/submissionMode"),
        ("ray.workerGroups[0].gpus=-1", "minimum"),
        ("store.endpoint=s3.example.com/x", "store/endpoint"),
        ("monitoring.interval=30 seconds", "monitoring/interval"),
    ],
)
def test_should_reject_values_of_the_wrong_type_or_form(helm, setting, message):
    proc = v.helm("template", "limr", str(v.CHART), "--set", setting)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_should_reject_unknown_values_keys(helm, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"ray": {"head": {"resource": {"limits": {"cpu": 1}}}}}))  # typo: resource
    proc = v.helm("template", "limr", str(v.CHART), "-f", str(bad))
    assert proc.returncode != 0
    assert "additional properties 'resource' not allowed" in proc.stderr


def test_should_refuse_credentials_setup_without_a_secret_when_minio_is_off(helm):
    proc = v.helm("template", "limr", str(v.CHART), "--set", "minio.enabled=false,store.endpoint=https://s3.x.io")
    assert proc.returncode != 0
    assert "store.existingSecret (or every store.roleSecrets entry) is required" in proc.stderr


def test_should_refuse_more_than_one_scorer(helm):
    proc = v.helm("template", "limr", str(v.CHART), "--set", "scorer.replicas=2")
    assert proc.returncode != 0
    assert "/scorer/replicas" in proc.stderr and "maximum" in proc.stderr


@pytest.mark.parametrize(
    ("kind", "mutate", "expected"),
    [
        ("RayJob", lambda o: o["spec"].__setitem__("entrypointt", "x"), "'entrypointt' was unexpected"),
        ("RayJob", lambda o: o["spec"].__setitem__("backoffLimit", "3"), "is not of type 'integer'"),
        (
            "RayCluster",
            lambda o: o["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0].__setitem__("imagee", "x"),
            "'imagee' was unexpected",
        ),
        ("RayService", lambda o: o["spec"].__setitem__("serveConfigV2", {"applications": []}), "is not of type"),
        ("ServiceMonitor", lambda o: o["spec"]["endpoints"][0].__setitem__("prot", "http"), "'prot' was unexpected"),
        ("PodMonitor", lambda o: o["spec"].__setitem__("podMetricsEndpoint", []), "was unexpected"),
        ("PrometheusRule", lambda o: o["spec"]["groups"][0]["rules"][0].__setitem__("severity", "x"), "unexpected"),
        ("Deployment", lambda o: o["spec"]["template"]["spec"].__setitem__("hostname_", "x"), "unexpected"),
        ("Deployment", lambda o: o["spec"].__setitem__("replicas", "2"), "is not of type 'integer'"),
        ("NetworkPolicy", lambda o: o["spec"].__setitem__("policyType", ["Ingress"]), "unexpected"),
        ("Secret", lambda o: o.__setitem__("strindData", {}), "unexpected"),
    ],
)
def test_should_fail_validation_when_an_object_is_broken(render, crds, kind, mutate, expected):
    obj = copy.deepcopy(next(o for o in render("values-gpu.yaml") if o["kind"] == kind))
    assert v.validate_object(obj) == []
    mutate(obj)
    errors = v.validate_object(obj)
    assert errors and expected in "\n".join(errors), errors


def test_should_validate_prometheus_rules_against_the_real_operator_crd(render, crds):
    from tests.k8s.support.schemas import EXTRA_SCHEMAS

    key = ("monitoring.coreos.com/v1", "PrometheusRule")
    assert key not in EXTRA_SCHEMAS and key in v._crd_schemas_cached()  # no hand-written copy to drift
    rule = copy.deepcopy(one(render("values.yaml"), "PrometheusRule"))
    rule["spec"]["groups"][0]["rules"][0]["for"] = "10 minutes"  # the CRD's duration pattern
    rule["spec"]["groups"][0]["rules"][0]["keep_firing_for"] = ""  # the CRD's minLength
    errors = "\n".join(v.validate_object(rule))
    assert "does not match" in errors and "should be non-empty" in errors, errors


def test_should_fail_on_an_unknown_kind():
    errors = v.validate_object({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    assert errors == ["Widget/w: unknown kind Widget (example.com/v1): no schema, refusing to pass it"]


def test_should_fail_when_an_alert_expression_does_not_parse(render):
    if v.shutil.which("promtool") is None and not v.Path("/usr/bin/promtool").exists():
        pytest.skip("promtool not installed")
    rule = copy.deepcopy(one(render("values.yaml"), "PrometheusRule"))
    assert v.check_prometheus_rules([rule]) == []
    rule["spec"]["groups"][0]["rules"][0]["expr"] = "sum(rate(limr_scorer_objects_ingested_total[5m]"
    (error,) = v.check_prometheus_rules([rule])
    assert "unclosed left parenthesis" in error


def test_should_exit_nonzero_from_the_cli_when_validation_fails(helm, crds, tmp_path):
    bad = tmp_path / "manifests"
    bad.mkdir()
    (bad / "job.yaml").write_text("apiVersion: ray.io/v1\nkind: RayJob\nmetadata: {name: x}\nspec: {entrypint: x}\n")
    proc = subprocess.run(
        [v.sys.executable, "-m", "tests.k8s.support.validate", "--values", str(v.CHART / "values-kind.yaml")]
        + ["--manifests", str(bad)],
        cwd=v.REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "'entrypint' was unexpected" in proc.stdout
