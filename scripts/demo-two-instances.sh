#!/usr/bin/env bash
# Two collab-server instances sharing rooms through one Redis: creates a room
# on one, types into it through both at once, and shows that both instances
# hold the same document. Exits non-zero unless they match.
#
# Without redis-server installed it runs the same scripted typing against one
# in-memory instance (and says how to get the two-instance version).
#
#   scripts/demo-two-instances.sh            # private redis-server on a free port
#   scripts/demo-two-instances.sh --watch    # and watch it: two real editors
#                                            # side by side in tmux, one per
#                                            # instance, while the typists type
#   REDIS_URL=redis://host:port scripts/...  # use that Redis instead
#   PORT_A=9001 PORT_B=9002 scripts/...      # other ports (default 8001, 8002)
set -euo pipefail
cd "$(dirname "$0")/.."

watch=false
for arg in "$@"; do
  case "$arg" in
    --watch) watch=true ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done
if $watch && ! command -v tmux >/dev/null; then
  echo "demo: --watch needs tmux (apt-get install tmux)" >&2
  exit 1
fi

PORT_A=${PORT_A:-8001}
PORT_B=${PORT_B:-8002}
tmp=$(mktemp -d)
pids=()
tmux_socket="collab-demo-$$"
cleanup() {
  if $watch; then tmux -L "$tmux_socket" kill-server 2>/dev/null || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. scripts/instances.sh

start_instances

printf 'fn main() {\n    println!("hello");\n}\n' >"$tmp/main.rs"
room=$("$bin/collab" --server "$A" create -q "$tmp/main.rs")
echo "== room created on instance A"

if $watch; then
  # Two real editors side by side, one per instance, for a person to watch.
  editor() { # name server
    printf 'env XDG_STATE_HOME=%q COLLAB_NAME=%q %q --server %q join %q' \
      "$tmp/state" "$1" "$bin/collab" "$2" "$room"
  }
  tmux -L "$tmux_socket" new-session -d -s demo -x "${COLUMNS:-160}" -y "${LINES:-40}" "$(editor "editor-A" "$A")"
  tmux -L "$tmux_socket" split-window -h -t demo "$(editor "editor-B" "$B")"
fi

if $two; then
  echo "== typing through both instances at once (each line is one edit)"
else
  echo "== typing two lines at a time into the one instance"
fi
type_lines() { # name server
  if $watch; then
    # Typed char by char as one typist, so its caret can be seen moving.
    local text=""
    for i in 1 2 3 4 5; do text+="// $1, line $i, via $2"$'\n'; done
    COLLAB_NAME=$1 "$bin/collab" --server "$2" append --delay-ms 45 "$room" "$text"
  else
    for i in 1 2 3 4 5; do
      COLLAB_NAME=$1 "$bin/collab" --server "$2" append "$room" "// $1, line $i, via $2
"
    done
  fi
}
typing() {
  $watch && sleep 2 # the editors connect first
  type_lines alice "$A" &
  local a=$!
  type_lines bob "$B" &
  local b=$!
  local status=0
  wait "$a" || status=1
  wait "$b" || status=1
  if $watch; then
    sleep 4 # a moment to look at the result
    tmux -L "$tmux_socket" kill-session -t demo 2>/dev/null || true
  fi
  return $status
}

if $watch && [ -t 0 ] && [ -t 1 ]; then
  typing >"$tmp/typing.log" 2>&1 &
  typists=$!
  TMUX='' tmux -L "$tmux_socket" attach -t demo || true
  wait "$typists" || { cat "$tmp/typing.log" >&2; echo "FAIL: a typist failed" >&2; exit 1; }
else
  $watch && echo "   (not a terminal: the editors run in tmux socket $tmux_socket unseen)"
  typing || { echo "FAIL: a typist failed" >&2; exit 1; }
fi

# Instance A may be a pub/sub hop behind B for a moment.
for _ in $(seq 1 40); do
  doc_a=$("$bin/collab" --server "$A" cat "$room")
  doc_b=$("$bin/collab" --server "$B" cat "$room")
  [ "$doc_a" = "$doc_b" ] && break
  sleep 0.05
done

echo "== instance A ($A) holds:"
printf '%s\n' "$doc_a" | sed 's/^/   | /'
if $two; then
  echo "== instance B ($B) holds:"
  printf '%s\n' "$doc_b" | sed 's/^/   | /'
fi

if [ "$doc_a" != "$doc_b" ]; then
  echo "FAIL: the instances disagree" >&2
  exit 1
fi
for who in alice bob; do
  for i in 1 2 3 4 5; do
    grep -q "// $who, line $i, via" <<<"$doc_a" || { echo "FAIL: $who's line $i is missing" >&2; exit 1; }
  done
done
if $two; then
  echo "OK: both instances hold the same document, with both typists' text."
else
  echo "OK: the instance holds both typists' text. Install redis-server to see two instances share it."
fi
