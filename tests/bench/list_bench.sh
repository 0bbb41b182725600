#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Device list benchmark (issue 15, "One host", last bullet): the device
# list with a selector, 50 per page, over COUNT devices (default
# 1,000,000) inserted with SQL into a private PostgreSQL behind a private
# fleetd. Devices carry labels site s0..s9, rack r0..r99 (on 9 in 10),
# role (on 2 in 3), a model m0..m4 (unknown on 1 in 20), a fw_version
# 1.0..1.4, a certificate; 3 in 10 have a fresh session (online) and 1 in
# 10 a stale one.
#
# For each selector shape, N requests (default 200) of
#   GET /api/v1/devices?selector=S&limit=50
# and N of its second page (through the cursor of the first) go over one
# keep-alive connection (one curl, many URLs). Server time is curl's
# time_starttransfer - time_pretransfer (the TLS handshake is not in it);
# p50/p99/max are printed per shape, then PostgreSQL's own execution time
# of the list statement (EXPLAIN ANALYZE, median of 5) per shape, which a
# loaded machine disturbs less.
#   tests/bench/list_bench.sh BUILD_DIR [COUNT]
# Environment: N (requests per shape and page, default 200), LIMIT (page
# size, default 50), BENCH_PG_FAST=1 (bench_env.sh), EXPLAIN=0 to skip
# the EXPLAIN ANALYZE pass.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: list_bench.sh BUILD_DIR [COUNT]}" && pwd)
count=${2:-${COUNT:-1000000}}
n=${N:-200}
limit=${LIMIT:-50}
case "$count$n$limit" in *[!0-9]*) echo "COUNT, N and LIMIT are numbers" >&2; exit 2 ;; esac
. "$here/bench_env.sh"

bench_setup list-bench "$build"
bench_start_fleetd "workers = 2"
admin=$(fleetd token create --role admin --name bench-admin)
q() { psql -X -q -t -A -d fleet_bench -c "$1"; }

t0=$(date +%s)
echo "inserting $count devices with labels, certificates and sessions..."
q "INSERT INTO devices (id, labels, model, fw_version, created_at)
   SELECT gen_random_uuid(),
          jsonb_strip_nulls(jsonb_build_object(
            'site', 's' || (i % 10),
            'rack', CASE WHEN i % 10 <> 7 THEN 'r' || (i % 100) END,
            'role', CASE WHEN i % 3 <> 0 THEN 'role' || (i % 4) END,
            'zone', 'z' || (i % 7))),
          CASE WHEN i % 20 <> 19 THEN 'm' || (i % 5) END,
          '1.' || (i % 5), now() - (i || ' seconds')::interval
   FROM generate_series(1, $count) i" >/dev/null
q "INSERT INTO certificates (serial, device_id, not_before, not_after)
   SELECT upper(lpad(to_hex(n), 16, '0')), id, now() - interval '1 day',
          now() + ((n % 90) || ' days')::interval
   FROM (SELECT id, row_number() OVER (ORDER BY id) n FROM devices) d" >/dev/null
# Sessions name a worker; this one stays alive for the sweeper (its
# heartbeat is a day ahead) and its sessions stay fresh for an hour.
q "INSERT INTO workers (id, host, pid, slot, heartbeat_at)
   VALUES ('bench-worker', 'bench', 1, 0, now() + interval '1 day')" >/dev/null
q "INSERT INTO device_sessions (device_id, worker_id, cert_serial, peer, last_seen)
   SELECT id, 'bench-worker', 'X', '127.0.0.1:1',
          CASE WHEN n % 10 < 3 THEN now() + interval '1 hour'
               ELSE now() - interval '1 day' END
   FROM (SELECT id, row_number() OVER (ORDER BY id) n FROM devices) d
   WHERE n % 10 < 4" >/dev/null
q "VACUUM ANALYZE" >/dev/null
echo "  done in $(($(date +%s) - t0)) s: $(bench_db_count devices) devices, $(bench_db_count device_sessions) sessions"

# The shapes: a label, name "selector" (as typed; encoded below).
shapes=(
	"equality|site=s3"
	"in|site in (s1,s2)"
	"not equal|site!=s0"
	"presence|rack"
	"absence|!role"
	"model (built-in)|model=m2"
	"fw_version (built-in)|fw_version=1.2"
	"online (built-in)|online"
	"combination: labels + model|site=s3,rack in (r13,r23),model=m3"
	"combination: online + != + absence|online,site!=s1,!role"
)
enc() { jq -rn --arg s "$1" '$s | @uri'; }

# series URL: N requests of URL on one connection; prints one server time
# in ms per line. Fails on a status other than 200.
series() {
	local i
	: >"$T/curl.conf"
	for ((i = 0; i < n; i++)); do
		printf 'url = "%s"\noutput = "/dev/null"\n' "$1" >>"$T/curl.conf"
	done
	curl -sS --max-time 600 --cacert "$T/pki/ca-bundle.pem" \
		-H "Authorization: Bearer $admin" -K "$T/curl.conf" \
		-w '%{http_code} %{time_pretransfer} %{time_starttransfer} %{num_connects}\n' >"$T/times"
	awk -v url="$1" '$1 != 200 { print "status " $1 " for " url > "/dev/stderr"; bad = 1 }
		{ conn += $4; printf "%.3f\n", ($3 - $2) * 1000 }
		END { if (bad) exit 1; if (conn > 1) print "note: " conn " connections" > "/dev/stderr" }' "$T/times"
}
# stats: p50 p99 max of the numbers on stdin.
stats() {
	sort -n | awk '{ a[NR] = $1 } END {
		i99 = int(NR * 0.99 + 0.999999); if (i99 < 1) i99 = 1
		printf "%7.1f %7.1f %7.1f", a[int((NR + 1) / 2)], a[i99], a[NR] }'
}

# PostgreSQL's own time for each list statement: with
# log_min_duration_statement = 0 it logs "duration: X ms  execute ..." for
# every statement; the list statements of a series are the new lines that
# read devices with a cursor.
q "ALTER SYSTEM SET log_min_duration_statement = 0" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
pglog=$T/pg/postgres.log
pgtimes() { # pgtimes FROM_LINE: execution ms of the list statements since
	tail -n +"$1" "$pglog" | grep -a 'duration: .* ms  execute .*fleet_cursor(.*FROM devices d ' |
		sed -E 's/.*duration: ([0-9.]+) ms.*/\1/'
}

echo "fleetd: 2 net workers on $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $count devices"
echo "server time (curl starttransfer - pretransfer) over one keep-alive connection, $n requests each, limit $limit;"
echo "pg: PostgreSQL's execution time of the same statements (its log); all in ms"
printf '%-36s %7s %23s %23s %15s\n' "" "" "first page" "next page (cursor)" "pg, both pages"
printf '%-36s %7s %7s %7s %7s %7s %7s %7s %7s %7s\n' shape total p50 p99 max p50 p99 max p50 p99
worst=0
for shape in "${shapes[@]}"; do
	label=${shape%%|*}
	sel=${shape#*|}
	path="/api/v1/devices?selector=$(enc "$sel")&limit=$limit"
	curl -sS -f --cacert "$T/pki/ca-bundle.pem" -H "Authorization: Bearer $admin" \
		-o "$T/page1" "$url$path"
	total=$(jq .total "$T/page1")
	cursor=$(jq -r '.next_cursor // empty' "$T/page1")
	from=$(($(wc -l <"$pglog") + 1))
	series "$url$path" >"$T/s1"
	first=$(stats <"$T/s1")
	if [ -n "$cursor" ]; then
		series "$url$path&cursor=$(enc "$cursor")" >"$T/s2"
		next=$(stats <"$T/s2")
	else
		: >"$T/s2"
		next=$(printf '%7s %7s %7s' - - -)
	fi
	pg=$(pgtimes "$from" | stats | awk '{ printf "%7s %7s", $1, $2 }')
	p99=$(cat "$T/s1" "$T/s2" | stats | awk '{ print $2 }')
	worst=$(awk -v a="$worst" -v b="$p99" 'BEGIN { print (b > a) ? b : a }')
	printf '%-36s %7s %s %s %s\n' "$label" "$total" "$first" "$next" "$pg"
done
q "ALTER SYSTEM RESET log_min_duration_statement" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
echo "worst p99 server time over all shapes and pages: $worst ms (goal: at most 20 ms)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# HOLD=SECONDS keeps PostgreSQL and fleetd up that long after the figures
# (or until $T/hold is removed), for EXPLAIN ANALYZE by hand:
#   PGHOST=$T/pg psql -U postgres fleet_bench
if [ "${HOLD:-0}" -gt 0 ]; then
	touch "$T/hold"
	echo "holding for ${HOLD} s: PGHOST=$T/pg psql -U postgres fleet_bench; rm $T/hold to stop"
	for ((i = 0; i < HOLD && i < 7200; i++)); do
		[ -e "$T/hold" ] || break
		sleep 1
	done
fi
