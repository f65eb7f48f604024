#!/usr/bin/env bash
# Runs the whole system: the API (`tally serve`), a worker (`tally work`) and, unless TALLY_VENDOR_BASE_URLS
# names real vendors, the fake vendor server (`tally fake-vendors`) that the worker calls instead of them.
# Without DATABASE_URL it starts (and afterwards stops) a private PostgreSQL whose data folder survives
# restarts: $TALLY_DATA_DIR, by default .tally/pg here, or /var/lib/tally/pg as root (the `postgres` user must
# be able to reach the folder). Ctrl-C or SIGTERM stops every process it started, PostgreSQL last.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product tally
bin="$(swift build --show-bin-path)/tally"

children=()
data=
cleanup() {
    trap - INT TERM
    # Graceful first: the worker commits the calls it has in flight, the API drains its requests.
    for pid in "${children[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${children[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -n "$data" ]; then scripts/pg.sh stop "$data"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "${DATABASE_URL:-}" ]; then
    if [ "$(id -u)" -eq 0 ]; then default_dir=/var/lib/tally/pg; else default_dir="$PWD/.tally/pg"; fi
    data=${TALLY_DATA_DIR:-$default_dir}
    DATABASE_URL=$(scripts/pg.sh start "$data")
    export DATABASE_URL
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
# The private cluster's service runs as itself, as in production: a plain login in the group tally_service
# (no superuser, no BYPASSRLS, no DDL). Migrations and rebuilds keep the owner's URL, in TALLY_MIGRATE_DATABASE_URL.
if [ -n "$data" ]; then
    psql "$DATABASE_URL" -qAt -v ON_ERROR_STOP=1 -c "DO \$\$ BEGIN
        CREATE ROLE tally_svc LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE IN ROLE tally_service;
        EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" >/dev/null
    export TALLY_MIGRATE_DATABASE_URL=$DATABASE_URL
    DATABASE_URL=${DATABASE_URL/\/\/postgres@/\/\/tally_svc@}
    echo "the service logs in as tally_svc ($DATABASE_URL); the owner's URL is TALLY_MIGRATE_DATABASE_URL"
fi

work_options=()
if [ -z "${TALLY_VENDOR_BASE_URLS:-}" ]; then
    port=${TALLY_FAKE_VENDORS_PORT:-9100}
    "$bin" fake-vendors --port "$port" &
    children+=($!)
    # Wait until it listens (it exits at once when the port is taken).
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
        kill -0 "${children[-1]}" 2>/dev/null || { echo "run.sh: the fake vendors did not start (port $port taken? set TALLY_FAKE_VENDORS_PORT)" >&2; exit 1; }
        sleep 0.1
    done
    vendors="http://127.0.0.1:$port"
    export TALLY_VENDOR_BASE_URLS="prospeo=$vendors,findymail=$vendors,zerobounce=$vendors"
    work_options=(--vendors-url "$vendors")
    echo "fake vendors on $vendors (docs/fake-vendors.md: the inputs choose the answers); set TALLY_VENDOR_BASE_URLS to call real ones"
fi
"$bin" work "${work_options[@]}" &
children+=($!)
"$bin" serve "$@" &
children+=($!)
# Until one of them stops on its own (its exit status is ours) or a signal arrives; cleanup stops the rest.
status=0
wait -n "${children[@]}" || status=$?
exit "$status"
