#!/usr/bin/env bash
# The whole suite against a private PostgreSQL that this script starts and stops.
#   TALLY_TEST_TIMEOUT   seconds the whole run may take before it is stopped and fails (default 1500): a hung
#                        test fails the run instead of hanging it (each test also has a time limit of its own)
#   TALLY_TEST_PARALLEL  how many tests run at once (default 16). Swift Testing otherwise starts every test at
#                        once: a run was seen to hold 1,400 sessions, connecting took 2.6 s here and over 15 s
#                        on CI, and the run was slower (164 s against 116 s with 24 at a time, 121 s with 12)
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
export SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH="${TALLY_TEST_PARALLEL:-16}"
status=0
timeout --kill-after=30 "${TALLY_TEST_TIMEOUT:-1500}" swift test --skip-build --disable-xctest "$@" || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "test.sh: the suite did not finish within ${TALLY_TEST_TIMEOUT:-1500} s and was stopped" >&2
fi
# tally doctor on a database migrated as the suite migrates its own, run as a plain service login (what CI
# checks of the schema, the grants and the roles): any FAIL fails the run.
if [ "$#" -eq 0 ]; then
    psql -h "$dir/pg" -U postgres -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE tally_doctor" \
        -c "CREATE ROLE tally_doctor_svc LOGIN NOSUPERUSER NOBYPASSRLS"
    "$TALLY_BIN" migrate --database-url "postgresql://postgres@/tally_doctor?host=$dir/pg" >/dev/null
    psql -h "$dir/pg" -U postgres -qX -v ON_ERROR_STOP=1 -c "GRANT tally_service TO tally_doctor_svc"
    echo "test.sh: tally doctor as the service login:"
    "$TALLY_BIN" doctor --database-url "postgresql://tally_doctor_svc@/tally_doctor?host=$dir/pg" || status=1
fi
exit "$status"
