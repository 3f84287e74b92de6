#!/usr/bin/env bash
# Scaling: wall time of fit, score (ekfac and astra) and a fixed ground-truth sweep (20 subsets
# × 10 repeats) on the Concrete setting under 1, 2 and 4 ranks (4 oversubscribes a 2-core
# machine). Prints a CSV: ranks,stage,seconds.   launch/scaling.sh [WORKROOT]
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-workspaces/scaling}
B=$PWD/.build/release/astra-dist
flags=(--oversubscribe -x OPENBLAS_NUM_THREADS=1); [ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
base="$root/base"
[ -f "$base/models/seed-0/model.json" ] || $B train --setting concrete --workdir "$base" >/dev/null 2>&1
echo "ranks,stage,seconds"
for n in 1 2 4; do
  w="$root/n$n"; rm -rf "$w"; mkdir -p "$w"; cp -r "$base/config.json" "$base/models" "$w/"
  for stage in "fit" "score --method ekfac" "score --method astra" "groundtruth --masks 20 --repeats 10"; do
    t0=$(date +%s.%N)
    mpirun "${flags[@]}" -n $n $B $stage --workdir "$w" >/dev/null 2>&1
    echo "$n,${stage// /_},$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')"
  done
done
