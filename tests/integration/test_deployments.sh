#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Deployments, update offers and release key set delivery (issue 11):
# real PostgreSQL, fleetd, releases signed offline with fleetctl, and
# scripted devices on the device channel (tests/integration/wsclient.py)
# that say what an agent would.
# - a dry run counts (matched, offline, hardware mismatch) and writes
#   nothing; a deployment for a selector makes one pending row per device
#   whose model is in the manifest, one audit row, and is offered over the
#   channel after hello (envelope, version, artifact_url, sha256, size,
#   deployment_id) and to a connected device on the notification;
# - update.status downloading/installing/committed with seq move the row,
#   the counts and the device's firmware; a duplicate seq is acknowledged
#   "duplicate"; a report for another deployment and an overtaken one are
#   acknowledged and ignored (counted), and a late report never moves a
#   finished row back; the deployment finishes when nothing is open;
# - a newer deployment supersedes an open row that was not installing;
#   one installing is skipped (busy); cancel supersedes rows not yet
#   installing and leaves the installing one;
# - artifact_url_base makes offers point at a mirror;
# - key sets: version 2 (signed with fleetctl release keys rotate) is
#   stored and sent as update.keys after a hello with keyset_version 1,
#   before the offer, and to a connected device on upload; keys.status
#   adopted is stored; a wrong version is 409 and stores nothing;
# - bad input: unknown artifact 422, an artifact without its file 422,
#   selector matching nothing 422, both device and selector 400,
#   Idempotency-Key replays the first answer;
# - fleetctl deployments create/list/show, and show --watch until done.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

harness_init
pki_init
fleetd_write_config 2
fleetd_start
TOKEN=$(admin_token operator)
ADMIN=$(admin_token admin dep-admin)

# ---- a release, signed offline -------------------------------------------
K="$T/keys"
mkdir -p "$K"
for k in r1 r2 n1; do
	fleetctl keys gen --out "$K/$k.key" >/dev/null
done
head -c 3000 /dev/urandom >"$T/fw-7.bin"
fleetctl release sign --key "$K/r1.key" --name plc-fw --version 7.0 \
	--version-int 7 --hw plc-x,plc-y --installer single-file \
	--expires 30d --out "$T/fw-7.json" "$T/fw-7.bin" >/dev/null
head -c 2000 /dev/urandom >"$T/fw-8.bin"
fleetctl release sign --key "$K/r1.key" --name plc-fw --version 8.0 \
	--version-int 8 --hw plc-x --installer single-file \
	--expires 30d --out "$T/fw-8.json" "$T/fw-8.bin" >/dev/null

# seed_artifact ENVELOPE: the artifact row and a complete blob, as the
# artifact upload leaves them (the bytes themselves are not needed here:
# nothing downloads); prints the artifact id.
seed_artifact() {
	local env=$1 man id
	man=$(jq -r .payload "$env" | base64 -d)
	id=$(cat /proc/sys/kernel/random/uuid)
	psql_q "INSERT INTO artifact_blobs (sha256, size, chunk_size, complete)
		VALUES ('$(jq -r .sha256 <<<"$man")', $(jq .size <<<"$man"),
		1048576, true) ON CONFLICT DO NOTHING" >/dev/null
	psql_q "INSERT INTO artifacts (id, sha256, name, version, version_int,
		hw, installer, size, expires_at, envelope, manifest, created_by)
		SELECT '$id', m->>'sha256', m->>'name', m->>'version',
		(m->>'version_int')::bigint,
		ARRAY(SELECT jsonb_array_elements_text(m->'hw')),
		m->>'installer', (m->>'size')::bigint,
		(m->>'expires')::timestamptz, '$(jq -c . "$env")'::jsonb, m,
		'test' FROM (SELECT '$man'::jsonb AS m) x" >/dev/null
	echo "$id"
}
# 7 is uploaded for real (fleetctl artifacts upload: POST, streamed PUT);
# 8 is seeded with psql; 9 is registered without its file.
FLEET_TOKEN=$TOKEN fleetctl artifacts upload "$T/fw-7.json" "$T/fw-7.bin" \
	</dev/null >"$T/up7.out"
A7=$(awk '/^ID:/ { print $2 }' "$T/up7.out")
check "artifact 7 uploaded" grep -Eq "^STATUS: +ready" "$T/up7.out"
A8=$(seed_artifact "$T/fw-8.json")
head -c 1000 /dev/urandom >"$T/fw-9.bin"
fleetctl release sign --key "$K/r1.key" --name plc-fw --version 9.0 \
	--version-int 9 --hw plc-x --installer single-file \
	--expires 30d --out "$T/fw-9.json" "$T/fw-9.bin" >/dev/null
api POST /api/v1/artifacts -H 'Content-Type: application/json' \
	--data "{\"envelope\": $(cat "$T/fw-9.json")}"
assert_eq "$STATUS $(jq -r .status <<<"$BODY")" "201 uploading" "artifact 9 registered, no file"
A9=$(jq -r .id <<<"$BODY")
SHA7=$(jq -r .payload "$T/fw-7.json" | base64 -d | jq -r .sha256)
SIZE7=$(stat -c %s "$T/fw-7.bin")

# ---- devices -------------------------------------------------------------
enrollment_token 4 dep
device_enroll d1 plc-x
device_enroll d2 plc-y
device_enroll d3 plc-z
D1=$(id_of d1)
D2=$(id_of d2)
D3=$(id_of d3)
hello() { # MODEL [KEYSET_VERSION]
	printf '{"type":"hello","agent_version":"0.2.0","fw_version":"6.0","fw_version_num":6,"model":"%s","boot_id":"b1","keyset_version":%s}' \
		"$1" "${2:-1}"
}
# ustatus SEQ STATE DEPLOYMENT [EXTRA JSON members]
ustatus() {
	printf '{"type":"update.status","seq":%s,"state":"%s","version":7,"deployment_id":"%s"%s}' \
		"$1" "$2" "$3" "${4:-}"
}
frames_of() { grep '^TEXT ' <<<"$1" | sed 's/^TEXT //'; }
of_type() { frames_of "$1" | jq -c "select(.type == \"$2\")"; }

# ---- bad input -----------------------------------------------------------
post_dep() { api POST /api/v1/deployments -H 'Content-Type: application/json' --data "$1" "${@:2}"; }
post_dep "{\"artifact_id\":\"$(cat /proc/sys/kernel/random/uuid)\",\"selector\":\"site=dep\"}"
assert_eq "$STATUS $(jq -r .type <<<"$BODY")" \
	"422 urn:fleet:problem:deployment-unknown-artifact" "unknown artifact: 422"
post_dep "{\"artifact_id\":\"$A9\",\"selector\":\"site=dep\"}"
assert_eq "$STATUS $(jq -r .type <<<"$BODY")" \
	"422 urn:fleet:problem:deployment-artifact-not-ready" "artifact without its file: 422"
post_dep "{\"artifact_id\":\"$A7\",\"selector\":\"site=nowhere\"}"
assert_eq "$STATUS $(jq -r .type <<<"$BODY")" \
	"422 urn:fleet:problem:selector-matches-nothing" "selector matching nothing: 422"
post_dep "{\"artifact_id\":\"$A7\",\"selector\":\"site=dep\",\"device_id\":\"$D1\"}"
assert_eq "$STATUS $(jq -r .type <<<"$BODY")" \
	"400 urn:fleet:problem:deployment-target" "device_id and selector: 400"
post_dep "{\"artifact_id\":\"$A7\"}"
assert_eq "$STATUS" 400 "neither device_id nor selector: 400"
post_dep "{\"artifact_id\":\"$A7\",\"selector\":\"site in (a\"}"
assert_eq "$STATUS" 400 "a selector that does not parse: 400"
post_dep "{\"artifact_id\":\"$A7\",\"device_id\":\"$D3\"}"
assert_eq "$STATUS $(jq -r .type <<<"$BODY")" \
	"422 urn:fleet:problem:deployment-no-targets" "only a device of another model: 422"
assert_eq "$(psql_q 'SELECT count(*) FROM deployments')" 0 "bad input wrote nothing"

# ---- dry run -------------------------------------------------------------
# d1 online (a session that stays), d2 and d3 offline.
online() { [ "$(psql_q "SELECT count(*) FROM device_sessions WHERE device_id = '$1'")" = 1 ]; }
ws_bg d1 d1-a "send $(hello plc-x)" "drain 8"
D1_PID=$LAST_PID
wait_for "d1 online" 15 online "$D1"
post_dep "{\"artifact_id\":\"$A7\",\"selector\":\"site=dep\",\"dry_run\":true}"
assert_eq "$STATUS" 200 "dry run: 200"
assert_eq "$(jq -c '[.matched, .targets, .offline, .hardware_mismatch, .supersede, .busy, .dry_run]' <<<"$BODY")" \
	"[3,2,1,1,0,0,true]" "dry run: 3 matched, 2 targets, 1 offline, 1 hardware mismatch"
assert_eq "$(psql_q 'SELECT count(*) FROM deployments')" 0 "a dry run writes nothing"

# ---- create: offered to the connected device on the notification --------
post_dep "{\"artifact_id\":\"$A7\",\"selector\":\"site=dep\"}" -H 'Idempotency-Key: dep-1'
assert_eq "$STATUS" 201 "deployment created"
DEP=$(jq -r .id <<<"$BODY")
FIRST=$BODY
assert_eq "$(jq -c '[.targets, .hardware_mismatch, .status]' <<<"$BODY")" '[2,1,"active"]' "2 targets"
post_dep "{\"artifact_id\":\"$A7\",\"selector\":\"site=dep\"}" -H 'Idempotency-Key: dep-1'
assert_eq "$STATUS $BODY" "201 $FIRST" "Idempotency-Key replays the first answer"
assert_eq "$(psql_q 'SELECT count(*) FROM deployments')" 1 "one deployment"
assert_eq "$(psql_q "SELECT count(*) FROM audit_log WHERE action = 'deployment.create' AND target = '$DEP'")" \
	1 "one audit row"
assert_eq "$(psql_q "SELECT string_agg(state, ',' ORDER BY state) FROM deployment_devices WHERE deployment_id = '$DEP'")" \
	"offered,pending" "d1 offered at once, d2 (offline) pending"
wait "$D1_PID" 2>/dev/null || true
offer=$(of_type "$(cat "$T/d1-a.log")" update.offer | head -1)
check "the connected device got update.offer" test -n "$offer"
assert_eq "$(jq -c '[.deployment_id, .version, .sha256, .size, .artifact_url]' <<<"$offer")" \
	"[\"$DEP\",7,\"$SHA7\",$SIZE7,\"/artifacts/$SHA7\"]" "offer fields"
assert_eq "$(jq -cS .envelope <<<"$offer")" "$(jq -cS . "$T/fw-7.json")" \
	"offer carries the signed envelope as uploaded"
assert_eq "$(of_type "$(cat "$T/d1-a.log")" update.offer | wc -l)" 1 \
	"offered once (notification and re-check do not repeat it)"

# ---- reports move the row ------------------------------------------------
out=$(ws d1 "send $(hello plc-x)" "drain 2" \
	"send $(ustatus 1 downloading "$DEP" ',"progress":40,"bytes":1200')" "read 5" \
	"send $(ustatus 2 installing "$DEP")" "read 5" \
	"send $(ustatus 2 installing "$DEP")" "read 5" "close")
assert_eq "$(of_type "$out" update.offer | jq -r .deployment_id)" "$DEP" \
	"re-offered after a new hello"
assert_eq "$(of_type "$out" ack | jq -r '"\(.seq):\(.status)"' | tr '\n' ' ')" \
	"1:applied 2:applied 2:duplicate " "acks: applied, applied, duplicate"
assert_eq "$(psql_q "SELECT state || ' ' || seq FROM deployment_devices WHERE device_id = '$D1'")" \
	"installing 2" "d1 installing"
api GET "/api/v1/deployments/$DEP"
assert_eq "$(jq -c '[.counts.installing, .counts.pending, .open, .status]' <<<"$BODY")" \
	'[1,1,2,"active"]' "counts per state move"

# A second deployment while d1 installs: d1 is busy (never cut), d2 and
# d3 are not plc-x; nothing is left, so only the dry run answers.
post_dep "{\"artifact_id\":\"$A8\",\"selector\":\"site=dep\",\"dry_run\":true}"
assert_eq "$(jq -c '[.targets, .supersede, .busy, .hardware_mismatch]' <<<"$BODY")" \
	'[0,0,1,2]' "dry run: d1 installing is busy; d2, d3 not plc-x"
post_dep "{\"artifact_id\":\"$A8\",\"selector\":\"site=dep\"}"
assert_eq "$STATUS $(jq -r .type <<<"$BODY")" \
	"422 urn:fleet:problem:deployment-no-targets" "every device skipped: 422"

# Stale and foreign reports: acknowledged, ignored, counted.
out=$(ws d1 "send $(hello plc-x)" "drain 2" \
	"send $(ustatus 3 downloading "$(cat /proc/sys/kernel/random/uuid)")" "read 5" \
	"send $(ustatus 5 verifying "$DEP")" "read 5" \
	"send $(ustatus 4 downloaded "$DEP")" "read 5" \
	"send $(ustatus 6 committed "$DEP" ',"running_version":7,"fw_version":"7.0"')" "read 5" \
	"send $(ustatus 7 failed "$DEP" ',"reason":"install-failed"')" "read 5" "close")
assert_eq "$(of_type "$out" ack | jq -r '"\(.seq):\(.status)"' | tr '\n' ' ')" \
	"3:applied 5:applied 4:applied 6:applied 7:applied " "every report acknowledged once"
assert_eq "$(psql_q "SELECT state || ' ' || seq || ' ' || running_version FROM deployment_devices WHERE device_id = '$D1' AND deployment_id = '$DEP'")" \
	"committed 6 7" "overtaken and late reports did not move the row back"
assert_eq "$(psql_q "SELECT count FROM update_reports_ignored WHERE device_id = '$D1'")" 3 \
	"foreign, overtaken and after-finish reports counted as ignored"
assert_eq "$(psql_q "SELECT fw_version || ' ' || (inventory->>'fw_version_num') FROM devices WHERE id = '$D1'")" \
	"7.0 7" "committed updates the device's firmware"

# ---- supersede and cancel ------------------------------------------------
post_dep "{\"artifact_id\":\"$A8\",\"device_id\":\"$D1\"}"
assert_eq "$STATUS" 201 "deployment of 8 to d1"
DEP3=$(jq -r .id <<<"$BODY")
post_dep "{\"artifact_id\":\"$A7\",\"device_id\":\"$D1\"}"
assert_eq "$(jq -c '[.targets, .supersede]' <<<"$BODY")" '[1,1]' "a newer deployment supersedes the pending row"
DEP4=$(jq -r .id <<<"$BODY")
assert_eq "$(psql_q "SELECT state FROM deployment_devices WHERE deployment_id = '$DEP3'")" superseded "old row superseded"
api GET "/api/v1/deployments/$DEP3"
assert_eq "$(jq -r .status <<<"$BODY")" finished "a deployment with nothing open is finished"
api POST "/api/v1/deployments/$DEP/cancel"
assert_eq "$STATUS" 200 "cancel"
assert_eq "$(jq -c '[.status, .cancelled_rows, .counts.committed, .counts.superseded]' <<<"$BODY")" \
	'["cancelled",1,1,1]' "cancel: d2's pending row superseded, d1's committed row kept"
api POST "/api/v1/deployments/$DEP/cancel"
assert_eq "$STATUS $(jq -r .type <<<"$BODY")" "409 urn:fleet:problem:deployment-not-active" "cancel twice: 409"
api GET "/api/v1/deployments/$DEP/devices?state=committed"
assert_eq "$(jq -c '[.items[].device_id]' <<<"$BODY")" "[\"$D1\"]" "devices filtered by state"
api GET "/api/v1/deployments/$DEP/devices?limit=1"
assert_eq "$(jq '.items | length' <<<"$BODY") $(jq -r '.next_cursor != null' <<<"$BODY")" "1 true" "devices paged"
api GET "/api/v1/deployments/$DEP/devices?state=nope"
assert_eq "$STATUS" 400 "unknown state filter: 400"
api GET /api/v1/deployments
assert_eq "$(jq '.items | length' <<<"$BODY")" 3 "three deployments listed"

# ---- release key sets ----------------------------------------------------
fleetctl release keys rotate --key "$K/r1.key" --current-version 1 \
	--new-key "$K/n1.key.pub" --threshold 1 --out "$T/ks2.json" >/dev/null
fleetctl release keys rotate --key "$K/n1.key" --current-version 3 \
	--new-key "$K/r2.key.pub" --threshold 1 --out "$T/ks4.json" >/dev/null
TOKEN=$ADMIN
api POST /api/v1/release-keysets -H 'Content-Type: application/json' \
	--data "{\"envelope\": $(cat "$T/ks4.json")}"
assert_eq "$STATUS $(jq -r .detail <<<"$BODY")" \
	"409 key set version 4 uploaded; the next one is 2" "key set 4 before 2: 409, expects 2"
api POST /api/v1/release-keysets -H 'Content-Type: application/json' \
	--data '{"envelope": {"payloadType": "text/plain", "payload": "", "signatures": []}}'
assert_eq "$STATUS $(jq -r .type <<<"$BODY")" "422 urn:fleet:problem:keyset-invalid" "not a key set envelope: 422"
# d1 connected while key set 2 is uploaded gets it at once.
ws_bg d1 d1-keys "send $(hello plc-x 1)" "drain 8"
D1_PID=$LAST_PID
wait_for "d1 online" 15 grep -q update.offer "$T/d1-keys.log"
api POST /api/v1/release-keysets -H 'Content-Type: application/json' \
	--data "{\"envelope\": $(cat "$T/ks2.json")}"
assert_eq "$STATUS $(jq -c '[.version, .threshold, .keys]' <<<"$BODY")" "201 [2,1,1]" "key set 2 stored"
api GET /api/v1/release-keysets
assert_eq "$(jq -c '[.items[].version]' <<<"$BODY")" "[2]" "only key set 2 stored"
wait_for "update.keys on upload" 10 grep -q update.keys "$T/d1-keys.log"
wait "$D1_PID" 2>/dev/null || true
assert_eq "$(of_type "$(cat "$T/d1-keys.log")" update.keys | jq -c '[.version, (.envelope == '"$(jq -c . "$T/ks2.json")"')]')" \
	"[2,true]" "a connected device got key set 2 when it was uploaded"
TOKEN=$(admin_token operator)
out=$(ws d2 "send $(hello plc-y 1)" "drain 3" \
	"send {\"type\":\"keys.status\",\"seq\":1,\"version\":2,\"state\":\"adopted\"}" "read 5" "close")
assert_eq "$(frames_of "$out" | jq -r 'select(.type == "update.keys" or .type == "update.offer") | .type' | tr '\n' ' ')" \
	"update.keys " "after hello with keyset_version 1: update.keys (no open offer for d2)"
assert_eq "$(psql_q "SELECT keyset_version FROM devices WHERE id = '$D2'")" 2 "keys.status adopted stored"
out=$(ws d2 "send $(hello plc-y 2)" "drain 3" "close")
assert_eq "$(of_type "$out" update.keys | wc -l)" 0 "a device that pins 2 gets nothing"

# ---- a mirror: artifact_url_base ------------------------------------------
fleetd_stop
echo "artifact_url_base = https://mirror.example/fw/" >>"$T/fleetd.conf"
fleetd_start
out=$(ws d1 "send $(hello plc-x 2)" "drain 3" "close")
assert_eq "$(of_type "$out" update.offer | jq -r .artifact_url)" \
	"https://mirror.example/fw/artifacts/$(jq -r .payload "$T/fw-7.json" | base64 -d | jq -r .sha256)" \
	"artifact_url_base: offers point at the mirror"
assert_eq "$(of_type "$out" update.offer | jq -r .deployment_id)" "$DEP4" "the open deployment is offered"

# Not https: logged and ignored, offers go to the device listener again.
fleetd_stop
sed -i 's|^artifact_url_base = .*|artifact_url_base = http://mirror.example/fw|' "$T/fleetd.conf"
fleetd_start
out=$(ws d1 "send $(hello plc-x 2)" "drain 3" "close")
assert_eq "$(of_type "$out" update.offer | jq -r .artifact_url)" "/artifacts/$(jq -r .payload "$T/fw-7.json" | base64 -d | jq -r .sha256)" \
	"artifact_url_base that is not https: ignored"
check "and said so in the log" grep -q 'artifact_url_base must be an https URL' "$T/fleetd.log"

# ---- fleetctl ------------------------------------------------------------
export FLEET_TOKEN=$TOKEN
fleetctl deployments create --artifact "$A8" --selector site=dep --dry-run \
	-o json >"$T/ctl.json" </dev/null
assert_eq "$(jq -c '[.dry_run, .matched, .hardware_mismatch]' "$T/ctl.json")" \
	"[true,3,2]" "fleetctl deployments create --dry-run"
fleetctl deployments list </dev/null >"$T/ctl.out"
check "fleetctl deployments list shows the cancelled one" \
	grep -Eq "^$DEP +plc-fw 7.0 +cancelled" "$T/ctl.out"
fleetctl deployments show "$DEP" </dev/null >"$T/ctl.out"
check "fleetctl deployments show: counts per state" \
	grep -Eq '^ +committed: +1$' "$T/ctl.out"
fleetctl deployments devices "$DEP" --state superseded </dev/null >"$T/ctl.out"
check "fleetctl deployments devices --state" grep -Eq "^$D2 +plc-y +superseded" "$T/ctl.out"
assert_eq "$(fleetctl deployments devices "$DEP" -o json </dev/null | jq length)" 2 \
	"fleetctl deployments devices: every device"
fleetctl deployments create --artifact "$A8" </dev/null 2>"$T/ctl.err" && rc=0 || rc=$?
assert_eq "$rc" 2 "fleetctl deployments create without a target: usage error"
# --watch (not a terminal: one line per change) follows DEP4 until d1
# commits it, then exits 0.
spawn watch fleetctl deployments show "$DEP4" --watch </dev/null
WATCH_PID=$LAST_PID
wait_for "the watch printed its first line" 10 grep -q 'finished' "$T/watch.log"
ws d1 "send $(hello plc-x 2)" "drain 1" \
	"send $(ustatus 8 downloading "$DEP4")" "read 5" \
	"send $(ustatus 9 installing "$DEP4")" "read 5" \
	"send $(ustatus 10 committed "$DEP4" ',"running_version":7')" "read 5" "close" >/dev/null
wait_for "the watch exits when nothing is open" 15 not kill -0 "$WATCH_PID"
wait "$WATCH_PID" && rc=0 || rc=$?
assert_eq "$rc" 0 "deployments show --watch exits 0 (nothing failed)"
assert_eq "$(tail -1 "$T/watch.log")" \
	"1/1 finished: 1 committed, 0 failed, 0 rolled back, 0 refused, 0 superseded; 0 open (0 downloading, 0 installing)" \
	"the watch's last line"
check "the watch printed the first state too" grep -q '^0/1 finished' "$T/watch.log"

harness_done
