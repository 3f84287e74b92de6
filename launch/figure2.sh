#!/usr/bin/env bash
# The paper's Figure 2 for one setting (docs/results.md, "Figure 2"): five models trained with
# the default checkpoint schedule, a ground truth of 100 subsets × REPEATS, and every method of
# the table (TracIn, TRAK, EK-FAC-IF, ASTRA-IF, EK-FAC-SOURCE, ASTRA-SOURCE), single model and
# ensembled; EK-FAC-IF and ASTRA-IF again at the damping SOURCE implies, and with the exact
# Fisher (in a copy of the workspace, since a workspace holds one Fisher mode's factors).
# Every step is resumable: re-running skips finished work.
#   launch/figure2.sh SETTING [REPEATS] [WORKROOT] [DATA]    (defaults: the setting's repeats,
#   workspaces/figure2, the setting's default data)
set -euo pipefail
cd "$(dirname "$0")/.."
setting=$1; repeats=${2:-}; root=${3:-workspaces/figure2}; data=${4:-}
# ASTRA_BIN: a frozen copy of the binary, so that rebuilding the tree does not change a long run.
[ -n "${ASTRA_BIN:-}" ] || swift build -c release >/dev/null
A=(mpirun -n 2 -x OPENBLAS_NUM_THREADS=1); [ "$(id -u)" = 0 ] && A+=(--allow-run-as-root)
B=${ASTRA_BIN:-$PWD/.build/release/astra-dist}
w="$root/$setting"; x="$root/$setting-exact"
step() { echo "== $(date +%T) $*" >&2; "${A[@]}" "$B" "$@"; }

step train --setting "$setting" --workdir "$w" --seeds 0-4 ${data:+--data "$data"}
step groundtruth --workdir "$w" ${repeats:+--repeats "$repeats"}
step fit --workdir "$w"
if [ ! -d "$x" ]; then
  mkdir -p "$x.tmp" && cp -a "$w"/. "$x.tmp"/ && rm -rf "$x.tmp"/{factors,scores,lds} && mv "$x.tmp" "$x"
fi
step fit --workdir "$x" --fisher exact

# Model 0 of every method first, then the other models: a run cut short still has the whole
# single-model column (score skips finished seeds, so the second pass only adds seeds 1-4).
# MODEL0_ONLY=1 stops after the first pass (a session too short for the ensembles).
passes=(0 ""); [ -n "${MODEL0_ONLY:-}" ] && passes=(0)
for seeds in "${passes[@]}"; do
  for m in ekfac tracin trak source astra astra-source; do step score --workdir "$w" --method $m ${seeds:+--seeds $seeds}; done
  step score --workdir "$x" --method ekfac,astra --fisher exact ${seeds:+--seeds $seeds}
done

implied=$(printf '%.4g' "$(sed -n 's/.*"impliedDamping" *: *\([0-9.e+-]*\).*/\1/p' "$w/scores/source/seed-0.json" | head -1)")
stated=$(sed -n 's/.*"damping" *: *\([0-9.e+-]*\).*/\1/p' "$w/config.json" | head -1)
# Within 1% of the setting's λ the implied-damping rows would repeat the defaults' at a solve's cost.
if awk -v a="$implied" -v b="$stated" 'BEGIN { d = a / b - 1; exit !(d < 0.01 && d > -0.01) }'; then
  echo "== implied damping $implied is within 1% of the setting's $stated: its rows are the defaults' (not re-run)" >&2
else
  step score --workdir "$w" --method ekfac,astra --damping "$implied" ${MODEL0_ONLY:+--seeds 0}
fi

step lds --workdir "$w" --ensemble
step lds --workdir "$x" --ensemble
