#!/bin/sh
# Start the 3-peer cluster: peer1 first (it creates the cluster), then peer2 and peer3, which join
# it with its join token. The token is kept in .env (mode 0600), so later docker-compose commands
# see the same one. Needs the image from `npm run image`. Other docker-compose flags and variables
# (COMPOSE_PROJECT_NAME, SKEIN_IMAGE) apply as usual.
set -eu
cd "$(dirname "$0")"
docker-compose up -d peer1
tries=0
until token=$(docker-compose exec -T peer1 skein token 2>/dev/null); do
  tries=$((tries + 1))
  if [ "$tries" -ge 30 ]; then
    echo "peer1 has no join token after 30 s; see: docker-compose logs peer1" >&2
    exit 1
  fi
  sleep 1
done
umask 077
printf 'SKEIN_JOIN_TOKEN=%s\n' "$token" > .env
docker-compose up -d
echo "3 peers are starting; watch them join with: docker-compose exec peer1 skein nodes"
