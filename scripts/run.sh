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
# Development secrets, generated once and kept beside the data (never printed): the operator token, the key
# pepper and the master key. Values already in the environment win.
secrets="$(dirname "${TALLY_DATA_DIR:-${data:-$PWD/.tally/pg}}")/dev.env"
if [ ! -f "$secrets" ]; then
    mkdir -p "$(dirname "$secrets")"
    umask 077
    {
        echo "TALLY_OPERATOR_TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        echo "TALLY_KEY_PEPPER=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        echo "TALLY_MASTER_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    } >"$secrets"
fi
# A dev.env written before vendor secrets were sealed lacks a master key: add one.
if ! grep -q '^TALLY_MASTER_KEY=' "$secrets"; then
    (umask 077; echo "TALLY_MASTER_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >>"$secrets")
fi
while IFS='=' read -r name value; do
    [ -z "${!name:-}" ] && export "$name=$value"
done <"$secrets"
echo "development secrets in $secrets (the operator token is TALLY_OPERATOR_TOKEN there)"
"$bin" migrate
"$bin" serve "$@" &
server=$!
trap 'kill -TERM $server 2>/dev/null || true' INT TERM
wait $server || true
wait $server 2>/dev/null || true
