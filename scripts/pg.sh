#!/usr/bin/env bash
# A private PostgreSQL cluster in a folder, reachable only on a unix socket in that folder.
#   pg.sh start DIR [--fast]   initialise (once) and start; prints the libpq URL of its `postgres` database
#   pg.sh stop DIR             stop it (fast shutdown)
#   pg.sh restart DIR          restart it (used by the tests that survive a server restart)
#   pg.sh bouncer DIR PGDIR    start PgBouncer in transaction mode in DIR, in front of the cluster of PGDIR, on a
#                              unix socket in DIR; prints the libpq URL of its `postgres` database
#   pg.sh bouncer-stop DIR     stop that PgBouncer
# PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user.
# --fast turns durability off (fsync, synchronous_commit): for tests only, never for benchmarks.
set -euo pipefail
command=${1:?usage: pg.sh start|stop|restart|bouncer|bouncer-stop DIR [--fast|PGDIR]}
dir=${2:?usage: pg.sh start|stop|restart|bouncer|bouncer-stop DIR [--fast|PGDIR]}
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
bouncer)
    # Debian's PgBouncer (1.18): no protocol-level prepared statements, session state ends with each transaction.
    # Any database name is passed through to the cluster; the suite's login needs no password (trust).
    pgdir=$(cd "${3:?usage: pg.sh bouncer DIR PGDIR}" && pwd)
    command -v pgbouncer >/dev/null || { echo "pg.sh: pgbouncer is not installed (scripts/deps.sh)" >&2; exit 1; }
    cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=$pgdir
[pgbouncer]
unix_socket_dir = $dir
listen_port = 6432
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = 2000
default_pool_size = 20
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    echo '"postgres" ""' >"$dir/userlist.txt"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/pgbouncer.ini" "$dir/userlist.txt"
    as_owner pgbouncer -d -q "$dir/pgbouncer.ini"
    for _ in $(seq 1 100); do
        [ -S "$dir/.s.PGSQL.6432" ] && break
        sleep 0.1
    done
    [ -S "$dir/.s.PGSQL.6432" ] || { tail -n 20 "$dir/pgbouncer.log" >&2; exit 1; }
    echo "postgresql://postgres@/postgres?host=$dir&port=6432"
    ;;
bouncer-stop)
    if [ -f "$dir/pgbouncer.pid" ]; then
        kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$(cat "$dir/pgbouncer.pid" 2>/dev/null)" 2>/dev/null || break
            sleep 0.1
        done
    fi
    ;;
*)
    echo "pg.sh: unknown command $command" >&2
    exit 2
    ;;
esac
