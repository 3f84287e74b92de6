#!/usr/bin/env bash
# The main job on the default setting: installs missing system libraries, builds in release
# mode and runs the whole pipeline (train, fit, score, ground truth, LDS) on sklearn digits
# under `mpirun -n 2`. Usage: launch/run-default.sh [WORKDIR] [extra astra-dist run options]
set -euo pipefail
cd "$(dirname "$0")/.."
launch/setup.sh
swift build -c release
workdir=${1:-workspaces/digits}; shift || true
root_flags=(); [ "$(id -u)" = 0 ] && root_flags=(--allow-run-as-root)
exec mpirun "${root_flags[@]}" -n 2 -x OPENBLAS_NUM_THREADS=1 .build/release/astra-dist run --setting digits --workdir "$workdir" "$@"
