#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Campaign benchmark (issue 12): a private PostgreSQL and fleetd, COUNT
# fleet-sim devices online (default 10,000, split over SIMS fleet-sim
# processes started at START_RATE devices a second each), then one
# firmware campaign over 4 phases (PHASES, default 1,10,50,100) with zero
# soak and a small artifact (ART_SIZE bytes, default 4096), signed offline
# with fleetctl and uploaded through the API. Prints, from the rows fleetd
# wrote (PostgreSQL):
#   - per phase: its devices, and the time from its release (the
#     phase_released event's time) to the first and to the last offer sent
#     (deployment_devices.offered_at: set when the offer is taken for the
#     device's session), and to its last commit;
#   - the end-to-end duration of the campaign: from the create call to the
#     completed event, and to the last device committed.
# Figures only; nothing is timed against a limit (the issue's target: the
# last offer within 1 s of a release). Removes everything on exit.
#   tests/bench/campaign_bench.sh BUILD_DIR [COUNT]
# Build without sanitizers (cmake -DCMAKE_BUILD_TYPE=Release). Environment:
# WORKERS (fleetd net workers, default 2), JOB_THREADS (default 8), SIMS
# (fleet-sim processes, default 2), START_RATE (default 150, as
# config_bench), INTERVAL_MS (campaign_interval_ms, default 200),
# MIN_SUCCESS (every phase's gate, default 1.0: each phase waits for its
# last device), DL_THREADS (fleet-sim download threads, default 8),
# ONLINE_TIMEOUT (default 600), CAMPAIGN_TIMEOUT (default 600),
# BENCH_PG_FAST=1 (bench_env.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: campaign_bench.sh BUILD_DIR [COUNT]}" && pwd)
count=${2:-${COUNT:-10000}}
sims=${SIMS:-2}
phases=${PHASES:-1,10,50,100}
. "$here/bench_env.sh"

for p in agent/fleet-sim fleetd/ctl/fleetctl; do
	[ -x "$build/$p" ] || {
		echo "$p not built in $build" >&2
		exit 1
	}
done
export PATH="$build/fleetd/ctl:$PATH"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
bench_setup campaign-bench "$build" "-c max_connections=200"
workers=${WORKERS:-2}
job_threads=${JOB_THREADS:-8}
bench_start_fleetd "workers = $workers
job_threads = $job_threads
heartbeat_interval = 30s
heartbeat_timeout = 90s
campaign_interval_ms = ${INTERVAL_MS:-200}"
token=$(bench_enroll_token $((count + 10)))
admin=$(fleetd token create --role admin --name campaign-bench)
echo "fleetd: $workers net worker(s), job_threads $job_threads, campaign_interval_ms ${INTERVAL_MS:-200}, on $(nproc) cores; $count simulated devices in $sims fleet-sim process(es)"

q() { psql -X -q -t -A -d fleet_bench -c "$1"; }
# api METHOD PATH [curl args...]: prints the body; "code seconds" in $T/status.
api() {
	local m=$1 p=$2
	shift 2
	curl -sS --max-time 300 --cacert "$T/pki/ca-bundle.pem" -X "$m" \
		-H "Authorization: Bearer $admin" -o "$T/body" \
		-w '%{http_code} %{time_total}' "$@" "$url$p" >"$T/status"
	cat "$T/body"
}
failed() {
	echo "$1: $(cat "$T/status" 2>/dev/null) $(cat "$T/body" 2>/dev/null)" >&2
	tail -n 5 "$T/fleetd.log" >&2
	exit 1
}
code() { cut -d' ' -f1 "$T/status"; }

# ---- a small release, signed offline ------------------------------------
mkdir -p "$T/rel/fw"
for k in k1 k2; do
	fleetctl keys gen --out "$T/rel/$k.key" >/dev/null </dev/null
done
echo 2.0 >"$T/rel/fw/VERSION"
head -c "${ART_SIZE:-4096}" /dev/urandom >"$T/rel/fw/image"
tar -cf "$T/rel/fw.tar" -C "$T/rel/fw" .
fleetctl release sign --key "$T/rel/k1.key" --key "$T/rel/k2.key" --name bench-fw \
	--version 2.0 --version-int 200 --hw sim --installer dir-ab --expires 1d \
	--out "$T/rel/fw.json" "$T/rel/fw.tar" >/dev/null </dev/null
art=$(api POST /api/v1/artifacts -H 'Content-Type: application/json' \
	--data "{\"envelope\": $(cat "$T/rel/fw.json")}" | jq -r .id)
[ "$(code)" = 201 ] || failed "artifact register"
api PUT "/api/v1/artifacts/$art/file" -H 'Content-Type: application/octet-stream' \
	--data-binary "@$T/rel/fw.tar" >/dev/null
[ "$(code)" = 200 ] || failed "artifact upload"
echo "artifact: $(stat -c %s "$T/rel/fw.tar") bytes (dir-ab tar), signed with 2 keys"

# ---- devices --------------------------------------------------------------
per=$(((count + sims - 1) / sims))
left=$count
for ((i = 0; i < sims; i++)); do
	n=$((left < per ? left : per))
	left=$((left - n))
	bench_spawn fleet-sim --count "$n" --token "$token" --api "$url" \
		--ca "$T/pki/ca-bundle.pem" --state "$T/sim$i" --threads 8 \
		--model sim --fw 1.0 --labels bench=campaign \
		--update-keys "$T/rel/k1.key.pub" --update-keys "$T/rel/k2.key.pub" \
		--update-threshold 2 --download-threads "${DL_THREADS:-8}" \
		--start-rate "${START_RATE:-150}" --status-file "$T/sim$i.json" \
		>"$T/sim$i.out" 2>"$T/sim$i.log"
done
online_total() {
	local i total=0 o
	for ((i = 0; i < sims; i++)); do
		o=$(jq -r .online "$T/sim$i.json" 2>/dev/null || echo 0)
		total=$((total + ${o:-0}))
	done
	echo "$total"
}
all_online() { [ "$(online_total)" -ge "$count" ]; }
t_on=$(date +%s.%N)
wait_for "all $count devices online" $((${ONLINE_TIMEOUT:-600} + count / 20)) all_online || {
	echo "only $(online_total) of $count online" >&2
	tail -n 3 "$T"/sim*.out "$T"/sim*.log "$T/fleetd.log" >&2
	exit 1
}
echo "devices online: $(q "SELECT count(*) FROM device_sessions") sessions, after $(awk -v a="$t_on" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"

# ---- the campaign -----------------------------------------------------------
echo "load average before the campaign: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared)"
t0=$(date +%s.%N)
cid=$(api POST /api/v1/campaigns -H 'Content-Type: application/json' \
	--data "{\"name\": \"bench\", \"kind\": \"firmware\", \"artifact_id\": \"$art\",
		\"selector\": \"bench=campaign\", \"phases\": \"$phases\",
		\"gate\": {\"min_success\": ${MIN_SUCCESS:-1.0}, \"soak_seconds\": 0},
		\"start\": true}" | jq -r .id)
[ "$(code)" = 201 ] || failed "campaign create"
echo "campaign create call: $(cut -d' ' -f2 "$T/status") s (phases $phases, zero soak, min_success ${MIN_SUCCESS:-1.0})"
status() { q "SELECT status FROM campaigns WHERE id = '$cid'"; }
done_() { case "$(status)" in completed | paused | aborted) return 0 ;; esac; return 1; }
wait_for "campaign done" "${CAMPAIGN_TIMEOUT:-600}" done_ || true
echo "campaign status: $(status); load average now: $(cut -d' ' -f1-3 /proc/loadavg)"

dep=$(q "SELECT deployment_id FROM campaigns WHERE id = '$cid'")
q "SELECT 'phase ' || e.phase + 1 || ': ' || count(x.*) || ' devices; release -> first offer ' ||
	to_char(extract(epoch FROM min(x.offered_at) - e.at), 'FM990.000') ||
	' s, -> last offer ' || to_char(extract(epoch FROM max(x.offered_at) - e.at), 'FM990.000') ||
	' s, -> last commit ' || coalesce(to_char(extract(epoch FROM max(x.updated_at)
		FILTER (WHERE x.state = 'committed') - e.at), 'FM990.000'), '-') ||
	' s (' || count(*) FILTER (WHERE x.state = 'committed') || ' committed)'
   FROM campaign_events e
   JOIN campaign_devices c ON c.campaign_id = e.campaign_id AND c.phase = e.phase
   LEFT JOIN deployment_devices x ON x.deployment_id = '$dep' AND x.device_id = c.device_id
   WHERE e.campaign_id = '$cid' AND e.kind = 'phase_released'
   GROUP BY e.id, e.phase, e.at ORDER BY e.phase"
q "SELECT 'end to end: create call -> completed event ' ||
	coalesce(to_char(extract(epoch FROM max(at) FILTER (WHERE kind = 'completed')) - $t0,
	'FM99990.000'), '-') || ' s'
   FROM campaign_events WHERE campaign_id = '$cid'"
q "SELECT 'end to end: create call -> last device committed ' ||
	to_char(extract(epoch FROM max(updated_at)) - $t0, 'FM99990.000') || ' s (' ||
	count(*) FILTER (WHERE state = 'committed') || ' of $count committed, ' ||
	count(*) FILTER (WHERE state NOT IN ('committed')) || ' not)'
   FROM deployment_devices WHERE deployment_id = '$dep'"
q "SELECT 'campaign rows by state: ' || string_agg(state || ' ' || n, ', ')
   FROM (SELECT state, count(*) AS n FROM campaign_devices WHERE campaign_id = '$cid'
	 GROUP BY state ORDER BY state) s"
