#!/usr/bin/env bash
# The whole suite against a private PostgreSQL that this script starts and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
dir=$(mktemp -d /tmp/tally-test.XXXXXX)
chmod 755 "$dir"
cleanup() { scripts/pg.sh stop "$dir/pg"; rm -rf "$dir"; }
trap cleanup EXIT
scripts/pg.sh start "$dir/pg" --fast >/dev/null
export TALLY_TEST_PGHOST="$dir/pg"
export TALLY_TEST_PGUSER=postgres
export TALLY_TEST_SCRATCH="$dir"
export TALLY_PG_SCRIPT="$PWD/scripts/pg.sh"
export TALLY_BIN="$(swift build --show-bin-path)/tally"
swift test --skip-build --disable-xctest "$@"
