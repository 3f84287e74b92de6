#!/usr/bin/env bash
# The convolutional setting's LDS table (docs/results.md, "CNN setting"): five `mnist-cnn`
# models, a 100 × REPEATS ground truth, identity, K-FAC, EK-FAC, EK-FAC-SOURCE and ASTRA for
# every model, SNI on model 0, the ensemble, and the convergence curves of model 0 (3 solver
# seeds: the default 10 repeat SNI's 2,000 iterations ten times on this network). Under
# `mpirun -n 2`; every step is resumable (re-running skips finished work).
#   launch/cnn-lds.sh [REPEATS] [WORKDIR] [DATA]   (defaults 10, workspaces/mnist-cnn,
#   idx:../shared/data/mnist); ASTRA_BIN as in launch/figure2.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-10}; w=${2:-workspaces/mnist-cnn}; data=${3:-}
[ -n "${ASTRA_BIN:-}" ] || swift build -c release >/dev/null
A=(mpirun -n 2 -x OPENBLAS_NUM_THREADS=1); [ "$(id -u)" = 0 ] && A+=(--allow-run-as-root)
B=${ASTRA_BIN:-$PWD/.build/release/astra-dist}
step() { echo "== $(date +%T) $*" >&2; "${A[@]}" "$B" "$@"; }

step train --setting mnist-cnn --workdir "$w" --seeds 0-4 ${data:+--data "$data"}
step groundtruth --workdir "$w" --repeats "$repeats"
step fit --workdir "$w"
for m in identity kfac ekfac astra source; do step score --workdir "$w" --method $m; done
step lds --workdir "$w" --ensemble
step score --workdir "$w" --method sni --seeds 0 --trace-every 100
step lds --workdir "$w" --ensemble
step convergence --workdir "$w" --solver-seeds 3
step score --workdir "$w" --method astra-source
step lds --workdir "$w" --ensemble
