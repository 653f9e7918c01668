"""Plans from files: a learner config, an experiment config, the chart's values, and a RayJob manifest's limits.

The chart's values become the learner config its RayJob mounts (charts/limr/templates/configmap.yaml: train.config
with name, model.actor and metrics.port filled in), planned against the chart's own limits: the GPUs of its Ray
worker groups, the MinIO volume and train.activeDeadlineSeconds. A RayJob manifest gives its deadline and GPUs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from limr.learner.config import ConfigError, LearnerConfig, load_config
from limr.plan.check import Limits, Plan, plan_learner, pool_size_of, tiny_shape
from limr.plan.estimate import CPU, DEFAULT_ASSUMPTIONS, Assumptions
from limr.plan.shape import model_shape

_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


class PlanSourceError(ValueError):
    """A file `limr plan` cannot read as a config, values file or manifest; the message names it."""


def quantity_bytes(q: str | int) -> int:
    """A Kubernetes quantity ('500Gi', '1Ti', 5e11) in bytes."""
    m = re.fullmatch(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([KMGT]i?)?\s*", str(q))
    if not m:
        raise PlanSourceError(f"not a storage quantity: {q!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2) or ""])


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise PlanSourceError(f"{path}: no such file") from None
    except yaml.YAMLError as e:
        raise PlanSourceError(f"{path}: invalid YAML: {e}") from None
    if not isinstance(data, dict):
        raise PlanSourceError(f"{path}: expected a mapping at the top level")
    return data


def kind_of(data: dict[str, Any]) -> str:
    if "arms" in data and "learner" in data:
        return "experiment"
    if "train" in data and ("ray" in data or "minio" in data or "image" in data):
        return "chart"
    return "learner"


def rayjob_limits(path: Path) -> Limits:
    """The deadline and GPUs of a RayJob manifest (its own cluster's worker groups at their largest)."""
    job = _read_yaml(path)
    spec = job.get("spec") or {}
    deadline = spec.get("activeDeadlineSeconds") or None
    cluster = spec.get("rayClusterSpec") or {}
    gpus = None
    if cluster:
        gpus = 0.0
        auto = bool(cluster.get("enableInTreeAutoscaling"))
        for g in cluster.get("workerGroupSpecs") or []:
            n = g.get("maxReplicas", g.get("replicas", 1)) if auto else g.get("replicas", 1)
            for c in (g.get("template") or {}).get("spec", {}).get("containers", []):
                gpus += n * float((c.get("resources") or {}).get("limits", {}).get("nvidia.com/gpu", 0))
    return Limits(gpus=gpus, deadline_s=float(deadline) if deadline else None)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Helm's values merge: maps merge key by key, anything else (lists included) replaces."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def chart_plan(path: Path, limits: Limits, assumptions: Assumptions, pool_size: int | None,
               prompts: str | None) -> Plan:  # fmt: skip
    """The chart's training run from a values file (merged over the chart's values.yaml, as helm does)."""
    values, defaults = _read_yaml(path), path.parent / "values.yaml"
    if defaults.is_file() and defaults.resolve() != path.resolve():
        values = _merge(_read_yaml(defaults), values)
    ray, train = values.get("ray") or {}, values.get("train") or {}
    gpus = 0.0
    for g in ray.get("workerGroups") or []:
        auto = (ray.get("autoscaling") or {}).get("enabled")
        n = g.get("maxReplicas", g.get("replicas", 1)) if auto else g.get("replicas", 1)
        gpus += n * float(g.get("gpus", 0))
    minio = values.get("minio") or {}
    store = None
    if minio.get("enabled", True) and (minio.get("persistence") or {}).get("size"):
        store = quantity_bytes(minio["persistence"]["size"])
    chart_limits = Limits(
        gpus=limits.gpus if limits.gpus is not None else gpus,
        store_bytes=limits.store_bytes if limits.store_bytes is not None else store,
        deadline_s=limits.deadline_s or float(train.get("activeDeadlineSeconds") or 0) or None,
        hardware=limits.hardware, check_paths=limits.check_paths,
    )  # fmt: skip
    if not train.get("enabled"):
        return Plan(str(path), "chart", 0, None, None, None, chart_limits.hardware or CPU, notes=["train disabled"])
    cfg_data = dict(train.get("config") or {})
    cfg_data.setdefault("name", "limr")
    model = dict(cfg_data.get("model") or {})
    model.setdefault("actor", (values.get("model") or {}).get("path"))
    cfg_data["model"] = model
    if train.get("prompts"):
        cfg_data.setdefault("data", {})["prompts"] = train["prompts"]
    if prompts:
        cfg_data.setdefault("data", {})["prompts"] = prompts
    try:
        cfg = LearnerConfig.model_validate(cfg_data)
    except ValueError as e:
        raise PlanSourceError(f"{path}: train.config: {e}") from None
    size = pool_size if pool_size is not None else pool_size_of(cfg.data.prompts)
    return plan_learner(cfg, size, chart_limits, assumptions, source=str(path), kind="chart")


def experiment_plan(path: Path, limits: Limits, assumptions: Assumptions, pool_size: int | None,
                    quick: bool = False, prompts: str | None = None) -> Plan:  # fmt: skip
    """Every run of a study has FULL's step budget; the plan is one run's, times the number of runs."""
    from limr.experiment.arms import plan_runs
    from limr.experiment.config import ExperimentConfigError, load_experiment

    try:
        exp = load_experiment(path, quick=quick)
    except ExperimentConfigError as e:
        raise PlanSourceError(str(e)) from None
    if exp.pool.mix is not None:
        size: int | None = exp.pool.mix.size
    else:
        size = pool_size if pool_size is not None else pool_size_of(prompts or exp.pool.prompts)
    model = exp.warm_start.model
    shape = model_shape(model) if model else tiny_shape()
    overrides = dict(exp.learner_overrides)
    overrides.update({"run.epochs": exp.epochs, "run.max_steps": None, "run.eval_every": exp.eval_every,
                      "data.prompts": exp.pool.prompts or "(synthetic pool)",
                      "data.eval_prompts": exp.pool.eval_prompts or "(synthetic held-out set)"})  # fmt: skip
    if model:
        overrides["model.actor"] = model
    learner = Path(exp.learner)
    if not learner.is_absolute() and not learner.exists():
        learner = path.parent.parent / learner  # configs name their learner relative to the repository root
    try:
        cfg = load_config(learner, overrides)
    except ConfigError as e:
        raise PlanSourceError(str(e)) from None
    runs = len(plan_runs(exp, 1))
    limits = Limits(limits.gpus, limits.store_bytes, limits.deadline_s, limits.hardware, False)
    return plan_learner(cfg, size, limits, assumptions, runs=runs, source=str(path), kind="experiment", shape=shape)


def plan_file(path: Path, overrides: dict[str, Any] | None = None, prompts: str | None = None,
              pool_size: int | None = None, limits: Limits | None = None,
              assumptions: Assumptions = DEFAULT_ASSUMPTIONS, quick: bool = False) -> Plan:  # fmt: skip
    """The plan of any config `limr plan --config` accepts."""
    limits = limits or Limits()
    kind = kind_of(_read_yaml(path))
    if kind == "experiment":
        return experiment_plan(path, limits, assumptions, pool_size, quick, prompts)
    if kind == "chart":
        return chart_plan(path, limits, assumptions, pool_size, prompts)
    overrides = dict(overrides or {})
    if prompts:
        overrides["data.prompts"] = prompts
    try:
        cfg = load_config(path, overrides)
    except ConfigError as e:
        raise PlanSourceError(str(e)) from None
    size = pool_size if pool_size is not None else pool_size_of(cfg.data.prompts, cfg.data.datasets_url)
    return plan_learner(cfg, size, limits, assumptions, source=str(path))
