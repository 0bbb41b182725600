#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Connection benchmark: a private PostgreSQL and fleetd, then fleet-sim with
# N virtual devices (default 1000; more with COUNT=...). Prints the time to
# enroll them, the time until all are online, fleetd's resident memory per
# connected agent (RSS delta of the supervisor and its children divided by
# N) and fleet-sim's own memory per device. Figures only; nothing is timed
# against a limit. Removes everything on exit.
#   tests/bench/conn_bench.sh BUILD_DIR [COUNT]
# Environment: WORKERS (fleetd net workers, default 1), SETTLE (seconds to
# wait before measuring, default 3), ONLINE_TIMEOUT (default 300).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: conn_bench.sh BUILD_DIR [COUNT]}" && pwd)
count=${2:-${COUNT:-1000}}
. "$here/bench_env.sh"

command -v "$build/agent/fleet-sim" >/dev/null || { echo "fleet-sim not built in $build" >&2; exit 1; }

# rss_kib PID: resident KiB of PID and its children.
rss_kib() {
	local total=0 p kb
	for p in "$1" $(pgrep -P "$1" 2>/dev/null); do
		kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
		total=$((total + ${kb:-0}))
	done
	echo "$total"
}

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
bench_setup conn-bench "$build" "-c max_connections=200"
workers=${WORKERS:-1}
bench_start_fleetd "workers = $workers
heartbeat_interval = 30s
heartbeat_timeout = 90s"
token=$(bench_enroll_token $((count + 10)))

echo "fleetd: $workers net worker(s) on $(nproc) cores; $count simulated devices"
sleep 1
rss_before=$(rss_kib "$FLEETD_PID")
bench_spawn fleet-sim --count "$count" --token "$token" --api "$url" \
	--ca "$T/pki/ca-bundle.pem" --state "$T/sim" --threads 16 \
	${DEVICE_URL:+--device-url "$DEVICE_URL"} >"$T/sim.out" 2>"$T/sim.log"
SIM_PID=$LAST_PID
deadline=$((SECONDS + ${ONLINE_TIMEOUT:-300} + count / 20))
until grep -q "all $count devices online" "$T/sim.out"; do
	if ! kill -0 "$SIM_PID" 2>/dev/null || [ "$SECONDS" -gt "$deadline" ]; then
		echo "not all devices came online:" >&2
		tail -n 5 "$T/sim.out" "$T/sim.log" "$T/fleetd.log" >&2
		exit 1
	fi
	sleep 0.2
done
grep -m1 "enrolled" "$T/sim.out"
grep -m1 "all $count devices online" "$T/sim.out"
sleep "${SETTLE:-3}"
rss_after=$(rss_kib "$FLEETD_PID")
sim_rss=$(rss_kib "$SIM_PID")
online=$(bench_db_count devices)
echo "devices in the database: $online"
echo "fleetd RSS: $rss_before KiB idle -> $rss_after KiB with $count agents connected"
awk -v b="$rss_before" -v a="$rss_after" -v n="$count" \
	'BEGIN { printf "fleetd memory per connected agent: %.1f KiB\n", (a - b) / n }'
awk -v s="$sim_rss" -v n="$count" \
	'BEGIN { printf "fleet-sim memory per device: %.1f KiB (RSS %d KiB)\n", s / n, s }'
