#!/usr/bin/env bash
# The test suite: installs missing system libraries, then `swift test` in release mode
# (numerical tests train real networks; debug builds are ~20x slower). Distributed tests
# launch the built binary under mpirun themselves; set OMPI_ALLOW_RUN_AS_ROOT when root.
set -euo pipefail
cd "$(dirname "$0")/.."
launch/setup.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
exec swift test -c release "$@"
