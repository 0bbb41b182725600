#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The campaigns API's answers to operators' mistakes and races (issue 12,
# docs/internals/campaigns.md "API"): real PostgreSQL and fleetd, curl.
# - bad definitions: missing or wrong members, phases that do not end at
#   100 or do not grow, shares outside [0, 1], a bad window, a kind with
#   another kind's target, an unknown member, a selector that does not
#   parse: 4xx problem+json naming what is wrong, nothing written;
# - unknown artifact, artifact without its file, unknown profile and
#   version, a selector matching nothing: their problem types;
# - a dry run counts matched and offline devices per phase and the least
#   duration, and writes nothing;
# - Idempotency-Key: the same create twice is one campaign, answered
#   twice the same;
# - transitions not allowed in the status: 409 campaign-transition with
#   the status (campaign_status; "status" is the HTTP status of RFC 7807);
#   If-Match with an old ETag: 412; a viewer token: 403 on
#   writes, 200 on reads; resume may change the selector, others may not.
# The end-to-end rollouts (devices updated, gates, driver takeover) are
# test_campaigns.sh's and test_campaigns_agents.sh's.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

harness_init
pki_init
fleetd_write_config 2
fleetd_start
TOKEN=$(admin_token operator camp-op)
OPERATOR=$TOKEN
VIEWER=$(admin_token viewer camp-viewer)
JSON=(-H 'Content-Type: application/json')

post() { # PATH BODY [curl args...]
	api POST "$1" "${JSON[@]}" --data "$2" "${@:3}"
}
# is STATUS TYPE DESCRIPTION: the last answer's status and problem type
is() {
	local type
	type=$(jq -r '.type // empty' <<<"$BODY" 2>/dev/null || true)
	assert_eq "$STATUS ${type#urn:fleet:problem:}" "$1 $2" "$3"
}
campaigns_rows() { psql_q "SELECT count(*) FROM campaigns"; }
jqe() { jq -e "$@" >/dev/null; }

# ---- devices: 4 at site=camp, none online --------------------------------
enrollment_token 4 camp
for d in c1 c2 c3 c4; do
	device_enroll "$d" plc-x
done

# ---- bad definitions -----------------------------------------------------
ROT='"kind": "rotation", "selector": "site=camp"'
post /api/v1/campaigns '{"kind": "rotation", "phases": [100]}'
is 422 validation "no name: 422 validation"
check "... naming the member" [ "$(jq -r .field <<<"$BODY")" = name ]
post /api/v1/campaigns '{"name": "x", "kind": "ota", "phases": [100]}'
is 422 validation "an unknown kind: 422"
post /api/v1/campaigns "{\"name\": \"x\", $ROT}"
is 422 validation "no phases: 422"
post /api/v1/campaigns "{\"name\": \"x\", $ROT, \"phases\": [1, 10, 50]}"
is 422 validation "percent phases not ending at 100: 422"
assert_eq "$(jq -r .field <<<"$BODY")" phases "... naming the member (phases)"
post /api/v1/campaigns "{\"name\": \"x\", $ROT, \"phases\": [50, 10, 100]}"
is 422 validation "phases that do not grow: 422"
post /api/v1/campaigns "{\"name\": \"x\", $ROT, \"phases\": \"1,x,100\"}"
is 422 validation "phases text that is not numbers: 422"
post /api/v1/campaigns "{\"name\": \"x\", $ROT, \"phases\": [100], \"gate\": {\"min_success\": 1.5}}"
is 422 validation "min_success above 1: 422"
assert_eq "$(jq -r .field <<<"$BODY")" gate "... naming the member (gate)"
post /api/v1/campaigns "{\"name\": \"x\", $ROT, \"phases\": [100], \"gate\": {\"soak_seconds\": -5}}"
is 422 validation "a negative soak: 422"
post /api/v1/campaigns "{\"name\": \"x\", $ROT, \"phases\": [100], \"window\": {\"hours\": \"25-3\"}}"
is 422 validation "window hours out of range: 422"
post /api/v1/campaigns "{\"name\": \"x\", $ROT, \"phases\": [100], \"max_concurrent\": -1}"
is 422 validation "a negative max_concurrent: 422"
post /api/v1/campaigns "{\"name\": \"x\", $ROT, \"phases\": [100], \"artifact_id\": \"$(cat /proc/sys/kernel/random/uuid)\"}"
is 422 validation "a rotation with an artifact: 422"
post /api/v1/campaigns '{"name": "x", "kind": "firmware", "phases": [100]}'
is 422 validation "firmware without artifact_id: 422"
post /api/v1/campaigns '{"name": "x", "kind": "config", "profile": "p", "phases": [100]}'
is 422 validation "config without version: 422"
post /api/v1/campaigns '{"name": "x", "kind": "config", "profile": "p", "version": 0, "phases": [100]}'
is 422 validation "config version 0: 422"
post /api/v1/campaigns '{"name": "x", "kind": "rotation", "selector": "site=(", "phases": [100]}'
is 422 validation "a selector that does not parse: 422"
post /api/v1/campaigns "{\"name\": \"x\", $ROT, \"phases\": [100], \"colour\": \"red\"}"
is 400 invalid-field "an unknown member: 400 invalid-field"
post /api/v1/campaigns "{\"name\": 7, $ROT, \"phases\": [100]}"
is 400 invalid-field "a name that is not a string: 400"
post /api/v1/campaigns "{\"name\": \"x\", $ROT, \"phases\": [100], \"start\": \"yes\"}"
is 400 invalid-field "start that is not a boolean: 400"
post /api/v1/campaigns '{"name": "x", "kind": '
is 400 malformed-json "truncated JSON: 400"
api POST /api/v1/campaigns -H 'Content-Type: text/plain' --data '{}'
is 415 unsupported-media-type "not JSON: 415"
post /api/v1/campaigns "{\"name\": \"$(head -c 300 /dev/zero | tr '\0' n)\", $ROT, \"phases\": [100]}"
is 400 invalid-field "a 300-byte name: 400"
assert_eq "$(campaigns_rows)" 0 "no bad definition wrote a campaign"

# ---- unknown targets -----------------------------------------------------
post /api/v1/campaigns "{\"name\": \"x\", \"kind\": \"firmware\", \"artifact_id\": \"$(cat /proc/sys/kernel/random/uuid)\", \"selector\": \"site=camp\", \"phases\": [100]}"
is 422 unknown-artifact "an unknown artifact: 422 unknown-artifact"
K="$T/keys"
mkdir -p "$K"
fleetctl keys gen --out "$K/r1.key" >/dev/null </dev/null
head -c 1000 /dev/urandom >"$T/fw.bin"
fleetctl release sign --key "$K/r1.key" --name plc-fw --version 2.0 \
	--version-int 2 --hw plc-x --installer single-file --expires 1d \
	--out "$T/fw.json" "$T/fw.bin" >/dev/null </dev/null
post /api/v1/artifacts "{\"envelope\": $(cat "$T/fw.json")}"
assert_eq "$STATUS" 201 "artifact registered without its file"
ART=$(jq -r .id <<<"$BODY")
post /api/v1/campaigns "{\"name\": \"x\", \"kind\": \"firmware\", \"artifact_id\": \"$ART\", \"selector\": \"site=camp\", \"phases\": [100]}"
is 409 artifact-not-ready "an artifact without its file: 409 artifact-not-ready"
post /api/v1/campaigns '{"name": "x", "kind": "config", "profile": "nope", "version": 1, "phases": [100]}'
is 422 unknown-profile "an unknown profile: 422 unknown-profile"
post /api/v1/profiles '{"name": "app"}'
assert_eq "$STATUS" 201 "profile app created"
post /api/v1/profiles/app/versions '{"document": {"mode": "one"}}'
assert_eq "$STATUS" 201 "app version 1 published"
post /api/v1/campaigns '{"name": "x", "kind": "config", "profile": "app", "version": 2, "phases": [100]}'
is 422 unknown-version "a version the profile does not have: 422 unknown-version"
post /api/v1/campaigns "{\"name\": \"x\", \"kind\": \"rotation\", \"selector\": \"site=nowhere\", \"phases\": [100]}"
is 422 no-match "a selector matching nothing: 422 no-match"
assert_eq "$(campaigns_rows)" 0 "no refused create wrote a campaign"

# ---- dry run -------------------------------------------------------------
post /api/v1/campaigns "{\"name\": \"preview\", $ROT, \"phases\": [25, 50, 100], \"gate\": {\"soak_seconds\": 60}, \"gates\": [{\"soak_seconds\": 600}, {}, {}], \"dry_run\": true}"
assert_eq "$STATUS" 200 "dry run: 200"
assert_eq "$(jq -c '[.dry_run, .matched, .offline]' <<<"$BODY")" "[true,4,4]" \
	"dry run: 4 matched, 4 offline"
assert_eq "$(jq -c '[.phases[] | [.phase, .devices]]' <<<"$BODY")" "[[1,1],[2,1],[3,2]]" \
	"dry run: 1, 1 and 2 devices per phase"
assert_eq "$(jq .min_duration_seconds <<<"$BODY")" 720 \
	"dry run: the least duration is the sum of the soaks (600 + 60 + 60)"
check "dry run: an earliest completion" jqe '.earliest_completion | test("Z$")' <<<"$BODY"
assert_eq "$(campaigns_rows)" 0 "a dry run writes nothing"

# ---- idempotent create ---------------------------------------------------
KEY=$(cat /proc/sys/kernel/random/uuid)
BODY1="{\"name\": \"canary\", $ROT, \"phases\": [50, 100]}"
post /api/v1/campaigns "$BODY1" -H "Idempotency-Key: $KEY"
assert_eq "$STATUS" 201 "create: 201"
CAMP=$(jq -r .id <<<"$BODY")
FIRST=$(jq -c '{id, name, status, revision}' <<<"$BODY")
assert_eq "$(jq -r '[.status, .kind, .phase, .phases] | join(" ")' <<<"$BODY")" \
	"draft rotation 0 2" "a draft (not started): phase 0 of 2"
post /api/v1/campaigns "$BODY1" -H "Idempotency-Key: $KEY"
assert_eq "$STATUS $(jq -c '{id, name, status, revision}' <<<"$BODY")" "201 $FIRST" \
	"the same create with the same key: the first answer again"
assert_eq "$(campaigns_rows)" 1 "... and one campaign"
post /api/v1/campaigns "{\"name\": \"other\", $ROT, \"phases\": [100]}" -H "Idempotency-Key: $KEY"
check "the key with another body: refused (4xx), nothing written" \
	test "${STATUS:0:1}" = 4 -a "$(campaigns_rows)" = 1

# ---- show, ETag, list ----------------------------------------------------
etag() {
	curl -sS -D - -o /dev/null --max-time 10 --cacert "$FLEET_CA" \
		-H "Authorization: Bearer $TOKEN" "$FLEET_SERVER/api/v1/campaigns/$1" |
		tr -d '\r' | awk 'tolower($1) == "etag:" { print $2 }'
}
api GET "/api/v1/campaigns/$CAMP"
assert_eq "$STATUS" 200 "show: 200"
REV=$(jq .revision <<<"$BODY")
assert_eq "$(etag "$CAMP")" "\"$REV\"" "show: the ETag is the revision"
api GET "/api/v1/campaigns/$(cat /proc/sys/kernel/random/uuid)"
is 404 not-found "an unknown campaign: 404"
api GET /api/v1/campaigns/not-a-uuid
is 404 not-found "a malformed id: 404"
api DELETE "/api/v1/campaigns/$CAMP"
assert_eq "$STATUS" 405 "DELETE: 405"
api GET "/api/v1/campaigns?status=draft"
assert_eq "$STATUS $(jq -r '[.items[].id] | join(",")' <<<"$BODY")" "200 $CAMP" \
	"list ?status=draft: the draft"
api GET "/api/v1/campaigns?status=running"
assert_eq "$STATUS $(jq '.items | length' <<<"$BODY")" "200 0" "list ?status=running: none"
api GET "/api/v1/campaigns?status=bogus"
is 400 invalid-field "list ?status=bogus: 400"
api GET "/api/v1/campaigns/$CAMP/devices?phase=0"
is 400 invalid-field "devices ?phase=0 (phases count from 1): 400"
api GET "/api/v1/campaigns/$CAMP/devices?state=done"
is 400 invalid-field "devices ?state=done: 400"
api GET "/api/v1/campaigns?limit=0"
is 400 invalid-field "list ?limit=0: 400"
api GET "/api/v1/campaigns?cursor=forged"
is 400 invalid-field "a cursor the server did not make: 400"

# ---- roles ---------------------------------------------------------------
TOKEN=$VIEWER
api GET "/api/v1/campaigns/$CAMP"
assert_eq "$STATUS" 200 "viewer: show 200"
api GET "/api/v1/campaigns/$CAMP/events"
assert_eq "$STATUS" 200 "viewer: events 200"
post /api/v1/campaigns "{\"name\": \"v\", $ROT, \"phases\": [100]}"
is 403 forbidden "viewer: create 403"
check "... naming the role needed" [ "$(jq -r .required_role <<<"$BODY")" = operator ]
post "/api/v1/campaigns/$CAMP/start" '{}'
is 403 forbidden "viewer: start 403"
TOKEN=
api GET /api/v1/campaigns
assert_eq "$STATUS" 401 "no token: 401"
TOKEN=$OPERATOR

# ---- transitions ---------------------------------------------------------
post "/api/v1/campaigns/$CAMP/pause" '{}'
is 409 campaign-transition "pause a draft: 409 campaign-transition"
assert_eq "$(jq -r .campaign_status <<<"$BODY")" draft "... with the status it is in (campaign_status)"
post "/api/v1/campaigns/$CAMP/resume" '{}'
is 409 campaign-transition "resume a draft: 409"
post "/api/v1/campaigns/$CAMP/start" '{}' -H "If-Match: \"$((REV + 7))\""
is 412 precondition-failed "start with another ETag: 412"
post "/api/v1/campaigns/$CAMP/start" '{}' -H 'If-Match: "abc"'
is 412 precondition-failed "start with a malformed If-Match: 412"
post "/api/v1/campaigns/$CAMP/start" '{"selector": "site=camp"}'
is 422 validation "a selector given to start: 422"
post "/api/v1/campaigns/$CAMP/start" '{"reason": 5}'
is 400 invalid-field "a reason that is not a string: 400"
post "/api/v1/campaigns/$CAMP/start" '{"reason": "go"}' -H "If-Match: \"$REV\""
assert_eq "$STATUS $(jq -r .status <<<"$BODY")" "200 running" "start with the ETag: running"
check "... the revision moved" [ "$(jq .revision <<<"$BODY")" -gt "$REV" ]
post "/api/v1/campaigns/$CAMP/start" '{}'
is 409 campaign-transition "start a running campaign: 409"
assert_eq "$(jq -r .campaign_status <<<"$BODY")" running "... with the status it is in"
api POST "/api/v1/campaigns/$CAMP/pause"
assert_eq "$STATUS $(jq -r .status <<<"$BODY")" "200 paused" "pause without a body: paused"
check "... by the operator's token" jqe '.paused_by | startswith("token:")' <<<"$BODY"
post "/api/v1/campaigns/$CAMP/resume" '{"selector": "site=(("}'
is 422 validation "resume with a selector that does not parse: 422"
post "/api/v1/campaigns/$CAMP/resume" '{"selector": "site=camp,model=plc-x", "reason": "fixed"}'
assert_eq "$STATUS $(jq -r '[.status, .selector] | join(" ")' <<<"$BODY")" \
	"200 running site=camp,model=plc-x" "resume with a new selector: running with it"
OLD=$(jq .revision <<<"$BODY")
post "/api/v1/campaigns/$CAMP/abort" '{}' -H "If-Match: \"$((OLD - 1))\""
is 412 precondition-failed "abort with an old ETag: 412"
post "/api/v1/campaigns/$CAMP/abort" '{"reason": "enough"}' -H "If-Match: \"$OLD\""
assert_eq "$STATUS $(jq -r .status <<<"$BODY")" "200 aborted" "abort: aborted"
for op in start pause resume abort; do
	post "/api/v1/campaigns/$CAMP/$op" '{}'
	is 409 campaign-transition "$op an aborted campaign: 409"
done
post "/api/v1/campaigns/$(cat /proc/sys/kernel/random/uuid)/pause" '{}'
is 404 not-found "pause an unknown campaign: 404"
api GET "/api/v1/campaigns/$CAMP/start"
assert_eq "$STATUS" 405 "GET .../start: 405"
api GET "/api/v1/campaigns/$CAMP/events"
# (then the driver's own: what the abort withdrew)
assert_eq "$(jq -r '[.items[:7][].kind] | join(",")' <<<"$BODY")" \
	"created,started,phase_released,paused,resumed,selector_changed,aborted" \
	"events: every transition, oldest first"
check "events: phases count from 1" \
	jqe '[.items[] | select(.kind == "phase_released") | .phase] == [1]' <<<"$BODY"
assert_eq "$(psql_q "SELECT string_agg(action, ',' ORDER BY id) FROM audit_log WHERE action LIKE 'campaign.%'")" \
	"campaign.create,campaign.start,campaign.pause,campaign.resume,campaign.abort" \
	"one audit row per operator action"

# ---- a started create ----------------------------------------------------
post /api/v1/campaigns "{\"name\": \"now\", $ROT, \"phases\": [\"all\"], \"unit\": \"devices\", \"start\": true}"
assert_eq "$STATUS $(jq -r '[.status, .phase] | join(" ")' <<<"$BODY")" "201 running 1" \
	"created with start: running, phase 1 released"
api GET "/api/v1/campaigns?limit=1"
assert_eq "$(jq -r '.items[0].name' <<<"$BODY")" now "list: newest first"
NEXT=$(jq -r .next_cursor <<<"$BODY")
api GET "/api/v1/campaigns?limit=1&cursor=$NEXT"
assert_eq "$STATUS $(jq -r '.items[0].name' <<<"$BODY")" "200 canary" "list: the next page"

fleetd_stop
harness_done
