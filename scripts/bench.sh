#!/usr/bin/env bash
# Release build, private durable PostgreSQL, one benchmark: bench.sh append|rebuild|workers|archive [options]
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:?usage: bench.sh append|rebuild|workers|archive [options]}
shift
swift build -c release --product tally
bin="$(swift build -c release --show-bin-path)/tally"
dir=$(mktemp -d /tmp/tally-bench.XXXXXX)
chmod 755 "$dir"
trap 'scripts/pg.sh stop "$dir/pg"; rm -rf "$dir"' EXIT
url=$(scripts/pg.sh start "$dir/pg")
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r); $("$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/postgres" --version)"
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
if [ "$what" = archive ]; then
  # A second database receives the import; pg_dump of the events table is the size to beat.
  "$pgbin/createdb" -h "$dir/pg" -U postgres tally_import
  "$bin" bench archive --database-url "$url" --import-database-url "postgresql://postgres@/tally_import?host=$dir/pg" \
    --pg-dump "$pgbin/pg_dump" --out "$dir/bench.tlog" "$@"
else
  "$bin" bench "$what" --database-url "$url" "$@"
fi
