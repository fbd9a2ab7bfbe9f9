#!/usr/bin/env bash
# Runs a command with another command hidden from PATH, as on a machine
# where it is not installed: every PATH directory holding NAME is replaced by
# a directory of links to everything else in it.
#
#   scripts/without-command.sh redis-server scripts/demo-two-instances.sh
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 NAME COMMAND [ARGS...]" >&2; exit 2; }
name=$1
shift
shadow_root=$(mktemp -d)
trap 'rm -rf "$shadow_root"' EXIT
IFS=: read -ra dirs <<<"$PATH"
path=()
for d in "${dirs[@]}"; do
  if [ -e "$d/$name" ]; then
    shadow="$shadow_root/${#path[@]}"
    mkdir -p "$shadow"
    for f in "$d"/*; do
      [ "$(basename "$f")" = "$name" ] || ln -s "$f" "$shadow/"
    done
    path+=("$shadow")
  else
    path+=("$d")
  fi
done
PATH=$(IFS=:; echo "${path[*]}")
export PATH
if command -v "$name" >/dev/null; then
  echo "without-command: $name is still on PATH" >&2
  exit 1
fi
"$@"
