#!/usr/bin/env bash
# Installs what the benchmarks need from Debian's packages: nginx (the reference proxy), wrk (the load
# generator) and valgrind (instructions-per-request.mjs). Idempotent: does nothing when all are already on
# PATH. Run as root (or with sudo).
set -euo pipefail

missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v callgrind_control >/dev/null 2>&1 || missing+=(valgrind)

if [ "${#missing[@]}" -eq 0 ]; then
  echo "bench/setup.sh: nginx, wrk and valgrind already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

echo "bench/setup.sh: installing ${missing[*]}"
$SUDO apt-get update
# The benchmark starts its own nginx with a generated config; the packaged service is not needed.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
# Debian's package may start a system nginx on port 80 where services are allowed to start; stop it
# so it cannot disturb measurements (ignored where no service was started).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
  $SUDO systemctl stop nginx || true
fi
nginx -v
wrk --version 2>&1 | head -n 1 || true
valgrind --version
