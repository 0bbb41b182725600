#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Operator-command benchmark (issue 13): COUNT devices (default 100,000)
# inserted with SQL into a private PostgreSQL behind a private fleetd, each
# with a certificate and labels (site s0..s9, rack r0..r99). Prints the
# latency (median of RUNS calls, curl's time_total) of:
#   - GET /api/v1/devices?limit=100 with its total, for each sort key, and
#     with a selector matching a tenth of the fleet;
#   - GET /api/v1/devices/{8-character prefix} (prefix resolution);
#   - GET /api/v1/audit?actor=NAME&action=device.* ;
# and the duration of one bulk-label dry run and one bulk label over a
# tenth of the fleet (COUNT/10 devices, one transaction), and of one bulk
# decommission over a hundredth (certificates revoked in the same
# transaction). Figures only; nothing is timed against a limit.
#   tests/bench/devices_bench.sh BUILD_DIR [COUNT]
# Environment: RUNS (default 5), BENCH_PG_FAST=1 (bench_env.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: devices_bench.sh BUILD_DIR [COUNT]}" && pwd)
count=${2:-${COUNT:-100000}}
runs=${RUNS:-5}
. "$here/bench_env.sh"

bench_setup devices-bench "$build"
bench_start_fleetd "workers = 2"
admin=$(fleetd token create --role admin --name bench-admin)
q() { psql -X -q -t -A -d fleet_bench -c "$1"; }

echo "inserting $count devices with certificates..."
q "INSERT INTO devices (id, labels, model, created_at)
   SELECT gen_random_uuid(),
          jsonb_build_object('site', 's' || (i % 10), 'rack', 'r' || (i % 100)),
          'plc-' || (i % 3), now() - (i || ' seconds')::interval
   FROM generate_series(1, $count) i" >/dev/null
q "INSERT INTO certificates (serial, device_id, not_before, not_after)
   SELECT upper(lpad(to_hex(n), 16, '0')), id, now() - interval '1 day',
          now() + ((n % 90) || ' days')::interval
   FROM (SELECT id, row_number() OVER (ORDER BY id) n FROM devices) d" >/dev/null
# two devices that share an 8-character prefix, for the 409
q "INSERT INTO devices (id) VALUES ('abcdef01-0000-4000-8000-000000000001'),
   ('abcdef01-0000-4000-8000-000000000002')" >/dev/null
q "ANALYZE" >/dev/null

# call METHOD PATH [BODY]: prints curl's time_total in ms; fails on a
# status >= 300 other than $EXPECT.
call() {
	local out
	out=$(curl -sS --max-time 300 --cacert "$T/pki/ca-bundle.pem" -X "$1" \
		-H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
		-o "$T/body" -w '%{http_code} %{time_total}' ${3:+--data "$3"} "$url$2")
	case $out in
	2* | "${EXPECT:-2xx} "*) awk '{printf "%.1f\n", $2 * 1000}' <<<"$out" ;;
	*) echo "$1 $2: $out $(head -c 300 "$T/body")" >&2; return 1 ;;
	esac
}
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
measure() { # measure LABEL METHOD PATH: median of RUNS calls
	local label=$1 i
	shift
	for ((i = 0; i < runs; i++)); do call "$@"; done | median >"$T/m"
	printf '%-58s %8s ms\n' "$label" "$(cat "$T/m")"
}

echo "fleetd: 2 net workers on $(nproc) cores; $count devices; median of $runs calls"
measure "list, first page of 100, with total" GET '/api/v1/devices?limit=100'
jq -r '"  (total \(.total))"' "$T/body"
measure "list sorted by -last_seen, 100" GET '/api/v1/devices?limit=100&sort=-last_seen'
measure "list sorted by cert_expiry, 100" GET '/api/v1/devices?limit=100&sort=cert_expiry'
measure "list, selector site=s3 (a tenth), 100" GET '/api/v1/devices?limit=100&selector=site%3Ds3'
measure "list, selector site=s3,rack=r13,model=plc-1, 100" GET '/api/v1/devices?limit=100&selector=site%3Ds3%2Crack%3Dr13%2Cmodel%3Dplc-1'
prefix=$(q "SELECT left(id::text, 8) FROM devices d WHERE (SELECT count(*) FROM devices e
	WHERE left(e.id::text, 8) = left(d.id::text, 8)) = 1 LIMIT 1")
measure "show by a unique 8-character prefix" GET "/api/v1/devices/$prefix"
measure "show by full id" GET "/api/v1/devices/$(jq -r .id "$T/body")"
EXPECT=409 measure "show by an ambiguous 8-character prefix (409)" GET '/api/v1/devices/abcdef01'
jq -r '"  (\(.candidates | length) candidates listed)"' "$T/body"

t=$(call POST /api/v1/devices/bulk-label '{"selector": "site=s3", "labels": {"tier": "gold"}, "dry_run": true}')
printf '%-58s %8s ms (%s devices)\n' "bulk-label dry run, site=s3" "$t" "$(jq .matched "$T/body")"
t=$(call POST /api/v1/devices/bulk-label '{"selector": "site=s3", "labels": {"tier": "gold"}}')
printf '%-58s %8s ms (%s devices, one transaction)\n' "bulk-label, site=s3" "$t" "$(jq .matched "$T/body")"
t=$(call POST /api/v1/devices/bulk-decommission '{"selector": "site=s4,rack=r4"}')
printf '%-58s %8s ms (%s devices, %s certificates revoked)\n' "bulk-decommission, site=s4,rack=r4 (a hundredth)" "$t" \
	"$(jq .matched "$T/body")" "$(jq .revoked_certificates "$T/body")"
measure "audit, actor=bench-admin action=device.*" GET '/api/v1/audit?actor=bench-admin&action=device.*&limit=100'
echo "PostgreSQL rows: $(bench_db_count devices) devices, $(bench_db_count certificates) certificates, $(bench_db_count audit_log) audit rows"
