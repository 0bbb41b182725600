# SPDX-License-Identifier: Apache-2.0
# A private PostgreSQL cluster: initdb in a directory, a Unix socket inside
# it, no TCP, trust auth. PostgreSQL refuses to run as root, so as root the
# cluster runs as the `postgres` user and the directory belongs to it.
# The directory (the socket's) is 0711: fleetd's net workers, which run as
# an unprivileged user when fleetd is started as root, must reach the
# socket; they cannot list the directory, and data/ stays 0700.
# Sourced by tests/lib/testpg.sh and deploy/local/up.sh.

PG_BINDIR=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
# The test clusters' settings: throwaway data, no durability needed.
PGCLUSTER_TEST_OPTIONS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"

pg_as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# pgcluster_init DIR: creates the cluster in DIR/data unless it exists.
pgcluster_init() {
	local dir=$1
	mkdir -p "$dir"
	if [ "$(id -u)" = 0 ]; then
		chown postgres:postgres "$dir"
	fi
	chmod 0711 "$dir"
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		pg_as_owner "$PG_BINDIR/initdb" -D "$dir/data" -A trust \
			-U postgres --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 || {
			cat "$dir/initdb.log" >&2
			return 1
		}
	fi
}

# pgcluster_start DIR [EXTRA_POSTGRES_OPTIONS]
pgcluster_start() {
	local dir=$1 extra=${2:-}
	if pg_as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
		return 0
	fi
	pg_as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
		-o "-k $dir -c listen_addresses='' -c max_connections=400 $extra" \
		start >/dev/null || {
		tail -n 20 "$dir/postgres.log" >&2
		return 1
	}
}

pgcluster_stop() {
	local dir=$1 mode=${2:-fast}
	if [ -f "$dir/data/postmaster.pid" ]; then
		pg_as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 \
			stop >/dev/null 2>&1 || true
	fi
}
