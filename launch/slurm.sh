#!/usr/bin/env bash
# astra-dist as a Slurm batch job (docs/cluster.md). Two modes:
#
#   sbatch --ntasks=K launch/slurm.sh pipeline WORKDIR [SETTING] [common flags…]
#       train → fit → score (each of $ASTRA_METHODS) → groundtruth → lds on SETTING
#       (default digits). Common flags (--seeds 0-4) go to every stage; configuration flags
#       to train ($ASTRA_CONFIG_FLAGS), the sweep size to groundtruth ($ASTRA_GT_FLAGS).
#   sbatch --ntasks=K --array=0-3 --dependency=afterok:JOBID launch/slurm.sh sweep WORKDIR METHOD 1e-4,1e-3,1e-2,1e-1
#       a damping sweep: array task i scores METHOD with the i-th λ under the name METHOD-lλ
#       (e.g. scores/ekfac-l1e-3/); it needs the models and factors of a finished pipeline job.
#
# Requeue-safe: every stage continues where a killed attempt stopped (train skips trained
# seeds, fit fitted ones, groundtruth resumes from its journal, score from its solver state),
# so `scontrol requeue`, a preemption or a node failure only costs the unfinished stage.
# Before the time limit Slurm sends USR1 (--signal below) and the job requeues itself.
#
# WORKDIR must be on a filesystem every node sees. The binary: $ASTRA_DIST, else `astra-dist`
# on PATH, else .build/release/astra-dist in the submit directory (docs/commands.md, Installing).
#
# Environment knobs (sbatch passes the submitting shell's environment to the job):
#   ASTRA_LAUNCHER  srun (default) or mpirun (Open MPI's mpirun inside the allocation)
#   ASTRA_SRUN_MPI  srun's --mpi plugin (default pmix: Debian's Open MPI 4.1 has only a PMIx
#                   client; pmi2 and none fail at MPI_Init with "OMPI was not built with
#                   SLURM's PMI support". `srun --mpi=list` shows what a site offers)
#   ASTRA_METHODS   methods the pipeline scores, comma-separated (default ekfac,astra)
#   ASTRA_CONFIG_FLAGS configuration flags for train, which creates the workspace (e.g. "--epochs 5")
#   ASTRA_GT_FLAGS     the ground-truth sweep for groundtruth (e.g. "--masks 100 --repeats 10")
#   ASTRA_SCORE_FLAGS  extra flags for every score (e.g. "--iterations 100 --top 10")
#   ASTRA_LDS_FLAGS    extra flags for lds (e.g. "--ensemble" with --seeds 0-4)
#
# The astra-dist flags this script uses, each in one place below: --workdir, --setting,
# --threads (stage), --method, --damping, --name (score), lds's defaults.
#
#SBATCH --job-name=astra-dist
#SBATCH --cpus-per-task=1
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --signal=B:USR1@300
#
# Site settings, left for you: remove ONE leading '#' to enable a line ("##SBATCH" is a comment).
# Ranks (default 1): --ntasks, or --nodes with --ntasks-per-node, here or on the sbatch command
# line (sbatch --ntasks=2 …); BLAS threads per rank: --cpus-per-task.
##SBATCH --ntasks=64
##SBATCH --partition=PARTITION        # sinfo lists your site's partitions
##SBATCH --account=ACCOUNT            # sacctmgr show assoc user=$USER, or your site's docs
##SBATCH --time=04:00:00              # the USR1 requeue fires 300 s before this
##SBATCH --mem-per-cpu=4G             # MNIST subset: up to 1.5 GB per rank; see docs/cluster.md, Memory
##SBATCH --output=astra-%x-%j.out     # default slurm-%j.out in the submit directory; %A_%a for arrays
##SBATCH --nodes=4 --ntasks-per-node=16
set -euo pipefail

usage="usage: sbatch launch/slurm.sh pipeline WORKDIR [SETTING] [flags] | sweep WORKDIR METHOD LAMBDAS [flags]"
[ -n "${SLURM_JOB_ID:-}" ] || { echo "slurm.sh: not inside a Slurm job; submit it with sbatch ($usage)" >&2; exit 2; }
mode=${1:?$usage}; workdir=${2:?$usage}; shift 2

if [ -n "${ASTRA_DIST:-}" ]; then bin=$ASTRA_DIST
elif command -v astra-dist >/dev/null; then bin=$(command -v astra-dist)
else bin=${SLURM_SUBMIT_DIR:-$PWD}/.build/release/astra-dist; fi
[ -x "$bin" ] || { echo "slurm.sh: no astra-dist binary at $bin; set ASTRA_DIST or install it (docs/commands.md)" >&2; exit 2; }

# One BLAS thread per allocated CPU of a task; results are bit-identical only at a fixed count,
# and a requeued job keeps its --cpus-per-task.
threads=${SLURM_CPUS_PER_TASK:-1}
export OPENBLAS_NUM_THREADS=$threads
ranks=${SLURM_NTASKS:-1}

# Before the time limit: put the job back in the queue (it resumes) instead of losing it.
trap 'echo "slurm.sh: time limit near, requeueing job $SLURM_JOB_ID"; scontrol requeue "$SLURM_JOB_ID"' USR1

# Starts one astra-dist command on every rank. Slurm 22.05's srun does not inherit
# --cpus-per-task from sbatch, so it is passed again.
launch() {
  case ${ASTRA_LAUNCHER:-srun} in
    srun) srun --mpi="${ASTRA_SRUN_MPI:-pmix}" --ntasks="$ranks" --cpus-per-task="$threads" --kill-on-bad-exit=1 "$bin" "$@" ;;
    mpirun)
      local root=(); [ "$(id -u)" = 0 ] && root=(--allow-run-as-root)
      mpirun "${root[@]}" -n "$ranks" --bind-to none -x OPENBLAS_NUM_THREADS "$bin" "$@" ;;
    *) echo "slurm.sh: ASTRA_LAUNCHER must be srun or mpirun" >&2; return 2 ;;
  esac
}

# One stage: COMMAND [flags]; the workspace flags every stage takes are added here. Runs in the
# background and waits, so the USR1 trap can fire while a stage runs.
stage() {
  local command=$1; shift
  echo "slurm.sh: $(date '+%F %T') $command (job $SLURM_JOB_ID, restart ${SLURM_RESTART_COUNT:-0}, $ranks ranks × $threads threads)"
  launch "$command" --workdir "$workdir" --threads "$threads" "$@" &
  wait $!
}

case $mode in
  pipeline)
    setting=digits
    if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then setting=$1; shift; fi
    # Fixed by the first command; later stages read config.json (the same flags are accepted).
    # shellcheck disable=SC2086  # the extra flags are meant to split into words
    stage train --setting "$setting" "$@" ${ASTRA_CONFIG_FLAGS:-}
    stage fit "$@"
    IFS=, read -ra methods <<<"${ASTRA_METHODS:-ekfac,astra}"
    # shellcheck disable=SC2086  # the extra flags are meant to split into words
    for m in "${methods[@]}"; do stage score --method "$m" "$@" ${ASTRA_SCORE_FLAGS:-}; done
    # shellcheck disable=SC2086
    stage groundtruth "$@" ${ASTRA_GT_FLAGS:-}
    # shellcheck disable=SC2086
    stage lds "$@" ${ASTRA_LDS_FLAGS:-}
    ;;
  sweep)
    method=${1:?$usage}; list=${2:?$usage}; shift 2
    IFS=, read -ra lambdas <<<"$list"
    task=${SLURM_ARRAY_TASK_ID:?sweep runs as a job array: sbatch --array=0-$((${#lambdas[@]} - 1)) …}
    [ "$task" -lt "${#lambdas[@]}" ] || { echo "slurm.sh: array task $task but only ${#lambdas[@]} dampings ($list)" >&2; exit 2; }
    x=${lambdas[$task]}
    # The name is given explicitly, so the sweep does not depend on the tool's own naming rule.
    # shellcheck disable=SC2086
    stage score --method "$method" --damping "$x" --name "$method-l$x" "$@" ${ASTRA_SCORE_FLAGS:-}
    ;;
  *) echo "slurm.sh: unknown mode '$mode'; $usage" >&2; exit 2 ;;
esac
echo "slurm.sh: $(date '+%F %T') $mode done"
