#!/usr/bin/env bash
# Runs the service. Without DATABASE_URL it starts (and afterwards stops) a private PostgreSQL whose data
# folder survives restarts: $TALLY_DATA_DIR, by default .tally/pg here, or /var/lib/tally/pg as root (the
# `postgres` user must be able to reach the folder).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product tally
bin="$(swift build --show-bin-path)/tally"
if [ -z "${DATABASE_URL:-}" ]; then
    if [ "$(id -u)" -eq 0 ]; then default_dir=/var/lib/tally/pg; else default_dir="$PWD/.tally/pg"; fi
    data=${TALLY_DATA_DIR:-$default_dir}
    DATABASE_URL=$(scripts/pg.sh start "$data")
    export DATABASE_URL
    trap 'scripts/pg.sh stop "$data"' EXIT
    echo "private PostgreSQL in $data ($DATABASE_URL)"
fi
"$bin" migrate
"$bin" serve "$@" &
server=$!
trap 'kill -TERM $server 2>/dev/null || true' INT TERM
wait $server || true
wait $server 2>/dev/null || true
