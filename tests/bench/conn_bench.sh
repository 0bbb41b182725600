#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Connection benchmark: a private PostgreSQL and fleetd, then fleet-sim with
# N virtual devices (default 1000; more with COUNT=...). Prints the time to
# enroll them, the time until all are online, fleetd's resident memory per
# connected agent (RSS delta of the supervisor and its children divided by
# N) and fleet-sim's own memory per device; then the same memory figure for
# Mosquitto (Debian) holding as many idle mTLS MQTT clients (mqtt_idle.c),
# and the ratio. With STORM=1 it then restarts fleetd (SIGTERM to the
# supervisor, started again on the same ports) and prints the time until
# every device is online again: the reconnect storm of issue 15. Figures
# only; nothing is timed against a limit. Removes everything on exit.
#   tests/bench/conn_bench.sh BUILD_DIR [COUNT]
#   COUNTS="1000 10000 100000" tests/bench/conn_bench.sh BUILD_DIR
# With COUNTS, one run per count (each its own PostgreSQL, fleetd and
# simulators, STORM=1 unless set), then one table of every count's figures.
# A process holds at most its open-files limit of connections (20,000
# here), so large counts are split: fleetd gets a net worker per
# PER_WORKER devices (default 14,000), fleet-sim a process per 15,000 (and
# up to 4 for smaller counts), Mosquitto an instance (and an mqtt_idle) per
# 15,000 clients; above 20,000 devices each fleet-sim connects to its own
# loopback address (127.0.0.1, .2, ...; fleetd's device listener then binds
# 0.0.0.0 and its certificate names them): one source/destination address
# pair has about 28,000 ephemeral ports.
# Environment: WORKERS (fleetd net workers, default as above), SETTLE
# (seconds to wait before measuring, default 3), ONLINE_TIMEOUT (default
# 300 + COUNT/20), SIMS (fleet-sim processes sharing COUNT, default as
# above), START_RATE (devices each fleet-sim starts per second, default
# all at once), STORM (1: the restart), MOSQUITTO (0: skip the Mosquitto
# figure), PERF (a file: perf record -g of fleetd's processes for
# PERF_SECONDS, default 10, once all are online, and during the storm into
# FILE.storm), LOGS (a directory: fleetd's and the simulators' logs are
# copied there at the end, or when devices do not come online), LOG_LEVEL
# (fleetd's and fleet-sim's, default warn), HOOK (a command run once
# fleetd is up, before the simulators start, with FLEETD_PID exported: to
# attach a heap profiler to a net worker), HOLD (seconds to keep everything
# up after fleetd's memory is measured), FLEET_SIM (another fleet-sim
# binary, e.g. an older build for a before/after pair), SIM_WRAP (a command
# the simulators run under, e.g. "valgrind --tool=massif --vgdb=yes":
# docs/internals/fleet-sim.md), MQTT_INFLIGHT (handshakes each mqtt_idle
# keeps in flight, default 64).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: conn_bench.sh BUILD_DIR [COUNT]}" && pwd)

# ---- several counts: one run each, then the table ------------------------
if [ -n "${COUNTS:-}" ] && [ -z "${CONN_BENCH_ONE:-}" ]; then
	out=$(mktemp -d /tmp/fleet-conn-counts.XXXXXX)
	trap 'rm -rf "$out"' EXIT
	for n in $COUNTS; do
		case $n in '' | *[!0-9]*) echo "COUNTS: $n is not a count" >&2; exit 2 ;; esac
		echo "==== $n devices"
		if ! CONN_BENCH_ONE=1 STORM=${STORM:-1} "$0" "$build" "$n" 2>&1 | tee "$out/$n"; then
			echo "(the $n-device run failed: its figures are missing below)"
		fi
	done
	# figure KEY FILE: the value of "figure: KEY=..." in a run's output.
	figure() { sed -n "s/^figure: $1=//p" "$2" | tail -n 1; }
	echo
	echo "==== conn_bench: every count (KiB are RSS growth over the count)"
	printf '%8s %7s %8s %9s %8s %9s %9s %9s %6s  %s\n' devices workers sims \
		"fleetd" "fleetsim" "online" "storm" "mosq" ratio "load (start / storm)"
	printf '%8s %7s %8s %9s %8s %9s %9s %9s %6s\n' "" "" "" "KiB/conn" "KiB/dev" \
		"s" "s" "KiB/conn" ""
	for n in $COUNTS; do
		f=$out/$n
		printf '%8s %7s %8s %9s %8s %9s %9s %9s %6s  %s / %s\n' "$n" \
			"$(figure workers "$f")" "$(figure sims "$f")" \
			"$(figure fleetd_kib "$f")" "$(figure sim_kib "$f")" \
			"$(figure online_s "$f")" "$(figure storm_s "$f")" \
			"$(figure mosquitto_kib "$f")" "$(figure ratio "$f")" \
			"$(figure load "$f")" "$(figure storm_load "$f")"
	done
	exit 0
fi

count=${2:-${COUNT:-1000}}
case $count in '' | *[!0-9]* | 0) echo "conn_bench: COUNT must be a positive number" >&2; exit 2 ;; esac
ceil_div() { echo $((($1 + $2 - 1) / $2)); }
workers=${WORKERS:-$(ceil_div "$count" "${PER_WORKER:-14000}")}
sims=$(ceil_div "$count" 5000)
[ "$sims" -le 4 ] || sims=4
[ "$sims" -ge "$(ceil_div "$count" 15000)" ] || sims=$(ceil_div "$count" 15000)
sims=${SIMS:-$sims}
# Above 20,000 devices, one loopback address per fleet-sim process.
addrs=1
if [ "$count" -gt 20000 ] && [ -z "${DEVICE_URL:-}" ]; then
	addrs=$sims
	[ "$addrs" -le 250 ] || { echo "conn_bench: at most 250 addresses" >&2; exit 2; }
	BENCH_SERVER_NAMES=
	for ((i = 2; i <= addrs; i++)); do
		BENCH_SERVER_NAMES="$BENCH_SERVER_NAMES 127.0.0.$i"
	done
	export BENCH_SERVER_NAMES
fi
. "$here/bench_env.sh"

sim_bin=${FLEET_SIM:-$build/agent/fleet-sim}
[ -x "$sim_bin" ] || { echo "fleet-sim not built in $build (or FLEET_SIM not executable)" >&2; exit 1; }

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
bench_setup conn-bench "$build" "-c max_connections=200 $(bench_pg_stats_opts)"
bench_pg_stats_on
bench_start_fleetd "workers = $workers
heartbeat_interval = 30s
heartbeat_timeout = 90s
$([ "$addrs" = 1 ] || echo "device_bind = 0.0.0.0")
${LOG_LEVEL:+log_level = $LOG_LEVEL}"
token=$(bench_enroll_token $((count + 10)))

echo "fleetd: $workers net worker(s) on $(nproc) cores; $count simulated devices in $sims fleet-sim process(es)${START_RATE:+, each starting $START_RATE a second}; $addrs device address(es); open-files limit $(ulimit -n)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "figure: load=$(cut -d' ' -f1 /proc/loadavg)"
echo "figure: workers=$workers"
echo "figure: sims=$sims"
sleep 1
rss_before=$(rss_kib "$FLEETD_PID")

keep_logs() {
	[ -n "${LOGS:-}" ] || return 0
	mkdir -p "$LOGS"
	cp "$T"/*.log "$T"/*.out "$LOGS"/ 2>/dev/null || true
}
now() { date +%s.%N; }
# CPU seconds (user + system) used so far by fleetd's supervisor and its
# children: on a shared machine, what fleetd itself spent.
cpu_s() {
	local p
	for p in "$FLEETD_PID" $(pgrep -P "$FLEETD_PID"); do
		awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null
	done | awk -v hz="$(getconf CLK_TCK)" '{ s += $1 } END { printf "%.1f", s / hz }'
}
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# Devices online (welcomed) and connection attempts, summed over the
# simulators' status files (each rewrites its own every 200 ms).
sim_sum() {
	awk -v k="\"$1\": " '{ i = index($0, k); if (i) s += substr($0, i + length(k)) + 0 } END { print s + 0 }' "$T"/sim*.status 2>/dev/null || echo 0
}
# wait_online WHAT [soft]: until every device is online; fails after the
# timeout (ONLINE_TIMEOUT seconds, default 300 + COUNT/20) or when a
# simulator exits. soft: a timeout only says how many came online.
wait_online() {
	local deadline=$((SECONDS + ${ONLINE_TIMEOUT:-$((300 + count / 20))})) p
	until [ "$(sim_sum online)" -ge "$count" ]; do
		for p in "${SIM_PIDS[@]}"; do
			kill -0 "$p" 2>/dev/null && continue
			echo "$1: a fleet-sim exited" >&2
			tail -n 5 "$T"/sim*.log "$T/fleetd.log" >&2
			keep_logs
			exit 1
		done
		if [ "$SECONDS" -gt "$deadline" ] && [ "${2:-}" = soft ]; then
			echo "$1: not all devices came online within ${ONLINE_TIMEOUT:-$((300 + count / 20))} s ($(sim_sum online) of $count, $(sim_sum attempts) attempts)"
			return 1
		fi
		if [ "$SECONDS" -gt "$deadline" ]; then
			echo "$1: not all devices came online ($(sim_sum online) of $count):" >&2
			tail -n 5 "$T"/sim*.out "$T"/sim*.log "$T/fleetd.log" >&2
			keep_logs
			exit 1
		fi
		sleep 0.1
	done
}
# perf_fleetd FILE: samples every fleetd process for PERF_SECONDS.
PERF_PID=
perf_fleetd() {
	[ -n "${PERF:-}" ] || return 0
	perf record -g -F 999 -o "$1" -p "$FLEETD_PID,$(pgrep -d, -P "$FLEETD_PID")" \
		-- sleep "${PERF_SECONDS:-10}" >/dev/null 2>&1 &
	PERF_PID=$!
}
perf_wait() {
	[ -z "$PERF_PID" ] || wait "$PERF_PID" || true
	PERF_PID=
}
some_offline() { [ "$(sim_sum online)" -lt "$count" ]; }

if [ -n "${HOOK:-}" ]; then
	export FLEETD_PID
	bash -c "$HOOK"
fi
SIM_PIDS=()
t0=$(now)
for ((i = 0; i < sims; i++)); do
	n=$((count / sims + (i < count % sims ? 1 : 0)))
	# shellcheck disable=SC2086 # SIM_WRAP is a command line
	bench_spawn ${SIM_WRAP:-} "$sim_bin" --count "$n" --token "$token" --api "$url" \
		--ca "$T/pki/ca-bundle.pem" --state "$T/sim$i" \
		--threads $((16 / sims > 2 ? 16 / sims : 2)) \
		--status-file "$T/sim$i.status" \
		${START_RATE:+--start-rate "$START_RATE"} \
		${LOG_LEVEL:+--log-level "$LOG_LEVEL"} \
		${DEVICE_URL:+--device-url "$DEVICE_URL"} \
		$([ "$addrs" = 1 ] || echo "--device-url wss://127.0.0.$((1 + i % addrs)):$DEVICE_PORT/agent/v1") \
		>"$T/sim$i.out" 2>"$T/sim$i.log"
	SIM_PIDS+=("$LAST_PID")
done
wait_online "first connect"
t_online=$(since "$t0")
grep -h -m1 "enrolled" "$T"/sim*.out
grep -h -m1 "devices online in" "$T"/sim*.out
echo "all $count devices online $t_online s after the first fleet-sim started ($(sim_sum attempts) connection attempts; fleetd CPU $(cpu_s) s since its start)"
echo "figure: online_s=$t_online"
online_at=$SECONDS
perf_fleetd "${PERF:-}"
sleep "${SETTLE:-3}"
rss_after=$(rss_kib "$FLEETD_PID")
sim_rss=0
for p in "${SIM_PIDS[@]}"; do
	sim_rss=$((sim_rss + $(rss_kib "$p")))
done
online=$(bench_db_count devices)
echo "devices in the database: $online"
echo "fleetd RSS: $rss_before KiB idle -> $rss_after KiB with $count agents connected"
fleetd_per=$(awk -v b="$rss_before" -v a="$rss_after" -v n="$count" \
	'BEGIN { printf "%.1f", (a - b) / n }')
echo "fleetd memory per connected agent: $fleetd_per KiB"
echo "figure: fleetd_kib=$fleetd_per"
echo "fleetd net workers' open descriptors: $(for p in $(pgrep -P "$FLEETD_PID" fleetd-net); do
	ls "/proc/$p/fd" 2>/dev/null | wc -l
done | tr '\n' ' ')"
awk -v s="$sim_rss" -v n="$count" \
	'BEGIN { printf "fleet-sim memory per device: %.1f KiB (RSS %d KiB)\nfigure: sim_kib=%.1f\n", s / n, s, s / n }'
perf_wait
sleep "${HOLD:-0}"

# ---- the reconnect storm ------------------------------------------------
# Agents reset their backoff after 60 s online: wait that long, as devices
# of a running fleet would have been, then restart fleetd on the same ports
# and time until every device has its welcome again.
if [ "${STORM:-0}" = 1 ]; then
	sleep $((online_at + 61 - SECONDS > 0 ? online_at + 61 - SECONDS : 0))
	attempts0=$(sim_sum attempts)
	echo "reconnect storm: load average $(cut -d' ' -f1-3 /proc/loadavg); restarting fleetd"
	echo "figure: storm_load=$(cut -d' ' -f1 /proc/loadavg)"
	bench_pg_stats_reset
	pg_ticks0=$(bench_pg_ticks)
	sim_ticks0=$(bench_ticks "${SIM_PIDS[@]}")
	t0=$(now)
	bench_restart_fleetd
	t_stopped=$(since "$t0")
	t_start=$(now)
	wait_for "fleetd healthy again" 30 bench_healthy || { echo "fleetd did not restart" >&2; exit 1; }
	perf_fleetd "${PERF:+$PERF.storm}"
	# The old sessions must be seen gone before "all online" means anything.
	wait_for "devices see the restart" 30 some_offline ||
		echo "(no device saw the restart within 30 s)"
	if wait_online "reconnect storm" soft; then
		t_storm=$(since "$t0")
		echo "reconnect storm ($([ "${HELD_SOCKETS:-0}" = 1 ] && echo "listen sockets held across the restart" || echo "no socket held: refused while fleetd restarts")): fleetd stopped in $t_stopped s; all $count devices online again $t_storm s after the SIGTERM, $(since "$t_start") s after the new fleetd started ($(($(sim_sum attempts) - attempts0)) connection attempts; new fleetd's CPU $(cpu_s) s)"
		echo "figure: storm_s=$t_storm"
		# What one reconnect cost each part: the new fleetd's whole
		# life, PostgreSQL and the simulators since the SIGTERM.
		awk -v f="$(bench_ticks "$FLEETD_PID" $(pgrep -P "$FLEETD_PID"))" \
			-v p="$(($(bench_pg_ticks) - pg_ticks0))" \
			-v s="$(($(bench_ticks "${SIM_PIDS[@]}") - sim_ticks0))" \
			-v hz="$(getconf CLK_TCK)" -v n="$count" 'BEGIN {
			printf "reconnect storm: CPU per reconnect: fleetd %.2f ms, postgresql %.2f ms, fleet-sim %.2f ms\n",
				1000 * f / hz / n, 1000 * p / hz / n, 1000 * s / hz / n }'
		bench_pg_stats_print "$count" reconnect
	else
		echo "figure: storm_s=>$(since "$t0")"
		keep_logs
	fi
	echo "reconnect storm: fleetd RSS $(rss_kib "$FLEETD_PID") KiB with $count agents connected"
	perf_wait
fi
keep_logs
[ "${MOSQUITTO:-1}" = 0 ] && exit 0

# ---- the same figure for Mosquitto ------------------------------------------
# Mosquitto (Debian) holding the same number of idle mTLS clients, measured
# the same way (RSS growth over the count), with a P-256 PKI like fleetd's.
# tests/bench/mqtt_idle opens the connections and sends an MQTT CONNECT.
# One Mosquitto process holds at most its open-files limit of clients, so
# above 15,000 there is one instance (its own port) and one mqtt_idle per
# 15,000; the figure is their RSS growth summed over the count. fleetd and
# the simulators are stopped first: their memory is measured, and at
# 100,000 devices both sides at once would not leave the machine enough.
mqtt_idle=$build/tests/bench/mqtt_idle
if ! command -v mosquitto >/dev/null || [ ! -x "$mqtt_idle" ]; then
	echo "mosquitto: not measured (install mosquitto; build the mqtt_idle target)"
	exit 0
fi
for p in "${SIM_PIDS[@]}"; do
	bench_stop_pid "$p"
done
bench_stop_pid "${HOLD_PID:-$FLEETD_PID}"
FLEETD_PID=
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
per_mosq=${PER_MOSQUITTO:-15000}
nmosq=$(ceil_div "$count" "$per_mosq")
MOSQ_PIDS=()
MOSQ_PORTS=()
for ((k = 0; k < nmosq; k++)); do
	mport=$(free_port)
	cat >"$m/mosquitto$k.conf" <<EOT
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
	bench_spawn mosquitto -c "$m/mosquitto$k.conf" >"$m/mosquitto$k.log" 2>&1
	MOSQ_PIDS+=("$LAST_PID")
	MOSQ_PORTS+=("$mport")
	wait_for "mosquitto listens on $mport" 10 \
		bash -c "exec 3<>/dev/tcp/127.0.0.1/$mport" || { echo "mosquitto did not start" >&2; exit 1; }
done
mosq_rss() {
	local p total=0
	for p in "${MOSQ_PIDS[@]}"; do
		total=$((total + $(rss_kib "$p")))
	done
	echo "$total"
}
sleep 1
mosq_before=$(mosq_rss)
for ((k = 0; k < nmosq; k++)); do
	n=$((count / nmosq + (k < count % nmosq ? 1 : 0)))
	# Its own loopback source address each, as the simulators have.
	bench_spawn "$mqtt_idle" --port "${MOSQ_PORTS[k]}" --count "$n" --ca "$m/ca.pem" \
		--sources "127.0.0.$((1 + k % 250))" --inflight "${MQTT_INFLIGHT:-64}" \
		--cert "$m/client.pem" --key "$m/client.key" >"$T/mqtt_idle$k.out" 2>"$T/mqtt_idle$k.log"
done
for ((k = 0; k < nmosq; k++)); do
	wait_for "mqtt_idle $k connected" $((60 + count / 50)) grep -q "connected in" "$T/mqtt_idle$k.out" || {
		echo "mqtt_idle did not finish:" >&2
		tail -n 5 "$T/mqtt_idle$k.log" "$m/mosquitto$k.log" >&2
		exit 1
	}
	cat "$T/mqtt_idle$k.out"
done
# The figure is over the clients that did connect: a client that failed
# holds nothing in Mosquitto.
mosq_clients=$(sed -n 's/^mqtt_idle: \([0-9]*\) connected in.*/\1/p' "$T"/mqtt_idle*.out |
	awk '{ n += $1 } END { print n + 0 }')
if [ "$mosq_clients" != "$count" ]; then
	echo "mosquitto: only $mosq_clients of $count clients connected (LOGS=DIR keeps mqtt_idle's and Mosquitto's logs)"
	keep_logs
	[ -z "${LOGS:-}" ] || cp "$m"/mosquitto*.log "$LOGS"/
fi
[ "$mosq_clients" -gt 0 ] || { echo "mosquitto: no client connected" >&2; exit 1; }
sleep "${SETTLE:-3}"
mosq_after=$(mosq_rss)
mosq_per=$(awk -v b="$mosq_before" -v a="$mosq_after" -v n="$mosq_clients" \
	'BEGIN { printf "%.1f", (a - b) / n }')
echo "mosquitto $(mosquitto -h 2>/dev/null | awk 'NR == 1 { print $3 }') RSS ($nmosq instance(s)): $mosq_before KiB idle -> $mosq_after KiB with $mosq_clients mTLS clients"
echo "mosquitto memory per idle mTLS client: $mosq_per KiB"
echo "figure: mosquitto_kib=$mosq_per"
awk -v f="$fleetd_per" -v q="$mosq_per" \
	'BEGIN { if (q > 0) printf "fleetd / mosquitto memory per connection: %.2f\nfigure: ratio=%.2f\n", f / q, f / q }'
