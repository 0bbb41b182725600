#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# GET /metrics and GET /readyz (issue 13), against a real fleetd with two
# net workers, a real agent and real PostgreSQL:
# - /metrics needs a viewer (or better) token; the 401 of a missing,
#   unknown or revoked token says which, the answer is the Prometheus text
#   format and `promtool check metrics` accepts a live scrape;
# - one scrape shows the figures of BOTH workers (shared memory), whichever
#   worker answers; counters match what the test did: API requests by
#   route template (never a raw id), enrollments and refusals by reason,
#   devices connected, channel messages by type, signer latency, database
#   connections, job queues;
# - a worker killed and restarted keeps its counters (its slot lives in
#   the supervisor's mapping) and its devices_connected starts again;
# - /readyz: 200 with every check; 503 not-ready naming the schema when a
#   shipped migration is missing, and the ca when the ca process does not
#   answer; /healthz stays 200 meanwhile;
# - metrics_port: the same figures on 127.0.0.1 without a token, from a
#   child of the supervisor that runs unprivileged and holds nothing else,
#   restarted by the supervisor when it is killed.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

require_tools --hint "Debian package prometheus; deploy/packages.sh" promtool

harness_init
pki_init
fleetd_write_config 2
METRICS_PORT=$(free_port)
echo "metrics_port = $METRICS_PORT" >>"$T/fleetd.conf"
fleetd_start 2

ADMIN=$(admin_token admin)
OPERATOR=$(admin_token operator)
VIEWER=$(admin_token viewer)

# scrape [TOKEN]: GET /metrics into $T/metrics.txt; sets STATUS.
scrape() {
	TOKEN=${1:-$VIEWER} api GET /metrics
	printf '%s\n' "$BODY" >"$T/metrics.txt"
}

# sum METRIC_REGEX: the sum of the samples whose name and labels match.
sum() {
	awk -v re="$1" '$0 !~ /^#/ && $1 ~ re { s += $NF } END { printf "%d\n", s }' \
		"$T/metrics.txt"
}

# ---- who may scrape ----------------------------------------------------
TOKEN= api GET /metrics
assert_eq "$STATUS" 401 "/metrics without a token: 401"
assert_eq "$(jq -r .reason <<<"$BODY")" missing "the 401 says the token is missing"
TOKEN=fla_0000000000000000000000000000000000000000000000000000000000000000 api GET /metrics
assert_eq "$STATUS" 401 "/metrics with an unknown token: 401"
assert_eq "$(jq -r .reason <<<"$BODY")" unknown "the 401 says the token is unknown"
TOKEN=$ADMIN api POST /api/v1/admin-tokens -H 'Content-Type: application/json' \
	--data '{"role": "viewer", "name": "to-revoke"}'
REVOKED=$(jq -r .token <<<"$BODY")
TOKEN=$ADMIN api POST "/api/v1/admin-tokens/$(jq -r .id <<<"$BODY")/revoke"
assert_eq "$STATUS" 200 "a viewer token revoked"
TOKEN=$REVOKED api GET /metrics
assert_eq "$STATUS" 401 "/metrics with a revoked token: 401"
assert_eq "$(jq -r .reason <<<"$BODY")" revoked "the 401 says the token was revoked"
check "the 401's detail says it was revoked" grep -q revoked <<<"$(jq -r .detail <<<"$BODY")"
scrape "$OPERATOR"
assert_eq "$STATUS" 200 "an operator may scrape"
scrape
assert_eq "$STATUS" 200 "a viewer may scrape"
check "Prometheus text format 0.0.4" grep -q '^text/plain; version=0.0.4' <<<"$CTYPE"

# ---- traffic -----------------------------------------------------------
TOKEN=$OPERATOR enrollment_token 2 m1
for i in $(seq 1 30); do
	TOKEN=$VIEWER api GET /api/v1/devices
done
device_enroll dev1
ID1=$(id_of dev1)
for i in 1 2 3; do TOKEN=$VIEWER api GET "/api/v1/devices/$ID1"; done
TOKEN=$VIEWER api GET /api/v1/devices/00000000-0000-4000-8000-000000000000
assert_eq "$STATUS" 404 "an unknown device: 404"
# Refusals by reason.
curl -sS --cacert "$FLEET_CA" -o /dev/null -H 'Content-Type: application/json' \
	--data '{"token": "fle_nope", "csr": "x"}' "$FLEET_SERVER/enroll/v1"
curl -sS --cacert "$FLEET_CA" -o /dev/null -H 'Content-Type: application/json' \
	--data '{"token": "fle_nope", "csr": "x"}' "$FLEET_SERVER/enroll/v1"
# A real agent: a session and its hello.
printf '%s\n' "$ENROLL" >"$T/token"
chmod 600 "$T/token"
cat >"$T/a1.conf" <<EOT
api_url = $FLEET_SERVER
ca_file = $FLEET_CA
state_dir = $T/a1
token_file = $T/token
model = plc-m
fw_version = 1.0.0
log_level = info
EOT
spawn agent1 fleet-agent -c "$T/a1.conf"
AGENT=$LAST_PID

connected_is() { scrape && [ "$(sum '^fleetd_devices_connected')" = "$1" ]; }
wait_for "the agent's session counted in fleetd_devices_connected" 30 connected_is 1
check "one device connected in all" connected_is 1

# ---- one scrape, both workers ------------------------------------------
both_workers() {
	scrape &&
		grep -q '^fleetd_api_requests_total{worker="1"' "$T/metrics.txt" &&
		grep -q '^fleetd_api_requests_total{worker="2"' "$T/metrics.txt"
}
# Connections go to whichever worker accepts first: make more until
# each has answered some (bounded).
spread() {
	for i in 1 2 3 4 5; do TOKEN=$VIEWER api GET /healthz; done
	both_workers
}
wait_for "requests answered by both workers show in one scrape" 30 spread
check "one scrape holds both workers' API requests" both_workers
check "the configuration states of the fleet are a family (none, in_sync, pending, offline, failed, drifted)" \
	test "$(grep -c '^fleetd_config_devices{state="[a-z_]*"} [0-9]' "$T/metrics.txt")" = 6
promtool check metrics <"$T/metrics.txt" >"$T/promtool.log" 2>&1
check "promtool check metrics accepts a live scrape ($(wc -l <"$T/metrics.txt") lines)" \
	[ "$(grep -c . "$T/promtool.log")" = 0 ]
cat "$T/promtool.log"

scrape
N=$(sum '^fleetd_api_requests_total[{].*route="/api/v1/devices",method="GET",status="200"')
check "30 device lists counted under their route template (got $N)" [ "$N" -ge 30 ]
N=$(sum '^fleetd_api_requests_total[{].*route="/api/v1/devices/[{]id[}]",method="GET",status="200"')
check "device reads counted under /api/v1/devices/{id} (got $N)" [ "$N" -ge 3 ]
N=$(sum '^fleetd_api_requests_total[{].*route="/api/v1/devices/[{]id[}]",method="GET",status="404"')
check "the 404 counted with its status (got $N)" [ "$N" -ge 1 ]
check "no series is labelled with a raw id" not grep -q "$ID1" "$T/metrics.txt"
N=$(sum '^fleetd_api_request_duration_seconds_count[{].*route="/api/v1/devices",method="GET"')
check "latency histogram counts the device lists (got $N)" [ "$N" -ge 30 ]
check "latency histogram has an +Inf bucket" grep -q '^fleetd_api_request_duration_seconds_bucket{.*le="+Inf"}' "$T/metrics.txt"
N=$(sum '^fleetd_enrollments_total[{].*result="enrolled"')
check "enrollments: the enrolled ones (got $N)" [ "$N" -ge 2 ]
N=$(sum '^fleetd_enrollments_total[{].*result="token-invalid"')
assert_eq "$N" 2 "enrollments refused by reason: token-invalid twice"
N=$(sum '^fleetd_channel_messages_total[{].*type="hello"')
check "channel messages by type: the agent's hello (got $N)" [ "$N" -ge 1 ]
N=$(sum '^fleetd_signer_request_duration_seconds_count[{].*op="issue"')
check "signer latency: the enrollments' issue requests (got $N)" [ "$N" -ge 2 ]
N=$(sum '^fleetd_db_connections')
check "database connections held (got $N)" [ "$N" -ge 4 ]
for pool in api device presence; do
	check "job queue depth of the $pool pool" grep -q "^fleetd_job_queue_depth{worker=\"[12]\",pool=\"$pool\"}" "$T/metrics.txt"
done
N=$(sum '^fleetd_job_wait_seconds_count[{].*pool="api"')
check "job wait of the api pool observed (got $N)" [ "$N" -ge 30 ]
check "fleetd_database_up is 1" grep -q '^fleetd_database_up 1$' "$T/metrics.txt"

# ---- a worker restart keeps its counters, its gauges start again -----
BEFORE=$(sum '^fleetd_api_requests_total[{]worker="1"')
W1=$(fleetd_child fleetd-net1)
kill -KILL "$W1"
NEW=$(fleetd_new_child fleetd-net1 "$W1" 20)
check "the supervisor restarted worker 1 (pid $NEW)" [ -n "$NEW" ]
wait_for "the agent reconnects" 60 connected_is 1
AFTER=$(sum '^fleetd_api_requests_total[{]worker="1"')
check "worker 1's request counter survived its restart ($BEFORE -> $AFTER)" [ "$AFTER" -ge "$BEFORE" ]
check "still one device connected in all after the restart" connected_is 1
kill -TERM "$AGENT"
wait_for "agent exits" 10 not kill -0 "$AGENT"
wait_for "no device connected once the agent stopped" 30 connected_is 0

# ---- the localhost metrics listener (metrics_port) ---------------------
local_scrape() {
	curl -sS --max-time 10 -o "$T/local.txt" -w '%{http_code} %{content_type}' \
		"http://127.0.0.1:$METRICS_PORT$1" "${@:2}"
}
assert_eq "$(local_scrape /metrics)" "200 text/plain; version=0.0.4; charset=utf-8" \
	"metrics_port: GET /metrics without a token, plain HTTP on loopback"
check "metrics_port: the same registry (both workers)" \
	grep -q '^fleetd_api_requests_total{worker="2"' "$T/local.txt"
promtool check metrics <"$T/local.txt" >"$T/promtool-local.log" 2>&1
check "promtool check metrics accepts the metrics_port scrape" \
	[ "$(grep -c . "$T/promtool-local.log")" = 0 ]
assert_eq "$(local_scrape /api/v1/devices | cut -d' ' -f1)" 404 "metrics_port serves nothing but /metrics"
assert_eq "$(local_scrape /metrics -X POST | cut -d' ' -f1)" 405 "metrics_port: POST is 405"
check "metrics_port listens on 127.0.0.1 only" \
	bash -c "ss -Hltn 'sport = :$METRICS_PORT' | awk '{print \$4}' | grep -qx '127.0.0.1:$METRICS_PORT'"
MPID=$(fleetd_child fleetd-metrics)
check "the metrics listener is a child of the supervisor (pid $MPID)" [ -n "$MPID" ]
if [ "$(id -u)" = 0 ]; then
	assert_eq "$(proc_uid "$MPID")" "$(id -u fleetd)" "the metrics listener runs as the fleetd user"
fi
check "the metrics listener holds no api or device socket" \
	[ "$(ls "/proc/$MPID/fd" | wc -l)" -le 4 ]
# A slow client cannot hold it for long: it answers the next one after it.
exec 7<>"/dev/tcp/127.0.0.1/$METRICS_PORT"
printf 'GET /met' >&7
assert_eq "$(local_scrape /metrics | cut -d' ' -f1)" 200 "a half-sent request delays, never blocks, the next scrape"
exec 7>&-

# The supervisor restarts fleetd-metrics when it dies, as it does the net
# workers (same backoff: the first restart after 100 ms).
kill -9 "$MPID"
NEW_MPID=$(fleetd_new_child fleetd-metrics "$MPID" 10) || NEW_MPID=
check "fleetd-metrics is restarted after kill -9 (pid $MPID -> ${NEW_MPID:-none})" \
	[ -n "$NEW_MPID" ]
local_ok() { [ "$(local_scrape /metrics | cut -d' ' -f1)" = 200 ]; }
check "metrics_port answers /metrics again within 5 s" \
	wait_for "metrics_port answering again" 5 local_ok
check "the restarted listener serves the same registry (both workers)" \
	grep -q '^fleetd_api_requests_total{worker="2"' "$T/local.txt"
check "the restarted listener holds no api or device socket" \
	[ "$(ls "/proc/$NEW_MPID/fd" | wc -l)" -le 4 ]
check "the supervisor logged the death and the restart" \
	grep -q "fleetd-metrics (pid $MPID) died of signal 9; restarting" "$T/fleetd.log"

# ---- readiness ---------------------------------------------------------
TOKEN= api GET /readyz
assert_eq "$STATUS" 200 "/readyz: 200 when ready"
assert_eq "$(jq -c '[.status, .checks.database.ok, .checks.schema.ok, .checks.ca.ok]' <<<"$BODY")" \
	'["ready",true,true,true]' "/readyz names its three checks"

LAST=$(psql_q "SELECT max(version) FROM schema_migrations")
psql_q "CREATE TABLE saved_migration AS SELECT * FROM schema_migrations WHERE version = $LAST"
psql_q "DELETE FROM schema_migrations WHERE version = $LAST"
TOKEN= api GET /readyz
assert_eq "$STATUS" 503 "/readyz: 503 while a shipped migration is not applied"
assert_eq "$CTYPE" application/problem+json "the 503 is problem+json"
assert_eq "$(jq -r .type <<<"$BODY")" urn:fleet:problem:not-ready "type not-ready"
assert_eq "$(jq -c '[.checks.database.ok, .checks.schema.ok, .checks.ca.ok]' <<<"$BODY")" \
	'[true,false,true]' "the 503 names the schema, not the others"
check "the schema check names the missing migration" \
	grep -q "$(printf '%04d' "$LAST")" <<<"$(jq -r .checks.schema.detail <<<"$BODY")"
TOKEN= api GET /healthz
assert_eq "$STATUS" 200 "/healthz stays 200 (alive) meanwhile"
psql_q "INSERT INTO schema_migrations SELECT * FROM saved_migration"
TOKEN= api GET /readyz
assert_eq "$STATUS" 200 "/readyz: 200 again once the migration is back"

CA=$(fleetd_child fleetd-ca)
kill -STOP "$CA"
TOKEN= api GET /readyz
kill -CONT "$CA"
assert_eq "$STATUS" 503 "/readyz: 503 while the ca process does not answer"
assert_eq "$(jq -c '[.checks.database.ok, .checks.schema.ok, .checks.ca.ok]' <<<"$BODY")" \
	'[true,true,false]' "the 503 names the ca"
check "the detail says what is not ready" grep -q ca <<<"$(jq -r .detail <<<"$BODY")"
ready() { TOKEN= api GET /readyz && [ "$STATUS" = 200 ]; }
wait_for "/readyz ready again once the ca answers" 20 ready
check "/readyz ready again" ready

fleetd_stop
harness_done
