#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Release key rotation end to end (issue 11, docs/releases.md): a real
# fleet-agent pins release keys a, b, c with threshold 2 (update_keys);
# the release engineer makes key set 2 with `fleetctl release keys rotate`
# signed by a and b and uploads it (`release keys upload`); fleetd sends it
# as update.keys and the agent adopts it (state_dir/keyset.json version 2,
# keys.status adopted, fleetd records the device's keyset_version). Key set
# 3 signed by only one key of set 2 is refused (keys.status refused,
# reason threshold) and nothing changes on the device, also across an agent
# restart; an agent that starts after the rotation catches up on its hello.
source "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

harness_init
pki_init
fleetd_start 2
TOKEN=$(admin_token operator)
FLEET_TOKEN=$(admin_token admin)
export FLEET_TOKEN

api POST /api/v1/tokens -H 'Content-Type: application/json' \
	--data '{"uses": 5, "expires_in": "1h", "labels": {"site": "keys"}}'
assert_eq "$STATUS" 201 "enrollment token created"
jq -r .token <<<"$BODY" >"$T/token"
chmod 600 "$T/token"

mkdir -p "$T/rel"
for k in a b c d e; do
	fleetctl keys gen --out "$T/rel/$k.key" >"$T/rel/$k.id"
done
PINNED="$T/rel/a.key.pub,$T/rel/b.key.pub,$T/rel/c.key.pub"

declare -A AGENT_PID
# agent_start N: fleet-agent N pinning a, b, c (threshold 2).
agent_start() {
	local n=$1
	mkdir -p "$T/a$n"
	cat >"$T/a$n.conf" <<EOT
api_url = $FLEET_SERVER
ca_file = $FLEET_CA
state_dir = $T/a$n
token_file = $T/token
model = keys-test
log_level = info
fw_version = 1.0
fw_version_num = 100
update_keys = $PINNED
update_threshold = 2
update_modules_dir = $FLEET_SOURCE_DIR/agent/modules
update_download_deadline = 60s
EOT
	spawn "agent$n" env FLEET_MODULE_DIR_AB_REBOOT=No \
		FLEET_MODULE_DIR_AB_ROOT="$T/a$n-slots" fleet-agent -c "$T/a$n.conf"
	AGENT_PID[$n]=$LAST_PID
}

agent_stop() {
	kill -TERM "${AGENT_PID[$1]}"
	wait_for "agent $1 exits" 10 not kill -0 "${AGENT_PID[$1]}"
	wait "${AGENT_PID[$1]}" 2>/dev/null || true
}

id_of_agent() { jq -r .device_id "$T/a$1/identity.json"; }
online() {
	[ -f "$T/a$1/identity.json" ] || return 1
	api GET "/api/v1/devices/$(id_of_agent "$1")"
	[ "$STATUS" = 200 ] && [ "$(jq -r .online <<<"$BODY")" = true ]
}
# pinned N: the key set version agent N keeps (1 without keyset.json).
pinned() {
	if [ -f "$T/a$1/keyset.json" ]; then
		jq -r .version "$T/a$1/keyset.json"
	else
		echo 1
	fi
}
pinned_is() { [ "$(pinned "$1")" = "$2" ]; }
# fleetd's view: the device's keyset_version (from hello / keys.status).
server_pins() {
	[ "$(psql_q "SELECT keyset_version FROM devices WHERE id = '$(id_of_agent "$1")'")" = "$2" ]
}
logged() { grep -q "$2" "$T/agent$1.log"; }
# logged_more N PATTERN COUNT: agent N logged PATTERN more than COUNT times.
logged_more() { [ "$(grep -c "$2" "$T/agent$1.log")" -gt "$3" ]; }

agent_start 1
wait_for "agent 1 online" 30 online 1 || fail "agent 1 did not come online"
check "agent 1 pins version 1 (its update_keys)" pinned_is 1 1
check "fleetd records key set 1 from hello" wait_for "server sees 1" 10 server_pins 1 1

# ---- rotation to set 2: c stays, d and e join, a and b retire ----------------
fleetctl release keys rotate --key "$T/rel/a.key" --key "$T/rel/b.key" \
	--current-version 1 --new-key "$T/rel/c.key.pub" \
	--new-key "$T/rel/d.key.pub" --new-key "$T/rel/e.key.pub" \
	--threshold 2 --out "$T/rel/keyset-v2.json" >/dev/null
check "fleetctl release keys upload (set 2)" \
	fleetctl release keys upload "$T/rel/keyset-v2.json"
check "agent 1 adopts set 2 (keyset.json version 2)" \
	wait_for "keyset.json version 2" 20 pinned_is 1 2
check "keyset.json holds the new keys" \
	grep -q "$(cat "$T/rel/d.id")" "$T/a1/keyset.json"
check "agent 1 logged keys.status adopted" logged 1 "release key set 2: adopted"
check "fleetd records the device's key set 2" \
	wait_for "server sees 2" 10 server_pins 1 2

# ---- set 3 signed by only one key of set 2 (k = 2): refused -----------------
fleetctl release keys rotate --key "$T/rel/d.key" --current-version 2 \
	--new-key "$T/rel/d.key.pub" --new-key "$T/rel/e.key.pub" \
	--threshold 1 --out "$T/rel/keyset-v3-weak.json" >/dev/null
check "fleetctl release keys verify refuses it too" \
	not fleetctl release keys verify --keyset "$T/a1/keyset.json" \
	"$T/rel/keyset-v3-weak.json"
check "fleetctl release keys upload (weak set 3)" \
	fleetctl release keys upload "$T/rel/keyset-v3-weak.json"
check "agent 1 refuses set 3 (threshold)" \
	wait_for "keys.status refused" 20 logged 1 "release key set 3: refused threshold"
check "agent 1 still pins set 2" pinned_is 1 2
check "fleetd still records key set 2" server_pins 1 2

# A restart: the refused set is offered again and refused again; the
# adopted set survives (keyset.json wins over update_keys).
REFUSED=$(grep -c "release key set 3: refused threshold" "$T/agent1.log")
agent_stop 1
agent_start 1
wait_for "agent 1 online again" 30 online 1 || fail "agent 1 did not come back"
check "after a restart agent 1 refuses set 3 again" \
	wait_for "refused again" 20 logged_more 1 \
	"release key set 3: refused threshold" "$REFUSED"
check "after a restart agent 1 pins set 2" pinned_is 1 2

# ---- releases after the rotation: the retired keys sign nothing ------------
# (the update path of issue 11: upload, deployment, the agent's checks)
mkdir -p "$T/fw"
echo "2.0" >"$T/fw/VERSION"
tar -cf "$T/rel/fw.tar" -C "$T/fw" .
# release NAME KEY KEY: signed, uploaded; sets ART.
release() {
	fleetctl release sign --key "$T/rel/$2.key" --key "$T/rel/$3.key" \
		--name "$1" --version 2.0 --version-int 200 --hw keys-test \
		--installer dir-ab --expires 1d --out "$T/rel/$1.json" \
		"$T/rel/fw.tar" >/dev/null
	ART=$(fleetctl -o json artifacts upload "$T/rel/$1.json" "$T/rel/fw.tar" |
		jq -r .id)
	[ -n "$ART" ] && [ "$ART" != null ]
}
# deploy ARTIFACT: to agent 1; sets DEP.
deploy() {
	api POST /api/v1/deployments -H 'Content-Type: application/json' \
		--data "{\"artifact_id\": \"$1\", \"device_id\": \"$(id_of_agent 1)\"}"
	DEP=$(jq -r .id <<<"$BODY")
	[ "$STATUS" = 201 ]
}
row() { # row FIELD: agent 1's row in deployment $DEP
	api GET "/api/v1/deployments/$DEP/devices"
	jq -r --arg d "$(id_of_agent 1)" --arg f "$1" \
		'.items[] | select(.device_id == $d) | .[$f] // ""' <<<"$BODY"
}
row_is() { [ "$(row "$1")" = "$2" ]; }
fw_is() {
	api GET "/api/v1/devices/$(id_of_agent 1)"
	[ "$(jq -r .fw_version <<<"$BODY")" = "$1" ]
}

check "a release signed by the retired keys a, b is uploaded" release fw-old a b
check "it is deployed to agent 1" deploy "$ART"
check "agent 1 refuses it" \
	wait_for "refused" 30 row_is state refused
check "the reason is unknown-key" row_is reason unknown-key
check "nothing was installed" not test -e "$T/a1-slots/current"
check "a release signed by the new keys d, e is uploaded" release fw-new d e
check "it is deployed to agent 1" deploy "$ART"
check "agent 1 installs and commits it" \
	wait_for "committed" 60 row_is state committed
check "fleetd shows the new version" fw_is 2.0
check "the slot holds the release" \
	grep -qx 2.0 "$T/a1-slots/current/VERSION"

# ---- a new device, image with set 1, catches up on its hello ------------------
agent_start 2
wait_for "agent 2 online" 30 online 2 || fail "agent 2 did not come online"
check "agent 2 adopts set 2 after its hello" \
	wait_for "agent 2 keyset.json version 2" 20 pinned_is 2 2
check "agent 2 refuses set 3" \
	wait_for "agent 2 refused 3" 20 logged 2 "release key set 3: refused threshold"

agent_stop 1
agent_stop 2
harness_done
