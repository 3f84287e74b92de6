#!/usr/bin/env bash
# Content hashes of the numbers a refactor must not change (issue 16: "land it with every
# number unchanged"): digits, concrete and mnist, seed 0: model parameters, EK-FAC factor arrays,
# ekfac, astra (20 iterations; mnist 3) and exact (dense GGN; digits only) scores. Run before and after a change
# and diff the output. Usage: launch/reference-numbers.sh [WORKDIR]   (needs a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
exe=${EXE:-.build/release/astra-dist}
root=${1:-$(mktemp -d /tmp/astra-reference.XXXXXX)}
export OPENBLAS_NUM_THREADS=1
for setting in ${SETTINGS:-digits concrete mnist}; do
    ws=$root/$setting
    rm -rf "$ws"
    flags=(--workdir "$ws" --seeds 0)
    # Only a command that creates the workspace takes the setting; the others read config.json.
    "$exe" train "${flags[@]}" --setting "$setting" 2>/dev/null
    "$exe" fit "${flags[@]}" 2>/dev/null
    "$exe" score "${flags[@]}" --method ekfac 2>/dev/null
    "$exe" score "${flags[@]}" --method astra --iterations "$([ "$setting" = mnist ] && echo 3 || echo 20)" 2>/dev/null
    [ "$setting" = digits ] && "$exe" score "${flags[@]}" --method exact 2>/dev/null
    (cd "$ws" && find models factors scores -name '*.npy' | sort | xargs sha256sum | sed "s|^|$setting |")
done
