#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for testing launch/slurm.sh (Debian 12's
# slurm-wlm 22.05 and munge; root; works in a container without cgroups or systemd).
#   launch/slurm-local.sh up      install slurm-wlm if missing, write the configuration, start
#                                 munged, slurmctld and slurmd, wait until the node is idle
#   launch/slurm-local.sh down    stop the three daemons (by their pid files) and remove the state
#   launch/slurm-local.sh env     print the `export SLURM_CONF=…` line the clients need
# Everything lives under $ASTRA_SLURM_DIR (default /tmp/astra-slurm); /etc/slurm is not touched,
# so the clients (sbatch, squeue, scontrol) need SLURM_CONF=$ASTRA_SLURM_DIR/slurm.conf.
set -euo pipefail
root=${ASTRA_SLURM_DIR:-/tmp/astra-slurm}
conf=$root/slurm.conf
host=$(hostname -s)
cpus=${ASTRA_SLURM_CPUS:-$(nproc)}

write_conf() {
  mkdir -p "$root/state" "$root/spool" "$root/log" "$root/munge"
  # linuxproc/task none: no cgroups needed; CR_Core: CPUs are the only consumable (memory is
  # not enforced, so a job without --mem runs); JobRequeue=1: batch jobs may be requeued;
  # cred_expire=10: a requeued job may start again after 11 s (Slurm's default is 121 s).
  cat >"$conf" <<EOF
ClusterName=astra-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
StateSaveLocation=$root/state
SlurmdSpoolDir=$root/spool
SlurmctldPidFile=$root/slurmctld.pid
SlurmdPidFile=$root/slurmd.pid
SlurmctldLogFile=$root/log/slurmctld.log
SlurmdLogFile=$root/log/slurmd.log
SlurmctldPort=${ASTRA_SLURM_PORT:-6817}
SlurmdPort=$(( ${ASTRA_SLURM_PORT:-6817} + 1 ))
InactiveLimit=0
MinJobAge=300
KillWait=10
Waittime=0
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

up() {
  command -v slurmctld >/dev/null || { echo "slurm-local: installing slurm-wlm" >&2; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm >/dev/null; }
  write_conf
  export SLURM_CONF=$conf
  # munged: its own socket and pid file, running as the munge user Debian's key belongs to.
  mkdir -p /run/munge && chown munge:munge /run/munge "$root/munge"
  if ! munge -n >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged --pid-file="$root/munge/munged.pid" --log-file="$root/munge/munged.log"
  fi
  /usr/sbin/slurmctld -f "$conf"
  /usr/sbin/slurmd -f "$conf"
  for _ in $(seq 60); do
    state=$(sinfo -h -N -o %t 2>/dev/null || true)
    case $state in idle*) echo "slurm-local: node $host idle ($cpus CPUs); export SLURM_CONF=$conf"; return 0 ;; esac
    sleep 1
  done
  echo "slurm-local: node did not become idle (state '${state:-none}'); see $root/log/" >&2
  return 1
}

stop_pid() {   # pid file, daemon name: signal that pid only, wait up to 10 s for it to go
  local file=$1 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$file"
}

down() {
  # slurmd first (it kills job steps it started), then the controller, then munged.
  stop_pid "$root/slurmd.pid"
  stop_pid "$root/slurmctld.pid"
  stop_pid "$root/munge/munged.pid"
  rm -rf "$root"
  echo "slurm-local: stopped"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  env) echo "export SLURM_CONF=$conf" ;;
  *) echo "usage: launch/slurm-local.sh up|down|env" >&2; exit 2 ;;
esac
