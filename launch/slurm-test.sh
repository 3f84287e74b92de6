#!/usr/bin/env bash
# End-to-end test of launch/slurm.sh on a one-node Slurm cluster (launch/slurm-local.sh), on the
# digits setting. Not part of `swift test` or .ci/run: it starts daemons.
#   launch/slurm-test.sh [WORKROOT]      (default /tmp/astra-slurm-test; run as root; ~2 minutes)
# 1. job A: the pipeline, uninterrupted (srun --mpi=pmix, 2 ranks);
# 2. job B: the same pipeline in another workspace, interrupted twice during groundtruth:
#    `scontrol requeue` (killed and requeued by the operator), then USR1 to the batch shell
#    (what --signal sends before the time limit: the script requeues itself); it must resume
#    from the journal and end with results identical to A's (ground truth, scores, LDS table);
# 3. a job array (2 dampings, ekfac, launched with mpirun) waiting on A: its two scores files.
# Exits non-zero with a "slurm-test: FAIL" line on the first failed check. Brings the cluster up
# if it is not running and then tears it down again.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-/tmp/astra-slurm-test}
export ASTRA_DIST=$PWD/.build/release/astra-dist
[ -x "$ASTRA_DIST" ] || swift build -c release
export SLURM_CONF=${ASTRA_SLURM_DIR:-/tmp/astra-slurm}/slurm.conf
# Small but long enough to interrupt twice: 100 subsets × 10 retrainings, 60 ASTRA iterations.
export ASTRA_GT_FLAGS="--masks 100 --repeats 10"
export ASTRA_METHODS=ekfac,astra ASTRA_SCORE_FLAGS="--iterations 60"

fail() { echo "slurm-test: FAIL: $*" >&2; exit 1; }
started=0
cleanup() { [ "$started" = 1 ] && launch/slurm-local.sh down >/dev/null; return 0; }
trap cleanup EXIT
if ! { [ -f "$SLURM_CONF" ] && timeout 10 sinfo -h >/dev/null 2>&1; }; then launch/slurm-local.sh up; started=1; fi

state() { scontrol show job "$1" -o | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
# Waits until job $1 (every task, for an array) has ended; fails unless all COMPLETED.
wait_done() {
  local s
  for _ in $(seq 600); do
    s=$(scontrol show job "$1" -o | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | sort -u | tr '\n' ' ')
    case $s in
      "COMPLETED ") return 0 ;;
      *FAILED*|*CANCELLED*|*TIMEOUT*|*NODE_FAIL*|*OUT_OF_MEMORY*) fail "job $1 ended $s; see $root/*.out" ;;
    esac
    sleep 1
  done
  fail "job $1 still '$s' after 10 minutes"
}
# Waits until job $1's output $2 shows ground-truth progress in attempt $3 (restart count).
wait_progress() {
  for _ in $(seq 300); do
    if awk -v r="restart $3," '$0 ~ r { on = 1 } on && /groundtruth: [0-9]+\/[0-9]+ jobs/ { found = 1 } END { exit !found }' "$2" 2>/dev/null; then return 0; fi
    [ "$(state "$1")" = COMPLETED ] && fail "job $1 finished before it could be interrupted (attempt $3); use more --masks"
    sleep 0.5
  done
  fail "job $1 showed no ground-truth progress in attempt $3"
}

rm -rf "$root"; mkdir -p "$root"
submit() { sbatch --parsable --ntasks=2 -o "$root/$1-%j.out" "${@:2}"; }
a=$(submit a launch/slurm.sh pipeline "$root/a" digits)
b=$(submit b launch/slurm.sh pipeline "$root/b" digits)
sweep=$(ASTRA_LAUNCHER=mpirun ASTRA_SCORE_FLAGS="" submit sweep --array=0-1 --dependency=afterok:"$a" launch/slurm.sh sweep "$root/a" ekfac 1e-3,1e-1)
echo "slurm-test: submitted pipeline $a, pipeline $b (to interrupt), sweep array $sweep"

wait_progress "$b" "$root/b-$b.out" 0
scontrol requeue "$b"
echo "slurm-test: requeued job $b during groundtruth"
wait_progress "$b" "$root/b-$b.out" 1
scancel --batch --signal=USR1 "$b"
echo "slurm-test: sent USR1 (the time-limit warning) to job $b's batch shell"
wait_done "$a"; wait_done "$b"; wait_done "$sweep"

out=$root/b-$b.out
grep -q "restart 2," "$out" || fail "job $b did not run a third attempt (restart 2)"
grep -q "time limit near, requeueing" "$out" || fail "job $b's USR1 trap did not requeue it"
resumed=$(sed -n 's/.*, \([0-9]*\) already in the journal.*/\1/p' "$out" | sort -n | tail -1)
[ "${resumed:-0}" -gt 0 ] || fail "job $b's groundtruth never resumed from its journal"
grep -q "seed 0 already trained, skipped" "$out" || fail "job $b's requeued train stage did not skip the trained seed"
for f in groundtruth/groundtruth.npy scores/ekfac/seed-0.npy scores/astra/seed-0.npy models/seed-0/layer-0.npy; do
  cmp -s "$root/a/$f" "$root/b/$f" || fail "$f differs between the uninterrupted ($a) and the interrupted ($b) run"
done
table() { sed -n '/^method /,/^(mean/p' "$1" | tail -n 4; }
[ -n "$(table "$root/a-$a.out")" ] || fail "job $a printed no LDS table"
[ "$(table "$root/a-$a.out")" = "$(table "$out")" ] || fail "LDS tables differ: $(table "$root/a-$a.out") vs $(table "$out")"
for x in 1e-3 1e-1; do
  f=$root/a/scores/ekfac-l$x/seed-0.json
  d=$(sed -n 's/^  "damping" : \([^,]*\),*$/\1/p' "$f" 2>/dev/null | head -1)
  awk -v d="${d:-nan}" -v x="$x" 'BEGIN { exit !(d + 0 == x + 0) }' || fail "sweep task for λ = $x: $f missing or its damping is '${d:-}'"
done
echo "slurm-test: job $b resumed after 2 interruptions ($resumed ground-truth jobs kept) and equals job $a:"
table "$out"
echo "slurm-test: sweep array $sweep wrote scores/ekfac-l1e-3 and scores/ekfac-l1e-1"
echo "slurm-test: PASS"
