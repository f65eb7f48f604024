#!/usr/bin/env bash
# A private PostgreSQL cluster in a folder, reachable only on a unix socket in that folder.
#   pg.sh start DIR [--fast]   initialise (once) and start; prints the libpq URL of its `postgres` database
#   pg.sh stop DIR             stop it (fast shutdown)
#   pg.sh restart DIR          restart it (used by the tests that survive a server restart)
# PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user.
# --fast turns durability off (fsync, synchronous_commit): for tests only, never for benchmarks.
set -euo pipefail
command=${1:?usage: pg.sh start|stop|restart DIR [--fast]}
dir=${2:?usage: pg.sh start|stop|restart DIR [--fast]}
fast=${3:-}
bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -x "$bin/pg_ctl" ] || { echo "pg.sh: no PostgreSQL server binaries under /usr/lib/postgresql" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
[ "$(id -u)" -eq 0 ] && chown postgres: "$dir"

case "$command" in
start)
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
        settings=(
            "listen_addresses = ''"
            "unix_socket_directories = '$dir'"
            "max_connections = 300"
            "shared_buffers = 256MB"
        )
        if [ "$fast" = "--fast" ]; then
            # The test suite runs its tests in parallel, each with its own pools and projection runners: a full run
            # was seen to hold 1,000 sessions at once.
            settings+=("fsync = off" "synchronous_commit = off" "full_page_writes = off" "max_connections = 2000")
        fi
        printf '%s\n' "${settings[@]}" | as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
    fi
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
            || { tail -n 20 "$dir/server.log" >&2; exit 1; }
    fi
    echo "postgresql://postgres@/postgres?host=$dir"
    ;;
stop)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
restart)
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null
    ;;
*)
    echo "pg.sh: unknown command $command" >&2
    exit 2
    ;;
esac
