#!/usr/bin/env bash
# make bench-api: wrk against an authenticated GET of a run and against a bare route of the same server, at
# 80 connections; requests/s, p50/p99 and the ratio, and the database round trips per request counted by
# the server's pool (from /metrics). Then two instances behind the same key (wrk against both at once, half
# the connections each): the same ratio and round trips summed over both, and a key capped at 2,000/s whose
# admissions over both instances must stay within its limit. Then, over a log of 1,000,000 events that no reader of the API wants
# (UNRELATED, default 1000000), the latency of requests with unknown keys (100,000 distinct well-formed ones)
# and of /readyz at 8 connections. Options via the environment: DURATION (default 15s), CONNECTIONS (80).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-15s}
connections=${CONNECTIONS:-80}
swift build -c release --product tally
bin="$(swift build -c release --show-bin-path)/tally"
dir=$(mktemp -d /tmp/tally-bench.XXXXXX)
chmod 755 "$dir"
server=""
second=""
cleanup() {
    [ -n "$second" ] && kill -TERM "$second" 2>/dev/null && wait "$second" 2>/dev/null || true
    [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    scripts/pg.sh stop "$dir/pg"
    rm -rf "$dir"
}
trap cleanup EXIT
url=$(scripts/pg.sh start "$dir/pg")
port=$((20000 + RANDOM % 20000))
cat >"$dir/plans.json" <<'PLANS'
{"plans": [{"name": "bench", "keyRequestsPerSecond": 10000000, "tenantRequestsPerSecond": 10000000},
           {"name": "capped", "keyRequestsPerSecond": 2000, "tenantRequestsPerSecond": 3000}]}
PLANS
export TALLY_OPERATOR_TOKEN="bench-operator-token-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export TALLY_KEY_PEPPER="bench-pepper-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export TALLY_PLANS_FILE="$dir/plans.json"
"$bin" migrate --database-url "$url" >/dev/null
# The unrelated history: flow limits no projection and no API reader follows, in one stream.
unrelated=${UNRELATED:-1000000}
psql "$url" -q -v ON_ERROR_STOP=1 <<SQL
SET search_path = tally;
BEGIN;
INSERT INTO streams (stream_id, version) VALUES ('flowlimits-prospeo', $unrelated);
INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, codec, payload)
SELECT 'flowlimits-prospeo', g, gen_random_uuid(), 'FlowLimitsSet', 1, 0, convert_to('{"parallelism":5,"vendor":"prospeo"}', 'UTF8')
FROM generate_series(1, $unrelated) AS g;
COMMIT;
ANALYZE events;
SQL
"$bin" serve --database-url "$url" --listen "127.0.0.1:$port" >"$dir/serve.log" 2>&1 &
server=$!
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.1; done
admin=(-fsS -H "Authorization: Bearer $TALLY_OPERATOR_TOKEN" -H "Content-Type: application/json")
tenant=$(curl "${admin[@]}" -d '{"name":"Bench","slug":"bench","plan":"bench"}' "$base/v1/admin/tenants" | jq -r .id)
key=$(curl "${admin[@]}" -d '{"name":"bench"}' "$base/v1/admin/tenants/$tenant/keys" | jq -r .key)
auth=(-fsS -H "Authorization: Bearer $key" -H "Content-Type: application/json")
workflow=$(curl "${auth[@]}" -d '{"name":"w","finders":["prospeo"]}' "$base/v1/workflows" | jq -r .id)
run=$(curl "${auth[@]}" -d "{\"workflowId\":\"$workflow\",\"input\":{\"linkedinUrl\":\"https://www.linkedin.com/in/bench\"}}" "$base/v1/runs" | jq -r '.runs[0].id')
curl "${auth[@]}" "$base/v1/runs/$run" >/dev/null

acquired() { curl -fs "$base/metrics" | awk '/^tally_db_acquisitions_total/ {print $2}'; }
measure() { # name, extra wrk arguments...
    local name=$1
    shift
    wrk -t2 -c"$connections" -d"$duration" --latency "$@" >"$dir/$name.txt"
}
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r); wrk $connections connections, $duration each"
measure warmup -d3s "$base/v1/runs/$run" -H "Authorization: Bearer $key"
measure bare "$base/healthz"
before=$(acquired)
measure auth "$base/v1/runs/$run" -H "Authorization: Bearer $key"
after=$(acquired)
summary() { # file -> "rps p50 p99 requests non2xx"
    awk '/Requests\/sec/ {rps=$2} / 50%/ {p50=$2} / 99%/ {p99=$2} /requests in/ {n=$1} /Non-2xx/ {bad=$5} END {print rps, p50, p99, n, bad+0}' "$1"
}
read -r bare_rps bare_p50 bare_p99 _ bare_bad < <(summary "$dir/bare.txt")
read -r auth_rps auth_p50 auth_p99 auth_n auth_bad < <(summary "$dir/auth.txt")
printf '%-34s %12s %10s %10s %8s\n' route "requests/s" p50 p99 non-2xx
printf '%-34s %12s %10s %10s %8s\n' "GET /healthz (bare)" "$bare_rps" "$bare_p50" "$bare_p99" "$bare_bad"
printf '%-34s %12s %10s %10s %8s\n' "GET /v1/runs/{id} (authenticated)" "$auth_rps" "$auth_p50" "$auth_p99" "$auth_bad"
awk -v a="$auth_rps" -v b="$bare_rps" 'BEGIN {printf "ratio authenticated/bare: %.2f (target >= 0.5)\n", a / b}'
# Connections taken from the pool during the authenticated run, per request: the key check and the cached
# run answer need none; what remains is the background (usage flush, quota refresh) spread over the requests.
awk -v n="$auth_n" -v x="$((after - before))" 'BEGIN {printf "database round trips per authenticated request: %.4f (%d in all)\n", x / n, x}'
grep -E "cache" <(curl -fs "$base/metrics") | grep -v "^#" || true

# Two instances, one key: a second `tally serve` (no projections) on another port, wrk against both at once.
port2=$((port + 1))
"$bin" serve --database-url "$url" --listen "127.0.0.1:$port2" --no-projections >"$dir/serve2.log" 2>&1 &
second=$!
base2="http://127.0.0.1:$port2"
for _ in $(seq 100); do curl -fs "$base2/healthz" >/dev/null && break; sleep 0.1; done
for _ in $(seq 100); do curl -fs "$base2/v1/runs/$run" -H "Authorization: Bearer $key" >/dev/null && break; sleep 0.1; done
acquired2() { curl -fs "$base2/metrics" | awk '/^tally_db_acquisitions_total/ {print $2}'; }
half=$((connections / 2))
both() { # name, path, extra wrk arguments...
    local name=$1 path=$2
    shift 2
    wrk -t1 -c"$half" -d"$duration" --latency "$@" "$base$path" >"$dir/$name-1.txt" &
    local first=$!
    wrk -t1 -c"$half" -d"$duration" --latency "$@" "$base2$path" >"$dir/$name-2.txt"
    wait "$first"
}
both warmup2 "/v1/runs/$run" -H "Authorization: Bearer $key"
both bare2 /healthz
before=$(($(acquired) + $(acquired2)))
both auth2 "/v1/runs/$run" -H "Authorization: Bearer $key"
after=$(($(acquired) + $(acquired2)))
capped_tenant=$(curl "${admin[@]}" -d '{"name":"Capped","slug":"capped","plan":"capped"}' "$base/v1/admin/tenants" | jq -r .id)
capped=$(curl "${admin[@]}" -d '{"name":"capped"}' "$base/v1/admin/tenants/$capped_tenant/keys" | jq -r .key)
for _ in $(seq 100); do curl -fs "$base2/v1/tenant" -H "Authorization: Bearer $capped" >/dev/null && break; sleep 0.1; done
both capped2 /v1/tenant -H "Authorization: Bearer $capped"
sum() { # name -> "rps requests non2xx" summed over both instances
    read -r r1 _ _ n1 b1 < <(summary "$dir/$1-1.txt")
    read -r r2 _ _ n2 b2 < <(summary "$dir/$1-2.txt")
    awk -v r1="$r1" -v r2="$r2" -v n1="$n1" -v n2="$n2" -v b1="$b1" -v b2="$b2" 'BEGIN {print r1 + r2, n1 + n2, b1 + b2}'
}
read -r bare2_rps _ _ < <(sum bare2)
read -r auth2_rps auth2_n auth2_bad < <(sum auth2)
read -r _ capped_n capped_bad < <(sum capped2)
echo "two instances, one key (wrk against both, $half connections each):"
printf '%-34s %12s %8s
' route "requests/s" non-2xx
printf '%-34s %12s %8s
' "GET /healthz (bare)" "$bare2_rps" 0
printf '%-34s %12s %8s
' "GET /v1/runs/{id} (authenticated)" "$auth2_rps" "$auth2_bad"
awk -v a="$auth2_rps" -v b="$bare2_rps" 'BEGIN {printf "ratio authenticated/bare: %.2f (target >= 0.5)\n", a / b}'
awk -v n="$auth2_n" -v x="$((after - before))" 'BEGIN {printf "database round trips per authenticated request: %.4f (%d in all)\n", x / n, x}'
seconds=${duration%s}
awk -v n="$capped_n" -v bad="$capped_bad" -v s="$seconds" \
    'BEGIN {printf "key capped at 2000/s: %d admitted of %d in %d s over both = %.0f/s (at most 2000/s)\n", n - bad, n, s, (n - bad) / s}'

# Unknown keys and readiness over the unrelated history, at a handful of connections (latency, not load).
python3 - "$dir/unknown.lua" <<'PY'
import hashlib, os, sys
keys = []
for _ in range(100000):
    random = os.urandom(16).hex()
    keys.append("tly_" + random + hashlib.sha256(random.encode()).hexdigest()[:8])
with open(sys.argv[1], "w") as out:
    out.write("keys = {" + ",".join('"%s"' % k for k in keys) + "}\n")
    out.write("counter = math.random(1, #keys)\n")
    out.write("request = function()\n  counter = counter % #keys + 1\n")
    out.write('  return wrk.format("GET", "/v1/tenant", {["Authorization"] = "Bearer " .. keys[counter]})\nend\n')
PY
for _ in $(seq 600); do
    [ "$(curl -fs "$base/readyz" | jq -r .status 2>/dev/null)" = ready ] && break
    sleep 0.5
done
# One client (a request's own latency: the target) and eight (the same requests under load on two cores that
# wrk shares with the server and PostgreSQL).
echo "over $unrelated unrelated events:"
printf '%-34s %6s %12s %10s %10s %8s\n' route conns "requests/s" p50 p99 non-2xx
for c in 1 8; do
    measure "unknown$c" -t1 -c"$c" -s "$dir/unknown.lua" "$base/v1/tenant"
    measure "ready$c" -t1 -c"$c" "$base/readyz"
    read -r unknown_rps unknown_p50 unknown_p99 _ unknown_bad < <(summary "$dir/unknown$c.txt")
    read -r ready_rps ready_p50 ready_p99 _ ready_bad < <(summary "$dir/ready$c.txt")
    printf '%-34s %6s %12s %10s %10s %8s\n' "GET /v1/tenant, unknown keys" "$c" "$unknown_rps" "$unknown_p50" "$unknown_p99" "$unknown_bad"
    printf '%-34s %6s %12s %10s %10s %8s\n' "GET /readyz" "$c" "$ready_rps" "$ready_p50" "$ready_p99" "$ready_bad"
done
echo "(targets: p99 <= 5 ms for both with one client; every unknown key is answered 401, so all count as non-2xx)"

