#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The operator's half of the campaign store (fleetd/db/campaigns.c, issue
# 12) through the API of a real fleetd on real PostgreSQL, checked in the
# rows with psql. No devices connect: the devices, one artifact and the
# "admitted" campaign_devices rows are written with psql, and the
# campaigns under test allow offers only in hours that are not now, so
# the driver admits nothing and the figures are the ones written here.
# - a dry run answers matched, offline, per-phase sizes, the least
#   duration and writes nothing; unknown artifact/profile/version, an
#   artifact without its file, an expired one and a selector matching
#   nothing are refused and write nothing;
# - create (draft, and started) writes the row, its events (created;
#   started and phase_released), one audit row, and answers the document
#   (phase, phases, matched, per-phase counts, totals); an
#   Idempotency-Key replays the first answer and creates nothing;
# - list: newest first, ?status, pages by cursor;
# - show: matched = selector matches + admitted rows that no longer
#   match (not excluded), counts per phase and state, pending;
# - start/pause/resume/abort: transitions (409 otherwise), If-Match (412),
#   revision bumps, pause_reason/paused_by, events and audit rows;
#   resume with a selector excludes the admitted devices it no longer
#   matches that have not succeeded (reason 'selector') and logs how
#   many;
# - devices: filters by state and phase, pages by (rank, device id) in
#   rank order without repeats; events page by id, oldest first.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

harness_init
pki_init
fleetd_write_config 1
fleetd_start
TOKEN=$(admin_token operator)
JSON=(-H 'Content-Type: application/json')

# ---- the fleet: 30 devices at site a (20 m1, 10 m2), 10 at site b ---------
psql_q "INSERT INTO devices (id, labels, model, created_at)
	SELECT gen_random_uuid(), jsonb_build_object('site',
	CASE WHEN i <= 30 THEN 'a' ELSE 'b' END), CASE WHEN i <= 20 OR i > 30
	THEN 'm1' ELSE 'm2' END, now() - (100 - i) * interval '1 second'
	FROM generate_series(1, 40) i" >/dev/null

# ---- an artifact (signed offline; rows as an upload leaves them) -----------
fleetctl keys gen --out "$T/r1.key" >/dev/null
# seed_artifact VERSION COMPLETE EXPIRES: a release signed with fleetctl,
# its rows written as an upload leaves them (the bytes are not needed:
# nothing downloads); prints the new artifact's id.
seed_artifact() {
	local man id
	head -c 1000 /dev/urandom >"$T/fw-$1.bin"
	fleetctl release sign --key "$T/r1.key" --name fw --version "$1.0" \
		--version-int "$1" --hw m1,m2 --installer single-file \
		--expires 30d --out "$T/fw-$1.json" "$T/fw-$1.bin" >/dev/null
	man=$(jq -r .payload "$T/fw-$1.json" | base64 -d)
	id=$(cat /proc/sys/kernel/random/uuid)
	psql_q "INSERT INTO artifact_blobs (sha256, size, chunk_size, complete)
		VALUES ('$(jq -r .sha256 <<<"$man")', $(jq .size <<<"$man"),
		1048576, $2)" >/dev/null
	psql_q "INSERT INTO artifacts (id, sha256, name, version, version_int,
		hw, installer, size, expires_at, envelope, manifest, created_by)
		SELECT '$id', m->>'sha256', m->>'name', m->>'version',
		(m->>'version_int')::bigint,
		ARRAY(SELECT jsonb_array_elements_text(m->'hw')),
		m->>'installer', (m->>'size')::bigint, $3,
		'$(jq -c . "$T/fw-$1.json")'::jsonb, m, 'test'
		FROM (SELECT '$man'::jsonb AS m) x" >/dev/null
	echo "$id"
}
EXPIRED=$(seed_artifact 1 true "now() - interval '1 hour'")
NOTREADY=$(seed_artifact 2 false "now() + interval '1 day'")
ART=$(seed_artifact 3 true "now() + interval '1 day'")
assert_eq "$(psql_q "SELECT count(*) FROM artifacts")" 3 "three artifacts seeded"

# Hours in which offers may be made: never now, so the driver admits
# nothing while the test runs.
H=$(date -u +%-H)
HOURS="$(((H + 3) % 24))-$(((H + 4) % 24))"
# body KIND-MEMBERS SELECTOR [EXTRA]: a create body, phases 10,50,100, a
# gate that neither pauses nor releases on its own.
body() {
	printf '{"name": "t", %s, "selector": "%s", "phases": [10, 50, 100],
		"gate": {"min_success": 0, "max_failure": 1, "soak_seconds": 86400},
		"window": {"hours": "%s"}%s}' "$1" "$2" "$HOURS" "${3:-}"
}
FW="\"kind\": \"firmware\", \"artifact_id\": \"$ART\""
count() { psql_q "SELECT count(*) FROM $1"; }

# ---- preflight and refusals -------------------------------------------------
# One device of site a is online: a live session (of a worker row made
# here, fresh, so nothing reaps it during the dry run).
ONLINE=$(psql_q "SELECT id FROM devices WHERE labels->>'site' = 'a' ORDER BY created_at LIMIT 1")
psql_q "INSERT INTO workers (id, host, pid, slot) VALUES ('test-worker', 'test', 1, 99)" >/dev/null
psql_q "INSERT INTO device_sessions (device_id, worker_id, cert_serial)
	VALUES ('$ONLINE', 'test-worker', '01')" >/dev/null
api POST /api/v1/campaigns "${JSON[@]}" --data "$(body "$FW" "site=a" ', "dry_run": true')"
assert_eq "$STATUS" 200 "dry run answers 200"
assert_eq "$(jq -c '[.dry_run, .matched, .offline]' <<<"$BODY")" "[true,30,29]" \
	"dry run: 30 devices match, 29 of them offline"
assert_eq "$(jq -c '[.phases[] | .devices]' <<<"$BODY")" "[3,12,15]" \
	"dry run: phases of 3, 12 and 15 devices (10/50/100 % of 30)"
assert_eq "$(jq -r .min_duration_seconds <<<"$BODY")" 259200 \
	"dry run: the least duration is the three soaks"
check "dry run: earliest completion is a time" \
	grep -Eq '"earliest_completion":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z"' <<<"$BODY"
assert_eq "$(count campaigns)" 0 "a dry run writes nothing"

refused() {
	local status=$1 type=$2 what=$3
	api POST /api/v1/campaigns "${JSON[@]}" --data "$4"
	assert_eq "$STATUS" "$status" "$what: $status"
	check "$what: problem $type" grep -q "urn:fleet:problem:$type" <<<"$BODY"
}
refused 422 no-match "a selector matching nothing" "$(body "$FW" "site=zzz")"
refused 422 unknown-artifact "an unknown artifact" \
	"$(body '"kind": "firmware", "artifact_id": "00000000-0000-4000-8000-000000000000"' site=a)"
refused 409 artifact-not-ready "an artifact without its file" \
	"$(body "\"kind\": \"firmware\", \"artifact_id\": \"$NOTREADY\"" site=a)"
refused 422 artifact-expired "an expired artifact" \
	"$(body "\"kind\": \"firmware\", \"artifact_id\": \"$EXPIRED\"" site=a)"
refused 422 unknown-profile "an unknown profile" \
	"$(body '"kind": "config", "profile": "nope", "version": 1' site=a)"
api POST /api/v1/profiles "${JSON[@]}" --data '{"name": "hvac"}'
api POST /api/v1/profiles/hvac/versions "${JSON[@]}" -H 'If-Match: "0"' \
	--data '{"document": {"setpoint": 21}}'
assert_eq "$STATUS" 201 "profile hvac version 1 published"
refused 422 unknown-version "an unknown profile version" \
	"$(body '"kind": "config", "profile": "hvac", "version": 2' site=a)"
assert_eq "$(count campaigns)/$(count campaign_events)" 0/0 \
	"refusals write nothing"

# ---- create -------------------------------------------------------------------
api POST /api/v1/campaigns "${JSON[@]}" -H 'Idempotency-Key: k-config-1' \
	--data "$(body '"kind": "config", "profile": "hvac", "version": 1' site=b)"
assert_eq "$STATUS" 201 "a config campaign is created"
CFG=$(jq -r .id <<<"$BODY")
FIRST=$BODY
assert_eq "$(jq -c '[.status, .phase, .phases, .profile, .version, .matched, .revision]' <<<"$BODY")" \
	'["draft",0,3,"hvac",1,10,1]' "the draft: phase 0 of 3, hvac v1, 10 matched, revision 1"
assert_eq "$(jq -c '[.counts[] | [.phase, .devices, .pending]]' <<<"$BODY")" \
	'[[1,1,1],[2,4,4],[3,5,5]]' "its counts: every matched device pending in its phase"
assert_eq "$(jq -c '[.totals.devices, .totals.pending, .artifact_id]' <<<"$BODY")" \
	'[10,10,null]' "its totals: 10 pending"
api POST /api/v1/campaigns "${JSON[@]}" -H 'Idempotency-Key: k-config-1' \
	--data "$(body '"kind": "config", "profile": "hvac", "version": 1' site=b)"
assert_eq "$STATUS" 201 "the same request with the same key: 201 again"
assert_eq "$(jq -r .id <<<"$BODY")" "$CFG" "the key replays the first answer"
check "the replay is the first answer" [ "$(jq -cS . <<<"$BODY")" = "$(jq -cS . <<<"$FIRST")" ]
assert_eq "$(count campaigns)" 1 "one campaign exists"
assert_eq "$(psql_q "SELECT string_agg(kind, ',' ORDER BY id) FROM campaign_events WHERE campaign_id = '$CFG'")" \
	created "a draft logs 'created'"
assert_eq "$(psql_q "SELECT count(*) FROM audit_log WHERE action = 'campaign.create' AND target = '$CFG'")" \
	1 "one audit row campaign.create"

api POST /api/v1/campaigns "${JSON[@]}" --data "$(body "$FW" "site=a" ', "start": true')"
assert_eq "$STATUS" 201 "a firmware campaign is created running"
FWC=$(jq -r .id <<<"$BODY")
assert_eq "$(jq -c '[.status, .phase, .artifact_id == "'"$ART"'", .started_at != null]' <<<"$BODY")" \
	'["running",1,true,true]' "created running: phase 1 released, started_at set"
assert_eq "$(psql_q "SELECT string_agg(kind || ':' || coalesce(phase::text, '-'), ',' ORDER BY id) FROM campaign_events WHERE campaign_id = '$FWC' AND kind <> 'gate_met'")" \
	"created:-,started:0,phase_released:0" "events created, started, phase_released (phase 0)"
check "phase_released says how many devices" \
	grep -q "3 of 30 devices" <<<"$(psql_q "SELECT message FROM campaign_events WHERE campaign_id = '$FWC' AND kind = 'phase_released'")"

api POST /api/v1/campaigns "${JSON[@]}" --data "$(body '"kind": "rotation"' "")"
assert_eq "$STATUS" 201 "a rotation campaign over every device is created"
ROT=$(jq -r .id <<<"$BODY")
assert_eq "$(jq -r .matched <<<"$BODY")" 40 "an empty selector matches all 40 devices"

# ---- list ---------------------------------------------------------------------
api GET "/api/v1/campaigns"
assert_eq "$(jq -r '[.items[].id] | join(" ")' <<<"$BODY")" "$ROT $FWC $CFG" "list: newest first"
check "list items carry no counts" [ "$(jq '[.items[] | has("counts")] | any' <<<"$BODY")" = false ]
api GET "/api/v1/campaigns?status=draft"
assert_eq "$(jq -r '[.items[].id] | join(" ")' <<<"$BODY")" "$ROT $CFG" "list ?status=draft"
api GET "/api/v1/campaigns?limit=2"
P1=$(jq -r '[.items[].id] | join(" ")' <<<"$BODY")
CUR=$(jq -r .next_cursor <<<"$BODY")
api GET "/api/v1/campaigns?limit=2&cursor=$CUR"
assert_eq "$P1 $(jq -r '[.items[].id] | join(" ")' <<<"$BODY")" "$ROT $FWC $CFG" \
	"list in pages of 2: every campaign once, in order"
assert_eq "$(jq -r .next_cursor <<<"$BODY")" null "the last page has no cursor"

# ---- show: admitted devices, as the driver would have written them ------------
# Phase 0: two m1 succeeded, one m2 failed; phase 1: one m2 offered, one
# m1 in progress, one m2 rolled back, one m1 excluded; and one device of
# site b offered in phase 1 (it no longer matches: it still counts).
admit() { # admit N MODEL SITE PHASE STATE
	psql_q "INSERT INTO campaign_devices (campaign_id, device_id, rank,
		phase, state) SELECT '$FWC', d.id, substr(encode(sha256(
		convert_to('$FWC' || ':' || d.id, 'UTF8')), 'hex'), 1, 16), $4,
		'$5' FROM devices d WHERE d.model = '$2' AND
		d.labels->>'site' = '$3' AND NOT EXISTS (SELECT 1 FROM
		campaign_devices x WHERE x.device_id = d.id) ORDER BY d.id
		LIMIT $1" >/dev/null
}
admit 2 m1 a 0 succeeded
admit 1 m2 a 0 failed
admit 1 m2 a 1 offered
admit 1 m1 a 1 in_progress
admit 1 m2 a 1 rolled_back
admit 1 m1 a 1 excluded
admit 1 m1 b 1 offered
api GET "/api/v1/campaigns/$FWC"
assert_eq "$STATUS" 200 "show answers 200"
assert_eq "$(jq -r .matched <<<"$BODY")" 31 "matched: 30 of site a plus the admitted one of site b"
assert_eq "$(jq -c '[.counts[] | [.phase, .offered, .in_progress, .succeeded, .failed, .rolled_back, .finished]]' <<<"$BODY")" \
	'[[1,0,0,2,1,0,3],[2,2,1,0,0,1,1],[3,0,0,0,0,0,0]]' \
	"per-phase counts by state (excluded not counted)"
# Pending devices are the matched ones without a row, in the phase their
# position by rank puts them (the devices above were admitted by device
# id, not by rank, so which phase holds how many depends on the ranks):
# every matched device is in one phase but the excluded one.
assert_eq "$(jq -c '[([.counts[].devices] | add), ([.counts[].pending] | add),
	([.counts[] | .devices - .pending - .offered - .in_progress - .succeeded - .failed - .silent - .rolled_back] | unique)]' <<<"$BODY")" \
	'[30,23,[0]]' "31 matched: 23 pending and 7 admitted over the phases, the excluded one in none"
assert_eq "$(jq -c '[.totals.succeeded, .totals.failed, .totals.offered, .totals.finished]' <<<"$BODY")" \
	'[2,1,2,4]' "totals"
api GET "/api/v1/campaigns/00000000-0000-4000-8000-000000000000"
assert_eq "$STATUS" 404 "show of an unknown campaign: 404"

# ---- transitions --------------------------------------------------------------
op() { # op ID VERB [JSON] [IF-MATCH]
	local data=${3:-} extra=()
	[ -n "$data" ] || data='{}'
	[ -z "${4:-}" ] || extra=(-H "If-Match: \"$4\"")
	api POST "/api/v1/campaigns/$1/$2" "${JSON[@]}" "${extra[@]}" --data "$data"
}
op "$CFG" pause
assert_eq "$STATUS" 409 "pausing a draft: 409"
check "problem campaign-transition" grep -q "urn:fleet:problem:campaign-transition" <<<"$BODY"
op "$CFG" start '{}' 7
assert_eq "$STATUS" 412 "start with a stale If-Match: 412"
assert_eq "$(psql_q "SELECT status || revision FROM campaigns WHERE id = '$CFG'")" draft1 \
	"a refused transition changes nothing"
op "$CFG" start '{"reason": "go"}' 1
assert_eq "$STATUS" 200 "start with the right If-Match: 200"
assert_eq "$(jq -c '[.status, .phase, .revision >= 2]' <<<"$BODY")" '["running",1,true]' \
	"started: running, phase 1, revision bumped"
op "$CFG" start
assert_eq "$STATUS" 409 "starting twice: 409"
op "$CFG" abort '{"reason": "wrong profile"}'
assert_eq "$STATUS" 200 "abort: 200"
assert_eq "$(jq -c '[.status, .finished_at != null]' <<<"$BODY")" '["aborted",true]' \
	"aborted, finished_at set"
op "$CFG" resume
assert_eq "$STATUS" 409 "resuming an aborted campaign: 409"
assert_eq "$(psql_q "SELECT string_agg(action, ',' ORDER BY id) FROM audit_log WHERE target = '$CFG'")" \
	"campaign.create,campaign.start,campaign.abort" "audit rows create, start, abort"

op "$FWC" pause '{"reason": "look at the failure"}'
assert_eq "$STATUS" 200 "pause: 200"
assert_eq "$(jq -c '[.status, .pause_reason, .paused_by != null]' <<<"$BODY")" \
	'["paused","look at the failure",true]' "paused with the reason and who"
REV=$(jq -r .revision <<<"$BODY")
op "$FWC" resume '{"selector": "site=a,model=m1"}' "$REV"
assert_eq "$STATUS" 200 "resume with a new selector: 200"
assert_eq "$(jq -c '[.status, .selector, .pause_reason, .paused_by]' <<<"$BODY")" \
	'["running","site=a,model=m1",null,null]' "running again with the new selector"
assert_eq "$(psql_q "SELECT string_agg(x.state || ':' || coalesce(x.reason, '-'), ',' ORDER BY x.state, d.model, x.reason NULLS FIRST)
	FROM campaign_devices x JOIN devices d ON d.id = x.device_id WHERE campaign_id = '$FWC'")" \
	"excluded:-,excluded:selector,excluded:selector,excluded:selector,excluded:selector,in_progress:-,succeeded:-,succeeded:-" \
	"the four unsucceeded devices it no longer matches are excluded (reason selector)"
assert_eq "$(psql_q "SELECT details->>'excluded' FROM campaign_events WHERE campaign_id = '$FWC' AND kind = 'selector_changed'")" \
	4 "event selector_changed with the count"
assert_eq "$(jq -c '[.matched, .totals.succeeded, .totals.in_progress, .totals.failed, .totals.offered]' <<<"$BODY")" \
	'[20,2,1,0,0]' "the document counts the new selector: 20 matched, failures gone"
assert_eq "$(psql_q "SELECT string_agg(action || ':' || coalesce(details->>'excluded', '-'), ',' ORDER BY id) FROM audit_log WHERE target = '$FWC'")" \
	"campaign.create:-,campaign.pause:-,campaign.resume:4" "audit rows create, pause, resume (with the count)"

# ---- devices and events, page by page -------------------------------------------
api GET "/api/v1/campaigns/$FWC/devices?state=excluded"
assert_eq "$(jq '.items | length' <<<"$BODY")" 5 "devices ?state=excluded: 5"
api GET "/api/v1/campaigns/$FWC/devices?phase=1"
assert_eq "$(jq -c '[.items[].state] | sort' <<<"$BODY")" '["excluded","succeeded","succeeded"]' \
	"devices ?phase=1: the three of phase 1"
ALL=
CUR=
for i in 1 2 3 4 5; do
	api GET "/api/v1/campaigns/$FWC/devices?limit=3${CUR:+&cursor=$CUR}"
	ALL="$ALL$(jq -r '.items[] | .rank + " " + .device_id' <<<"$BODY")"$'\n'
	CUR=$(jq -r '.next_cursor // empty' <<<"$BODY")
	[ -n "$CUR" ] || break
done
assert_eq "$i" 3 "8 devices in pages of 3: three pages"
assert_eq "$(grep -c . <<<"$ALL")" 8 "every admitted device listed"
check "in rank order, none twice" [ "$(grep . <<<"$ALL")" = "$(grep . <<<"$ALL" | LC_ALL=C sort -u)" ]
assert_eq "$(grep . <<<"$ALL" | LC_ALL=C sort)" \
	"$(psql_q "SELECT rank || ' ' || device_id FROM campaign_devices WHERE campaign_id = '$FWC' ORDER BY rank COLLATE \"C\"")" \
	"the ranks are the rows'"
# (the driver may log gate_met in between: the gate here is min_success 0)
api GET "/api/v1/campaigns/$FWC/events?limit=2"
E1=$(jq -r '[.items[].kind] | join(",")' <<<"$BODY")
api GET "/api/v1/campaigns/$FWC/events?limit=10&cursor=$(jq -r .next_cursor <<<"$BODY")"
E2=$(jq -r '[.items[] | select(.kind != "gate_met") | .kind] | join(",")' <<<"$BODY")
assert_eq "$E1,$E2" "created,started,phase_released,paused,resumed,selector_changed" \
	"events in pages, oldest first"
assert_eq "$(jq -c '[.items[] | select(.kind == "phase_released") | .phase]' <<<"$BODY")" '[1]' \
	"event phases are 1-based"
api GET "/api/v1/campaigns/00000000-0000-4000-8000-000000000000/events"
assert_eq "$STATUS" 404 "events of an unknown campaign: 404"

fleetd_stop
harness_done
