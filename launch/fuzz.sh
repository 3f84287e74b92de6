#!/usr/bin/env bash
# Fuzzes every file parser (gzip, IDX, CSV, NPY, config/model/factors/scores JSON, journal)
# with the seeded driver `astra-fuzz`: mutated valid files, run in child processes; an input
# that crashes, hangs or ends in a non-AstraError is saved to Tests/AstraDistTests/FuzzCorpus/
# FORMAT/ (which `swift test` replays). Reproducible: the same --seed gives the same inputs.
#
#   launch/fuzz.sh                      # 1,000,000 inputs per parser, seed 1
#   launch/fuzz.sh --inputs 20000 --seed 7 --formats npy,idx
#
# Extra arguments go to `astra-fuzz run` (--seed S, --inputs N, --batch B, --timeout SEC,
# --corpus DIR, --formats LIST). Exit status 0 means no finding. Runs at nice 10.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product astra-fuzz >&2
exec nice -n 10 .build/release/astra-fuzz run "$@"
