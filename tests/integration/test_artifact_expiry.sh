#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# An expired artifact is not offered, and its campaign pauses and says
# why (DESIGN.md §5: agents refuse an expired manifest). Real PostgreSQL,
# fleetd, a release signed offline with fleetctl that expires 25 s after
# signing, and scripted devices on the device channel (wsclient.py):
# - before the expiry, a firmware campaign admits both devices and the
#   connected one gets update.offer;
# - at the expiry the driver pauses the campaign with a reason naming the
#   artifact and the time, shown by GET /api/v1/campaigns/{id} and
#   `fleetctl campaigns show`; a resume is paused again at once;
# - a device that says hello after the expiry gets no update.offer and
#   its row stays pending (not marked offered);
# - a plain deployment (no campaign) whose pending device was never
#   offered it says it stalled, and why, in GET /api/v1/deployments/{id},
#   the list and `fleetctl deployments show`; `--watch` stops there and
#   exits 1; a cancel ends the stall;
# - a campaign or deployment of the expired artifact is refused.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"
require_tools jq openssl python3

harness_init
pki_init
fleetd_write_config 2
echo "campaign_interval_ms = 500" >>"$T/fleetd.conf"
fleetd_start 2
TOKEN=$(admin_token operator)

enrollment_token 2 exp
device_enroll e1 plc-x
device_enroll e2 plc-x
E2=$(id_of e2)
enrollment_token 1 lone
device_enroll e3 plc-x
E3=$(id_of e3)
hello() {
	printf '{"type":"hello","agent_version":"0.2.0","fw_version":"1.0","fw_version_num":1,"model":"plc-x","boot_id":"b1","keyset_version":1}'
}
frames_of() { grep '^TEXT ' <<<"$1" | sed 's/^TEXT //'; }
of_type() { frames_of "$1" | jq -c "select(.type == \"$2\")"; }
post() { api POST "$1" -H 'Content-Type: application/json' --data "$2"; }

# ---- a release that expires 25 s after it is signed ----------------------
K="$T/keys"
mkdir -p "$K"
fleetctl keys gen --out "$K/r1.key" >/dev/null </dev/null
head -c 1500 /dev/urandom >"$T/fw.bin"
fleetctl release sign --key "$K/r1.key" --name plc-fw --version 2.0 \
	--version-int 2 --hw plc-x --installer single-file --expires 25s \
	--out "$T/fw.json" "$T/fw.bin" >/dev/null </dev/null
post /api/v1/artifacts "{\"envelope\": $(cat "$T/fw.json")}"
assert_eq "$STATUS" 201 "artifact registered"
ART=$(jq -r .id <<<"$BODY")
api PUT "/api/v1/artifacts/$ART/file" -H 'Content-Type: application/octet-stream' \
	--data-binary @"$T/fw.bin"
check "artifact file uploaded ($STATUS)" [ "${STATUS:0:1}" = 2 ]
EXPIRES=$(psql_q "SELECT to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM artifacts WHERE id = '$ART'")

# ---- before the expiry: admitted and offered -----------------------------
post /api/v1/campaigns "{\"name\": \"short-lived\", \"kind\": \"firmware\", \"artifact_id\": \"$ART\", \"selector\": \"site=exp\", \"phases\": [100], \"start\": true}"
assert_eq "$STATUS" 201 "campaign created and started"
CID=$(jq -r .id <<<"$BODY")
rows() { psql_q "SELECT count(*) FROM deployment_devices x JOIN deployments d ON d.id = x.deployment_id WHERE d.campaign_id = '$CID'${1:+ AND x.state = '$1'}"; }
two_rows() { [ "$(rows)" = 2 ]; }
check "the driver admits both devices" wait_for "two deployment rows" 15 two_rows
out=$(ws e1 "send $(hello)" "drain 2" "close")
check "before the expiry the connected device gets update.offer" \
	test -n "$(of_type "$out" update.offer)"
# A plain deployment to a device that stays offline: pending, not stalled.
post /api/v1/deployments "{\"artifact_id\": \"$ART\", \"device_id\": \"$E3\"}"
assert_eq "$STATUS" 201 "a plain deployment to the offline device"
DID=$(jq -r .id <<<"$BODY")
api GET "/api/v1/deployments/$DID"
assert_eq "$(jq -r .artifact.expires_at <<<"$BODY")" "$EXPIRES" "the deployment shows its artifact's expiry"
assert_eq "$(jq -r .stalled_reason <<<"$BODY")" null "before the expiry it is not stalled"

# ---- at the expiry: paused with the reason --------------------------------
status_is() {
	api GET "/api/v1/campaigns/$CID"
	[ "$(jq -r .status <<<"$BODY")" = "$1" ]
}
check "the campaign pauses once its artifact expired" \
	wait_for "campaign paused" 40 status_is paused
REASON=$(jq -r .pause_reason <<<"$BODY")
check "GET campaign: the reason says the artifact expired ($REASON)" \
	grep -q "artifact expired: plc-fw 2.0 expired at $EXPIRES" <<<"$REASON"
assert_eq "$(jq -r .paused_by <<<"$BODY")" campaign-driver "paused by the campaign driver"
FLEET_TOKEN=$TOKEN fleetctl campaigns show "$CID" </dev/null >"$T/show.out" 2>&1 || true
check "fleetctl campaigns show prints the reason" \
	grep -q "paused by campaign-driver: artifact expired: plc-fw 2.0" "$T/show.out"

# ---- after the expiry: nothing offered -------------------------------------
out=$(ws e2 "send $(hello)" "drain 3" "close")
check "after the expiry a device's hello gets no update.offer" \
	test -z "$(of_type "$out" update.offer)"
check "... but the session works (welcome)" test -n "$(of_type "$out" welcome)"
assert_eq "$(psql_q "SELECT state FROM deployment_devices WHERE device_id = '$E2'")" pending \
	"its row stays pending (not marked offered)"
out=$(ws e1 "send $(hello)" "drain 2" "close")
check "the device offered before the expiry is not offered again" \
	test -z "$(of_type "$out" update.offer)"

# ---- the plain deployment says it stalled ---------------------------------
api GET "/api/v1/deployments/$DID"
STALLED=$(jq -r .stalled_reason <<<"$BODY")
check "GET deployment: stalled, naming the artifact and its expiry ($STALLED)" \
	grep -q "artifact expired: plc-fw 2.0 expired at $EXPIRES; its 1 pending device" <<<"$STALLED"
assert_eq "$(jq -r '.status + " " + (.counts.pending | tostring)' <<<"$BODY")" "active 1" \
	"still active with its device pending"
api GET "/api/v1/deployments?limit=100"
check "the list says the same" \
	test "$(jq -r --arg id "$DID" '.items[] | select(.id == $id) | .stalled_reason' <<<"$BODY")" = "$STALLED"
FLEET_TOKEN=$TOKEN fleetctl deployments show "$DID" </dev/null >"$T/dshow.out" 2>&1 || true
check "fleetctl deployments show prints STALLED with the reason" \
	grep -q "STALLED: *artifact expired: plc-fw 2.0" "$T/dshow.out"
rc=0
FLEET_TOKEN=$TOKEN timeout 20 fleetctl deployments show "$DID" --watch </dev/null >"$T/dwatch.out" 2>&1 || rc=$?
assert_eq "$rc" 1 "fleetctl deployments show --watch stops at the stall and exits 1"
check "... saying why" grep -q "deployment $DID stalled: artifact expired" "$T/dwatch.out"
post "/api/v1/deployments/$DID/cancel" '{}'
assert_eq "$STATUS $(jq -r '.status + " " + (.stalled_reason | tostring)' <<<"$BODY")" \
	"200 cancelled null" "a cancelled deployment is not stalled"

# ---- a resume is paused again; new rollouts of it are refused ---------------
post "/api/v1/campaigns/$CID/resume" '{}'
check "resume accepted ($STATUS)" [ "$STATUS" = 200 ]
paused_again() { status_is paused && [ "$(jq -r .paused_by <<<"$BODY")" = campaign-driver ]; }
check "a resumed campaign is paused again by the driver" \
	wait_for "paused again" 15 paused_again
post /api/v1/campaigns "{\"name\": \"late\", \"kind\": \"firmware\", \"artifact_id\": \"$ART\", \"selector\": \"site=exp\", \"phases\": [100]}"
check "a campaign of the expired artifact is refused ($STATUS $(jq -r .type <<<"$BODY"))" \
	grep -q expired <<<"$(jq -r .type <<<"$BODY")"
post /api/v1/deployments "{\"artifact_id\": \"$ART\", \"device_id\": \"$E2\"}"
check "a deployment of the expired artifact is refused ($STATUS $(jq -r .type <<<"$BODY"))" \
	[ "${STATUS:0:1}" = 4 ]

fleetd_stop
harness_done
