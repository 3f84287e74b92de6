#!/usr/bin/env bash
# The convolutional setting's LDS table (docs/results.md, "CNN setting"): five `mnist-cnn`
# models, a 100 × REPEATS ground truth, identity, K-FAC, EK-FAC, EK-FAC-SOURCE and ASTRA for
# every model, SNI on model 0, the ensemble, the convergence curves of model 0 (3 solver
# seeds: the default 10 repeat SNI's 2,000 iterations ten times on this network), the damping
# study (EK-FAC-IF at seven λ, ASTRA-IF at λ = 0.05) and ASTRA-SOURCE. Under
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
# SNI's sweep brackets its automatic step on model 0 (α = 1/λ_max = 0.162; 2/λ_max diverges).
step convergence --workdir "$w" --solver-seeds 3 --sni-rates 0.16,0.1,0.01
# The damping: EK-FAC-IF at seven λ (one fit, one rotation), ASTRA-IF at ten times the preset's.
step score --workdir "$w" --method ekfac --damping 1e-4,1e-3,0.0052,0.01,0.05,0.1,1
step score --workdir "$w" --method astra --damping 0.05
step lds --workdir "$w" --ensemble
step score --workdir "$w" --method astra-source
step lds --workdir "$w" --ensemble
