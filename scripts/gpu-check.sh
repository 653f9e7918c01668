#!/usr/bin/env bash
# The GPU paths that the CPU test-suite stands in for, run for real: vLLM's NCCL weight-transfer engine
# between the learner's rank 0 and a rollout replica (limr.learner.weight_sync), and FSDP training, for a few
# GRPO steps of a tiny model through `limr train`'s own code (Ray Serve + Ray Train, NCCL).
#
# Needs: >= 3 NVIDIA GPUs (one for the rollout replica, two FSDP learner workers: NCCL refuses two ranks on one
# GPU, and FSDP with one rank shards nothing) and an environment with CUDA builds of the pinned torch, Ray and
# vLLM (e.g. the project's GPU image; the CPU wheels of scripts/setup.sh cannot run it). Fails loudly otherwise.
# Usage: scripts/gpu-check.sh [WORKDIR]      (PYTHON=... to choose the interpreter; default: python)
set -euo pipefail

fail() {
    echo "gpu-check: FAIL: $*" >&2
    exit 1
}

PY=${PYTHON:-python}
command -v nvidia-smi >/dev/null 2>&1 || fail "nvidia-smi not found: this machine has no NVIDIA driver"
ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
[ "$ngpu" -ge 3 ] || fail "found $ngpu GPU(s); need >= 3 (1 rollout replica + 2 FSDP learner workers)"
"$PY" - <<'PYEOF' || fail "this Python has no CUDA torch or no CUDA vLLM (see the header of this script)"
import torch
from vllm.platforms import current_platform

assert torch.cuda.is_available(), "torch.cuda.is_available() is False"
assert current_platform.device_type == "cuda", f"vLLM platform is {current_platform.device_type!r}, not cuda"
print(f"gpu-check: torch {torch.__version__}, {torch.cuda.device_count()} GPUs, {torch.cuda.get_device_name(0)}")
PYEOF

workdir=${1:-$(mktemp -d -t limr-gpu-check-XXXX)}
mkdir -p "$workdir"
echo "gpu-check: working in $workdir (Ray/vLLM logs under /tmp/ray)"
"$PY" - "$workdir" <<'PYEOF'
import json
import sys
from pathlib import Path

import yaml

from limr.learner.config import load_config
from limr.learner.launch import run_with_ray
from limr.model.tiny import init_tiny_model
from limr.tasks.synthetic import SyntheticConfig, make_splits, write_jsonl

work = Path(sys.argv[1])
model = init_tiny_model(work / "tiny", seed=0)
train, _ = make_splits(SyntheticConfig(n_train=32, n_test=4, levels=(1,)))
prompts = write_jsonl(train, work / "train.jsonl")
steps = 3
cfg = {
    "model": {"actor": str(model), "dtype": "float32"},
    "data": {"prompts": str(prompts), "max_prompt_tokens": 256},
    "rollout": {
        "samples_per_prompt": 4,
        "temperature": 1.0,
        "max_new_tokens": 16,
        "backend": "service",
        # one replica on one GPU; weights arrive over vLLM's NCCL engine (num_gpus comes from trainer.use_gpu)
        "service": {"engine": {"max_model_len": 512, "kv_cache_gib": None, "gpu_memory_utilization": 0.3}},
    },
    "algorithm": {"estimator": "grpo", "kl_coef": 0.01},
    "optim": {"actor_lr": 1e-4},
    "batch": {"rollout_batch_size": 8, "train_batch_size": 32, "micro_batch_size": 8},
    "trainer": {"num_workers": 2, "use_gpu": True, "strategy": "fsdp", "cpus_per_worker": 1},
    "run": {"run_id": "gpu-check", "store": str(work / "store"), "max_steps": steps, "checkpoint_every": 2},
    "metrics": {"progress": False},
}
path = work / "gpu-check.yaml"
path.write_text(yaml.safe_dump(cfg))
result = run_with_ray(load_config(path))
print(json.dumps({k: result[k] for k in sorted(result) if "/" in k}, indent=1))
problems = []
if result.get("train/step") != steps:
    problems.append(f"ran {result.get('train/step')} steps, expected {steps}")
if result.get("rollout/weight_version", 0) < steps - 1:
    problems.append(f"rollouts of the last step came from weight version {result.get('rollout/weight_version')}")
if not result.get("rollout/logprob_gap_mean", 1.0) < 0.05:  # vLLM vs the FSDP actor on the weights it was sent
    problems.append(f"vLLM logprobs differ from the learner's by {result.get('rollout/logprob_gap_mean')} nats")
if problems:
    sys.exit("gpu-check: FAIL: " + "; ".join(problems))
print(f"gpu-check: OK: {steps} FSDP steps, NCCL weight transfer to the rollout replica after each")
PYEOF
