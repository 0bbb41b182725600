#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs enroll_bench against a private fleetd: a PostgreSQL cluster in a
# temporary directory, migrations, `fleetd pki init`, fleetd with one net
# worker per core (or $WORKERS), an enrollment token with enough uses; prints
# the figures and the number of workers, and removes everything on exit.
#   tests/bench/enroll_bench.sh BUILD_DIR [enroll_bench args, e.g. --threads 16]
# Environment: WORKERS, JOB_THREADS (fleetd config), THREADS, SECONDS_RUN,
# BENCH_PG_FAST=1 (PostgreSQL without fsync; durable by default).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: enroll_bench.sh BUILD_DIR [bench args]}" && pwd)
shift
. "$here/bench_env.sh"

bench=$build/tests/bench/enroll_bench
[ -x "$bench" ] || bench=$build/enroll_bench
[ -x "$bench" ] || { echo "enroll_bench not built in $build" >&2; exit 1; }

bench_setup enroll-bench "$build"
workers=${WORKERS:-$(nproc)}
bench_start_fleetd "workers = $workers
job_threads = ${JOB_THREADS:-4}"
token=$(bench_enroll_token 1000000)

echo "fleetd: $workers net workers x ${JOB_THREADS:-4} job threads on $(nproc) cores" \
	"($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))"
"$bench" --url "$url" --ca "$T/pki/ca-bundle.pem" --token "$token" \
	--threads "${THREADS:-16}" --seconds "${SECONDS_RUN:-10}" "$@"
echo "devices in the database: $(bench_db_count devices)"
