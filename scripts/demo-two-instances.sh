#!/usr/bin/env bash
# Two collab-server instances sharing rooms through one Redis: creates a room
# on one, types into it through both at once, and shows that both instances
# hold the same document. Exits non-zero unless they match.
#
#   scripts/demo-two-instances.sh            # private redis-server on a free port
#   REDIS_URL=redis://host:port scripts/...  # use that Redis instead
#   PORT_A=9001 PORT_B=9002 scripts/...      # other ports (default 8001, 8002)
set -euo pipefail
cd "$(dirname "$0")/.."

PORT_A=${PORT_A:-8001}
PORT_B=${PORT_B:-8002}
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
wait_port() {
  for _ in $(seq 1 200); do port_open "$1" && return 0; sleep 0.05; done
  echo "demo: nothing is listening on port $1" >&2
  return 1
}

for p in "$PORT_A" "$PORT_B"; do
  if port_open "$p"; then
    echo "demo: port $p is in use; set PORT_A/PORT_B to free ports" >&2
    exit 1
  fi
done

echo "== building (release)"
cargo build --release -q -p collab-server -p collab
bin=target/release

if [ -z "${REDIS_URL:-}" ]; then
  command -v redis-server >/dev/null || { echo "demo: redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }
  redis_port=$(( 20000 + RANDOM % 20000 ))
  while port_open "$redis_port"; do redis_port=$(( 20000 + RANDOM % 20000 )); done
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
  pids+=($!)
  wait_port "$redis_port"
  REDIS_URL="redis://127.0.0.1:$redis_port/"
  echo "== private redis-server on port $redis_port"
fi

for p in "$PORT_A" "$PORT_B"; do
  REDIS_URL="$REDIS_URL" RUST_LOG=warn "$bin/collab-server" --port "$p" >"$tmp/server-$p.log" 2>&1 &
  pids+=($!)
done
wait_port "$PORT_A"
wait_port "$PORT_B"
A="http://127.0.0.1:$PORT_A"
B="http://127.0.0.1:$PORT_B"
echo "== instances on $A and $B"

printf 'fn main() {\n    println!("hello");\n}\n' >"$tmp/main.rs"
room=$("$bin/collab" --server "$A" create -q "$tmp/main.rs")
echo "== room created on instance A"

echo "== typing through both instances at once (each line is one edit)"
type_lines() { # name server
  for i in 1 2 3 4 5; do
    COLLAB_NAME=$1 "$bin/collab" --server "$2" append "$room" "// $1, line $i, via $2
"
  done
}
type_lines alice "$A" &
typist_a=$!
type_lines bob "$B" &
typist_b=$!
wait "$typist_a"
wait "$typist_b"

# Instance A may be a pub/sub hop behind B for a moment.
for _ in $(seq 1 40); do
  doc_a=$("$bin/collab" --server "$A" cat "$room")
  doc_b=$("$bin/collab" --server "$B" cat "$room")
  [ "$doc_a" = "$doc_b" ] && break
  sleep 0.05
done

echo "== instance A ($A) holds:"
printf '%s\n' "$doc_a" | sed 's/^/   | /'
echo "== instance B ($B) holds:"
printf '%s\n' "$doc_b" | sed 's/^/   | /'

if [ "$doc_a" != "$doc_b" ]; then
  echo "FAIL: the instances disagree" >&2
  exit 1
fi
for who in alice bob; do
  for i in 1 2 3 4 5; do
    grep -q "// $who, line $i, via" <<<"$doc_a" || { echo "FAIL: $who's line $i is missing" >&2; exit 1; }
  done
done
echo "OK: both instances hold the same document, with both typists' text."
