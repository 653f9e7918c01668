#!/usr/bin/env bash
# A Docker engine answering on the default socket, from Debian's packages when missing: docker.io (client,
# dockerd, containerd) and debootstrap (the images' base, scripts/images.sh). Used by `make images`, `make up` and
# .ci/run. Installs and starts only as root; otherwise it says what to do.
set -euo pipefail
LOG=${LIMR_DOCKERD_LOG:-/var/log/limr-dockerd.log}
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "missing ${need[*]}: install them (Debian: apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "installing ${need[*]} from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "no Docker engine answers on the default socket: start dockerd (as root) or join the docker group" >&2
  exit 1
fi
echo "starting dockerd (log: $LOG)" >&2
# Detached from this shell and its process group, so that it outlives the build or test that started it.
setsid nohup dockerd >>"$LOG" 2>&1 </dev/null &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "dockerd did not answer within 60 s; its log: $LOG" >&2
tail -n 20 "$LOG" >&2
exit 1
