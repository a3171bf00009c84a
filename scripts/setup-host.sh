#!/usr/bin/env bash
# Makes this machine able to run the lab: Debian's docker.io, mmdebstrap, a Docker daemon
# that answers. Installs only what is missing; starts dockerd only when none answers.
set -euo pipefail

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
command -v losetup >/dev/null || missing+=(util-linux)
command -v make >/dev/null || missing+=(make)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} (Debian packages)"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to install ${missing[*]}: run 'sudo $0' once" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "setup: no Docker daemon answers; starting dockerd"
  log=${TMPDIR:-/tmp}/railsdeploy-dockerd.log
  nohup dockerd >"$log" 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see $log" >&2; exit 1; }
fi
echo "setup: Docker $(docker version --format '{{.Server.Version}}') answers"
