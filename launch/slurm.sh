#!/usr/bin/env bash
# Slurm batch script: the whole pipeline on one setting, one rank per core, one BLAS thread per
# rank. The workspace must be on a filesystem every node sees. Re-submitting after a crash or a
# time limit continues where it stopped (every stage skips finished, valid output).
#   sbatch launch/slurm.sh /shared/exp mnist [extra astra-dist run options]
#SBATCH --job-name=astra-dist
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=16
#SBATCH --cpus-per-task=1
#SBATCH --time=04:00:00
set -euo pipefail
workdir=${1:?usage: sbatch launch/slurm.sh WORKDIR SETTING [options]}
setting=${2:?usage: sbatch launch/slurm.sh WORKDIR SETTING [options]}
shift 2
export OPENBLAS_NUM_THREADS=1
srun --mpi=pmix "${ASTRA_DIST:-.build/release/astra-dist}" run --setting "$setting" --workdir "$workdir" "$@"
