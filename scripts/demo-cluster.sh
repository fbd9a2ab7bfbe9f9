#!/usr/bin/env bash
# The two-instance demo (scripts/demo-two-instances.sh) on a local Redis
# Cluster: three primaries on free ports, joined with `redis-cli --cluster
# create`, and both collab-server instances pointed at it with
# --redis-cluster (rooms spread over the shards by their hash tag, events by
# sharded pub/sub). Exits non-zero unless both instances hold the same text.
#
#   scripts/demo-cluster.sh            # private 3-node cluster
#   scripts/demo-cluster.sh --watch    # and watch it in tmux (see the other demo)
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
for cmd in redis-server redis-cli; do
  if ! command -v "$cmd" >/dev/null; then
    echo "demo: $cmd is missing (apt-get install redis-server redis-tools)" >&2
    exit 1
  fi
done

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p=$(( 20000 + RANDOM % 20000 ))
  while port_open "$p" || port_open $(( p + 10000 )); do p=$(( 20000 + RANDOM % 20000 )); done
  echo "$p"
}

nodes=()
for i in 1 2 3; do
  port=$(free_port)
  mkdir -p "$tmp/$port"
  redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
    --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
    --save "" --appendonly no --dir "$tmp/$port" >"$tmp/redis-$port.log" 2>&1 &
  pids+=($!)
  nodes+=("127.0.0.1:$port")
done
for n in "${nodes[@]}"; do
  for _ in $(seq 1 200); do port_open "${n#*:}" && break; sleep 0.05; done
done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$tmp/create.log" 2>&1 || {
  cat "$tmp/create.log" >&2; echo "demo: redis-cli --cluster create failed" >&2; exit 1; }
for _ in $(seq 1 100); do
  redis-cli -p "${nodes[0]#*:}" cluster info | grep -q 'cluster_state:ok' && break
  sleep 0.1
done
seeds=$(printf 'redis://%s/,' "${nodes[@]}")
echo "== a 3-primary Redis Cluster on ${nodes[*]}"

REDIS_URL="${seeds%,}" REDIS_CLUSTER=true scripts/demo-two-instances.sh "$@"
