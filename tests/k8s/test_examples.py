"""manifests/examples/rayjob-experiment-qwen2.5-math-7b.yaml runs the paper-scale study as the repo configures it:
the configs it mounts are the repo's, every path the study reads is mounted on every Ray pod, and the cluster
has the GPUs one run of the learner config needs. (Schema validation: test_validation.py, with KubeRay's CRD.)"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.k8s.support import validate as v
from tests.k8s.test_commands import entrypoint_argv

EXAMPLE = v.MANIFESTS / "examples" / "rayjob-experiment-qwen2.5-math-7b.yaml"
GPU = "nvidia.com/gpu"


def _job() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def _pods(job: dict) -> list[dict]:
    cluster = job["spec"]["rayClusterSpec"]
    return [cluster["headGroupSpec"]["template"], *(g["template"] for g in cluster["workerGroupSpecs"])]


def _argv(job: dict) -> tuple[Path, dict[str, str]]:
    cwd, argv = entrypoint_argv(job["spec"]["entrypoint"])
    assert argv[:2] == ["limr", "experiment"] and cwd
    return Path(cwd), dict(zip(argv[2::2], argv[3::2], strict=False))


def _config_files(pod: dict) -> dict[Path, Path]:
    """{path in the pod: repo file} of the ConfigMap, as the header's `kubectl create configmap` fills it."""
    keys = dict(re.findall(r"--from-file=([\w.-]+)=(configs/[\w./-]+)", EXAMPLE.read_text()))
    volume = next(vol for vol in pod["spec"]["volumes"] if vol["name"] == "config")
    mount = next(m for m in pod["spec"]["containers"][0]["volumeMounts"] if m["name"] == "config")
    return {Path(mount["mountPath"]) / i["path"]: v.REPO / keys[i["key"]] for i in volume["configMap"]["items"]}


def _experiment():
    from limr.experiment.config import load_experiment

    cwd, opts = _argv(_job())
    files = _config_files(_pods(_job())[0])
    return load_experiment(files[Path(opts["--config"])]), cwd, opts, files


def test_should_mount_the_repos_experiment_and_learner_configs_where_the_entrypoint_reads_them():
    exp, cwd, opts, files = _experiment()
    assert files[Path(opts["--config"])] == v.REPO / "configs" / "experiment-qwen2.5-math-7b.yaml"
    # the experiment names its learner config relatively: the entrypoint's directory holds it
    learner = Path(exp.learner)
    assert not learner.is_absolute() and files[cwd / learner] == v.REPO / learner
    for pod in _pods(_job()):
        assert _config_files(pod) == files


def test_should_mount_every_path_the_study_reads_on_every_ray_pod():
    exp, _, opts, _ = _experiment()
    read = [exp.warm_start.model, exp.pool.prompts, exp.pool.eval_prompts, exp.final_eval.data_dir]
    for pod in _pods(_job()):
        mounts = {m["mountPath"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
        volumes = {vol["name"]: vol for vol in pod["spec"]["volumes"]}
        for path in read:
            assert any(path.startswith(p + "/") for p in mounts), path
        # results, final models and Ray Train's state: one writable volume shared by every node
        (out,) = [m for p, m in mounts.items() if opts["--out"].startswith(p + "/")]
        assert not out.get("readOnly") and "persistentVolumeClaim" in volumes[out["name"]]
        assert "ReadWriteMany" in EXAMPLE.read_text()


def test_should_give_the_cluster_the_gpus_of_one_run_and_reach_the_api_from_every_node():
    from limr.learner.config import load_config
    from limr.learner.generator.service import rollout_args
    from limr.rollout.config import RolloutArgs

    exp, _, _, _ = _experiment()
    cfg = load_config(v.REPO / exp.learner, dict(exp.learner_overrides))
    rollout = RolloutArgs.model_validate(rollout_args(cfg, "run"))
    groups = _job()["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    gpus = sum(int(g["template"]["spec"]["containers"][0]["resources"]["limits"][GPU]) * g["replicas"] for g in groups)
    need = cfg.trainer.num_workers + rollout.num_replicas * max(
        int(rollout.num_gpus), rollout.engine.tensor_parallel_size
    )
    assert gpus == need == 16
    assert all(g["minReplicas"] == g["replicas"] == g["maxReplicas"] for g in groups)  # no autoscaler here
    assert exp.services.host == "0.0.0.0"  # the learner ranks on the GPU nodes read curated pools via the API
    for pod in _pods(_job()):
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        assert env["RAY_SERVE_USE_PACK_SCHEDULING_STRATEGY"] == "1"
        assert not [e for e in pod["spec"]["containers"][0]["env"] if "secretKeyRef" in e.get("valueFrom", {})]
        assert pod["spec"]["securityContext"]["runAsUser"] >= 10000
