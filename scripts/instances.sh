# Sourced by the demos: starts collab-server instances on 127.0.0.1, two on
# one Redis (a private redis-server on a free port, unless REDIS_URL names
# one), or one in memory where redis-server is not installed.
#
# Expects PORT_A, PORT_B, tmp (a scratch directory) and pids (an array the
# caller's cleanup kills) to be set; `start_instances` sets two (true when
# two instances share rooms), bin (the release binaries' directory), A and
# B (the instances' URLs; the same one when there is one instance).

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 200); do port_open "$1" && return 0; sleep 0.05; done
  echo "demo: nothing is listening on port $1" >&2
  return 1
}

start_instances() {
  two=true
  if [ -z "${REDIS_URL:-}" ] && ! command -v redis-server >/dev/null; then
    two=false
  fi
  local ports=("$PORT_A") p
  $two && ports+=("$PORT_B")
  for p in "${ports[@]}"; do
    if port_open "$p"; then
      echo "demo: port $p is in use; set PORT_A/PORT_B to free ports" >&2
      exit 1
    fi
  done

  echo "== building (release)"
  cargo build --release -q -p collab-server -p collab
  bin=$PWD/target/release

  if $two && [ -z "${REDIS_URL:-}" ]; then
    local redis_port=$(( 20000 + RANDOM % 20000 ))
    while port_open "$redis_port"; do redis_port=$(( 20000 + RANDOM % 20000 )); done
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
    pids+=($!)
    wait_port "$redis_port"
    REDIS_URL="redis://127.0.0.1:$redis_port/"
    echo "== private redis-server on port $redis_port"
  fi

  for p in "${ports[@]}"; do
    if $two; then
      REDIS_URL="$REDIS_URL" RUST_LOG=warn "$bin/collab-server" --port "$p" >"$tmp/server-$p.log" 2>&1 &
    else
      RUST_LOG=warn "$bin/collab-server" --port "$p" >"$tmp/server-$p.log" 2>&1 &
    fi
    pids+=($!)
  done
  for p in "${ports[@]}"; do wait_port "$p"; done
  A="http://127.0.0.1:$PORT_A"
  if $two; then
    B="http://127.0.0.1:$PORT_B"
    echo "== instances on $A and $B"
  else
    B="$A"
    echo "== redis-server is not installed: one in-memory instance on $A"
    echo "   (for two instances sharing rooms: apt-get install redis-server, then run this again)"
  fi
}
