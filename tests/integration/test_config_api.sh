#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The configuration API end to end on real PostgreSQL and fleetd (issue 9,
# server side; delivery to agents is test_config_delivery.sh):
# - profiles: create, list, show, publish with If-Match (two racing
#   publishes: one 201, one 412), immutable versions, hashes checked
#   against jq's canonical output and sha256sum (oracles we did not write);
# - device config: assign latest and pinned, overrides as a merge patch,
#   a publish moving only the devices that follow latest, ETag/If-Match;
# - clone over 3,000 devices: dry run (counts, samples, nothing written),
#   real (one transaction, one audit row, one change, ONE NOTIFY seen by a
#   psql listener), Idempotency-Key replay and mismatch, copy mode making
#   every target's effective document equal to the source's;
# - change progress and drift from reported state;
# - every bad input (not JSON, over 256 KiB, invalid document or merge
#   patch, unknown profile or version, a selector that matches nothing, a
#   stale If-Match) answers its problem+json and writes nothing.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

harness_init
pki_init
fleetd_start 1

OPERATOR=$(admin_token operator)
VIEWER=$(admin_token viewer)
TOKEN=$OPERATOR
JSON=(-H 'Content-Type: application/json')

is_problem() { # is_problem STATUS SLUG
	[ "$STATUS" = "$1" ] && [ "$CTYPE" = application/problem+json ] &&
		[ "$(jq -r .type <<<"$BODY")" = "urn:fleet:problem:$2" ]
}
# Everything a config write touches, as one line.
snapshot() {
	psql_q "SELECT (SELECT count(*) FROM config_profiles) || ' ' ||
		(SELECT count(*) FROM config_versions) || ' ' ||
		(SELECT count(*) FROM device_config) || ' ' ||
		(SELECT coalesce(sum(revision + desired_generation), 0)
			FROM device_config) || ' ' ||
		(SELECT count(*) FROM config_changes) || ' ' ||
		(SELECT count(*) FROM config_change_devices) || ' ' ||
		(SELECT count(*) FROM audit_log) || ' ' ||
		(SELECT count(*) FROM idempotency_keys)"
}
# The canonical text of a JSON value as jq writes it (sorted keys,
# compact; the same as ours for ASCII documents without reals) and its
# SHA-256 by sha256sum.
jq_sha() { jq -cjS . <<<"$1" | sha256sum | cut -d' ' -f1; }
# A problem that wrote nothing: status, slug, what.
refused() { # refused STATUS SLUG WHAT (after a call; compares snapshots)
	local after
	after=$(snapshot)
	if is_problem "$1" "$2" && [ "$after" = "$BEFORE" ]; then
		ok "$3 -> $1 $2, nothing written"
	else
		fail "$3 -> expected $1 $2 and nothing written, got $STATUS $BODY (before '$BEFORE', after '$after')"
	fi
}

# --- profiles ---------------------------------------------------------------
api POST /api/v1/profiles "${JSON[@]}" --data '{"name": "plc-base", "description": "PLC defaults"}'
assert_eq "$STATUS" 201 "profile created"
check "profile ETag is 0 before any version" [ "$(jq -r .latest_version <<<"$BODY")" = 0 ]
api POST /api/v1/profiles "${JSON[@]}" --data '{"name": "empty"}'
assert_eq "$STATUS" 201 "a second profile (no version) created"

BEFORE=$(snapshot)
TOKEN=$VIEWER api POST /api/v1/profiles "${JSON[@]}" --data '{"name": "v"}'
refused 403 forbidden "a viewer creating a profile"
api POST /api/v1/profiles "${JSON[@]}" --data '{"name": "plc-base"}'
refused 409 conflict "a taken profile name"
api POST /api/v1/profiles "${JSON[@]}" --data '{"name": "Bad Name"}'
refused 400 invalid-field "a name outside [a-z0-9._-]"
api POST /api/v1/profiles "${JSON[@]}" --data '{"name": "x", "colour": 1}'
refused 400 invalid-field "an unknown member"
api POST /api/v1/profiles "${JSON[@]}" --data '{"name": '
refused 400 malformed-json "a body that is not JSON"

V1='{"mode": "a", "log": {"level": "info", "file": "/var/log/plc"}, "ports": [502, 503], "limits": {"rate": 10}}'
api POST /api/v1/profiles/plc-base/versions "${JSON[@]}" -H 'If-Match: "0"' \
	--data "{\"document\": $V1, \"note\": \"first\"}"
assert_eq "$STATUS" 201 "version 1 published with If-Match 0"
assert_eq "$(jq -r .version <<<"$BODY")" 1 "it is version 1"
assert_eq "$(jq -r .sha256 <<<"$BODY")" "$(jq_sha "$V1")" "its hash is the SHA-256 of the canonical text (jq -cS | sha256sum)"
V1_SHA=$(jq -r .sha256 <<<"$BODY")
check "nobody follows it yet: change null" [ "$(jq -r .change <<<"$BODY")" = null ]
assert_eq "$(psql_q "SELECT document FROM config_versions WHERE version = 1")" "$(jq -cjS . <<<"$V1")" "stored as canonical text"

# Two publishes racing with the same If-Match: one wins, one gets 412.
RACERS=()
V2='{"mode": "b", "log": {"level": "info", "file": "/var/log/plc"}, "ports": [502], "limits": {"rate": 20}}'
for i in 1 2; do
	curl -sS --max-time 20 --cacert "$FLEET_CA" -o "$T/race$i.json" -w '%{http_code}' \
		-H "Authorization: Bearer $OPERATOR" "${JSON[@]}" -H 'If-Match: "1"' \
		--data "{\"document\": $V2, \"note\": \"race $i\"}" \
		"$FLEET_SERVER/api/v1/profiles/plc-base/versions" >"$T/race$i.status" &
	RACERS+=("$!")
done
wait "${RACERS[@]}"
RACE=$(sort "$T/race1.status" "$T/race2.status" | tr '\n' ' ')
assert_eq "$RACE" "201 412 " "two publishes racing on If-Match 1: one 201, one 412"
check "the loser's problem is precondition-failed" \
	grep -q 'urn:fleet:problem:precondition-failed' "$T/race1.json" "$T/race2.json"
assert_eq "$(psql_q "SELECT count(*) FROM config_versions")" 2 "exactly two versions exist"

api GET /api/v1/profiles/plc-base
assert_eq "$STATUS" 200 "profile shown"
assert_eq "$(jq -r .latest.version <<<"$BODY")" 2 "latest is version 2"
check "show carries the latest document" [ "$(jq -cS .latest.document <<<"$BODY")" = "$(jq -cS . <<<"$V2")" ]
api GET /api/v1/profiles/plc-base/versions
assert_eq "$(jq -r '[.items[].version] | join(",")' <<<"$BODY")" "2,1" "versions listed newest first"
api GET "/api/v1/profiles/plc-base/versions?limit=1"
NEXT=$(jq -r .next_cursor <<<"$BODY")
api GET "/api/v1/profiles/plc-base/versions?limit=1&cursor=$NEXT"
assert_eq "$(jq -r '.items[0].version' <<<"$BODY")" 1 "the versions list pages"
api GET /api/v1/profiles/plc-base/versions/1
assert_eq "$(jq -r .sha256 <<<"$BODY")" "$V1_SHA" "version 1 unchanged by later publishes"
api GET /api/v1/profiles
assert_eq "$(jq -r '[.items[].name] | join(",")' <<<"$BODY")" "plc-base,empty" "profiles listed"
check "versions are immutable in the database too" \
	not psql_q "UPDATE config_versions SET note = 'x' WHERE version = 1" 2>/dev/null

BEFORE=$(snapshot)
api POST /api/v1/profiles/plc-base/versions "${JSON[@]}" -H 'If-Match: "1"' --data "{\"document\": $V1}"
refused 412 precondition-failed "a publish with a stale If-Match"
api POST /api/v1/profiles/plc-base/versions "${JSON[@]}" --data '{"document": [1, 2]}'
refused 400 invalid-document "a document that is not an object"
api POST /api/v1/profiles/plc-base/versions "${JSON[@]}" --data '{"document": {"a": {"b": null}}}'
refused 400 invalid-document "a document with a null member"
check "the detail names the member" grep -q '/a/b' <<<"$BODY"
api POST /api/v1/profiles/plc-base/versions "${JSON[@]}" --data '{"note": "no document"}'
refused 400 invalid-field "a publish without a document"
api POST /api/v1/profiles/plc-base/versions "${JSON[@]}" --data '{"document": {}'
refused 400 malformed-json "a publish that is not JSON"
api POST /api/v1/profiles/nosuch/versions "${JSON[@]}" --data '{"document": {}}'
refused 404 not-found "a publish to an unknown profile"
python3 -c 'import json; print(json.dumps({"document": {"blob": "x" * 270000}}))' >"$T/big.json"
api POST /api/v1/profiles/plc-base/versions "${JSON[@]}" --data-binary @"$T/big.json"
refused 413 payload-too-large "a document over 256 KiB"
api POST /api/v1/profiles/plc-base/versions --data "{\"document\": $V1}"
refused 415 unsupported-media-type "a publish without Content-Type application/json"

# --- devices --------------------------------------------------------------------
enrollment_token 3 b7
device_enroll d1 plc-x
device_enroll d2 plc-x
device_enroll d3 plc-x
D1=$(id_of d1)
D2=$(id_of d2)
D3=$(id_of d3)
# A fleet of 3,000 more (rows as enrollment leaves them; no agents: the
# delivery is another test).
psql_q "INSERT INTO devices (id, labels, model)
	SELECT gen_random_uuid(), jsonb_build_object('site', 'bulk',
		'row', (i % 10)::text), 'sim' FROM generate_series(1, 3000) i" >/dev/null

api GET "/api/v1/devices/$D1/config"
assert_eq "$STATUS" 200 "device config shown before any assignment"
assert_eq "$(jq -r '[.state, .revision, .desired, .profile] | join(",")' <<<"$BODY")" "none,1,," "nothing assigned: state none, revision 1"

OV='{"log": {"level": "debug"}, "extra": {"k": 1}}'
api PATCH "/api/v1/devices/$D1/config" "${JSON[@]}" -H 'If-Match: "1"' \
	--data "{\"profile\": \"plc-base\", \"version\": \"latest\", \"overrides\": $OV}"
assert_eq "$STATUS" 200 "d1: plc-base latest with overrides"
EFF1=$(jq -cS -n --argjson a "$V2" --argjson b "$OV" '$a * $b')
assert_eq "$(jq -r .desired.sha256 <<<"$BODY")" "$(jq_sha "$EFF1")" "d1 desired = merge(v2, overrides), hashed canonically"
assert_eq "$(jq -r '[.version, .resolved_version, .desired.generation, .revision, .state] | join(",")' <<<"$BODY")" \
	"latest,2,1,2,offline" "d1: latest (2), generation 1, revision 2, offline (no agent)"
D1_CHANGE=$(jq -r .change_id <<<"$BODY")
assert_eq "$(psql_q "SELECT kind || ' ' || matched || ' ' || changed FROM config_changes WHERE id = '$D1_CHANGE'")" "set 1 1" "a set is a change of one device"

api PATCH "/api/v1/devices/$D2/config" "${JSON[@]}" --data '{"profile": "plc-base", "version": 1}'
assert_eq "$(jq -r '[.version, .resolved_version, .desired.sha256] | join(",")' <<<"$BODY")" "1,1,$V1_SHA" "d2 pinned to version 1"

BEFORE=$(snapshot)
api PATCH "/api/v1/devices/$D1/config" "${JSON[@]}" -H 'If-Match: "1"' --data '{"profile": "plc-base"}'
refused 412 precondition-failed "a device config PATCH with a stale If-Match"
api PATCH "/api/v1/devices/$D1/config" "${JSON[@]}" --data '{"profile": "plc-base", "overrides": [1]}'
refused 400 invalid-merge-patch "overrides that are not an object"
api PATCH "/api/v1/devices/$D1/config" "${JSON[@]}" --data '{"profile": "nosuch"}'
refused 422 unknown-profile "an unknown profile"
api PATCH "/api/v1/devices/$D1/config" "${JSON[@]}" --data '{"profile": "plc-base", "version": 99}'
refused 422 unknown-version "an unknown version"
api PATCH "/api/v1/devices/$D1/config" "${JSON[@]}" --data '{"profile": "empty"}'
refused 409 no-version "a profile without a version"
api PATCH "/api/v1/devices/$D1/config" "${JSON[@]}" --data '{"profile": null, "version": 1}'
refused 400 invalid-field "a version without a profile"
api PATCH "/api/v1/devices/$D1/config" "${JSON[@]}" --data '{"profile": "plc-base", "version": 0}'
refused 400 invalid-field "version 0"
api PATCH "/api/v1/devices/$D1/config" "${JSON[@]}" --data '{"profile": "plc-base"'
refused 400 malformed-json "a device config that is not JSON"
python3 -c 'import json; print(json.dumps({"profile": "plc-base", "overrides": {"blob": "x" * 270000}}))' >"$T/bigov.json"
api PATCH "/api/v1/devices/$D1/config" "${JSON[@]}" --data-binary @"$T/bigov.json"
refused 413 payload-too-large "overrides over 256 KiB"
api PATCH "/api/v1/devices/00000000-0000-4000-8000-000000000000/config" "${JSON[@]}" --data '{"profile": "plc-base"}'
refused 404 not-found "an unknown device"
TOKEN=$VIEWER api PATCH "/api/v1/devices/$D1/config" "${JSON[@]}" --data '{"profile": "plc-base"}'
refused 403 forbidden "a viewer setting a device config"

# A publish moves the devices that follow latest, never the pinned ones.
V3='{"mode": "c", "log": {"level": "warn", "file": "/var/log/plc"}, "ports": [502], "limits": {"rate": 30}}'
api POST /api/v1/profiles/plc-base/versions "${JSON[@]}" -H 'If-Match: "2"' --data "{\"document\": $V3}"
assert_eq "$STATUS" 201 "version 3 published"
assert_eq "$(jq -r '[.change.followers, .change.changed] | join(",")' <<<"$BODY")" "1,1" "one follower moved"
api GET "/api/v1/devices/$D1/config"
EFF1=$(jq -cS -n --argjson a "$V3" --argjson b "$OV" '$a * $b')
assert_eq "$(jq -r '[.resolved_version, .desired.generation, .desired.sha256] | join(",")' <<<"$BODY")" \
	"3,2,$(jq_sha "$EFF1")" "d1 (latest) now has merge(v3, overrides), generation 2"
D1_SHA=$(jq -r .desired.sha256 <<<"$BODY")
api GET "/api/v1/devices/$D2/config"
assert_eq "$(jq -r '[.resolved_version, .desired.generation, .desired.sha256] | join(",")' <<<"$BODY")" \
	"1,1,$V1_SHA" "d2 (pinned to 1) untouched"

# --- clone: bad input writes nothing ----------------------------------------------
BEFORE=$(snapshot)
api POST /api/v1/config/clone "${JSON[@]}" --data "{\"source\": {\"device\": \"$D1\"}, \"selector\": \"site=nowhere\"}"
refused 422 selector-matches-nothing "a clone whose selector matches nothing"
api POST /api/v1/config/clone "${JSON[@]}" --data "{\"source\": {\"device\": \"$D3\"}, \"selector\": \"site=bulk\"}"
refused 422 source-has-no-config "a clone from a device without configuration"
api POST /api/v1/config/clone "${JSON[@]}" --data "{\"source\": {\"device\": \"$D3\"}, \"selector\": \"site=bulk\", \"mode\": \"copy\"}"
refused 422 source-has-no-config "a copy from a device without configuration"
api POST /api/v1/config/clone "${JSON[@]}" --data '{"source": {"device": "00000000-0000-4000-8000-000000000000"}, "selector": "site=bulk"}'
refused 404 not-found "a clone from an unknown device"
api POST /api/v1/config/clone "${JSON[@]}" --data '{"source": {"profile": "nosuch"}, "selector": "site=bulk"}'
refused 422 unknown-profile "a clone from an unknown profile"
api POST /api/v1/config/clone "${JSON[@]}" --data '{"source": {"profile": "plc-base", "version": 7}, "selector": "site=bulk"}'
refused 422 unknown-version "a clone from an unknown version"
api POST /api/v1/config/clone "${JSON[@]}" --data "{\"source\": {\"device\": \"$D1\"}, \"selector\": \"site in (\"}"
refused 400 invalid-field "a clone with a bad selector"
api POST /api/v1/config/clone "${JSON[@]}" --data "{\"source\": {\"device\": \"$D1\"}, \"selector\": \"site=bulk\", \"mode\": \"merge\"}"
refused 400 invalid-field "a clone with an unknown mode"
api POST /api/v1/config/clone "${JSON[@]}" --data "{\"source\": {\"device\": \"$D1\"}, \"selector\": \"site=bulk\", \"dry_run\": \"yes\"}"
refused 400 invalid-field "dry_run that is not a boolean"
api POST /api/v1/config/clone "${JSON[@]}" --data "{\"source\": {\"device\": \"$D1\"}}"
refused 400 invalid-field "a clone without a selector"
api POST /api/v1/config/clone "${JSON[@]}" --data '{"source": {'
refused 400 malformed-json "a clone that is not JSON"

# --- clone: dry run ----------------------------------------------------------------
BEFORE=$(snapshot)
START=$(date +%s%N)
api POST /api/v1/config/clone "${JSON[@]}" --data "{\"source\": {\"device\": \"$D1\"}, \"selector\": \"site=bulk\", \"dry_run\": true}"
MS=$((($(date +%s%N) - START) / 1000000))
echo "# dry run over 3000 devices: ${MS} ms (round trip)"
assert_eq "$STATUS" 200 "dry run answers 200"
assert_eq "$(jq -r '[.dry_run, .change_id, .counts.matched, .counts.would_change, .counts.unchanged, .counts.offline] | join(",")' <<<"$BODY")" \
	"true,,3000,3000,0,3000" "dry run counts: 3000 matched, all would change, all offline"
assert_eq "$(jq -r '[.assign.profile, .assign.version, .assign.resolved_version] | join(",")' <<<"$BODY")" "plc-base,latest,3" "dry run says what is assigned"
assert_eq "$(jq -r '.samples | length' <<<"$BODY")" 5 "dry run shows five samples"
check "a sample's diff (from nothing) is the new document" \
	[ "$(jq -cS '.samples[0].diff' <<<"$BODY")" = "$(jq -cS . <<<"$V3")" ]
assert_eq "$(snapshot)" "$BEFORE" "the dry run wrote nothing"

# --- clone: real, with one NOTIFY -----------------------------------------------------
mkfifo "$T/listen.fifo"
spawn listen psql -X -d "$DB" -f "$T/listen.fifo"
LISTEN_PID=$LAST_PID
exec 7>"$T/listen.fifo"
echo "LISTEN fleet_config;" >&7
listening() { [ "$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN fleet_config;'")" = 1 ]; }
wait_for "psql listens on fleet_config" 10 listening
START=$(date +%s%N)
api POST /api/v1/config/clone "${JSON[@]}" -H 'Idempotency-Key: clone-1' \
	--data "{\"source\": {\"device\": \"$D1\"}, \"selector\": \"site=bulk\"}"
MS=$((($(date +%s%N) - START) / 1000000))
echo "# clone over 3000 devices: ${MS} ms (round trip)"
assert_eq "$STATUS" 201 "clone answers 201"
CHANGE=$(jq -r .change_id <<<"$BODY")
FIRST=$BODY
echo "SELECT 1;" >&7
echo '\q' >&7
exec 7>&-
wait_for "psql listener exits" 10 not kill -0 "$LISTEN_PID"
assert_eq "$(grep -c 'Asynchronous notification "fleet_config"' "$T/listen.log")" 1 "exactly one NOTIFY for 3000 devices"
check "its payload is the change id" grep -q "payload \"$CHANGE\"" "$T/listen.log"
assert_eq "$(psql_q "SELECT count(*) FROM device_config c JOIN devices d ON d.id = c.device_id
	JOIN config_profiles p ON p.id = c.profile_id WHERE d.labels->>'site' = 'bulk'
	AND p.name = 'plc-base' AND c.pinned_version IS NULL AND c.overrides IS NULL
	AND c.desired_sha256 = '$(jq_sha "$V3")' AND c.desired_generation = 1
	AND c.desired_change_id = '$CHANGE'")" 3000 "all 3000 follow plc-base latest with v3's document, generation 1"
assert_eq "$(psql_q "SELECT count(*) FROM audit_log WHERE action = 'config.clone'")" 1 "one audit row"
assert_eq "$(psql_q "SELECT count(*) FROM config_change_devices WHERE change_id = '$CHANGE'")" 3000 "3000 members of the change"
api POST /api/v1/config/clone "${JSON[@]}" -H 'Idempotency-Key: clone-1' \
	--data "{\"source\": {\"device\": \"$D1\"}, \"selector\": \"site=bulk\"}"
assert_eq "$STATUS/$(jq -r .change_id <<<"$BODY")" "201/$CHANGE" "the same Idempotency-Key replays the first answer"
assert_eq "$(psql_q "SELECT count(*) FROM config_changes WHERE kind = 'clone'")" 1 "the replay made no change"
BEFORE=$(snapshot)
api POST /api/v1/config/clone "${JSON[@]}" -H 'Idempotency-Key: clone-1' \
	--data "{\"source\": {\"device\": \"$D1\"}, \"selector\": \"site=bulk,row=1\"}"
refused 409 conflict "the same Idempotency-Key with another request"

# --- change progress and drift --------------------------------------------------------
api GET "/api/v1/config/changes/$CHANGE"
assert_eq "$(jq -r '[.kind, .counts.matched, .counts.changed, .counts.applied, .counts.failed, .counts.offline] | join(",")' <<<"$BODY")" \
	"clone,3000,3000,0,0,3000" "change: 3000 offline, none applied yet"
# Reports as the delivery side writes them (migration 0006's contract).
psql_q "INSERT INTO device_config_reported (device_id, generation, sha256, status, reason)
	SELECT device_id, generation, sha256, 'applied', NULL FROM config_change_devices
	WHERE change_id = '$CHANGE' ORDER BY device_id LIMIT 10" >/dev/null
psql_q "INSERT INTO device_config_reported (device_id, generation, sha256, status, reason)
	SELECT device_id, generation, NULL, 'failed', 'validate hook: exit 3' FROM config_change_devices
	WHERE change_id = '$CHANGE' ORDER BY device_id OFFSET 10 LIMIT 2" >/dev/null
psql_q "INSERT INTO device_config_reported (device_id, generation, sha256, status, reason)
	SELECT device_id, generation, repeat('ab', 32), 'drifted', 'edited on the device' FROM config_change_devices
	WHERE change_id = '$CHANGE' ORDER BY device_id OFFSET 12 LIMIT 1" >/dev/null
api GET "/api/v1/config/changes/$CHANGE"
assert_eq "$(jq -r '[.counts.applied, .counts.failed, .counts.offline, (.failures | length), .failures[0].reason] | join(",")' <<<"$BODY")" \
	"11,2,2987,2,validate hook: exit 3" "change: 11 applied (a drift after applying counts), 2 failed with the hook's reason"
api GET "/api/v1/config/changes/00000000-0000-4000-8000-000000000000"
check "an unknown change -> 404" is_problem 404 not-found

api GET "/api/v1/config/drift?selector=site%3Dbulk&limit=1000"
assert_eq "$(jq -r '.items | length' <<<"$BODY")" 1000 "drift lists in pages (1000)"
api GET "/api/v1/config/drift?selector=site%3Dbulk&limit=1000&cursor=$(jq -r .next_cursor <<<"$BODY")"
api GET "/api/v1/config/drift?selector=site%3Dbulk&limit=1000&cursor=$(jq -r .next_cursor <<<"$BODY")"
assert_eq "$(jq -r '.items | length' <<<"$BODY")" 990 "3000 - 10 in sync = 2990 out of sync in three pages"
FAILED_ID=$(psql_q "SELECT device_id FROM device_config_reported WHERE status = 'failed' LIMIT 1")
DRIFT_ID=$(psql_q "SELECT device_id FROM device_config_reported WHERE status = 'drifted'")
api GET "/api/v1/config/drift?selector=id%3D$FAILED_ID"
assert_eq "$(jq -r '.items[0] | [.state, .reason, .reported.status] | join(",")' <<<"$BODY")" "failed,validate hook: exit 3,failed" "a failed device in the drift list"
api GET "/api/v1/devices/$DRIFT_ID/config"
assert_eq "$(jq -r '[.state, .difference.reason, .difference.reported_sha256] | join(",")' <<<"$BODY")" \
	"drifted,edited on the device,$(printf 'ab%.0s' $(seq 32))" "a drifted device shows the difference"
api GET "/api/v1/config/drift?selector=site%3Dbulk%2C%21nokey&limit=0"
check "drift limit 0 -> 400" is_problem 400 invalid-field

# --- clone: copy mode ------------------------------------------------------------------
api POST /api/v1/config/clone "${JSON[@]}" --data "{\"source\": {\"device\": \"$D1\"}, \"selector\": \"site=bulk,row=3\", \"mode\": \"copy\"}"
assert_eq "$STATUS/$(jq -r .counts.matched <<<"$BODY")" "201/300" "copy onto 300 devices"
assert_eq "$(psql_q "SELECT count(*) FROM device_config c JOIN devices d ON d.id = c.device_id
	WHERE d.labels->>'row' = '3' AND d.labels->>'site' = 'bulk' AND c.desired_sha256 = '$D1_SHA'
	AND c.overrides = '$(jq -cjS . <<<"$OV" | sed "s/'/''/g")'")" 300 \
	"copy: every target's effective config is d1's, its overrides the difference to its base"
api POST /api/v1/config/clone "${JSON[@]}" --data "{\"source\": {\"device\": \"$D1\"}, \"selector\": \"site=bulk,row=3\", \"mode\": \"copy\", \"dry_run\": true}"
assert_eq "$(jq -r '[.counts.matched, .counts.would_change, .counts.unchanged] | join(",")' <<<"$BODY")" "300,0,300" "copying again would change nothing"

# Concurrency: a publish, a copy clone and a clone racing over the same
# devices. Afterwards every device's desired document is merge(the version
# it has, its overrides), whatever order they committed in (lock order:
# profile, then devices by id).
V4='{"mode": "d", "log": {"level": "warn", "file": "/var/log/plc4"}, "ports": [502, 504], "limits": {"rate": 40}}'
RACERS=()
curl -sS --max-time 60 --cacert "$FLEET_CA" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $OPERATOR" \
	"${JSON[@]}" --data "{\"document\": $V4}" "$FLEET_SERVER/api/v1/profiles/plc-base/versions" >"$T/r1" &
RACERS+=("$!")
curl -sS --max-time 60 --cacert "$FLEET_CA" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $OPERATOR" \
	"${JSON[@]}" --data "{\"source\": {\"device\": \"$D1\"}, \"selector\": \"site=bulk,row in (4,5)\", \"mode\": \"copy\"}" \
	"$FLEET_SERVER/api/v1/config/clone" >"$T/r2" &
RACERS+=("$!")
curl -sS --max-time 60 --cacert "$FLEET_CA" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $OPERATOR" \
	"${JSON[@]}" --data "{\"source\": {\"profile\": \"plc-base\"}, \"selector\": \"site=bulk,row in (5,6)\"}" \
	"$FLEET_SERVER/api/v1/config/clone" >"$T/r3" &
RACERS+=("$!")
wait "${RACERS[@]}"
assert_eq "$(cat "$T/r1") $(cat "$T/r2") $(cat "$T/r3")" "201 201 201" "a publish and two clones racing all succeed"
psql_q "SELECT json_agg(json_build_object('id', c.device_id, 'base', v.document, 'ov', c.overrides,
		'desired', c.desired_document, 'latest', c.pinned_version IS NULL))
	FROM device_config c JOIN config_profiles p ON p.id = c.profile_id
	JOIN config_versions v ON v.profile_id = p.id
		AND v.version = coalesce(c.pinned_version, p.latest_version)" >"$T/state.json"
consistent() {
	python3 - "$T/state.json" <<'PY'
import json, sys
def merge(t, p):  # RFC 7386, as the RFC writes it
    if not isinstance(p, dict):
        return p
    t = dict(t) if isinstance(t, dict) else {}
    for k, v in p.items():
        if v is None:
            t.pop(k, None)
        else:
            t[k] = merge(t.get(k), v)
    return t
rows = json.load(open(sys.argv[1]))
bad = [r["id"] for r in rows if json.dumps(merge(json.loads(r["base"]),
       json.loads(r["ov"]) if r["ov"] else {}), sort_keys=True,
       separators=(",", ":"), ensure_ascii=False) != r["desired"]]
print("%d devices, %d inconsistent %s" % (len(rows), len(bad), bad[:3]))
sys.exit(1 if bad else 0)
PY
}
check "after the race every device has merge(its version, its overrides) (python's RFC 7386 as the oracle)" consistent
assert_eq "$(psql_q "SELECT count(*) FROM device_config c JOIN devices d ON d.id = c.device_id
	WHERE d.labels->>'row' IN ('4', '5') AND d.labels->>'site' = 'bulk' AND c.desired_sha256 IS NULL")" 0 \
	"no raced device lost its document"

# Idempotency-Key on profile creation.
api POST /api/v1/profiles "${JSON[@]}" -H 'Idempotency-Key: p-1' --data '{"name": "idem"}'
FIRST_P=$BODY
api POST /api/v1/profiles "${JSON[@]}" -H 'Idempotency-Key: p-1' --data '{"name": "idem"}'
assert_eq "$STATUS/$BODY" "201/$FIRST_P" "a profile creation replayed with its Idempotency-Key"

# From a profile version, pinned.
api POST /api/v1/config/clone "${JSON[@]}" --data "{\"source\": {\"profile\": \"plc-base\", \"version\": 1}, \"selector\": \"id=$D3\"}"
assert_eq "$STATUS" 201 "clone of plc-base@1 onto d3"
api GET "/api/v1/devices/$D3/config"
assert_eq "$(jq -r '[.version, .desired.sha256] | join(",")' <<<"$BODY")" "1,$V1_SHA" "d3 pinned to version 1"

# A decommissioned device takes no configuration.
api POST "/api/v1/devices/$D3/decommission"
BEFORE=$(snapshot)
api PATCH "/api/v1/devices/$D3/config" "${JSON[@]}" --data '{"profile": "plc-base"}'
refused 409 conflict "a decommissioned device"

# PATCH keeps what it does not name; PUT replaces the whole assignment.
api PATCH "/api/v1/devices/$D1/config" "${JSON[@]}" --data '{"version": 1}'
assert_eq "$(jq -r '[.profile, .version, (.overrides | tojson)] | join(",")' <<<"$BODY")" \
	"plc-base,1,$(jq -cS . <<<"$OV")" "PATCH of the version alone keeps the profile and the overrides"
api PUT "/api/v1/devices/$D1/config" "${JSON[@]}" --data '{"profile": "plc-base"}'
assert_eq "$STATUS/$(jq -r '[.version, .overrides] | join(",")' <<<"$BODY")" "200/latest," "PUT replaces the assignment (no overrides, latest)"

# Removing a configuration.
api PATCH "/api/v1/devices/$D2/config" "${JSON[@]}" --data '{"profile": null, "overrides": null}'
assert_eq "$(jq -r '[.state, .desired, .profile] | join(",")' <<<"$BODY")" "none,," "profile and overrides removed: no desired document"

# An enrollment token that names a profile: the new device follows its
# latest version from the start (its first connection gets the document).
api GET /api/v1/profiles/plc-base
LATEST=$(jq -r .latest.version <<<"$BODY")
LATEST_SHA=$(jq -r .latest.sha256 <<<"$BODY")
api POST /api/v1/tokens -H 'Content-Type: application/json' \
	--data '{"uses": 2, "expires_in": "1h", "labels": {"site": "zt"}, "profile": "plc-base"}'
ENROLL=$(jq -r .token <<<"$BODY")
device_enroll zt1
api GET "/api/v1/devices/$(id_of zt1)/config"
assert_eq "$(jq -r '[.profile, .version, .resolved_version, .desired.generation, .desired.sha256] | join(",")' <<<"$BODY")" \
	"plc-base,latest,$LATEST,1,$LATEST_SHA" "a device enrolled with a profile token follows the profile's latest version"
api POST /api/v1/tokens -H 'Content-Type: application/json' \
	--data '{"uses": 1, "expires_in": "1h", "profile": "empty"}'
ENROLL=$(jq -r .token <<<"$BODY")
device_enroll zt2
api GET "/api/v1/devices/$(id_of zt2)/config"
assert_eq "$(jq -r '[.profile, .version, .desired] | join(",")' <<<"$BODY")" \
	"empty,latest," "a profile without versions is assigned, with nothing to apply yet"

harness_done
