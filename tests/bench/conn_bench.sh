#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Connection benchmark: a private PostgreSQL and fleetd, then fleet-sim with
# N virtual devices (default 1000; more with COUNT=...). Prints the time to
# enroll them, the time until all are online, fleetd's resident memory per
# connected agent (RSS delta of the supervisor and its children divided by
# N) and fleet-sim's own memory per device; then the same memory figure for
# Mosquitto (Debian) holding as many idle mTLS MQTT clients (mqtt_idle.c),
# and the ratio. Figures only; nothing is timed against a limit. Removes
# everything on exit.
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
fleetd_per=$(awk -v b="$rss_before" -v a="$rss_after" -v n="$count" \
	'BEGIN { printf "%.1f", (a - b) / n }')
echo "fleetd memory per connected agent: $fleetd_per KiB"
awk -v s="$sim_rss" -v n="$count" \
	'BEGIN { printf "fleet-sim memory per device: %.1f KiB (RSS %d KiB)\n", s / n, s }'

# ---- the same figure for Mosquitto ------------------------------------------
# Mosquitto (Debian) holding the same number of idle mTLS clients, measured
# the same way (RSS growth over the count), with a P-256 PKI like fleetd's.
# tests/bench/mqtt_idle opens the connections and sends an MQTT CONNECT.
mqtt_idle=$build/tests/bench/mqtt_idle
if ! command -v mosquitto >/dev/null || [ ! -x "$mqtt_idle" ]; then
	echo "mosquitto: not measured (install mosquitto; build the mqtt_idle target)"
	exit 0
fi
m=$T/mosquitto
mkdir -p "$m"
ossl() { openssl "$@" 2>>"$m/openssl.log"; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=bench-ca -keyout "$m/ca.key" -out "$m/ca.pem"
for who in server client; do
	ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-subj "/CN=$who" -keyout "$m/$who.key" -out "$m/$who.csr"
	printf 'subjectAltName = DNS:localhost, IP:127.0.0.1\n' >"$m/$who.ext"
	ossl x509 -req -in "$m/$who.csr" -CA "$m/ca.pem" -CAkey "$m/ca.key" \
		-CAcreateserial -days 2 -extfile "$m/$who.ext" -out "$m/$who.pem"
done
chmod 0755 "$m"
chmod 0644 "$m"/*
mport=$(free_port)
cat >"$m/mosquitto.conf" <<EOT
per_listener_settings false
listener $mport 127.0.0.1
cafile $m/ca.pem
certfile $m/server.pem
keyfile $m/server.key
require_certificate true
allow_anonymous true
max_connections -1
persistence false
log_dest stderr
log_type error
log_type warning
EOT
bench_spawn mosquitto -c "$m/mosquitto.conf" >"$m/mosquitto.log" 2>&1
MOSQ_PID=$LAST_PID
wait_for "mosquitto listens on $mport" 10 \
	bash -c "exec 3<>/dev/tcp/127.0.0.1/$mport" || { echo "mosquitto did not start" >&2; exit 1; }
sleep 1
mosq_before=$(rss_kib "$MOSQ_PID")
bench_spawn "$mqtt_idle" --port "$mport" --count "$count" --ca "$m/ca.pem" \
	--cert "$m/client.pem" --key "$m/client.key" >"$T/mqtt_idle.out" 2>"$T/mqtt_idle.log"
IDLE_PID=$LAST_PID
wait_for "mqtt_idle connected" $((60 + count / 50)) grep -q "connected in" "$T/mqtt_idle.out" || {
	echo "mqtt_idle did not finish:" >&2
	tail -n 5 "$T/mqtt_idle.log" >&2
	exit 1
}
cat "$T/mqtt_idle.out"
sleep "${SETTLE:-3}"
mosq_after=$(rss_kib "$MOSQ_PID")
mosq_per=$(awk -v b="$mosq_before" -v a="$mosq_after" -v n="$count" \
	'BEGIN { printf "%.1f", (a - b) / n }')
echo "mosquitto $(mosquitto -h 2>/dev/null | awk 'NR == 1 { print $3 }') RSS: $mosq_before KiB idle -> $mosq_after KiB with $count mTLS clients"
echo "mosquitto memory per idle mTLS client: $mosq_per KiB"
awk -v f="$fleetd_per" -v q="$mosq_per" \
	'BEGIN { if (q > 0) printf "fleetd / mosquitto memory per connection: %.2f\n", f / q }'
