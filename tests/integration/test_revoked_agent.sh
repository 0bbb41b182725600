#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The agent understands being refused (issue 10, docs/agent.md "When the
# server refuses the device"):
#   - a certificate revoked through POST /api/v1/certificates/{serial}/revoke
#     (RFC 5280 reason; the CRL lists it) closes the live session with 1008;
#     the agent shows why in `fleet-agent status` and stops hammering (one
#     attempt an hour); restarted, it learns it again from the TLS refusal;
#   - a decommissioned device whose agent has an enrollment token and
#     FLEET_AGENT_REENROLL=true enrolls again as a new device;
#   - enrolling twice with the same request (an agent that lost the answer:
#     same Idempotency-Key and body) gives the same device and costs one
#     token use.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

harness_init
pki_init
fleetd_start 2

TOKEN=$(admin_token operator)
enrollment_token 10 t-revoked
printf '%s\n' "$ENROLL" >"$T/token"
chmod 600 "$T/token"

agent_conf() {
	cat >"$T/$1.conf" <<EOT
api_url = $FLEET_SERVER
ca_file = $FLEET_CA
state_dir = $T/$1
token_file = $T/token
model = refused-test
log_level = info
EOT
}
declare -A PID
agent_start() {
	local name=$1
	shift
	[ -f "$T/$name.conf" ] || agent_conf "$name"
	spawn "$name" env "$@" fleet-agent -c "$T/$name.conf"
	PID[$name]=$LAST_PID
}
agent_stop() {
	kill -TERM "${PID[$1]}" 2>/dev/null || true
	wait_for "$1 exits" 10 not kill -0 "${PID[$1]}"
	wait "${PID[$1]}" 2>/dev/null || true
}
dev_id() { jq -r .device_id "$T/$1/identity.json"; }
online() {
	api GET "/api/v1/devices/$1"
	[ "$STATUS" = 200 ] && [ "$(jq -r .online <<<"$BODY")" = true ]
}
refused() { [ -n "$(jq -r '.refused // ""' "$T/$1/status.json" 2>/dev/null)" ]; }
attempts() { jq -r .attempts "$T/$1/status.json"; }

# ---- revoked: a close code on the live session, then silence ------------
agent_start rev FLEET_AGENT_REFUSED_BACKOFF=3600
check "rev: enrolled" wait_for "rev identity" 30 test -f "$T/rev/identity.json"
REV=$(dev_id rev)
check "rev: online" wait_for "rev online" 20 online "$REV"
SERIAL=$(openssl x509 -in "$T/rev/cert.pem" -noout -serial | cut -d= -f2)
api POST "/api/v1/certificates/$SERIAL/revoke" -H 'Content-Type: application/json' \
	--data '{"reason": "keyCompromise"}'
assert_eq "$STATUS" 200 "rev: certificate revoked"
assert_eq "$(jq -r '.status + " " + .revocation_reason + " " + .device_id' <<<"$BODY")" \
	"revoked keyCompromise $REV" "rev: the answer names status, reason and device"
check "rev: the agent learns it was refused" wait_for "rev refused" 20 refused rev
check "rev: offline" wait_for "rev offline" 20 not online "$REV"
check "rev: the close reason is in the agent's log" \
	grep -q "refused by the server: certificate revoked" "$T/rev.log"
STATUS_OUT=$(fleet-agent -c "$T/rev.conf" status || true)
check "rev: fleet-agent status shows why" \
	grep -q "last error: *refused by the server" <<<"$STATUS_OUT"
BEFORE=$(attempts rev)
# A duration on purpose: nothing may happen in it (an agent that keeps
# reconnecting would have tried several times with its normal backoff).
sleep 6
assert_eq "$(attempts rev)" "$BEFORE" "rev: no new attempt within 6 s (long backoff)"
check "rev: the CRL lists it with its reason (openssl crl)" bash -c \
	"curl -sf --cacert $FLEET_CA $FLEET_SERVER/pki/v1/crl | openssl crl -inform DER -noout -text | grep -A6 \"Serial Number: $SERIAL\" | grep -q 'Key Compromise'"
api POST "/api/v1/certificates/$SERIAL/revoke" -H 'Content-Type: application/json' \
	--data '{"reason": "keyCompromise"}'
assert_eq "$STATUS" 409 "rev: revoking twice is a conflict"
api GET "/api/v1/devices/$REV/certificates"
assert_eq "$(jq -r '.items[0].status + " " + .items[0].revocation_reason' <<<"$BODY")" \
	"revoked keyCompromise" "rev: the certificate list shows it revoked"
agent_stop rev
# Restarted, it learns the refusal from the handshake itself. The status
# file of the stopped process still says refused: wait for the new one's.
# (A first attempt may end as a plain lost connection when the server's
# alert races the close; the agent then tries once more, and only once.)
rm -f "$T/rev/status.json"
agent_start rev FLEET_AGENT_REFUSED_BACKOFF=3600
check "rev: refused again after a restart (TLS refusal)" \
	wait_for "rev refused after restart" 20 refused rev
BEFORE=$(attempts rev)
sleep 4 # a duration: nothing may happen in it
assert_eq "$(attempts rev)" "$BEFORE" "rev: still no hammering after the restart"
agent_stop rev

# ---- decommissioned, with a re-enrollment token -------------------------
agent_start dec FLEET_AGENT_REENROLL=true
check "dec: enrolled" wait_for "dec identity" 30 test -f "$T/dec/identity.json"
DEC=$(dev_id dec)
check "dec: online" wait_for "dec online" 20 online "$DEC"
api POST "/api/v1/devices/$DEC/decommission"
assert_eq "$STATUS" 200 "dec: decommissioned"
# A new id, not an empty one: identity.json is replaced by a rename, but a
# read between the refused one's move aside and the new one's arrival
# finds no file, and jq's empty answer differs from $DEC too.
new_identity() {
	local id
	id=$(dev_id dec 2>/dev/null) || return 1
	[ -n "$id" ] && [ "$id" != null ] && [ "$id" != "$DEC" ]
}
check "dec: enrolled again as a new device" wait_for "dec re-enrolled" 30 new_identity
check "dec: the refused identity is kept aside" test -f "$T/dec/identity.refused.json"
NEWDEC=$(dev_id dec)
check "dec: the new device is online" wait_for "new dec online" 20 online "$NEWDEC"
agent_stop dec

# ---- the same enrollment twice costs one use -------------------------------
api POST /api/v1/tokens -H 'Content-Type: application/json' \
	--data '{"uses": 3, "expires_in": "1h"}'
assert_eq "$STATUS" 201 "idem: token created"
ITOKEN=$(jq -r .token <<<"$BODY")
ITOKEN_ID=$(jq -r .id <<<"$BODY")
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/idem.key" 2>/dev/null
openssl req -new -key "$T/idem.key" -subj "/CN=idem" -out "$T/idem.csr" 2>/dev/null
jq -n --arg t "$ITOKEN" --rawfile c "$T/idem.csr" '{token: $t, csr: $c}' >"$T/idem.json"
enroll_idem() {
	curl -sS --max-time 20 --cacert "$FLEET_CA" -H 'Content-Type: application/json' \
		-H "Idempotency-Key: lost-answer-1" --data @"$T/idem.json" \
		-o "$T/idem.$1.json" -w '%{http_code}' "$FLEET_SERVER/enroll/v1"
}
assert_eq "$(enroll_idem 1)" 201 "idem: first enrollment"
assert_eq "$(enroll_idem 2)" 201 "idem: the same request again"
assert_eq "$(jq -r .device_id "$T/idem.2.json")" "$(jq -r .device_id "$T/idem.1.json")" \
	"idem: the same device"
assert_eq "$(psql_q "SELECT uses_left FROM enrollment_tokens WHERE id = '$ITOKEN_ID'")" 2 \
	"idem: one token use"

harness_done
