# SPDX-License-Identifier: Apache-2.0
# The setup the benchmark scripts share (sourced by conn_bench.sh and
# enroll_bench.sh): a temporary directory, a private PostgreSQL in it with a
# migrated database, a fresh PKI, fleetd on free loopback ports, an admin
# token and an enrollment token; everything is stopped and removed on exit.
#
#   bench_setup NAME BUILD_DIR [POSTGRES_OPTIONS]
#                        $T, $FLEETD_DATABASE, $PGHOST, PATH, cleanup trap
#   bench_start_fleetd [CONFIG_LINES]
#                        fleetd with fresh free ports (three tries); sets
#                        $FLEETD_PID and $url; CONFIG_LINES are appended to
#                        the config (e.g. "workers = 4")
#   bench_enroll_token USES
#                        prints a new enrollment token good for USES devices
#   bench_restart_fleetd stops fleetd and starts it again on the same ports;
#                        returns once the new one runs (not yet healthy)
#   bench_spawn CMD...   runs CMD in the background, stopped on exit; $LAST_PID
#   bench_db_count TABLE rows in TABLE
#
# HELD_SOCKETS=1: fleetd runs under tests/integration/sockhold.py, which
# holds its listen sockets as a systemd socket unit does (fleetd.socket,
# docs/ops/restarts.md): a restart then refuses no connection.
#
# Started as root, fleetd's children run as the user fleetd
# (docs/internals/privsep.md); bench_setup creates it when it is missing.
here_bench=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here_bench/../lib/pgcluster.sh"
. "$here_bench/../lib/net.sh"
. "$here_bench/../lib/wait.sh"
. "$here_bench/../../deploy/packages.sh"
# psql itself, not Debian's pg_wrapper: the wrapper is a Perl script, and
# a benchmark polling PostgreSQL ten times a second spent 6 % of the
# machine's CPU starting Perl, taken from the system it measures. Debian's
# tools come before the caller's (a pyenv shim costs 0.4 s per python3).
PATH="$PG_BINDIR:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

BENCH_PIDS=()
FLEETD_PID=
HOLD_PID=

# Stops PID: SIGTERM, SIGKILL after 15 s. Returns 0 whatever its exit
# status: a process killed here (status 137) must not end a benchmark
# under set -e before its later figures (conn_bench's Mosquitto part ran
# after fleet-sims holding 14,000 connections each took over 15 s to
# close them at load 30).
bench_stop_pid() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || return 0
	wait_for "pid $pid exits" 15 not kill -0 "$pid" || kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
	set +e
	local i
	for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
		bench_stop_pid "${BENCH_PIDS[i]}"
	done
	[ -n "$HOLD_PID" ] && bench_stop_pid "$HOLD_PID"
	[ -n "$FLEETD_PID" ] && bench_stop_pid "$FLEETD_PID"
	pgcluster_stop "$T/pg" immediate
	rm -rf "$T"
}

bench_spawn() {
	"$@" &
	LAST_PID=$!
	BENCH_PIDS+=("$LAST_PID")
}

bench_setup() {
	local name=$1 build=$2 pgopts=${3:-}
	export PATH="$build/fleetd:$build/agent:$PATH"
	fleet_create_user
	T=$(mktemp -d "/tmp/fleet-$name.XXXXXX")
	# The cluster runs as postgres and fleetd's children as fleetd when we
	# are root: both must reach their files in $T.
	chmod 0711 "$T"
	trap bench_cleanup EXIT
	pgcluster_init "$T/pg"
	# Durable PostgreSQL settings, as in production, unless BENCH_PG_FAST=1
	# (then every figure is printed with "PostgreSQL: fsync off").
	if [ "${BENCH_PG_FAST:-0}" = 1 ]; then
		pgopts="-c fsync=off -c synchronous_commit=off -c full_page_writes=off $pgopts"
		echo "PostgreSQL: fsync off (BENCH_PG_FAST=1)"
	else
		echo "PostgreSQL: durable settings (fsync on, synchronous_commit on)"
	fi
	pgcluster_start "$T/pg" "$pgopts"
	export PGHOST=$T/pg PGUSER=postgres
	createdb fleet_bench
	export FLEETD_DATABASE="host=$T/pg user=postgres dbname=fleet_bench"
	fleetd migrate >/dev/null
	fleetd pki init --dir "$T/pki" --server-name localhost --server-name 127.0.0.1 >/dev/null
	# BENCH_SERVER_NAMES="127.0.0.2 127.0.0.3": more names in the server
	# certificate (conn_bench spreads 100,000 devices over several
	# loopback addresses: about 28,000 ephemeral ports per address pair).
	if [ -n "${BENCH_SERVER_NAMES:-}" ]; then
		rm -rf "$T/pki"
		local names=() n
		for n in localhost 127.0.0.1 $BENCH_SERVER_NAMES; do
			names+=(--server-name "$n")
		done
		fleetd pki init --dir "$T/pki" "${names[@]}" >/dev/null
	fi
}

# Healthy, or fleetd has exited (then waiting longer is pointless).
bench_healthy() {
	! kill -0 "$FLEETD_PID" 2>/dev/null ||
		curl -sf --max-time 2 --cacert "$T/pki/ca-bundle.pem" "$url/healthz"
}

# One try: fails when fleetd exits or does not become healthy in 20 s.
bench_try_fleetd() {
	fleetd_conf_write "$T/fleetd.conf" "$T/pki" "log_level = warn
$1"
	bench_run_fleetd >"$T/fleetd.log" 2>&1
	url=https://127.0.0.1:$API_PORT
	wait_for "fleetd healthy" 20 bench_healthy &&
		kill -0 "$FLEETD_PID" 2>/dev/null && return 0
	bench_stop_pid "${HOLD_PID:-$FLEETD_PID}"
	FLEETD_PID=
	HOLD_PID=
	return 1
}

# fleetd in the background (under the socket holder with HELD_SOCKETS=1).
bench_run_fleetd() {
	local device_bind
	if [ "${HELD_SOCKETS:-0}" != 1 ]; then
		fleetd -c "$T/fleetd.conf" serve &
		FLEETD_PID=$!
		return 0
	fi
	device_bind=$(sed -n 's/^device_bind = //p' "$T/fleetd.conf" | tail -n 1)
	rm -f "$T/fleetd.pid"
	python3 "$here_bench/../integration/sockhold.py" \
		--listen "api=127.0.0.1:$API_PORT" \
		--listen "device=${device_bind:-127.0.0.1}:$DEVICE_PORT" \
		--pidfile "$T/fleetd.pid" -- fleetd -c "$T/fleetd.conf" serve &
	HOLD_PID=$!
	wait_for "fleetd started by the socket holder" 10 test -s "$T/fleetd.pid"
	FLEETD_PID=$(cat "$T/fleetd.pid")
}

bench_restart_fleetd() {
	local old=$FLEETD_PID
	if [ -z "$HOLD_PID" ]; then
		bench_stop_pid "$FLEETD_PID"
		bench_run_fleetd >>"$T/fleetd.log" 2>&1
		return 0
	fi
	kill -HUP "$HOLD_PID"
	wait_for "the socket holder restarted fleetd" 40 \
		not grep -qx "$old" "$T/fleetd.pid"
	FLEETD_PID=$(cat "$T/fleetd.pid")
}

bench_start_fleetd() {
	# A port found free can be taken by someone else before fleetd binds it.
	for _ in 1 2 3; do
		bench_try_fleetd "${1:-}" && return 0
	done
	echo "fleetd did not start:" >&2
	tail -n 20 "$T/fleetd.log" >&2
	return 1
}

bench_enroll_token() {
	local admin
	admin=$(fleetd token create --role admin --name bench)
	curl -sf --cacert "$T/pki/ca-bundle.pem" -H "Authorization: Bearer $admin" \
		-H 'Content-Type: application/json' \
		--data "{\"uses\": $1, \"expires_in\": \"1h\"}" \
		"$url/api/v1/tokens" | jq -r .token
}

bench_db_count() {
	psql -X -q -t -A -d fleet_bench -c "SELECT count(*) FROM $1" 2>/dev/null || echo "?"
}

# ---- where the CPU goes ----------------------------------------------------
# bench_ticks PID...: CPU ticks (utime + stime, all threads) of the
# processes given, summed; a process gone counts 0.
bench_ticks() {
	local p t=0 v
	for p in "$@"; do
		v=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
# CPU ticks of PostgreSQL so far, also of the backends that have exited
# (the postmaster waited for them: its cutime and cstime).
bench_pg_ticks() {
	local pm
	pm=$(head -n 1 "$T/pg/data/postmaster.pid")
	echo $(($(bench_ticks $(pgrep -P "$pm")) +
		$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat" 2>/dev/null || echo 0)))
}

# ---- PostgreSQL's time per statement (PG_STATS=1) ----------------------------
# bench_pg_stats_opts: the server options bench_setup needs for it.
bench_pg_stats_opts() {
	[ "${PG_STATS:-0}" = 1 ] || return 0
	echo "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
}
# After bench_setup: the extension; then bench_pg_stats_reset where the
# measured part starts.
bench_pg_stats_on() {
	[ "${PG_STATS:-0}" = 1 ] || return 0
	psql -X -q -d fleet_bench -c "CREATE EXTENSION pg_stat_statements" >/dev/null
}
bench_pg_stats_reset() {
	[ "${PG_STATS:-0}" = 1 ] || return 0
	psql -X -q -t -A -d fleet_bench -c "SELECT pg_stat_statements_reset()" >/dev/null
}
# bench_pg_stats_print N UNIT: the statements by time since the reset, and
# how many there were per UNIT (N of them).
bench_pg_stats_print() {
	[ "${PG_STATS:-0}" = 1 ] || return 0
	echo "PostgreSQL, per statement (pg_stat_statements):"
	psql -X -q -d fleet_bench -P pager=off -c "SELECT calls,
		round((total_exec_time + total_plan_time)::numeric, 0) AS ms,
		round(((total_exec_time + total_plan_time) / calls)::numeric, 3) AS ms_per_call,
		rows, left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query
		FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 25"
	psql -X -q -t -A -d fleet_bench -c "SELECT 'statements: ' || sum(calls) || ', ' ||
		round(sum(calls) / greatest($1, 1)::numeric, 1) || ' per $2' FROM pg_stat_statements"
}
