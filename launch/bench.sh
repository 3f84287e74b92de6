#!/usr/bin/env bash
# The speed measurements of docs/results.md (training, EK-FAC fit, scoring) on 1 and 2 ranks.
# Run it on an otherwise idle machine: every JSON records the SGEMM peak of its own run.
#   launch/bench.sh [WORKDIR] [OUT] [SETTING]   (defaults workspaces/mnist-bench, bench-results, mnist)
# `bench score` needs a trained model and its factors: the first two commands make them
# (finished work is skipped when re-run). ASTRA_ITERATIONS=K times a K-iteration ASTRA solve
# instead of 200 (the CNN: `ASTRA_ITERATIONS=10 launch/bench.sh ws/cnn-bench bench-cnn mnist-cnn`).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release
w=${1:-workspaces/mnist-bench}; out=${2:-bench-results}; setting=${3:-mnist}
mkdir -p "$out"
A=(mpirun -x OPENBLAS_NUM_THREADS=1); [ "$(id -u)" = 0 ] && A+=(--allow-run-as-root)
B=.build/release/astra-dist

"${A[@]}" -n 2 $B train --setting "$setting" --workdir "$w" --seeds 0
"${A[@]}" -n 2 $B fit --workdir "$w" --seeds 0
for n in 1 2; do
  "${A[@]}" -n $n $B bench train --setting "$setting" --workdir "$w" --runs 5 --out "$out/train-$n.json" >/dev/null
  "${A[@]}" -n $n $B bench fit --setting "$setting" --workdir "$w" --runs 3 --out "$out/fit-$n.json" >/dev/null
  "${A[@]}" -n $n $B bench score --setting "$setting" --workdir "$w" --method ekfac,astra ${ASTRA_ITERATIONS:+--astra-iterations "$ASTRA_ITERATIONS"} --out "$out/score-$n.json" >/dev/null
done
echo "bench: JSON in $out/"
