#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs enroll_bench against a private fleetd: a PostgreSQL cluster in a
# temporary directory, migrations, `fleetd pki init`, fleetd with one net
# worker per core (or $WORKERS), an enrollment token with enough uses; prints
# the figures of each phase (a new TLS connection per enrollment, then
# keep-alive connections; see enroll_bench.c) with the CPU of fleetd's
# processes and PostgreSQL, and removes everything on exit.
#   tests/bench/enroll_bench.sh BUILD_DIR [enroll_bench args, e.g. --threads 16]
# Environment: WORKERS, JOB_THREADS (fleetd config), THREADS (clients of the
# new-connection phases), CONNECTIONS (keep-alive connections, default
# THREADS), MODES (default new,keepalive; add resumed for TLS resumption),
# SECONDS_RUN (per phase), BENCH_PG_FAST=1 (PostgreSQL without fsync;
# durable by default), PERF=FILE (a `perf record -g` of fleetd's processes
# and PostgreSQL's over the whole run, docs/internals/enroll-rate.md),
# PG_STATS=1 (pg_stat_statements: PostgreSQL's time per statement, printed
# after the run), RESERVE_ASYNC=1 (the database's default synchronous_commit
# off; the token reservation commits asynchronously anyway since 1c6f5de,
# once per batch since session 23, so this now changes only the other
# statements; enrollment records stay durable: their transactions set
# synchronous_commit on themselves), IDEMPOTENCY=1 (an
# Idempotency-Key on every request, as fleet-agent sends), SQL (a
# statement run on the bench database before fleetd starts, e.g. a
# migration's change undone for a before/after pair).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: enroll_bench.sh BUILD_DIR [bench args]}" && pwd)
shift
. "$here/bench_env.sh"

bench=$build/tests/bench/enroll_bench
[ -x "$bench" ] || bench=$build/enroll_bench
[ -x "$bench" ] || { echo "enroll_bench not built in $build" >&2; exit 1; }

bench_setup enroll-bench "$build" "$(bench_pg_stats_opts)"
bench_pg_stats_on
if [ "${RESERVE_ASYNC:-0}" = 1 ]; then
	psql -X -q -d fleet_bench -c "ALTER DATABASE fleet_bench SET synchronous_commit TO off" >/dev/null
	echo "PostgreSQL: synchronous_commit off by default (RESERVE_ASYNC=1); enrollment records durable"
fi
if [ -n "${SQL:-}" ]; then
	psql -X -q -v ON_ERROR_STOP=1 -d fleet_bench -c "$SQL" >/dev/null
	echo "PostgreSQL: ran SQL=$SQL"
fi
workers=${WORKERS:-$(nproc)}
bench_start_fleetd "workers = $workers
job_threads = ${JOB_THREADS:-4}"
token=$(bench_enroll_token 1000000)
pg_pid=$(head -n1 "$T/pg/data/postmaster.pid" 2>/dev/null || echo 0)

echo "fleetd: $workers net workers x ${JOB_THREADS:-4} job threads on $(nproc) cores" \
	"($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))"
echo "before the run: $(uptime)"
perf_pid=
if [ -n "${PERF:-}" ]; then
	pids=$(pgrep -d, -P "$FLEETD_PID"),$(pgrep -d, -P "$pg_pid")
	perf record -q -g -o "$PERF" -p "$pids" >/dev/null 2>&1 &
	perf_pid=$!
	BENCH_PIDS+=("$perf_pid")
fi
threads=${THREADS:-16}
"$bench" --url "$url" --ca "$T/pki/ca-bundle.pem" --token "$token" \
	--threads "$threads" --connections "${CONNECTIONS:-$threads}" \
	--modes "${MODES:-new,keepalive}" --seconds "${SECONDS_RUN:-10}" \
	--fleetd-pid "$FLEETD_PID" --postgres-pid "$pg_pid" \
	--idempotency "${IDEMPOTENCY:-0}" "$@"
if [ -n "$perf_pid" ]; then
	kill -INT "$perf_pid" 2>/dev/null || true
	wait "$perf_pid" 2>/dev/null || true
fi
if [ "${PG_STATS:-0}" = 1 ]; then
	echo
	bench_pg_stats_print "$(bench_db_count devices)" enrollment
fi
echo
echo "fleetd warnings and errors in its log: $(grep -c -E ' (warn|error) ' "$T/fleetd.log" || true)"
grep -m3 -E ' (warn|error) ' "$T/fleetd.log" || true
echo "devices in the database: $(bench_db_count devices)"
echo "after the run: $(uptime)"
