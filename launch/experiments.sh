#!/usr/bin/env bash
# The experiments of docs/results.md, in the order they were run (2 ranks on the 2-core
# machine). Each line is resumable: re-running skips finished, valid work.
#   launch/experiments.sh [WORKROOT]        (default workspaces/)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release
root=${1:-workspaces}
A=(mpirun -n 2 -x OPENBLAS_NUM_THREADS=1); [ "$(id -u)" = 0 ] && A+=(--allow-run-as-root)
B=.build/release/astra-dist

# 1. UCI Concrete, the paper's protocol: 896 train, 103 queries, 100 subsets × 100 repeats,
#    λ = 0.0017, 5-model ensemble.
"${A[@]}" $B run --setting concrete --workdir "$root/concrete" --seeds 0-4 --ensemble
#    damping dependence (EK-FAC; λ = 0.018 is SOURCE's rule)
for l in 0.0001 0.018 0.1 1; do "${A[@]}" $B score --workdir "$root/concrete" --method ekfac --damping $l --name ekfac-l$l; done
"${A[@]}" $B lds --workdir "$root/concrete" --ensemble

# 2. MNIST, Fashion-MNIST (λ = 0.0052) and Fashion-MNIST-N (λ = 0.10): 100 subsets × 5 repeats;
#    identity, EK-FAC and ASTRA for 5 models (ASTRA ~2.5 min per model), SNI for the first
#    model (2,000 iterations, ~17 min on the idle machine).
for s in mnist fashion-mnist fashion-mnist-n; do
  w="$root/$s"
  "${A[@]}" $B train --setting $s --workdir "$w" --seeds 0-4
  "${A[@]}" $B groundtruth --workdir "$w" --repeats 5
  "${A[@]}" $B fit --workdir "$w"
  for m in identity ekfac astra; do "${A[@]}" $B score --workdir "$w" --method $m; done
  "${A[@]}" $B score --workdir "$w" --method sni --seeds 0 --trace-every 100
  "${A[@]}" $B lds --workdir "$w" --ensemble
done

# 3. Convergence (the paper's Figure 3) on digits and Concrete.
"${A[@]}" $B run --workdir "$root/digits" --seeds 0-4 --ensemble
"${A[@]}" $B convergence --workdir "$root/digits"
"${A[@]}" $B convergence --workdir "$root/concrete" --solver-seeds 5

# 4. Scaling: fit, score and a fixed sweep on 1, 2 and 4 ranks.
launch/scaling.sh "$root/scaling"
