"""values-gpu.yaml against the learner config it mounts (docs/scale.md): the run's GPUs, CPUs and object store
fit the Ray groups the chart gives them."""

from __future__ import annotations

import pytest
import yaml

from tests.k8s.support.objects import VALUES_FILES, one, pod_templates

GPU = "nvidia.com/gpu"
_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def _bytes(quantity: str | int) -> int:
    text = str(quantity)
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * _UNITS[suffix])
    return int(float(text))


def _cpus(quantity: str | int | float) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _groups(cluster: dict) -> list[dict]:
    """Worker groups as {gpus, cpus, replicas, max} per pod, from the rendered RayCluster spec."""
    out = []
    for g in cluster["workerGroupSpecs"]:
        limits = g["template"]["spec"]["containers"][0]["resources"]["limits"]
        out.append(
            {
                "gpus": int(limits.get(GPU, 0)),
                "cpus": _cpus(limits["cpu"]),
                "replicas": g["replicas"],
                "max": g["maxReplicas"],
            }
        )
    return out


def _learner(objects: list[dict], tmp_path):
    from limr.learner.config import load_config
    from limr.learner.generator.service import rollout_args
    from limr.rollout.config import RolloutArgs

    path = tmp_path / "train.yaml"
    path.write_text(one(objects, "ConfigMap", "limr-config")["data"]["train.yaml"])
    cfg = load_config(path)
    return cfg, RolloutArgs.model_validate(rollout_args(cfg, "run"))


def test_should_fit_the_learner_and_its_rollout_replicas_on_the_gpu_pool(render, tmp_path):
    objects = render("values-gpu.yaml")
    cfg, rollout = _learner(objects, tmp_path)
    groups = [g for g in _groups(one(objects, "RayCluster")["spec"]) if g["gpus"]]
    per_node = {g["gpus"] for g in groups}
    assert per_node == {8}  # 8xH100 nodes
    train_gpus = cfg.trainer.num_workers * int(cfg.trainer.use_gpu)
    tp = rollout.engine.tensor_parallel_size
    rollout_gpus = rollout.num_replicas * max(int(rollout.num_gpus), tp)
    assert (train_gpus, rollout_gpus) == (8, 8)
    # exactly the pool at its replica count, and within the autoscaler's maximum
    assert train_gpus + rollout_gpus == sum(g["gpus"] * g["replicas"] for g in groups) == 16
    assert train_gpus + rollout_gpus <= sum(g["gpus"] * g["max"] for g in groups)
    # the FSDP ring fits one node's NVLink; a tensor-parallel engine never spans nodes
    assert cfg.trainer.num_workers <= 8 and 8 % tp == 0 and rollout.num_gpus >= 1
    # the CPUs Ray advertises (the pods' limits) hold the workers' and replicas' reservations
    reserved = cfg.trainer.num_workers * cfg.trainer.cpus_per_worker + rollout.num_replicas * rollout.num_cpus
    assert reserved <= sum(g["cpus"] * g["replicas"] for g in groups)
    head = one(objects, "RayCluster")["spec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"  # no learner rank or replica lands on the CPU head
    # Serve packs the replicas (started first) onto one node, so the FSDP ranks get the other one whole
    env = {e["name"]: e.get("value") for e in head["template"]["spec"]["containers"][0]["env"]}
    assert env["RAY_SERVE_USE_PACK_SCHEDULING_STRATEGY"] == "1"
    from ray.serve._private import constants  # the flag this Ray reads (private module: only its name is used)

    assert hasattr(constants, "RAY_SERVE_USE_PACK_SCHEDULING_STRATEGY")
    # the batch vocabulary divides over the ranks (8,192 samples, 256 per optimizer step, 2 per micro-batch)
    samples = cfg.batch.rollout_batch_size * cfg.rollout.samples_per_prompt
    assert samples % cfg.batch.train_batch_size == 0
    assert (cfg.batch.train_batch_size // cfg.trainer.num_workers) % cfg.batch.micro_batch_size == 0
    # every engine takes the longest sample the learner can ask for
    assert rollout.engine.max_model_len == cfg.data.max_prompt_tokens + cfg.rollout.max_new_tokens == 4096


def test_should_fit_the_standalone_rollout_service_on_its_own_node(render):
    from limr.rollout.config import RolloutArgs

    objects = render("values-gpu.yaml")
    service = one(objects, "RayService")["spec"]
    (app,) = yaml.safe_load(service["serveConfigV2"])["applications"]
    args = RolloutArgs.model_validate(app["args"])
    groups = _groups(service["rayClusterConfig"])
    need = args.num_replicas * max(int(args.num_gpus), args.engine.tensor_parallel_size)
    assert need == sum(g["gpus"] * g["replicas"] for g in groups) == 8
    assert args.engine.max_model_len >= args.limits.max_tokens + 1024  # the paper's prompts (1,024 tokens) fit


@pytest.mark.parametrize("values", VALUES_FILES)
def test_should_keep_rays_object_store_in_shared_memory(render, values):
    """Ray puts its object store in /dev/shm only if it fits; otherwise it spills to disk (/tmp), slowly."""
    objects = render(values)
    for kind in ("RayCluster", "RayService"):
        for o in [x for x in objects if x["kind"] == kind]:
            spec = o["spec"] if kind == "RayCluster" else o["spec"]["rayClusterConfig"]
            groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
            templates = dict(pod_templates([o]))
            for g, (where, t) in zip(groups, templates.items(), strict=True):
                shm = next(vol for vol in t["spec"]["volumes"] if vol["name"] == "dshm")["emptyDir"]["sizeLimit"]
                memory = _bytes(t["spec"]["containers"][0]["resources"]["limits"]["memory"])
                store = int(g["rayStartParams"].get("object-store-memory", min(0.3 * memory, 200e9)))
                assert store <= _bytes(shm), f"{where}: object store {store} > /dev/shm {shm}"
                assert _bytes(shm) <= memory, where  # a memory-backed emptyDir counts against the limit
