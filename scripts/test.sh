#!/usr/bin/env bash
# The test command (README, CI): sets up, then runs pytest. Ray advertises the machine's address even when
# asked for 127.0.0.1, so as root we run the suite in a loopback-only network namespace: all test traffic
# (Ray, S3, Prometheus, HTTP) stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.tools/bin:$PWD/.venv/bin:$PATH"
# Static checks first (seconds): lint, formatting, and mypy on the files pyproject.toml's [tool.mypy] names.
ruff check limr services tests benchmarks scripts
ruff format --check limr services tests benchmarks scripts
mypy
export RAY_TRAIN_HEALTH_CHECK_INTERVAL_S=0.2 RAY_USAGE_STATS_ENABLED=0 TOKENIZERS_PARALLELISM=false
run=( .venv/bin/python -m pytest "$@" )
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && [ -z "${LIMR_NO_NETNS:-}" ]; then
  ns="limr-test-$$"
  ip netns add "$ns"
  trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" "${run[@]}"
else
  "${run[@]}"
fi
