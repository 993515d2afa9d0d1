#!/usr/bin/env bash
# with_progress.sh LABEL WATCH_DIR -- CMD...
# Runs CMD; while it runs, prints a line every 15 s with the time spent and the size of WATCH_DIR (where the
# download lands), so a long, otherwise silent install (pip, Maven, npm) shows that it is moving.
# Exits with CMD's status.
set -uo pipefail
label=$1 watch=$2; shift 3
"$@" &
pid=$!
start=$SECONDS
while kill -0 "$pid" 2>/dev/null; do
  for _ in $(seq 15); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  if kill -0 "$pid" 2>/dev/null; then
    size=$(du -sm "$watch" 2>/dev/null | cut -f1)
    echo "   ... $label: $((SECONDS - start)) s${size:+, ${size} MB in $watch}"
  fi
done
wait "$pid"
