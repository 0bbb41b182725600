#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Stops everything deploy/local/up.sh started; keeps the data in var/.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
. tests/lib/pgcluster.sh
. tests/lib/wait.sh
var=$top/var

stop_pidfile() {
	local file=$1 name=$2
	[ -f "$file" ] || return 0
	local pid
	pid=$(cat "$file")
	if kill -0 "$pid" 2>/dev/null; then
		echo "stopping $name (pid $pid)"
		kill -TERM "$pid"
		wait_for "$name exits" 15 not kill -0 "$pid" ||
			kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$file"
}

for f in "$var"/agents/*/agent.pid; do
	[ -e "$f" ] && stop_pidfile "$f" "agent $(basename "$(dirname "$f")")"
done
stop_pidfile "$var/fleetd.pid" fleetd

for pgdir in "$var/pg" /var/lib/fleetd-local/$(echo "$top" | sha256sum | cut -c1-12)/pg; do
	if [ -f "$pgdir/data/postmaster.pid" ]; then
		echo "stopping PostgreSQL in $pgdir"
		pgcluster_stop "$pgdir"
	fi
done
echo "stopped; data kept in $var"
