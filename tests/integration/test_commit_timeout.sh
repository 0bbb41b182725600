#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# database_commit_timeout (docs/ha.md): with synchronous replication and no
# standby answering, a commit waits for ever. fleetd bounds the wait: past
# the timeout the request fails with 503 problem+json (the API, the
# enrollment endpoint, the CLI with a non-zero exit), reads go on, and once
# a standby answers again writes succeed, without a restart. The missing
# standby is made by naming one that does not exist in
# synchronous_standby_names, on a cluster of the test's own.
HARNESS_PRIVATE_PG=1
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

harness_init
# The suite's clusters run with synchronous_commit off; commits that wait
# for a standby are the point here.
psql_q "ALTER DATABASE \"$DB\" SET synchronous_commit = on"
pki_init
fleetd_write_config 1
echo "database_commit_timeout = 2s" >>"$T/fleetd.conf"
fleetd_start
TOKEN=$(admin_token admin)
JSON=(-H 'Content-Type: application/json')

enrollment_token 100 commit
device_enroll d1 >/dev/null
D1=$(id_of d1)

# sync_standby NAME: what commits wait for ('' for nothing), reloaded.
sync_standby() {
	psql -X -q -d postgres -v ON_ERROR_STOP=1 \
		-c "ALTER SYSTEM SET synchronous_standby_names = '$1'" \
		-c "SELECT pg_reload_conf()" >/dev/null
	wait_for "synchronous_standby_names = '$1'" 10 \
		test "$(psql -X -t -A -d postgres -c 'SHOW synchronous_standby_names')" = "$1" || true
}

# ---- no standby answers --------------------------------------------------
sync_standby fleet_missing_standby

api POST /api/v1/tokens "${JSON[@]}" --data '{"uses": 1, "expires_in": "1h"}'
assert_eq "$STATUS $CTYPE" "503 application/problem+json" \
	"a token created while no standby answers: 503 problem+json, not a hang"
assert_eq "$(jq -r '.detail | startswith("the database did not confirm the write in time")' <<<"$BODY")" true \
	"the 503 says the write was not confirmed (it may have been made)"
api PATCH "/api/v1/devices/$D1" "${JSON[@]}" --data '{"labels": {"room": "r1"}}'
assert_eq "$STATUS $CTYPE" "503 application/problem+json" \
	"a device's labels changed while no standby answers: 503 problem+json"
check "an enrollment while no standby answers is refused" \
	not device_enroll d2 2>"$T/enroll-d2.txt"
assert_eq "$(grep -c '^enroll d2: 503 .*did not confirm the write' "$T/enroll-d2.txt")" 1 \
	"the refused enrollment was answered 503, the write not confirmed"
# Enrollments at once share one commit (a group commit): the callers
# whose records another's batch wrote answer 503 as that one does.
pids=()
for i in 1 2 3 4 5 6; do
	device_enroll "p$i" 2>"$T/enroll-p$i.txt" &
	pids+=("$!")
done
wait "${pids[@]}" || true
assert_eq "$(cat "$T"/enroll-p?.txt | grep -c '^enroll p[0-9]: 503 ')" 6 \
	"six enrollments at once: each answered 503, none 500"
api GET "/api/v1/devices/$D1"
assert_eq "$STATUS" 200 "reads go on meanwhile"
# A device connecting meanwhile: its session and its hello's facts are
# written without waiting for a standby (nothing acknowledged rests on
# them), so it shows online with what it said.
HELLO='{"type":"hello","seq":1,"agent_version":"0.9.9","fw_version":"7.1.0","model":"ct-x","boot_id":"b0","uptime":5,"addresses":["127.0.0.1"],"config_version":0,"config_hash":"","inventory":{"ram_mb":64}}'
ws_bg d1 ws-d1 "send $HELLO" "read 5" "drain 30"
hello_stored() {
	api GET "/api/v1/devices/$D1"
	[ "$(jq -r '"\(.online) \(.fw_version)"' <<<"$BODY")" = "true 7.1.0" ]
}
wait_for "d1 online with its hello's firmware" 15 hello_stored || true
check "a device connecting meanwhile is online with its hello's facts" hello_stored
set +e
FLEETD_DATABASE_COMMIT_TIMEOUT=1s timeout 30 fleetd token create --role viewer \
	--name while-stuck >"$T/cli.out" 2>"$T/cli.err"
rc=$?
set -e
check "fleetd token create exits non-zero (rc $rc)" \
	test "$rc" != 0 -a "$rc" != 124
assert_eq "$(grep -c 'the database did not confirm the write; try again' "$T/cli.err")" 1 \
	"fleetd token create says why"
n=$(grep -c 'COMMIT did not return within 2 s' "$T/fleetd.log" || true)
check "fleetd logged each commit it did not acknowledge ($n)" test "$n" -ge 3

# ---- a standby answers again ---------------------------------------------
sync_standby ""
api POST /api/v1/tokens "${JSON[@]}" --data '{"uses": 1, "expires_in": "1h"}'
assert_eq "$STATUS" 201 "writes succeed again, without a restart"
api PATCH "/api/v1/devices/$D1" "${JSON[@]}" --data '{"labels": {"room": "r2"}}'
assert_eq "$STATUS" 200 "a device's labels change again"
check "an enrollment succeeds again" device_enroll d3

harness_done
