"""Benchmark evaluation of a run's final model (`limr eval`'s harness, each benchmark under its protocol), as a
Ray task that reserves its own GPUs next to the rollout service; the summary is kept with the run in the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from limr.events.schema import run_prefix
from limr.experiment.config import FinalEval


def final_eval_key(run_id: str) -> str:
    return f"{run_prefix(run_id)}final_eval.json"


def has_final_eval(store, run_id: str) -> bool:
    return store.exists(final_eval_key(run_id))


def read_final_eval(store, run_id: str) -> dict[str, Any] | None:
    return json.loads(store.get(final_eval_key(run_id))) if has_final_eval(store, run_id) else None


def evaluate_final(spec: FinalEval, model_dir: Path, store, run_id: str, use_gpu: bool) -> dict[str, Any]:
    """Evaluate `model_dir` on `spec.benchmarks`; store {benchmark: accuracy} and the protocols; return them."""
    import ray

    from limr.evaluation.harness import EvalConfig, run_eval

    cfg = EvalConfig(
        model=model_dir, benchmarks=spec.benchmarks, data_dir=spec.data_dir, max_tokens=spec.max_tokens,
        gpu_memory_utilization=spec.gpu_memory_utilization, tensor_parallel_size=spec.tensor_parallel_size,
    )  # fmt: skip
    gpus = spec.tensor_parallel_size if use_gpu else 0
    result = ray.get(ray.remote(num_gpus=gpus, num_cpus=1)(run_eval).remote(cfg, False))
    summary = {
        "model": str(model_dir),
        "accuracy": result["accuracy"],
        "protocols": result["settings"]["protocols"],
        "max_tokens": result["settings"]["max_tokens"],
    }
    store.put(final_eval_key(run_id), json.dumps(summary).encode(), content_type="application/json")
    return summary
