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
. "$here/../lib/pgcluster.sh"

export PATH="$build/fleetd:$build/agent:$PATH"
command -v fleet-sim >/dev/null || { echo "fleet-sim not built in $build" >&2; exit 1; }

T=$(mktemp -d /tmp/fleet-conn-bench.XXXXXX)
chmod 0711 "$T" # the cluster below runs as postgres when we are root
FLEETD_PID=
SIM_PID=
stop_pid() {
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null
	for _ in $(seq 1 150); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
cleanup() {
	set +e
	stop_pid "$SIM_PID"
	stop_pid "$FLEETD_PID"
	pgcluster_stop "$T/pg" immediate
	rm -rf "$T"
}
trap cleanup EXIT

free_port() {
	local port
	for _ in $(seq 1 200); do
		port=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

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
pgcluster_init "$T/pg"
pgcluster_start "$T/pg" "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
export PGHOST=$T/pg PGUSER=postgres
createdb fleet_bench
export FLEETD_DATABASE="host=$T/pg user=postgres dbname=fleet_bench"
fleetd migrate >/dev/null
fleetd pki init --dir "$T/pki" --server-name localhost --server-name 127.0.0.1 >/dev/null

workers=${WORKERS:-1}
start_fleetd() {
	api_port=$(free_port)
	device_port=$(free_port)
	while [ "$device_port" = "$api_port" ]; do device_port=$(free_port); done
	cat >"$T/fleetd.conf" <<EOT
pki_dir = $T/pki
api_bind = 127.0.0.1
api_port = $api_port
device_bind = 127.0.0.1
device_port = $device_port
public_host = localhost
workers = $workers
heartbeat_interval = 30s
heartbeat_timeout = 90s
log_level = warn
EOT
	fleetd -c "$T/fleetd.conf" serve >"$T/fleetd.log" 2>&1 &
	FLEETD_PID=$!
	url=https://127.0.0.1:$api_port
	for _ in $(seq 1 200); do
		kill -0 "$FLEETD_PID" 2>/dev/null || break
		curl -sf --max-time 2 --cacert "$T/pki/ca-bundle.pem" "$url/healthz" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	wait "$FLEETD_PID" 2>/dev/null || true
	FLEETD_PID=
	return 1
}
started=0
for _ in 1 2 3; do
	if start_fleetd; then
		started=1
		break
	fi
done
if [ "$started" != 1 ]; then
	echo "fleetd did not start:" >&2
	tail -n 20 "$T/fleetd.log" >&2
	exit 1
fi

admin=$(fleetd token create --role admin --name bench)
token=$(curl -sf --cacert "$T/pki/ca-bundle.pem" -H "Authorization: Bearer $admin" \
	-H 'Content-Type: application/json' \
	--data "{\"uses\": $((count + 10)), \"expires_in\": \"1h\"}" \
	"$url/api/v1/tokens" | jq -r .token)

echo "fleetd: $workers net worker(s) on $(nproc) cores; $count simulated devices"
sleep 1
rss_before=$(rss_kib "$FLEETD_PID")
fleet-sim --count "$count" --token "$token" --api "$url" \
	--ca "$T/pki/ca-bundle.pem" --state "$T/sim" --threads 16 \
	${DEVICE_URL:+--device-url "$DEVICE_URL"} >"$T/sim.out" 2>"$T/sim.log" &
SIM_PID=$!
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
online=$(psql -X -q -t -A -d fleet_bench -c 'SELECT count(*) FROM devices' 2>/dev/null || echo "?")
echo "devices in the database: $online"
echo "fleetd RSS: $rss_before KiB idle -> $rss_after KiB with $count agents connected"
awk -v b="$rss_before" -v a="$rss_after" -v n="$count" \
	'BEGIN { printf "fleetd memory per connected agent: %.1f KiB\n", (a - b) / n }'
awk -v s="$sim_rss" -v n="$count" \
	'BEGIN { printf "fleet-sim memory per device: %.1f KiB (RSS %d KiB)\n", s / n, s }'
