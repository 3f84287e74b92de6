#!/usr/bin/env bash
# Installs the system libraries astra-dist builds against, if any is missing (Debian 12, as root
# or with sudo). Idempotent: does nothing when everything is present.
set -euo pipefail
packages=(libopenmpi-dev openmpi-bin libopenblas-dev liblapacke-dev pkg-config zlib1g-dev)
# Fashion-MNIST for the fashion-mnist settings (optional data, 31 MB).
[ "${ASTRA_WITH_FASHION:-1}" = 1 ] && packages+=(dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
