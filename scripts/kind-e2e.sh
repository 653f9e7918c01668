#!/usr/bin/env bash
# End-to-end on a throw-away kind cluster (needs Docker, kind, kubectl, helm; CPU only, ~8 GiB RAM free):
#   1. create the cluster (manifests/kind/cluster.yaml) and build + side-load the CPU image;
#   2. install the KubeRay operator (manifests/kuberay) and the chart with values-kind.yaml (tiny models);
#   3. wait for the training RayJob to succeed;
#   4. check, through the query API, that the scorer published a curated dataset with records in it.
# Usage: scripts/kind-e2e.sh [--keep]   (--keep leaves the cluster running for inspection)
# Env: CLUSTER (limr-e2e), NAMESPACE (limr), IMAGE (limr:dev), TIMEOUT_S (2400).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${CLUSTER:-limr-e2e}
NAMESPACE=${NAMESPACE:-limr}
IMAGE=${IMAGE:-limr:dev}
TIMEOUT_S=${TIMEOUT_S:-2400}
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1
for tool in docker kind kubectl helm curl; do
  command -v "$tool" >/dev/null || { echo "kind-e2e: $tool is required" >&2; exit 2; }
done

log() { echo "[kind-e2e $(date +%H:%M:%S)] $*"; }
cleanup() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    log "FAILED (rc=$rc); state of namespace $NAMESPACE:"
    kubectl -n "$NAMESPACE" get pods,rayclusters,rayservices,rayjobs -o wide || true
    kubectl -n "$NAMESPACE" logs -l app.kubernetes.io/component=scorer --tail=50 || true
  fi
  [ -n "${PF_PID:-}" ] && kill "$PF_PID" 2>/dev/null || true
  if [ "$KEEP" = 0 ]; then kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; fi
  exit $rc
}
trap cleanup EXIT

log "cluster $CLUSTER"
kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --config manifests/kind/cluster.yaml --wait 5m
kubectl config use-context "kind-$CLUSTER" >/dev/null

log "image $IMAGE (target cpu)"
docker build --target cpu -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

log "KubeRay operator"
kubectl apply --server-side -k manifests/kuberay
kubectl -n kuberay-system rollout status deploy/kuberay-operator --timeout=5m

log "chart (values-kind.yaml)"
helm upgrade --install limr charts/limr --namespace "$NAMESPACE" --create-namespace \
  -f charts/limr/values-kind.yaml --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" \
  --wait --timeout 15m

log "waiting for RayJob limr-train (timeout ${TIMEOUT_S}s)"
deadline=$(( $(date +%s) + TIMEOUT_S ))
while :; do
  status=$(kubectl -n "$NAMESPACE" get rayjob limr-train -o jsonpath='{.status.jobStatus}' 2>/dev/null || true)
  case "$status" in
    SUCCEEDED) log "training succeeded"; break ;;
    FAILED|STOPPED) log "training $status"; kubectl -n "$NAMESPACE" logs job/limr-train --tail=100 || true; exit 1 ;;
  esac
  [ "$(date +%s)" -lt "$deadline" ] || { log "timeout waiting for training (status '$status')"; exit 1; }
  sleep 15
done

log "query API: waiting for a curated dataset"
kubectl -n "$NAMESPACE" port-forward svc/limr-datasets 18080:8080 >/dev/null 2>&1 &
PF_PID=$!
sleep 3
deadline=$(( $(date +%s) + 900 ))
while :; do
  body=$(curl -fsS http://127.0.0.1:18080/v1/datasets 2>/dev/null || true)
  name=$(printf '%s' "$body" | python3 -c 'import json,sys
try: d=json.load(sys.stdin)
except Exception: sys.exit(0)
items=d.get("items", [])
print(items[0]["name"] if items else "")' || true)
  if [ -n "$name" ]; then
    n=$(curl -fsS "http://127.0.0.1:18080/v1/datasets/$name/versions/latest/data?format=jsonl" | wc -l)
    log "dataset $name published with $n records"
    [ "$n" -gt 0 ] || { log "dataset $name is empty"; exit 1; }
    break
  fi
  [ "$(date +%s)" -lt "$deadline" ] || { log "no dataset published"; exit 1; }
  sleep 10
done
log "OK"
