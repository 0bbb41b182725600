#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# fleet-agent end to end: three real agents enroll with a token made through
# the API (key generated on the device, identity stored atomically), connect
# over mutual TLS to the device listener and show up online with their
# inventory; a stopped agent goes offline within the heartbeat timeout; after
# fleetd restarts, the agents come back by themselves without a reconnect
# storm; a restarted agent reuses its identity instead of enrolling again.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

harness_init
pki_init
fleetd_start 2

TOKEN=$(admin_token operator)
api POST /api/v1/tokens -H 'Content-Type: application/json' \
	--data '{"uses": 5, "expires_in": "1h", "labels": {"site": "t-agent"}}'
assert_eq "$STATUS" 201 "enrollment token created"
ENROLL=$(jq -r .token <<<"$BODY")
printf '%s\n' "$ENROLL" >"$T/token"
chmod 600 "$T/token"

agent_conf() { # agent_conf N: writes $T/aN.conf
	cat >"$T/a$1.conf" <<EOT
api_url = $FLEET_SERVER
ca_file = $FLEET_CA
state_dir = $T/a$1
token_file = $T/token
model = plc-x$1
fw_version = 1.4.$1
labels = rack=r$1
log_level = info
EOT
}

declare -A AGENT_PID
agent_start() {
	agent_conf "$1"
	spawn "agent$1" fleet-agent -c "$T/a$1.conf"
	AGENT_PID[$1]=$LAST_PID
}

agent_stop() {
	kill -TERM "${AGENT_PID[$1]}"
	wait_for "agent $1 exits after SIGTERM" 10 not kill -0 "${AGENT_PID[$1]}"
	wait "${AGENT_PID[$1]}" 2>/dev/null
}

# online_count: devices the API reports online.
online_count() {
	api GET '/api/v1/devices?online=true&limit=100'
	[ "$STATUS" = 200 ] || { echo 0; return; }
	jq '.items | length' <<<"$BODY"
}

online_is() { [ "$(online_count)" = "$1" ]; }

# wait_online N SECONDS: until exactly N devices are online (bounded).
wait_online() {
	wait_for "$1 devices online" "$2" online_is "$1"
}

attempts() { jq -r .attempts "$T/a$1/status.json"; }

# retried N BEFORE: agent N has tried to connect since it had BEFORE tries.
retried() { [ "$(attempts "$1")" -gt "$2" ]; }

for n in 1 2 3; do agent_start "$n"; done

# ---- enrollment and identity -------------------------------------------
for n in 1 2 3; do
	check "agent $n stored an identity" \
		wait_for "agent $n identity" 30 test -f "$T/a$n/identity.json"
	assert_eq "$(stat -c %a "$T/a$n/device.key")" 600 "agent $n key is 0600"
	check "agent $n certificate verifies against the fleet CA (openssl)" \
		openssl verify -CAfile "$FLEET_CA" -untrusted "$T/a$n/chain.pem" \
		"$T/a$n/cert.pem"
	check "agent $n certificate carries its key" bash -c \
		"[ \"\$(openssl x509 -in $T/a$n/cert.pem -noout -pubkey)\" = \
		   \"\$(openssl pkey -in $T/a$n/device.key -pubout)\" ]"
done
ID1=$(jq -r .device_id "$T/a1/identity.json")
ID2=$(jq -r .device_id "$T/a2/identity.json")
check "device ids are distinct UUIDs" bash -c \
	"[ '$ID1' != '$ID2' ] && [[ '$ID1' =~ ^[0-9a-f-]{36}$ ]]"

# ---- online with inventory ---------------------------------------------
check "3 agents online" wait_online 3 30
api GET "/api/v1/devices/$ID1"
assert_eq "$(jq -r .online <<<"$BODY")" true "device 1 online"
assert_eq "$(jq -r .model <<<"$BODY")" plc-x1 "device 1 model"
assert_eq "$(jq -r .fw_version <<<"$BODY")" 1.4.1 "device 1 firmware version"
assert_eq "$(jq -r .agent_version <<<"$BODY")" 0.1.0 "device 1 agent version"
assert_eq "$(jq -r .labels.site <<<"$BODY")" t-agent "device 1 token label"
assert_eq "$(jq -r .labels.rack <<<"$BODY")" r1 "device 1 requested label"
check "fleet-agent status says connected" bash -c \
	"fleet-agent status -c $T/a1.conf | grep -q 'connected:    yes'"
check "fleet-agent status shows the device id" bash -c \
	"fleet-agent status -c $T/a1.conf | grep -q '$ID1'"

# ---- a stopped agent goes offline within the heartbeat timeout ----------
agent_stop 2
start=$(date +%s)
check "stopped agent offline within heartbeat timeout" wait_online 2 10
api GET "/api/v1/devices/$ID2"
assert_eq "$(jq -r .online <<<"$BODY")" false "device 2 offline after $(($(date +%s) - start)) s"
check "fleet-agent status of a stopped agent says not connected" bash -c \
	"! fleet-agent status -c $T/a2.conf >/dev/null"

# ---- a frozen agent (no close frame) goes offline by heartbeat timeout --
kill -STOP "${AGENT_PID[3]}"
start=$(date +%s)
check "frozen agent offline within heartbeat timeout (6 s + slack)" wait_online 1 12
echo "# frozen agent offline after $(($(date +%s) - start)) s"
kill -CONT "${AGENT_PID[3]}"
check "thawed agent reconnects by itself" wait_online 2 30

# ---- fleetd restart: agents come back by themselves --------------------
a1=$(attempts 1)
a3=$(attempts 3)
fleetd_stop
# Down until both agents have noticed and tried again at least once.
check "agents retry while fleetd is down" \
	wait_for "agents 1 and 3 retry" 20 eval 'retried 1 "$a1" && retried 3 "$a3"'
fleetd_start
start=$(date +%s)
check "agents reconnect after fleetd restart" wait_online 2 60
echo "# back online after $(($(date +%s) - start)) s"
d1=$(($(attempts 1) - a1))
d3=$(($(attempts 3) - a3))
echo "# attempts while fleetd was down: agent1 $d1, agent3 $d3"
# ~5 s down with base 1 s full jitter: a handful of attempts, never a storm.
check "agent 1 attempts within backoff bounds ($d1)" test "$d1" -ge 1 -a "$d1" -le 12
check "agent 3 attempts within backoff bounds ($d3)" test "$d3" -ge 1 -a "$d3" -le 12

# ---- restart of an agent reuses its identity ----------------------------
agent_start 2
check "restarted agent online again" wait_online 3 30
assert_eq "$(jq -r .device_id "$T/a2/identity.json")" "$ID2" "agent 2 kept its device id"
api GET '/api/v1/devices?limit=100'
assert_eq "$(jq '.items | length' <<<"$BODY")" 3 "no device enrolled twice"

harness_done
