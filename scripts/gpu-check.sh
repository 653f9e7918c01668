#!/usr/bin/env bash
# The GPU path on one NVIDIA GPU, as the CPU test-suite cannot run it (scripts/gpu_check.py does the work):
#   ppo_step  one PPO step of a random Qwen2-shaped model (~0.5B, Qwen2.5-0.5B's shape) in bf16 mixed precision
#             (fp32 masters) under FSDP2;
#   vllm      vLLM on CUDA through limr's engine adapter;
#   transfer  `limr train`: a Ray Train worker sends the actor to a rollout replica over vLLM's NCCL engine after
#             each step (both on the one GPU, half each; NCCL may refuse two ranks on one GPU, which the JSON says).
# Prints one JSON document on stdout (logs under WORKDIR and /tmp/ray); exit status 0 when every check passed.
# Needs CUDA builds of the pinned torch, Ray and vLLM (the project's GPU image); the CPU venv cannot run it.
# Usage: scripts/gpu-check.sh [WORKDIR] [--checks ppo_step,vllm,transfer]   (PYTHON=... picks the interpreter)
set -euo pipefail

fail() {
    printf '{"ok": false, "error": "%s"}\n' "$*"
    exit 1
}

PY=${PYTHON:-python}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
workdir=$(mktemp -d -t limr-gpu-check-XXXX)
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
    workdir=$1
    shift
fi

command -v nvidia-smi >/dev/null 2>&1 || fail "nvidia-smi not found: this machine has no NVIDIA driver"
ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
[ "$ngpu" -ge 1 ] || fail "nvidia-smi lists no GPU"
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null ||
    fail "this Python has no CUDA torch (use the GPU image or PYTHON=...)"

mkdir -p "$workdir"
export VLLM_LOGGING_LEVEL=${VLLM_LOGGING_LEVEL:-WARNING}
export RAY_TRAIN_HEALTH_CHECK_INTERVAL_S=${RAY_TRAIN_HEALTH_CHECK_INTERVAL_S:-1}
cd "$here/.."
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PY" scripts/gpu_check.py --out "$workdir" --device cuda "$@" \
    2>"$workdir/gpu-check.log"
