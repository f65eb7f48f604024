#!/usr/bin/env bash
# Runs the whole suite several times while two CPU-bound busy loops compete for the cores, to show that no
# test depends on timing: every run must pass.
#   scripts/stress-test.sh [RUNS]   RUNS defaults to 3 (STRESS_RUNS overrides it too)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-${STRESS_RUNS:-3}}
swift build --build-tests
busy=()
stop_busy() { for pid in "${busy[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap stop_busy EXIT
for _ in 1 2; do
    bash -c 'while :; do :; done' &
    busy+=("$!")
done
passed=0
for run in $(seq 1 "$runs"); do
    started=$(date +%s)
    if scripts/test.sh >"/tmp/tally-stress-$run.log" 2>&1; then
        passed=$((passed + 1))
        echo "run $run of $runs: passed in $(( $(date +%s) - started )) s"
    else
        echo "run $run of $runs: FAILED after $(( $(date +%s) - started )) s; see /tmp/tally-stress-$run.log"
        grep -E '^✘ Test .* (failed|recorded an issue)' "/tmp/tally-stress-$run.log" | head -20 || true
    fi
done
echo "$passed of $runs runs passed"
[ "$passed" -eq "$runs" ]
