#!/usr/bin/env bash
# A cluster of 3 "hosts" on one machine (network namespaces h1..h3 on a private bridge, each
# with its own hostname), for testing what crosses a real network: ranks on separate hosts,
# TCP transport, killing a host. Root only. Addresses exist only inside these namespaces.
#   launch/netns-cluster.sh up
#   launch/netns-cluster.sh run -n 3 astra-dist fit --workdir /tmp/exp      (mpirun inside h1)
#   launch/netns-cluster.sh down
set -euo pipefail
hosts=(h1 h2 h3)
agent=/tmp/astra-netns-agent.sh
hostfile=/tmp/astra-netns-hosts
case "${1:-}" in
up)
  ip netns add astra-br
  ip netns exec astra-br ip link add br0 type bridge
  ip netns exec astra-br ip link set br0 up
  for i in 1 2 3; do
    ip netns add h$i
    ip link add veth$i type veth peer name eth0 netns h$i
    ip link set veth$i netns astra-br
    ip netns exec astra-br ip link set veth$i master br0
    ip netns exec astra-br ip link set veth$i up
    ip netns exec h$i ip addr add 10.77.0.$i/24 dev eth0
    ip netns exec h$i ip link set eth0 up
    ip netns exec h$i ip link set lo up
  done
  # The rsh agent: "agent HOST command…" runs the command in that host's namespace, with
  # its own UTS namespace and hostname (shared-memory transport keys on the hostname).
  cat > "$agent" <<'AGENT'
#!/bin/sh
host=$1; shift
case "$host" in 10.77.0.*) ns=h${host##*.} ;; *) ns=$host ;; esac
exec ip netns exec "$ns" unshare --uts /bin/sh -c "hostname $ns; $*"
AGENT
  chmod +x "$agent"
  printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n10.77.0.3 slots=1\n' > "$hostfile"
  echo "cluster up: hosts 10.77.0.1-3, hostfile $hostfile" ;;
run)
  shift
  exec ip netns exec h1 mpirun --allow-run-as-root --hostfile "$hostfile" --mca plm_rsh_agent "$agent" \
    --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
    -x OPENBLAS_NUM_THREADS=1 "$@" ;;
down)
  for h in "${hosts[@]}" astra-br; do ip netns del "$h" 2>/dev/null || true; done
  rm -f "$agent" "$hostfile"; echo "cluster down" ;;
*) echo "usage: $0 up|run MPIRUN-ARGS…|down" >&2; exit 2 ;;
esac
