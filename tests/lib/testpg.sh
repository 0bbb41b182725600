#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The test suite's PostgreSQL: `start ENVFILE` makes a cluster in a fresh
# temporary directory and writes ENVFILE (PGHOST and friends) for the tests;
# `stop ENVFILE` stops it and removes the directory. ctest runs these as the
# setup and cleanup of the `testpg` fixture, so cleanup runs even when tests
# fail; tests/run.sh also calls stop on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/pgcluster.sh"
. "$here/../../deploy/packages.sh"

action=$1 envfile=$2

case $action in
start)
	# As root, fleetd runs its children as this user: every integration
	# test needs it, also when ctest is run without tests/run.sh.
	fleet_create_user
	if [ -f "$envfile" ]; then
		. "$envfile"
		pgcluster_stop "$FLEET_TESTPG_DIR" immediate
		rm -rf "$FLEET_TESTPG_DIR" "$envfile"
	fi
	dir=$(mktemp -d /tmp/fleet-testpg.XXXXXX)
	pgcluster_init "$dir"
	pgcluster_start "$dir" "$PGCLUSTER_TEST_OPTIONS"
	cat >"$envfile" <<EOT
export FLEET_TESTPG_DIR=$dir
export PGHOST=$dir
export PGUSER=postgres
export PGDATABASE=postgres
EOT
	echo "test PostgreSQL running in $dir"
	;;
stop)
	if [ -f "$envfile" ]; then
		. "$envfile"
		pgcluster_stop "$FLEET_TESTPG_DIR" immediate
		rm -rf "$FLEET_TESTPG_DIR"
		rm -f "$envfile"
		echo "test PostgreSQL removed"
	fi
	;;
*)
	echo "usage: testpg.sh start|stop ENVFILE" >&2
	exit 2
	;;
esac
