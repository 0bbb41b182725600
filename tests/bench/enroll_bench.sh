#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs enroll_bench against a private fleetd: a PostgreSQL cluster in a
# temporary directory, migrations, `fleetd pki init`, fleetd with one net
# worker per core (or $WORKERS), an enrollment token with enough uses; prints
# the figures and the number of workers, and removes everything on exit.
#   tests/bench/enroll_bench.sh BUILD_DIR [enroll_bench args, e.g. --threads 16]
# Environment: WORKERS, JOB_THREADS (fleetd config), THREADS, SECONDS_RUN.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: enroll_bench.sh BUILD_DIR [bench args]}" && pwd)
shift
. "$here/../lib/pgcluster.sh"

export PATH="$build/fleetd:$PATH"
bench=$build/tests/bench/enroll_bench
[ -x "$bench" ] || bench=$build/enroll_bench
[ -x "$bench" ] || { echo "enroll_bench not built in $build" >&2; exit 1; }

T=$(mktemp -d /tmp/fleet-enroll-bench.XXXXXX)
chmod 0711 "$T" # the cluster below runs as postgres when we are root
FLEETD_PID=
cleanup() {
	set +e
	if [ -n "$FLEETD_PID" ]; then
		kill -TERM "$FLEETD_PID" 2>/dev/null
		for _ in $(seq 1 100); do
			kill -0 "$FLEETD_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$FLEETD_PID" 2>/dev/null
		wait "$FLEETD_PID" 2>/dev/null
	fi
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

pgcluster_init "$T/pg"
pgcluster_start "$T/pg" "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
export PGHOST=$T/pg PGUSER=postgres
createdb fleet_bench
export FLEETD_DATABASE="host=$T/pg user=postgres dbname=fleet_bench"
fleetd migrate >/dev/null
fleetd pki init --dir "$T/pki" --server-name localhost --server-name 127.0.0.1 >/dev/null

workers=${WORKERS:-$(nproc)}
# start_fleetd: fresh free ports; fails when fleetd does not become healthy.
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
workers = $workers
job_threads = ${JOB_THREADS:-4}
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
# A port found free can be taken by someone else before fleetd binds it.
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
	-H 'Content-Type: application/json' --data '{"uses": 1000000, "expires_in": "1h"}' \
	"$url/api/v1/tokens" | jq -r .token)

echo "fleetd: $workers net workers x ${JOB_THREADS:-4} job threads on $(nproc) cores" \
	"($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))"
"$bench" --url "$url" --ca "$T/pki/ca-bundle.pem" --token "$token" \
	--threads "${THREADS:-16}" --seconds "${SECONDS_RUN:-10}" "$@"
echo "devices in the database: $(psql -X -q -t -A -d fleet_bench -c 'SELECT count(*) FROM devices')"
