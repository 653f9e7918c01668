#!/usr/bin/env bash
# checkov (the chart's security scan, tests/k8s/test_security.py) in a virtualenv of its own under .tools:
# its pins (packaging<24, networkx<2.7, boto3==...) conflict with ray, pytest and torch in .venv. The version
# is stated once, in pyproject.toml's `scan` extra; requirements-scan.lock (scripts/lock.sh) pins it and its
# dependencies with hashes.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.tools/checkov
PIN=$(sha256sum requirements-scan.lock | cut -c1-16)
if [ -x "$DEST/bin/checkov" ] && [ "$(cat "$DEST/.pin" 2>/dev/null)" = "$PIN" ]; then exit 0; fi
rm -rf "$DEST"
.venv/bin/python -m venv "$DEST"
"$DEST/bin/python" -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements-scan.lock
echo "$PIN" > "$DEST/.pin"
mkdir -p .tools/bin
ln -sf ../checkov/bin/checkov .tools/bin/checkov
.tools/bin/checkov --version
