#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A lost enrollment answer costs nothing: the agent keeps its
# Idempotency-Key and request in enroll.json until identity.json is stored,
# so a retry gets the first answer again. The answer is lost for real: a
# TCP proxy of ours (cutproxy.py, loopback) relays the agent's request to
# the api listener and closes the connection once the server has answered,
# without relaying the answer.
#  1. retry in the same run, through the proxy: one device row, one use;
#  2. SIGKILL after the server committed, restart: the same key is sent
#     again (read back from enroll.json), still one device row and one use;
#  3. control: the same loss with enroll.json removed (what an agent
#     without a kept key does) makes a second device and spends a second
#     use, so 1 and 2 show the key, not a lucky proxy.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

harness_init
pki_init
fleetd_start 2
TOKEN=$(admin_token operator)

# new_token NAME: an enrollment token with 5 uses in $T/NAME.token; sets TID.
new_token() {
	api POST /api/v1/tokens -H 'Content-Type: application/json' \
		--data '{"uses": 5, "expires_in": "1h"}'
	assert_eq "$STATUS" 201 "enrollment token $1 created"
	(umask 077 && jq -r .token <<<"$BODY" >"$T/$1.token")
	TID=$(jq -r .id <<<"$BODY")
}

# proxy_start NAME CUT: cutproxy.py in front of the api listener, losing
# the first CUT answers; sets PROXY_URL.
proxy_start() {
	spawn "$1" python3 "$FLEET_SOURCE_DIR/tests/integration/cutproxy.py" \
		--target "$API_PORT" --port-file "$T/$1.port" --cut "$2"
	wait_for "proxy $1 listening" 10 test -s "$T/$1.port"
	PROXY_URL="https://localhost:$(cat "$T/$1.port")"
}

# agent_start N API_URL TOKEN_NAME: fleet-agent with state in $T/aN;
# sets APID.
agent_start() {
	cat >"$T/a$1.conf" <<EOT
api_url = $2
ca_file = $FLEET_CA
state_dir = $T/a$1
token_file = $T/$3.token
model = retry-$1
log_level = info
EOT
	spawn "agent$1" fleet-agent -c "$T/a$1.conf"
	APID=$LAST_PID
}

agent_kill() {
	kill -KILL "$1"
	wait_for "agent (pid $1) gone after SIGKILL" 10 not kill -0 "$1"
	wait "$1" 2>/dev/null || true
}

devices_of() { psql_q "SELECT count(*) FROM devices WHERE enrolled_with = '$1'"; }
device_ids_of() { psql_q "SELECT id FROM devices WHERE enrolled_with = '$1'"; }
keys_of() {
	psql_q "SELECT key FROM idempotency_keys WHERE actor = 'enroll:' ||
		(SELECT token_sha256 FROM enrollment_tokens WHERE id = '$1')"
}
uses_left() {
	api GET "/api/v1/tokens/$1"
	[ "$STATUS" = 200 ] || { echo "HTTP $STATUS"; return; }
	jq -r '"\(.uses_left)/\(.uses_total)"' <<<"$BODY"
}
cut_seen() { grep -q "^conn $2: answer cut" "$T/$1.log"; }
device_online() {
	api GET "/api/v1/devices/$1"
	[ "$(jq -r .online <<<"$BODY")" = true ]
}

# ---- 1. the answer is lost once; the agent retries in the same run ------
new_token one
TID1=$TID
proxy_start p1 1
agent_start 1 "$PROXY_URL" one
check "agent 1 stored an identity after a lost answer" \
	wait_for "agent 1 identity" 60 test -f "$T/a1/identity.json"
check "the proxy lost the first answer (after the server answered)" \
	cut_seen p1 1
check "agent 1 repeated its pending request" \
	grep -q "repeating the pending enrollment request" "$T/agent1.log"
assert_eq "$(devices_of "$TID1")" 1 "one device row for token one"
assert_eq "$(device_ids_of "$TID1")" "$(jq -r .device_id "$T/a1/identity.json")" \
	"agent 1 holds the device id of that row"
assert_eq "$(uses_left "$TID1")" 4/5 "token one spent one use (GET /api/v1/tokens)"
K1=$(keys_of "$TID1")
check "one Idempotency-Key recorded for token one, a UUID" \
	bash -c "[[ '$K1' =~ ^[0-9a-f]{8}-[0-9a-f-]{27}$ ]]"
check "agent 1 removed enroll.json after identity.json" \
	not test -e "$T/a1/enroll.json"
check "agent 1's device comes online" \
	wait_for "device online" 30 device_online "$(jq -r .device_id "$T/a1/identity.json")"

# ---- 2. SIGKILL between the attempt and storing the answer --------------
new_token two
TID2=$TID
proxy_start p2 1000
agent_start 2 "$PROXY_URL" two
A2=$APID
check "the proxy lost agent 2's answer" \
	wait_for "p2 cut an answer" 30 cut_seen p2 1
agent_kill "$A2"
check "killed agent 2 has no identity" not test -e "$T/a2/identity.json"
check "killed agent 2 kept its pending request" test -s "$T/a2/enroll.json"
assert_eq "$(stat -c %a "$T/a2/enroll.json")" 600 "enroll.json is 0600"
check "enroll.json holds no token" not grep -qF "$(cat "$T/two.token")" "$T/a2/enroll.json"
IDEM2=$(jq -r .idempotency_key "$T/a2/enroll.json")
assert_eq "$(devices_of "$TID2")" 1 "the server committed agent 2's device before the kill"
assert_eq "$(keys_of "$TID2")" "$IDEM2" "under the key agent 2 kept"
# Restarted with the network repaired (straight to the api listener).
agent_start 2 "$FLEET_SERVER" two
check "restarted agent 2 stored an identity" \
	wait_for "agent 2 identity" 60 test -f "$T/a2/identity.json"
assert_eq "$(devices_of "$TID2")" 1 "still one device row for token two"
assert_eq "$(device_ids_of "$TID2")" "$(jq -r .device_id "$T/a2/identity.json")" \
	"agent 2 got the device of the first attempt"
assert_eq "$(uses_left "$TID2")" 4/5 "token two spent one use"
assert_eq "$(keys_of "$TID2")" "$IDEM2" "one Idempotency-Key for token two"
check "agent 2 removed enroll.json" not test -e "$T/a2/enroll.json"

# ---- 3. control: without the kept request the same loss costs twice -----
new_token three
TID3=$TID
proxy_start p3 1000
agent_start 3 "$PROXY_URL" three
A3=$APID
check "the proxy lost agent 3's answer" \
	wait_for "p3 cut an answer" 30 cut_seen p3 1
agent_kill "$A3"
rm -f "$T/a3/enroll.json"
agent_start 3 "$FLEET_SERVER" three
check "restarted agent 3 stored an identity" \
	wait_for "agent 3 identity" 60 test -f "$T/a3/identity.json"
assert_eq "$(devices_of "$TID3")" 2 "control: a new key makes a second device row"
assert_eq "$(uses_left "$TID3")" 3/5 "control: and spends a second use"

harness_done
