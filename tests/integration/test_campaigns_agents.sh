#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Campaigns with real fleet-agent processes (issue 12 acceptance,
# docs/internals/campaigns.md): real PostgreSQL, fleetd (2 workers, the
# driver looking every 200 ms) and four fleet-agents on loopback, driven
# through the API with curl and jq.
#
# - config: a campaign over profile version 2, phases 50,100 with a long
#   soak on phase 1, is aborted once phase 1 applied: exactly the two
#   devices of phase 1 (by the rank the contract defines, computed here)
#   got version 2 and then get their previous desired config back (same
#   hash as before, overrides kept, the file on the device is the old one
#   again); the two devices of phase 2 were never touched (same generation
#   and hash, no campaign row);
# - rotation: a campaign renews every device's certificate: a new serial
#   in GET /devices/{id}/certificates, the old one superseded, and the old
#   certificate with its key is refused at the device listener's handshake
#   (curl, an outside client), while the new one is accepted;
# - firmware: a dir-ab release signed offline (2 of 3 keys) over phases
#   50,100 commits on every agent: current -> B holds the release, fleetd
#   shows 2.0, the campaign completed with every device succeeded.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/campaigns.sh"

MODULES="$FLEET_SOURCE_DIR/agent/modules"
require_tools jq openssl

harness_init
pki_init
fleetd_write_config 2
echo "campaign_interval_ms = 200" >>"$T/fleetd.conf"
fleetd_start 2
TOKEN=$(admin_token operator)

api POST /api/v1/tokens -H 'Content-Type: application/json' \
	--data '{"uses": 10, "expires_in": "1h", "labels": {"site": "campa"}}'
assert_eq "$STATUS" 201 "enrollment token created"
jq -r .token <<<"$BODY" >"$T/token"
chmod 600 "$T/token"
release_keys

# ---- four agents -----------------------------------------------------------
# dir-ab installs, reboot by re-executing the agent, health hook `true`;
# the config file is $T/aN/app.json.
AGENTS="a1 a2 a3 a4"
agent_start() {
	local n=$1
	mkdir -p "$T/$n"
	cat >"$T/$n.conf" <<EOT
api_url = $FLEET_SERVER
ca_file = $FLEET_CA
state_dir = $T/$n
token_file = $T/token
model = camp-model
fw_version = 1.0
fw_version_num = 100
log_level = info
config_path = $T/$n/app.json
update_keys = $KEYS
update_threshold = 2
update_modules_dir = $MODULES
update_reboot_command = reexec
update_health_command = true
update_health_deadline = 20s
update_download_deadline = 60s
EOT
	spawn "agent-$n" fleet-agent -c "$T/$n.conf"
}
id_of_agent() { jq -r .device_id "$T/$1/identity.json" 2>/dev/null; }
online() {
	local id
	id=$(id_of_agent "$1") || return 1
	[ -n "$id" ] && [ "$id" != null ] || return 1
	api GET "/api/v1/devices/$id"
	[ "$STATUS" = 200 ] && [ "$(jq -r .online <<<"$BODY")" = true ]
}
for n in $AGENTS; do
	agent_start "$n"
done
for n in $AGENTS; do
	check "agent $n online" wait_for "agent $n online" 40 online "$n"
done
declare -A ID AGENT_OF
for n in $AGENTS; do
	ID[$n]=$(id_of_agent "$n")
	AGENT_OF[${ID[$n]}]=$n
done
ALL_IDS="${ID[a1]} ${ID[a2]} ${ID[a3]} ${ID[a4]}"

# phase_of CID DEVICE_ID: the phase (1-based) the contract gives the device
# among the four agents for phases 50,100.
phase_of() {
	# shellcheck disable=SC2086
	camp_expected_phases "$1" 4 50,100 $ALL_IDS | awk -v d="$2" '$1 == d { print $2 }'
}
# camp_phase_ids CID PHASE: the agents (names) the campaign admitted in
# PHASE (1-based), sorted.
camp_phase_agents() {
	local d
	for d in $(psql_q "SELECT device_id FROM campaign_devices
		WHERE campaign_id = '$1' AND phase = $2 - 1"); do
		echo "${AGENT_OF[$d]}"
	done | sort | xargs
}
expected_phase_agents() {
	local n
	for n in $AGENTS; do
		if [ "$(phase_of "$1" "${ID[$n]}")" = "$2" ]; then echo "$n"; fi
	done | sort | xargs
}

# ==== config: abort after phase 1 applied reverts exactly phase 1 ==========
api POST /api/v1/profiles -H 'Content-Type: application/json' --data '{"name": "app"}'
assert_eq "$STATUS" 201 "profile app created"
api POST /api/v1/profiles/app/versions -H 'Content-Type: application/json' \
	--data '{"document": {"mode": "one", "port": 8001}}'
assert_eq "$STATUS" 201 "app version 1 published"
api POST /api/v1/profiles/app/versions -H 'Content-Type: application/json' \
	--data '{"document": {"mode": "two", "port": 8002}}'
assert_eq "$STATUS" 201 "app version 2 published"

# Before the campaign: every agent on version 1 (pinned), a1 and a3 with
# their own overrides, so that "the previous config" differs per device.
api POST /api/v1/config/clone -H 'Content-Type: application/json' \
	--data '{"source": {"profile": "app", "version": 1}, "selector": "site=campa"}'
assert_eq "$STATUS" 201 "version 1 cloned to the four agents"
for n in a1 a3; do
	api PATCH "/api/v1/devices/${ID[$n]}/config" -H 'Content-Type: application/json' \
		--data "{\"overrides\": {\"local\": \"$n\"}}"
	assert_eq "$STATUS" 200 "$n: overrides set"
done
cfg_state() {
	api GET "/api/v1/devices/$1/config"
	jq -r .state <<<"$BODY"
}
in_sync() { [ "$(cfg_state "$1")" = in_sync ]; }
for n in $AGENTS; do
	check "$n: version 1 applied (in_sync)" wait_for "$n in sync" 30 in_sync "${ID[$n]}"
done
declare -A SHA GEN FILE_SHA
for n in $AGENTS; do
	api GET "/api/v1/devices/${ID[$n]}/config"
	SHA[$n]=$(jq -r .desired.sha256 <<<"$BODY")
	GEN[$n]=$(jq -r .desired.generation <<<"$BODY")
	FILE_SHA[$n]=$(sha256sum <"$T/$n/app.json")
done
check "a1's config differs from a2's (its overrides)" test "${SHA[a1]}" != "${SHA[a2]}"

camp_create '{"name": "app v2", "kind": "config", "profile": "app", "version": 2,
	"selector": "site=campa", "phases": [50, 100],
	"gate": {"min_success": 1.0}, "gates": [{"soak_seconds": 3600}, {}],
	"start": true}'
CFG=$CAMP
P1=$(expected_phase_agents "$CFG" 1)
P2=$(expected_phase_agents "$CFG" 2)
echo "# config campaign: phase 1 = $P1, phase 2 = $P2 (by rank)"
assert_eq "$(wc -w <<<"$P1") $(wc -w <<<"$P2")" "2 2" "50% of 4 agents is 2 per phase"
two_applied() { [ "$(camp_count "$CFG" succeeded 1)" = 2 ]; }
check "config: phase 1 applied on its 2 devices" wait_for "phase 1 applied" 40 two_applied
assert_eq "$(camp_phase_agents "$CFG" 1)" "$P1" "config: phase 1 is the 2 devices of lowest rank"
assert_eq "$(psql_q "SELECT count(*) FROM campaign_devices WHERE campaign_id = '$CFG'")" 2 \
	"config: nobody of phase 2 admitted (soak of phase 1)"
assert_eq "$(camp_field "$CFG" '.counts[0].succeeded, .counts[1].pending' | xargs)" "2 2" \
	"config: the document counts phase 1 succeeded 2, phase 2 pending 2"
for n in $P1; do
	api GET "/api/v1/devices/${ID[$n]}/config"
	assert_eq "$(jq -r '.version, .state, .desired.document.mode' <<<"$BODY" | xargs)" \
		"2 in_sync two" "$n (phase 1): pinned to version 2 and applied"
	assert_eq "$(jq -r .mode "$T/$n/app.json")" two "$n (phase 1): its file holds version 2"
done
for n in $P2; do
	api GET "/api/v1/devices/${ID[$n]}/config"
	assert_eq "$(jq -r '.desired.generation, .desired.sha256' <<<"$BODY" | xargs)" \
		"${GEN[$n]} ${SHA[$n]}" "$n (phase 2): untouched before the abort"
done

api POST "/api/v1/campaigns/$CFG/abort" -H 'Content-Type: application/json' \
	--data '{"reason": "test: revert"}'
assert_eq "$STATUS $(jq -r .status <<<"$BODY")" "200 aborted" "config: aborted"
two_reverted() { [ "$(camp_count "$CFG" reverted)" = 2 ]; }
check "config: the driver reverted 2 devices" wait_for "2 reverted" 20 two_reverted
assert_eq "$(camp_events "$CFG" reverted)" 1 "config: one reverted event"
back_in_sync() { # NAME: desired is the old hash again and applied
	api GET "/api/v1/devices/${ID[$1]}/config"
	[ "$(jq -r '.desired.sha256 + " " + .state' <<<"$BODY")" = "${SHA[$1]} in_sync" ]
}
for n in $P1; do
	check "$n (phase 1): the previous config is desired and applied again" \
		wait_for "$n reverted" 30 back_in_sync "$n"
	api GET "/api/v1/devices/${ID[$n]}/config"
	assert_eq "$(jq -r '.profile, .version' <<<"$BODY" | xargs)" "app 1" \
		"$n (phase 1): profile app pinned to version 1 again"
	check "$n (phase 1): generation moved on (${GEN[$n]} -> $(jq -r .desired.generation <<<"$BODY"))" \
		test "$(jq -r .desired.generation <<<"$BODY")" -gt "${GEN[$n]}"
	assert_eq "$(sha256sum <"$T/$n/app.json")" "${FILE_SHA[$n]}" \
		"$n (phase 1): the file on the device is the previous one again"
done
for n in $P2; do
	api GET "/api/v1/devices/${ID[$n]}/config"
	assert_eq "$(jq -r '.desired.generation, .desired.sha256, .state' <<<"$BODY" | xargs)" \
		"${GEN[$n]} ${SHA[$n]} in_sync" "$n (phase 2): never touched (same generation and hash)"
	assert_eq "$(sha256sum <"$T/$n/app.json")" "${FILE_SHA[$n]}" "$n (phase 2): same file"
done
assert_eq "$(psql_q "SELECT count(*) FROM campaign_devices WHERE campaign_id = '$CFG'")" 2 \
	"config: still only the 2 devices of phase 1 have a row"

# ==== rotation: every certificate renewed, the old ones refused ==========
generation() { jq -r '.generation // 0' "$T/$1/identity.json" 2>/dev/null; }
cert_file() {
	local g
	g=$(generation "$1")
	if [ "$g" = 0 ]; then echo "$T/$1/cert.pem"; else echo "$T/$1/cert.$g.pem"; fi
}
key_file() {
	local g
	g=$(generation "$1")
	if [ "$g" = 0 ]; then echo "$T/$1/device.key"; else echo "$T/$1/device.$g.key"; fi
}
status_is() { [ "$(cert_status "$1" "$2")" = "$3" ]; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
cert_status() { # DEVICE SERIAL
	api GET "/api/v1/devices/$1/certificates"
	jq -r --arg s "$2" '.items[] | select(.serial == $s) | .status' <<<"$BODY"
}
# device_listener CERT KEY: the HTTP status of GET /artifacts/<zeros> on
# the device listener with that identity ("000": the handshake was refused).
ZERO=$(printf '%064d' 0)
device_listener() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$FLEET_CA" \
		--cert "$1" --key "$2" "https://localhost:$DEVICE_PORT/artifacts/$ZERO" || true
}
refused() { [ "$(device_listener "$1" "$2")" = 000 ]; }
declare -A OLD_SERIAL
for n in $AGENTS; do
	cp "$(cert_file "$n")" "$T/$n-old.pem"
	cp "$(key_file "$n")" "$T/$n-old.key"
	OLD_SERIAL[$n]=$(serial_of "$T/$n-old.pem")
	assert_eq "$(cert_status "${ID[$n]}" "${OLD_SERIAL[$n]}")" active "$n: its certificate is active"
	assert_eq "$(device_listener "$T/$n-old.pem" "$T/$n-old.key")" 404 \
		"$n: the device listener accepts its certificate before the rotation (404 for an unknown artifact)"
done

camp_create '{"name": "rotate all", "kind": "rotation", "selector": "site=campa",
	"phases": [50, 100], "gate": {"min_success": 1.0}, "start": true}'
ROT=$CAMP
check "rotation: completed" wait_for "rotation completed" 90 camp_status_is "$ROT" completed
camp_doc "$ROT"
assert_eq "$(jq -r '.totals.succeeded, .totals.failed, .phase' <<<"$BODY" | xargs)" "4 0 2" \
	"rotation: 4 succeeded, 0 failed, both phases released"
assert_eq "$(psql_q "SELECT count(*) FROM cert_rotations r JOIN campaign_devices c
	ON c.rotation_id = r.id WHERE c.campaign_id = '$ROT' AND r.reason = 'campaign'
	AND r.completed_at IS NOT NULL")" 4 "rotation: 4 campaign rotations completed"
assert_eq "$(camp_phase_agents "$ROT" 1)" "$(expected_phase_agents "$ROT" 1)" \
	"rotation: phase 1 is the 2 devices of lowest rank"
for n in $AGENTS; do
	new=$(cert_file "$n")
	new_serial=$(serial_of "$new")
	check "$n: a new serial (${OLD_SERIAL[$n]} -> $new_serial)" \
		test "$new_serial" != "${OLD_SERIAL[$n]}"
	assert_eq "$(cert_status "${ID[$n]}" "$new_serial")" active "$n: the new certificate is active"
	check "$n: the old certificate is superseded" \
		wait_for "$n superseded" 10 status_is "${ID[$n]}" "${OLD_SERIAL[$n]}" superseded
	check "$n: the old certificate is refused at the handshake (curl)" \
		wait_for "$n old refused" 10 refused "$T/$n-old.pem" "$T/$n-old.key"
	assert_eq "$(device_listener "$new" "$(key_file "$n")")" 404 \
		"$n: the new certificate is accepted"
done
for n in $AGENTS; do
	check "agent $n online with its new certificate" wait_for "$n online" 20 online "$n"
done

# ==== firmware: dir-ab over two phases commits on every agent =============
release_make fw 2.0 200 camp-model dir-ab
FW_ART=$ART
camp_create "{\"name\": \"fw 2.0\", \"kind\": \"firmware\", \"artifact_id\": \"$FW_ART\",
	\"selector\": \"site=campa\", \"phases\": [50, 100], \"gate\": {\"min_success\": 1.0},
	\"start\": true}"
FW=$CAMP
check "firmware: completed" wait_for "firmware completed" 150 camp_status_is "$FW" completed
camp_doc "$FW"
assert_eq "$(jq -r '.totals.succeeded, .totals.failed, .totals.rolled_back, .phase' <<<"$BODY" | xargs)" \
	"4 0 0 2" "firmware: 4 succeeded, none failed or rolled back, both phases released"
DEP=$(jq -r .deployment_id <<<"$BODY")
assert_eq "$(psql_q "SELECT count(*) FROM deployment_devices WHERE deployment_id = '$DEP'
	AND state = 'committed'")" 4 "firmware: the campaign's deployment has 4 committed rows"
assert_eq "$(psql_q "SELECT count(*) FROM deployments WHERE campaign_id = '$FW'")" 1 \
	"firmware: one deployment for the campaign"
api POST "/api/v1/deployments/$DEP/cancel"
assert_eq "$STATUS $(jq -r .type <<<"$BODY" | sed 's|.*:||')" "409 deployment-of-campaign" \
	"firmware: the campaign's deployment cannot be cancelled on its own (abort the campaign)"
assert_eq "$(camp_events "$FW" phase_released) $(camp_events "$FW" completed)" "2 1" \
	"firmware: 2 phase_released events and 1 completed"
assert_eq "$(camp_phase_agents "$FW" 1)" "$(expected_phase_agents "$FW" 1)" \
	"firmware: phase 1 is the 2 devices of lowest rank"
# Phase 2 was offered only after phase 1 committed.
assert_eq "$(psql_q "SELECT bool_and(b.admitted_at >= a.fin) FROM campaign_devices b,
	(SELECT max(finished_at) AS fin FROM campaign_devices WHERE campaign_id = '$FW'
	 AND phase = 0) a WHERE b.campaign_id = '$FW' AND b.phase = 1")" t \
	"firmware: phase 2 admitted after phase 1 finished"
for n in $AGENTS; do
	assert_eq "$(readlink "$T/$n/dir-ab/current")" B "$n: dir-ab current -> B"
	assert_eq "$(cat "$T/$n/dir-ab/current/VERSION" 2>/dev/null)" 2.0 "$n: slot B holds 2.0"
	assert_eq "$(cat "$T/$n/dir-ab/committed" 2>/dev/null)" B "$n: B committed"
	api GET "/api/v1/devices/${ID[$n]}"
	assert_eq "$(jq -r .fw_version <<<"$BODY")" 2.0 "$n: fleetd shows 2.0"
done
assert_eq "$(psql_q "SELECT count(*) FROM audit_log WHERE action = 'campaign.complete'")" 2 \
	"audit: campaign.complete for the rotation and the firmware campaign"
harness_done
