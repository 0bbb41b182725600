#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A highly available PostgreSQL for fleetd on one machine, with Debian's
# pg_auto_failover (packages pg-auto-failover-cli and
# postgresql-15-auto-failover): a monitor, a primary and a secondary on
# loopback, synchronous replication, automatic failover. For trying the
# set-up of docs/ha.md and for tests/integration/test_pg_failover.sh; in
# production the three run on three hosts (docs/ha.md).
#
#   pg_auto_failover.sh up DIR MONITOR_PORT NODE1_PORT NODE2_PORT
#       creates (or restarts) the formation in DIR, waits until node 2 is
#       a streaming secondary, and prints the libpq connection string for
#       fleetd: both hosts, target_session_attrs=read-write.
#   pg_auto_failover.sh failover DIR
#       a switchover through the monitor (pg_autoctl perform failover);
#       waits until the other node is primary and the old one secondary.
#   pg_auto_failover.sh crash DIR
#       a host failure: SIGKILL to the primary's keeper and PostgreSQL; the
#       monitor notices and promotes the secondary (the monitor's health
#       checks are shortened by `up`, see below); waits until it is
#       primary, then restarts the crashed node, which rejoins as secondary.
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

# A basebackup waits for a checkpoint (spread over minutes by default):
# ask the primary for one now while node 2 catches up.
checkpoint_until_secondary() {
	local i port
	for ((i = 0; i < 120; i++)); do
		if state 2>/dev/null | grep -Eq "^ *node2 .*\| *secondary *\| *secondary *$"; then
			return 0
		fi
		port=$(primary_port 2>/dev/null || true)
		[ -z "$port" ] || as_owner "$PG_BINDIR/psql" -X -q -h 127.0.0.1 \
			-p "$port" -U postgres -d postgres -c CHECKPOINT \
			>/dev/null 2>&1 || true
		sleep 0.5
	done
	echo "pg_auto_failover: node2 did not become a secondary in 60 s" >&2
	state >&2 || true
	return 1
}

# The port of the node that takes writes now.
primary_port() {
	state | awk -F'|' '$5 ~ /^ *read-write *$/ &&
		$7 ~ /^ *(single|wait_primary|primary) *$/ {
		split($3, hp, ":"); gsub(/ /, "", hp[2]); print hp[2]; exit }' |
		grep .
}

up() {
	local mport=$1 p1=$2 p2=$3 n port
	mkdir -p "$dir"
	echo "$mport" >"$dir/monitor.port"
	touch "$dir/monitor.log" "$dir/node1.log" "$dir/node2.log" \
		"$dir/failover.log"
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
	as_owner "$PG_BINDIR/psql" -X -q -h 127.0.0.1 -p "$mport" -U postgres \
		-d pg_auto_failover >/dev/null <<'SQL'
ALTER SYSTEM SET pgautofailover.health_check_period = 1000;
ALTER SYSTEM SET pgautofailover.health_check_timeout = 1000;
ALTER SYSTEM SET pgautofailover.health_check_max_retries = 1;
ALTER SYSTEM SET pgautofailover.health_check_retry_delay = 500;
ALTER SYSTEM SET pgautofailover.node_considered_unhealthy_timeout = 5000;
SELECT pg_reload_conf();
SQL
	for n in 1 2; do
		running "node$n" && continue
		port=$p1
		[ "$n" = 1 ] || port=$p2
		if [ -f "$dir/node$n/PG_VERSION" ]; then
			start "node$n" pg_autoctl run --pgdata "$dir/node$n"
		else
			start "node$n" pg_autoctl create postgres \
				--pgctl "$PG_BINDIR/pg_ctl" --pgdata "$dir/node$n" \
				--pgport "$port" --hostname 127.0.0.1 --name "node$n" \
				--auth trust --no-ssl --dbname "$DBNAME" \
				--monitor "$(monitor_uri)" --run
		fi
		# node 1 first: it becomes the primary
		[ "$n" = 2 ] || wait_state 60 "^ *node1 .*\| *(wait_primary|single|primary) *\|"
	done
	checkpoint_until_secondary
	wait_state 60 "\| *primary *\| *primary *$"
	echo "host=127.0.0.1,127.0.0.1 port=$p1,$p2 dbname=$DBNAME user=postgres target_session_attrs=read-write connect_timeout=3"
}

failover() {
	local before after
	before=$(primary_port)
	ctl perform failover --pgdata "$dir/monitor" --wait 60 >>"$dir/failover.log" 2>&1
	wait_state 60 "\| *primary *\| *primary *$"
	after=$(primary_port)
	if [ "$before" = "$after" ]; then
		echo "pg_auto_failover: the primary is still on port $after" >&2
		return 1
	fi
	wait_state 60 "\| *secondary *\| *secondary *$"
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
	wait_state 90 "\| *secondary *\| *secondary *$"
}

down() {
	local name pid i
	for name in node2 node1 monitor; do
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
up) [ $# = 5 ] || usage; up "$3" "$4" "$5" ;;
failover) failover ;;
crash) crash ;;
state) state ;;
primary) primary_port ;;
down) down ;;
*) usage ;;
esac
