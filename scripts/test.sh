#!/usr/bin/env bash
# The whole suite against a private PostgreSQL that this script starts and stops.
#   TALLY_TEST_TIMEOUT   seconds the whole run may take before it is stopped and fails (default 1500): a hung
#                        test fails the run instead of hanging it (each test also has a time limit of its own)
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
status=0
timeout --kill-after=30 "${TALLY_TEST_TIMEOUT:-1500}" swift test --skip-build --disable-xctest "$@" || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "test.sh: the suite did not finish within ${TALLY_TEST_TIMEOUT:-1500} s and was stopped" >&2
fi
exit "$status"
