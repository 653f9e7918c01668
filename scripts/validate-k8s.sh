#!/usr/bin/env bash
# Offline Kubernetes checks (no cluster needed), as CI runs them:
#   helm lint --strict with every values file, helm template with a pinned --kube-version and the
#   --api-versions the chart gates on, strict schema validation of every rendered object and of manifests/
#   (built-in kinds: kubernetes-validate; KubeRay/prometheus-operator CRDs from ../shared/schemas),
#   promtool on the alert rules, hadolint on the Dockerfile.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/bin:$PWD/.venv/bin:$PATH"
[ -x .tools/bin/helm ] || bash scripts/fetch-helm.sh
for values in charts/limr/values.yaml charts/limr/values-*.yaml; do
  helm lint --strict charts/limr --kube-version 1.34.0 -f "$values"
done
.venv/bin/python -m tests.k8s.support.validate "$@"
if command -v hadolint >/dev/null; then hadolint Dockerfile && echo "hadolint: Dockerfile ok"; fi
