#!/usr/bin/env bash
# Makes a Docker engine answer on /var/run/docker.sock and provides the local test image
# local/busybox:1 (no registry is reachable here: the image is made with `docker import`).
# Idempotent: an engine that already answers is used as it is. Needs root.
set -euo pipefail

# docker-compose (Debian's 1.29) runs the compose/ cluster in test/integration/package.test.ts.
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v busybox >/dev/null 2>&1 || missing+=(busybox-static)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
# The cluster test bed (test/cluster) needs ip (iproute2), nsenter (util-linux) and iptables.
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd"
  nohup dockerd >/tmp/skein-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not answer within 30 s; see /tmp/skein-dockerd.log"; tail -20 /tmp/skein-dockerd.log; exit 1; }
fi

if ! docker image inspect local/busybox:1 >/dev/null 2>&1; then
  echo "importing local/busybox:1"
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/www" "$root/tmp"
  cp "$(command -v busybox)" "$root/bin/busybox"
  for app in sh sleep httpd nc echo cat ls env true false kill ps wget printf date hostname; do ln -s busybox "$root/bin/$app"; done
  echo ok > "$root/www/index.html"
  tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["sh"]' - local/busybox:1 >/dev/null
  rm -rf "$root"
fi
docker image inspect local/busybox:1 --format 'local/busybox:1 {{.Size}} bytes' 
