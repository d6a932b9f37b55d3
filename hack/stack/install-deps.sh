#!/usr/bin/env bash
# Installs the Debian packages the local stack runs (idempotent: installs only
# what is missing, so a warm machine makes no apt call at all). Used by
# `make demo`, `make e2e` and CI on a fresh machine. Needs root or sudo.
# The packages' own services are not used: up.sh starts the binaries itself on
# loopback, so the systemd units (if any) are masked out of the way by policy-rc.d.
set -euo pipefail
# command -> package
declare -A want=([prometheus]=prometheus [redis-server]=redis-server [git]=git)
missing=()
for cmd in "${!want[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done
[ ${#missing[@]} -gt 0 ] || exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${missing[*]}" >&2
# Do not let the packages start their services: the stack runs its own copies on
# free loopback ports, and a system Prometheus/Redis would only hold ports 9090/6379.
policy=/usr/sbin/policy-rc.d
added_policy=false
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  added_policy=true
fi
cleanup() { if $added_policy; then $sudo rm -f "$policy"; fi; }
trap cleanup EXIT
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
