#!/usr/bin/env bash
# A project shared from disk through two collab-server instances on one
# Redis: `collab share DIR --no-editor` on instance A keeps a directory of
# three files in sync with its room; a guest appends to one file through
# instance B, and the host's file changes on disk; then `sed -i` changes
# another file on the host, and the room has it (`collab cat ROOM PATH`
# through instance B). Exits non-zero when a step fails.
#
# Without redis-server installed it runs the same steps against one
# in-memory instance (and says how to get the two-instance version).
#
#   scripts/demo-project.sh                  # private redis-server on a free port
#   REDIS_URL=redis://host:port scripts/...  # use that Redis instead
#   PORT_A=9001 PORT_B=9002 scripts/...      # other ports (default 8003, 8004)
set -euo pipefail
cd "$(dirname "$0")/.."

for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

PORT_A=${PORT_A:-8003}
PORT_B=${PORT_B:-8004}
tmp=$(mktemp -d)
pids=()
share_pid=""
cleanup() {
  [ -n "$share_pid" ] && kill "$share_pid" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. scripts/instances.sh
fail() {
  echo "FAIL: $*" >&2
  if [ -s "$tmp/share.err" ]; then
    echo "-- collab share said:" >&2
    sed 's/^/   | /' "$tmp/share.err" >&2
  fi
  exit 1
}
show() { # title file
  echo "== $1"
  sed 's/^/   | /' "$2"
}

start_instances

# The host's project: three files.
project="$tmp/project"
mkdir -p "$project/src"
printf '# Demo\n\nA project shared from disk.\n' >"$project/README.md"
printf 'mod util;\n\nfn main() {\n    println!("hello");\n}\n' >"$project/src/main.rs"
printf 'pub fn twice(x: i32) -> i32 {\n    x * 2\n}\n' >"$project/src/util.rs"
export XDG_STATE_HOME="$tmp/state"

echo "== host: collab share $project --no-editor (instance A)"
COLLAB_NAME=host "$bin/collab" --server "$A" share "$project" --no-editor -q \
  >"$tmp/share.out" 2>"$tmp/share.err" &
share_pid=$!
room=""
for _ in $(seq 1 200); do
  room=$(head -n 1 "$tmp/share.out" 2>/dev/null || true)
  [ -n "$room" ] && break
  kill -0 "$share_pid" 2>/dev/null || fail "collab share exited"
  sleep 0.05
done
[ -n "$room" ] || fail "collab share printed no room id"
echo "   room $room"
"$bin/collab" --server "$B" cat "$room" src/util.rs >/dev/null || fail "instance B cannot read the room"

echo "== guest: collab append $room --path src/util.rs ... (through $B)"
COLLAB_NAME=guest "$bin/collab" --server "$B" append "$room" --path src/util.rs \
  $'\npub fn half(x: i32) -> i32 {\n    x / 2\n}\n' || fail "the guest's append failed"

changed=false
for _ in $(seq 1 100); do
  if grep -q 'pub fn half' "$project/src/util.rs"; then changed=true; break; fi
  sleep 0.05
done
$changed || fail "the guest's edit did not reach the host's disk"
show "the host's src/util.rs on disk now:" "$project/src/util.rs"

echo "== host: sed -i 's/hello/hello, world/' src/main.rs"
sed -i 's/hello/hello, world/' "$project/src/main.rs"
reached=false
for _ in $(seq 1 100); do
  "$bin/collab" --server "$B" cat "$room" src/main.rs >"$tmp/main.rs" || true
  if grep -q 'hello, world' "$tmp/main.rs"; then reached=true; break; fi
  sleep 0.05
done
$reached || fail "sed's change did not reach the room"
show "collab cat $room src/main.rs (through $B):" "$tmp/main.rs"
cmp -s "$tmp/main.rs" "$project/src/main.rs" || fail "the room's src/main.rs differs from the host's"

echo "== stopping collab share (SIGTERM)"
kill -TERM "$share_pid"
status=0
wait "$share_pid" || status=$?
share_pid=""
[ "$status" -eq 0 ] || fail "collab share exited with $status"
if $two; then
  echo "OK: a guest on instance B changed the host's file on disk, and sed on the host reached the room."
else
  echo "OK: a guest changed the host's file on disk, and sed on the host reached the room. Install redis-server to see two instances share it."
fi
