#!/usr/bin/env bash
# Ensure a Docker engine answers on this machine: reuse a running one, install
# Debian's docker.io if dockerd is absent, start dockerd in the background if
# none answers. Quiet when there is nothing to do.
set -euo pipefail

log=${LAB_DOCKERD_LOG:-/var/log/commons-infra-dockerd.log}

if docker info >/dev/null 2>&1; then
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "lab: installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "lab: starting dockerd (log: $log)"
  # setsid: the daemon must outlive the make/CI step that started it.
  setsid nohup dockerd >"$log" 2>&1 </dev/null &
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "lab: dockerd did not answer within 60 s; last log lines:" >&2
tail -n 20 "$log" >&2 || true
exit 1
