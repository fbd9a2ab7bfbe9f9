#!/usr/bin/env bash
# Runs the collab benchmark (docs/performance.md): builds the release
# binaries, then collab-bench starts a private redis-server and collab-server
# instances on 127.0.0.1, runs every scenario, prints a table and writes one
# JSON object per scenario to FILE. Exits non-zero when a scenario failed or
# a client did not converge.
#
#   scripts/bench.sh [--quick] [--out FILE] [other collab-bench flags]
set -euo pipefail
cd "$(dirname "$0")/.."

out="bench-results.jsonl"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --out=*) out="${1#--out=}"; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

command -v redis-server >/dev/null || { echo "bench.sh: redis-server is not installed" >&2; exit 2; }
cargo build --release -p collab-server -p collab-bench

# collab-bench kills what it started when it ends; its own process group
# lets this script stop everything if it is interrupted.
setsid target/release/collab-bench --out "$out" ${args[@]+"${args[@]}"} &
bench=$!
trap 'kill -TERM -- -"$bench" 2>/dev/null || true' INT TERM EXIT
status=0
wait "$bench" || status=$?
trap - INT TERM EXIT
exit "$status"
