#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A highly available PostgreSQL for fleetd on one machine, with Debian's
# pg_auto_failover (packages pg-auto-failover-cli and
# postgresql-15-auto-failover): a monitor, a primary and two secondaries
# on loopback, every commit waiting for at least one secondary
# (number_sync_standbys = 1), automatic failover. For trying the set-up of
# docs/ha.md and for tests/integration/test_pg_failover.sh; in production
# each runs on its own host (docs/ha.md). Why two secondaries and not one:
# docs/internals/ha-topology.md.
#
#   pg_auto_failover.sh up DIR MONITOR_PORT NODE1_PORT NODE2_PORT NODE3_PORT
#       creates (or restarts) the formation in DIR, waits until nodes 2
#       and 3 are streaming secondaries, and prints the libpq connection
#       string for fleetd: all three hosts, target_session_attrs=read-write.
#   pg_auto_failover.sh failover DIR
#       a switchover through the monitor (pg_autoctl perform failover);
#       waits until another node is primary and the others secondaries.
#   pg_auto_failover.sh crash DIR
#       a host failure: SIGKILL to the primary's keeper and PostgreSQL; the
#       monitor notices and promotes the secondary (the monitor's health
#       checks are shortened by `up`, see below); waits until another
#       node is primary, then restarts the crashed node, which rejoins as
#       a secondary.
#   pg_auto_failover.sh state DIR     the monitor's view of the nodes
#   pg_auto_failover.sh primary DIR   the port of the current primary
#   pg_auto_failover.sh down DIR      stops every process it started, by pid
#
# As root, PostgreSQL and pg_autoctl run as the user postgres (PostgreSQL
# refuses root) and DIR belongs to it. Authentication is `trust` on
# loopback and TLS is off: a local demonstration, never a deployment.
set -euo pipefail

PG_BINDIR=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
DBNAME=${FLEET_HA_DBNAME:-fleet}

usage() {
	sed -n '/^#   pg_auto/,/^#   pg_auto_failover.sh down/p' "$0" | sed 's/^# //' >&2
	exit 2
}

# Runs as the owner of the cluster, without the caller's PG* settings
# (pg_autoctl would take PGHOST, PGPORT or PGDATA for its own).
as_owner() {
	local env=(env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE -u PGDATA
		-u PGSERVICE XDG_CONFIG_HOME="$dir/config"
		XDG_DATA_HOME="$dir/state")
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "${env[@]}" "$@"
	else
		"${env[@]}" "$@"
	fi
}

ctl() { as_owner pg_autoctl "$@"; }

monitor_uri() {
	echo "postgres://autoctl_node@127.0.0.1:$(cat "$dir/monitor.port")/pg_auto_failover?sslmode=disable"
}

# start NAME CMD...: one long-running pg_autoctl in the background, as
# the owner, its own pid (not runuser's) in DIR/NAME.pid.
start() {
	local name=$1 pid
	shift
	pid=$(as_owner bash -c '"$@" >>"$0" 2>&1 </dev/null & echo $!' \
		"$dir/$name.log" "$@")
	echo "$pid" >"$dir/$name.pid"
}

running() {
	[ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null
}

state() { ctl show state --pgdata "$dir/monitor"; }

# wait_state TIMEOUT_S PATTERN: until the monitor's table matches.
wait_state() {
	local i
	for ((i = 0; i < $1 * 2; i++)); do
		if state 2>/dev/null | grep -Eq "$2"; then
			return 0
		fi
		sleep 0.5
	done
	echo "pg_auto_failover: timed out after $1 s waiting for /$2/" >&2
	state >&2 || true
	return 1
}

# settled: one node is primary and every other one a secondary, each in
# the state the monitor assigned it.
settled() {
	state 2>/dev/null | awk -F'|' -v nodes="$(cat "$dir/nodes")" '
		NR > 2 { gsub(/ /, "", $6); gsub(/ /, "", $7) }
		NR > 2 && $6 == $7 && $6 == "primary" { p++ }
		NR > 2 && $6 == $7 && $6 == "secondary" { s++ }
		END { exit !(p == 1 && p + s == nodes) }'
}

# joined N: node N is a secondary, as the monitor assigned it.
joined() {
	state 2>/dev/null | grep -Eq "^ *node$1 .*\| *secondary *\| *secondary *$"
}

# wait_checkpointing TIMEOUT_S CMD...: until CMD succeeds. A joining
# node's basebackup waits for a checkpoint (spread over minutes by
# default): ask the primary for one meanwhile.
wait_checkpointing() {
	local i port timeout=$1
	shift
	for ((i = 0; i < timeout * 2; i++)); do
		if "$@"; then
			return 0
		fi
		port=$(primary_port 2>/dev/null || true)
		[ -z "$port" ] || as_owner "$PG_BINDIR/psql" -X -q -h 127.0.0.1 \
			-p "$port" -U postgres -d postgres -c CHECKPOINT \
			>/dev/null 2>&1 || true
		sleep 0.5
	done
	echo "pg_auto_failover: timed out after $timeout s waiting for: $*" >&2
	state >&2 || true
	return 1
}

# wait_settled TIMEOUT_S: until one node is primary and the others
# secondaries.
wait_settled() { wait_checkpointing "$1" settled; }

# The port of the node that takes writes now.
primary_port() {
	state | awk -F'|' '$5 ~ /^ *read-write *$/ &&
		$7 ~ /^ *(single|wait_primary|primary) *$/ {
		split($3, hp, ":"); gsub(/ /, "", hp[2]); print hp[2]; exit }' |
		grep .
}

# monitor_sql: SQL on stdin, run on the monitor's database.
monitor_sql() {
	as_owner "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 \
		-p "$(cat "$dir/monitor.port")" -U postgres -d pg_auto_failover \
		>/dev/null
}

up() {
	local mport=$1 n port ports
	shift
	ports=("$@")
	mkdir -p "$dir"
	echo "$mport" >"$dir/monitor.port"
	echo "${#ports[@]}" >"$dir/nodes"
	touch "$dir/monitor.log" "$dir/failover.log"
	for n in "${!ports[@]}"; do
		touch "$dir/node$((n + 1)).log"
	done
	[ "$(id -u)" != 0 ] || chown -R postgres:postgres "$dir"
	chmod 0711 "$dir"
	if [ ! -f "$dir/monitor/PG_VERSION" ]; then
		ctl create monitor --pgctl "$PG_BINDIR/pg_ctl" \
			--pgdata "$dir/monitor" --pgport "$mport" \
			--hostname 127.0.0.1 --auth trust --no-ssl \
			>>"$dir/monitor.log" 2>&1
	fi
	running monitor || start monitor pg_autoctl run --pgdata "$dir/monitor"
	# Faster failure detection than the defaults (20 s unhealthy, 30 s to
	# demote), for a demonstration and tests; docs/ha.md discusses them.
	wait_state 30 "Name"
	monitor_sql <<'SQL'
ALTER SYSTEM SET pgautofailover.health_check_period = 1000;
ALTER SYSTEM SET pgautofailover.health_check_timeout = 1000;
ALTER SYSTEM SET pgautofailover.health_check_max_retries = 1;
ALTER SYSTEM SET pgautofailover.health_check_retry_delay = 500;
ALTER SYSTEM SET pgautofailover.node_considered_unhealthy_timeout = 5000;
SELECT pg_reload_conf();
SQL
	# One node at a time: node 1 becomes the primary, each other one
	# joins it as a secondary.
	for n in "${!ports[@]}"; do
		port=${ports[$n]}
		n=$((n + 1))
		running "node$n" && continue
		if [ -f "$dir/node$n/PG_VERSION" ]; then
			start "node$n" pg_autoctl run --pgdata "$dir/node$n"
		else
			start "node$n" pg_autoctl create postgres \
				--pgctl "$PG_BINDIR/pg_ctl" --pgdata "$dir/node$n" \
				--pgport "$port" --hostname 127.0.0.1 --name "node$n" \
				--auth trust --no-ssl --dbname "$DBNAME" \
				--monitor "$(monitor_uri)" --run
		fi
		if [ "$n" = 1 ]; then
			wait_state 60 "^ *node1 .*\| *(wait_primary|single|primary) *\|"
		else
			wait_checkpointing 90 joined "$n"
		fi
	done
	wait_settled 60
	# Every commit waits for one of the two secondaries, also while the
	# monitor is in the middle of a failover (docs/internals/ha-topology.md).
	monitor_sql <<'SQL'
SELECT pgautofailover.set_formation_number_sync_standbys('default', 1);
SQL
	wait_settled 60
	echo "host=$(printf '127.0.0.1,%.0s' "${ports[@]}" | sed 's/,$//')" \
		"port=$(IFS=,; echo "${ports[*]}")" \
		"dbname=$DBNAME user=postgres target_session_attrs=read-write connect_timeout=3"
}

failover() {
	local before after
	before=$(primary_port)
	ctl perform failover --pgdata "$dir/monitor" --wait 60 >>"$dir/failover.log" 2>&1
	wait_settled 90
	after=$(primary_port)
	if [ "$before" = "$after" ]; then
		echo "pg_auto_failover: the primary is still on port $after" >&2
		return 1
	fi
}

# tree_pids PID: PID and all its descendants.
tree_pids() {
	local c
	echo "$1"
	for c in $(pgrep -P "$1" 2>/dev/null); do
		tree_pids "$c"
	done
}

crash() {
	local port name pid pm now i
	port=$(primary_port)
	name=$(state | awk -F'|' -v p="127.0.0.1:$port" \
		'{ gsub(/ /, "", $1); gsub(/ /, "", $3) } $3 == p { print $1 }')
	pid=$(cat "$dir/$name.pid")
	pm=$(head -n 1 "$dir/$name/postmaster.pid")
	# the keeper, its services (one would restart PostgreSQL) and the
	# postmaster, all at once: a host that is gone
	kill -KILL $(tree_pids "$pid") "$pm" 2>/dev/null || true
	for ((i = 0; i < 180; i++)); do
		now=$(primary_port 2>/dev/null || true)
		[ -z "$now" ] || [ "$now" = "$port" ] || break
		sleep 0.5
	done
	if [ -z "$now" ] || [ "$now" = "$port" ]; then
		echo "pg_auto_failover: no other node became primary in 90 s" >&2
		state >&2 || true
		return 1
	fi
	# the crashed node's leftovers (its backends die with the postmaster)
	for ((i = 0; i < 60; i++)); do
		kill -0 "$pm" 2>/dev/null || break
		sleep 0.5
	done
	rm -f "$dir/$name.pid"
	start "$name" pg_autoctl run --pgdata "$dir/$name"
	wait_settled 90
}

down() {
	local name pid i
	for name in $(seq -f 'node%.0f' "$(cat "$dir/nodes" 2>/dev/null || echo 0)" -1 1) monitor; do
		[ -f "$dir/$name.pid" ] || continue
		pid=$(cat "$dir/$name.pid")
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 60; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		kill -KILL "$pid" 2>/dev/null || true
		rm -f "$dir/$name.pid"
		# pg_autoctl stops its PostgreSQL; make sure after a KILL
		if [ -f "$dir/$name/postmaster.pid" ]; then
			as_owner "$PG_BINDIR/pg_ctl" -D "$dir/$name" -m immediate \
				-w -t 30 stop >/dev/null 2>&1 || true
		fi
	done
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || usage
command -v pg_autoctl >/dev/null || {
	echo "pg_autoctl not found: apt-get install pg-auto-failover-cli postgresql-15-auto-failover" >&2
	exit 1
}
dir=$(mkdir -p "$dir" && cd "$dir" && pwd)
case $cmd in
up) [ $# = 6 ] || usage; up "${@:3}" ;;
failover) failover ;;
crash) crash ;;
state) state ;;
primary) primary_port ;;
down) down ;;
*) usage ;;
esac
