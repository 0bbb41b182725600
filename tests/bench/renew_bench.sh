#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Renewal benchmark (issue 10): a private PostgreSQL and fleetd, N fleet-sim
# devices online (default 10000; COUNT=...), then every one of them is told
# to rotate at once: one pending rotation per device and ONE NOTIFY
# fleet_certs, written in one transaction as the campaign engine (and
# POST /devices/{id}/rotate, one device at a time) does. Each device makes
# a new key in memory, sends cert.csr over its live channel, gets
# cert.issued (core rules + the ca process signs), reconnects with the new
# certificate and reports cert.installed, which supersedes the old one.
# Prints renewals per second and the time until all devices have the new
# certificate installed (from the database: rotations completed), with the
# per-device latency p50/p99. Figures only; nothing is timed against a
# limit. Removes everything on exit.
#   tests/bench/renew_bench.sh BUILD_DIR [COUNT]
# Environment: WORKERS (fleetd net workers, default 2), JOB_THREADS
# (default 16: half of them do device work), SIMS (fleet-sim
# processes, default 1), START_RATE (fleet-sim --start-rate per process:
# devices started per second; default all at once), SHARDS (fleet-sim
# --shards: lws contexts and service threads per process; default one per
# core), RENEW_TIMEOUT (default 300), BENCH_PG_FAST=1,
# LOG_LEVEL (fleetd's and fleet-sim's, e.g. info; with LOGS=DIR their
# logs are copied there), PERF=FILE (records `perf record -g` of fleetd's net workers and the ca
# process during the rotation into FILE; docs/internals/perf.md), PERF_ALL=1
# (with PERF: the whole machine, `perf record -a`), PERF_OPTS (extra perf
# options, e.g. "--call-graph dwarf -F 499").
# Prints, for the rotation, the CPU seconds of each part (fleetd's ca and
# net workers, PostgreSQL, fleet-sim) and per renewal, with the load
# average: the figures that say what a renewal costs this machine
# (docs/internals/renew-rate.md). PG_STATS=1: pg_stat_statements over the
# rotation (PostgreSQL's time per statement, printed after the run).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: renew_bench.sh BUILD_DIR [COUNT]}" && pwd)
count=${2:-${COUNT:-10000}}
sims=${SIMS:-1}
. "$here/bench_env.sh"

command -v "$build/agent/fleet-sim" >/dev/null || { echo "fleet-sim not built in $build" >&2; exit 1; }

q() { psql -X -q -t -A -d fleet_bench -c "$1"; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
bench_setup renew-bench "$build" "-c max_connections=200 $(bench_pg_stats_opts)"
bench_pg_stats_on
workers=${WORKERS:-2}
bench_start_fleetd "workers = $workers
heartbeat_interval = 30s
heartbeat_timeout = 90s
job_threads = ${JOB_THREADS:-16}
${LOG_LEVEL:+log_level = $LOG_LEVEL}"
token=$(bench_enroll_token $((count + 10)))

echo "fleetd: $workers net worker(s) on $(nproc) cores; $count simulated devices in $sims fleet-sim process(es)"
per=$((count / sims))
for ((i = 0; i < sims; i++)); do
	n=$per
	[ "$i" = $((sims - 1)) ] && n=$((count - per * (sims - 1)))
	bench_spawn fleet-sim --count "$n" --token "$token" --api "$url" \
		--ca "$T/pki/ca-bundle.pem" --state "$T/sim$i" --threads 16 \
		--status-file "$T/sim$i.json" ${LOG_LEVEL:+--log-level "$LOG_LEVEL"} \
		${START_RATE:+--start-rate "$START_RATE"} ${SHARDS:+--shards "$SHARDS"} \
		>"$T/sim$i.out" 2>"$T/sim$i.log"
done
online_all() {
	local i total=0 o
	for ((i = 0; i < sims; i++)); do
		o=$(jq -r .online "$T/sim$i.json" 2>/dev/null || echo 0)
		total=$((total + ${o:-0}))
	done
	[ "$total" -ge "$count" ]
}
if ! wait_for "all $count devices online" "$((${ONLINE_TIMEOUT:-300} + count / 20))" online_all; then
	tail -n 5 "$T"/sim*.out "$T"/sim*.log "$T/fleetd.log" >&2
	exit 1
fi
grep -h -m1 "all .* devices online" "$T"/sim*.out || true
sessions() { [ "$(q "SELECT count(*) FROM device_sessions")" -ge "$count" ]; }
wait_for "$count sessions in the database" 60 sessions

fleetd_pids_named() { pgrep -P "$FLEETD_PID" "$1" | tr '\n' ' '; }
cpu_snapshot() {
	# shellcheck disable=SC2046
	echo "$(bench_ticks $(fleetd_pids_named fleetd-ca)) $(bench_ticks $(fleetd_pids_named fleetd-net)) $(bench_pg_ticks) $(bench_ticks "${BENCH_PIDS[@]}") $(awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat) $(awk '/^cpu / { print $5 + $6 }' /proc/stat)"
}
echo "load average before the rotation: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_pg_stats_reset
perf_pid=
if [ -n "${PERF:-}" ]; then
	if [ "${PERF_ALL:-0}" = 1 ]; then
		# shellcheck disable=SC2086
		perf record -q -a -g ${PERF_OPTS:-} -o "$PERF" >/dev/null 2>&1 &
	else
		pids=$(pgrep -d, -P "$FLEETD_PID")
		# shellcheck disable=SC2086
		perf record -q -g ${PERF_OPTS:-} -o "$PERF" -p "$pids" >/dev/null 2>&1 &
	fi
	perf_pid=$!
fi
cpu0=$(cpu_snapshot)
# All at once: one transaction, one notification.
t0=$(date +%s.%N)
q "BEGIN; INSERT INTO cert_rotations (id, device_id, reason, requested_by)
   SELECT gen_random_uuid(), id, 'campaign', 'renew_bench' FROM devices;
   SELECT pg_notify('fleet_certs', 'bench'); COMMIT;" >/dev/null
done_all() { [ "$(q "SELECT count(*) FROM cert_rotations WHERE completed_at IS NOT NULL")" -ge "$count" ]; }
progress() {
	q "SELECT count(*) FROM cert_rotations WHERE completed_at IS NOT NULL"
}
# CPU of each part from cpu0 to now, per renewal of the N given.
cpu_report() {
	local n=$1 t1 cpu1 hz
	t1=$(date +%s.%N)
	cpu1=$(cpu_snapshot)
	hz=$(getconf CLK_TCK)
	echo "load average after the rotation: $(cut -d' ' -f1-3 /proc/loadavg)"
	awk -v a="$cpu0" -v b="$cpu1" -v n="$n" -v hz="$hz" -v t0="$t0" -v t1="$t1" 'BEGIN {
	split(a, x, " "); split(b, y, " "); if (n < 1) n = 1
	split("ca net-workers postgresql fleet-sim", name, " ")
	printf "CPU during the rotation (%.2f s wall, %d cores):", t1 - t0, '"$(nproc)"'
	for (i = 1; i <= 4; i++) {
		s = (y[i] - x[i]) / hz
		printf " %s %.2f s (%.2f ms/renewal);", name[i], s, 1000 * s / n
		tot += s
	}
	printf " together %.2f s = %.2f ms/renewal; machine idle %.0f %%\n", tot, 1000 * tot / n, 100 * (y[6] - x[6]) / (y[5] - x[5])
}'
}
if ! wait_for "all $count rotations completed" "${RENEW_TIMEOUT:-300}" done_all; then
	done_n=$(progress)
	echo "only $done_n of $count rotations completed" >&2
	cpu_report "$done_n"
	bench_pg_stats_print "$done_n" renewal
	tail -n 5 "$T"/sim*.log "$T/fleetd.log" >&2
	exit 1
fi
t1=$(date +%s.%N)
cpu_report "$count"
if [ -n "$perf_pid" ]; then
	kill -INT "$perf_pid" 2>/dev/null
	wait "$perf_pid" 2>/dev/null || true
fi
# Where the time goes: the new certificate signed (cert.issued sent)
# versus installed (the reconnect with it and cert.installed).
q "SELECT 'per-device time to the new certificate signed: p50 ' ||
	round(extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY c.created_at - r.requested_at))::numeric, 3) ||
	' s, p99 ' ||
	round(extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY c.created_at - r.requested_at))::numeric, 3) ||
	' s, last ' ||
	round(extract(epoch FROM max(c.created_at) - min(r.requested_at))::numeric, 3) || ' s'
	FROM cert_rotations r JOIN certificates c
	ON c.device_id = r.device_id AND c.created_at >= r.requested_at"
q "SELECT 'per-device time to the new certificate installed: p50 ' ||
	round(extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY completed_at - requested_at))::numeric, 3) ||
	' s, p99 ' ||
	round(extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY completed_at - requested_at))::numeric, 3) ||
	' s, last ' ||
	round(extract(epoch FROM max(completed_at) - min(requested_at))::numeric, 3) || ' s'
	FROM cert_rotations"
awk -v a="$t0" -v b="$t1" -v n="$count" 'BEGIN {
	printf "renewals: %d in %.2f s = %.0f renewals/s (request to the last cert.installed, measured by polling)\n", n, b - a, n / (b - a) }'
echo "certificates superseded: $(q "SELECT count(*) FROM certificates WHERE status = 'superseded'"), active: $(q "SELECT count(*) FROM certificates WHERE status = 'active'")"
for ((i = 0; i < sims; i++)); do
	jq -c . "$T/sim$i.json"
done
bench_pg_stats_print "$count" renewal
if [ -n "${LOGS:-}" ]; then
	mkdir -p "$LOGS"
	cp "$T/fleetd.log" "$T"/sim*.log "$LOGS/"
fi
