#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configuration delivery benchmark (issue 9): a private PostgreSQL and
# fleetd, COUNT fleet-sim devices online (default 10,000, split over SIMS
# fleet-sim processes), then one clone through the API to all of them.
# Prints:
#   - the time from the clone API call to the last `applied` report
#     (stored reported state, read from PostgreSQL);
#   - per-device latency from the start of the clone's transaction (the
#     change's created_at) to its applied report
#     (first, p50, p99, max);
#   - the time of a clone dry run over DRY_COUNT (default 100,000) devices
#     in the database (rows inserted directly with SQL).
# Figures only; nothing is timed against a limit (the target is all
# 10,000 applied within 3 s). Removes everything on exit.
#   tests/bench/config_bench.sh BUILD_DIR [COUNT]
# Environment: WORKERS (fleetd net workers, default 2), JOB_THREADS
# (fleetd job_threads, default 8: half of them apply reports), SIMS (fleet-sim
# processes, default 2), START_RATE (devices each fleet-sim starts per
# second, default 150: at 250 or 500 the 10,000 devices of this benchmark
# never all came online on the shared 2-core machine, docs/internals/
# perf.md), CONFIG_FAIL (fleet-sim --config-fail share),
# DRY_COUNT, ONLINE_TIMEOUT (default 600), PERF=FILE (a system-wide
# `perf record -g`, or PERF_OPTS, from the clone call to the last applied report: fleetd,
# fleet-sim and PostgreSQL side by side), PG_LOG_MIN_MS (PostgreSQL logs
# statements slower than this), LOGS=DIR (fleetd's, fleet-sim's and
# PostgreSQL's logs are copied there) and BENCH_PG_FAST=1 (bench_env.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: config_bench.sh BUILD_DIR [COUNT]}" && pwd)
count=${2:-${COUNT:-10000}}
sims=${SIMS:-2}
dry_count=${DRY_COUNT:-100000}
. "$here/bench_env.sh"

command -v "$build/agent/fleet-sim" >/dev/null || { echo "fleet-sim not built in $build" >&2; exit 1; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
bench_setup config-bench "$build" "-c max_connections=200 -c log_min_duration_statement=${PG_LOG_MIN_MS:--1}"
workers=${WORKERS:-2}
job_threads=${JOB_THREADS:-8}
bench_start_fleetd "workers = $workers
job_threads = $job_threads
heartbeat_interval = 30s
heartbeat_timeout = 90s"
token=$(bench_enroll_token $((count + 10)))
admin=$(fleetd token create --role admin --name config-bench)
echo "fleetd: $workers net worker(s), job_threads $job_threads, on $(nproc) cores; $count simulated devices in $sims fleet-sim process(es)"

q() { psql -X -q -t -A -d fleet_bench -c "$1"; }
# api METHOD PATH [BODY]: prints the body; the status goes to $T/status.
api() {
	curl -sS --max-time 300 --cacert "$T/pki/ca-bundle.pem" -X "$1" \
		-H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
		-o "$T/body" -w '%{http_code} %{time_total}' ${3:+--data "$3"} \
		"$url$2" >"$T/status"
	cat "$T/body"
}

# failed WHAT: prints what failed with the last server lines, and exits.
failed() {
	echo "$1: $(cat "$T/status" 2>/dev/null) $(cat "$T/body" 2>/dev/null)" >&2
	tail -n 5 "$T/fleetd.log" >&2
	grep -h -A1 ERROR "$T"/pg/*.log 2>/dev/null | tail -n 4 >&2
	exit 1
}

per=$(((count + sims - 1) / sims))
left=$count
for ((i = 0; i < sims; i++)); do
	n=$((left < per ? left : per))
	left=$((left - n))
	bench_spawn fleet-sim --count "$n" --token "$token" --api "$url" \
		--ca "$T/pki/ca-bundle.pem" --state "$T/sim$i" --threads 8 \
		--labels bench=config ${CONFIG_FAIL:+--config-fail "$CONFIG_FAIL"} \
		--start-rate "${START_RATE:-150}" \
		>"$T/sim$i.out" 2>"$T/sim$i.log"
	SIM_N[i]=$n
done
all_online() {
	local i
	for ((i = 0; i < sims; i++)); do
		grep -q "all ${SIM_N[i]} devices online" "$T/sim$i.out" || return 1
	done
}
wait_for "all $count devices online" $((${ONLINE_TIMEOUT:-600} + count / 20)) all_online || {
	tail -n 5 "$T"/sim*.out "$T"/sim*.log "$T/fleetd.log" >&2
	exit 1
}
echo "devices online: $(q "SELECT count(*) FROM device_sessions")"

# ---- one clone to every device -----------------------------------------
api POST /api/v1/profiles '{"name": "bench"}' >/dev/null
doc='{"service": {"port": 8080, "workers": 4}, "log": {"level": "info"}, "features": ["a", "b", "c"]}'
api POST /api/v1/profiles/bench/versions "{\"document\": $doc}" >/dev/null
read -r code _ <"$T/status" || true
[ "$code" = 201 ] || failed "publish"

applied_count() {
	q "SELECT count(*) FROM device_config dc JOIN device_config_reported r
	   ON r.device_id = dc.device_id AND r.generation = dc.desired_generation
	   AND r.sha256 = dc.desired_sha256 AND r.status = 'applied'"
}
all_applied() { [ "$(applied_count)" -ge "$count" ]; }

if [ -n "${PERF:-}" ]; then
	# shellcheck disable=SC2086 # PERF_OPTS is a list of options
	perf record -q ${PERF_OPTS:--a -g} -o "$PERF" >/dev/null 2>&1 &
	perf_pid=$!
	sleep 1
fi
t0=$(date +%s.%N)
change=$(api POST /api/v1/config/clone \
	'{"source": {"profile": "bench", "version": "latest"}, "selector": "bench=config"}' |
	jq -r .change_id)
read -r code api_s <"$T/status" || true
[ "$code" = 201 ] || failed "clone"
echo "clone API call: ${api_s} s (commit of $count desired documents, one notification)"
wait_for "all $count applied" 120 all_applied || {
	echo "only $(applied_count) of $count applied" >&2
}
if [ -n "${PERF:-}" ]; then
	kill -INT "$perf_pid"
	wait "$perf_pid" || true
fi
q "SELECT 'time from the clone API call to the last applied report: ' ||
	to_char(extract(epoch FROM max(r.reported_at)) - $t0, 'FM990.000') || ' s (' ||
	count(*) || ' devices applied)'
   FROM device_config_reported r JOIN device_config dc USING (device_id)
   WHERE dc.desired_change_id = '$change' AND r.status = 'applied'
   AND r.generation = dc.desired_generation"
q "SELECT 'per-device latency from the clone transaction''s start to applied: first ' ||
	to_char(1000 * min(l), 'FM99990.0') || ' ms, p50 ' ||
	to_char(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY l), 'FM99990.0') ||
	' ms, p99 ' ||
	to_char(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY l), 'FM99990.0') ||
	' ms, max ' || to_char(1000 * max(l), 'FM99990.0') || ' ms'
   FROM (SELECT extract(epoch FROM r.reported_at - c.created_at) AS l
	 FROM device_config_reported r JOIN device_config dc USING (device_id)
	 JOIN config_changes c ON c.id = dc.desired_change_id
	 WHERE c.id = '$change' AND r.status = 'applied'
	 AND r.generation = dc.desired_generation) x"
echo "reports ignored (never sent): $(q "SELECT coalesce(sum(count), 0) FROM config_reports_ignored")"

# ---- a dry run over DRY_COUNT devices ------------------------------------
q "INSERT INTO devices (id, labels, model)
   SELECT gen_random_uuid(), jsonb_build_object('dry', 'yes', 'n', g::text), 'dry'
   FROM generate_series(1, $dry_count) g" >/dev/null
q "ANALYZE devices" >/dev/null
api POST /api/v1/config/clone \
	'{"source": {"profile": "bench", "version": "latest"}, "selector": "dry=yes", "dry_run": true}' \
	>"$T/dry.json"
read -r code dry_s <"$T/status" || true
echo "clone dry run over $dry_count devices in the database: ${dry_s} s (HTTP $code, counts $(jq -c .counts "$T/dry.json" 2>/dev/null))"
if [ -n "${LOGS:-}" ]; then
	mkdir -p "$LOGS"
	cp "$T/fleetd.log" "$T"/sim*.log "$T"/pg/*.log "$LOGS/" 2>/dev/null || true
fi
