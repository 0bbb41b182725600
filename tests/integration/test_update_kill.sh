#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kill -9 fleet-agent at every step boundary of an update, in turn
# (issue 11): the agent is started with FLEET_AGENT_UPDATE_PAUSE_AT=<step>
# (docs/agent.md: it stops there, journal written and step reported), the
# test waits for state_dir/update/paused, kills it, checks the dir-ab
# `current` link names a complete slot, and starts it again without the
# knob. Each time the update must end committed (or, with a failing health
# hook, rolled back to the slot and version that ran before), the outcome
# must be queued exactly once, and fleetd must show it. Real fleetd,
# PostgreSQL, fleet-agent and the dir-ab installer; releases signed with
# fleetctl release sign, uploaded with fleetctl artifacts upload and
# deployed with POST /api/v1/deployments; reboots are the agent
# re-executing itself (update_reboot_command = reexec).
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

harness_init
pki_init
fleetd_start 1
TOKEN=$(admin_token admin)
enrollment_token 1 kill

mkdir -p "$T/keys" "$T/rel"
for k in k1 k2; do
	fleetctl keys gen --out "$T/keys/$k.key" >/dev/null
done

# release V: fw$V.bin (random), signed offline by k1 and k2 and uploaded
# with fleetctl artifacts upload; prints the artifact id.
release() {
	local v=$1
	head -c 200000 /dev/urandom >"$T/fw$v.bin"
	sha256sum "$T/fw$v.bin" | cut -d' ' -f1 >"$T/fw$v.sha"
	fleetctl release sign --key "$T/keys/k1.key" --key "$T/keys/k2.key" \
		--name fw --version "v$v" --version-int "$v" --hw plc-k \
		--installer dir-ab --expires 1d --out "$T/rel/$v.json" \
		"$T/fw$v.bin" >/dev/null
	fleetctl --server "$FLEET_SERVER" --ca "$FLEET_CA" --token "$TOKEN" \
		-o json artifacts upload "$T/rel/$v.json" "$T/fw$v.bin" |
		jq -r .id
}

# The device runs v1 from slot A of its dir-ab root.
A="$T/agent"
mkdir -p "$A/dir-ab/A" "$A/dir-ab/B"
head -c 1000 /dev/urandom >"$A/dir-ab/A/fw1.bin"
sha256sum "$A/dir-ab/A/fw1.bin" | cut -d' ' -f1 >"$T/fw1.sha"
ln -s A "$A/dir-ab/current"
echo A >"$A/dir-ab/committed"
chmod 0700 "$A"

cat >"$T/agent.conf" <<EOF
api_url = $FLEET_SERVER
device_url = $FLEET_DEVICE_SERVER
ca_file = $FLEET_CA
state_dir = $A
token = $ENROLL
model = plc-k
fw_version = v1
fw_version_num = 1
update_keys = $T/keys/k1.key.pub,$T/keys/k2.key.pub
update_threshold = 2
update_modules_dir = $FLEET_SOURCE_DIR/agent/modules
update_reboot_command = reexec
update_health_command = test ! -e $T/unhealthy
update_health_deadline = 8s
EOF

AGENT_PID=
agent_start() {
	rm -f "$A/update/paused"
	if [ -n "${1:-}" ]; then
		FLEET_AGENT_UPDATE_PAUSE_AT=$1 spawn agent fleet-agent -c "$T/agent.conf"
	else
		spawn agent fleet-agent -c "$T/agent.conf"
	fi
	AGENT_PID=$LAST_PID
}

agent_kill() {
	kill -KILL "$AGENT_PID" 2>/dev/null || true
	wait "$AGENT_PID" 2>/dev/null || true
}

agent_start
wait_for "agent enrolled" 30 test -f "$A/identity.json"
DEV=$(jq -r .device_id "$A/identity.json")

deploy() {
	api POST /api/v1/deployments -H 'Content-Type: application/json' \
		--data "{\"artifact_id\": \"$1\", \"device_id\": \"$DEV\"}"
	DEPL=$(jq -r '.id // empty' <<<"$BODY")
	[ "$STATUS" = 201 ] && [ -n "$DEPL" ]
}

row() {
	psql_q "SELECT state || ' ' || coalesce(reason, '-') || ' ' ||
		coalesce(running_version::text, '-') FROM deployment_devices
		WHERE deployment_id = '$DEPL'"
}
row_is() { [ "$(row)" = "$1" ]; }

# current names A or B, and that slot holds exactly one file, the whole
# file of a release (v1 or one of ours).
complete_slot() {
	local slot files f sha
	slot=$(readlink "$A/dir-ab/current") || return 1
	case "$slot" in A | B) ;; *) return 1 ;; esac
	files=("$A/dir-ab/$slot"/*)
	[ "${#files[@]}" = 1 ] && [ -f "${files[0]}" ] || return 1
	sha=$(sha256sum "${files[0]}" | cut -d' ' -f1)
	# (no pipe into grep -q: with pipefail, cat's SIGPIPE fails it)
	grep -qxF "$sha" "$T"/fw*.sha
}

# The slot current names holds release V.
runs() {
	local slot
	slot=$(readlink "$A/dir-ab/current") || return 1
	[ "$(sha256sum "$A/dir-ab/$slot"/* | cut -d' ' -f1)" = "$(cat "$T/fw$1.sha")" ]
}

fw_is() { [ "$(jq -r .version_int "$A/firmware.json" 2>/dev/null)" = "$1" ]; }

# How often the agent queued STATE for VERSION (its log, all restarts).
queued() {
	grep -c "update.status $1 queued (version $2," "$T/agent.log" || true
}

bytes_sent() {
	curl -sf --cacert "$FLEET_CA" -H "Authorization: Bearer $TOKEN" \
		"$FLEET_SERVER/metrics" |
		awk '/^fleetd_artifact_bytes_sent_total/ { t += $NF } END { printf "%d\n", t }'
}

# one STEP V [unhealthy]: release V, paused and killed at STEP, then the
# agent again; it must end committed (rolled_back with unhealthy).
one() {
	local step=$1 v=$2 bad=${3:-} art want prev=$LAST sent0 sent part
	art=$(release "$v")
	agent_kill
	if [ -n "$bad" ]; then touch "$T/unhealthy"; else rm -f "$T/unhealthy"; fi
	agent_start "$step"
	sent0=$(bytes_sent)
	if ! deploy "$art"; then
		fail "v$v: deployment not created ($STATUS $BODY)"
		return
	fi
	if ! wait_for "paused at $step (v$v)" 40 grep -qx "$step" "$A/update/paused"; then
		fail "v$v: never paused at $step ($(row))"
		return
	fi
	agent_kill
	if [ "$step" = partial ]; then
		part=$(stat -c %s "$A/update/artifact.part" 2>/dev/null || echo 0)
		check "v$v killed mid-download: $part of 200000 bytes kept" \
			test "$part" -ge 100000 -a "$part" -lt 200000
	fi
	if complete_slot; then
		ok "v$v killed at $step: current names a complete slot"
	else
		fail "v$v killed at $step: current names a complete slot" \
			"($(ls -lR "$A/dir-ab" | tr '\n' ' '))"
	fi
	agent_start
	if [ -n "$bad" ]; then
		want="rolled_back health-failed $prev"
	else
		want="committed - $v"
	fi
	if wait_for "v$v after a kill at $step: $want" 60 row_is "$want"; then
		ok "v$v killed at $step: fleetd shows $want"
	else
		fail "v$v killed at $step: fleetd shows '$(row)', not '$want'"
	fi
	if [ -n "$bad" ]; then
		check "v$v: rolled back to v$prev's slot" runs "$prev"
		check "v$v: firmware.json still says $prev" fw_is "$prev"
		assert_eq "$(queued rolled_back "$v")" 1 "v$v: rolled_back queued once"
	else
		check "v$v: current names v$v's slot" runs "$v"
		check "v$v: firmware.json says $v" fw_is "$v"
		assert_eq "$(queued committed "$v")" 1 "v$v: committed queued once"
		LAST=$v
	fi
	if [ "$step" = partial ]; then
		# resumed with Range: fleetd sent the file once, plus at most
		# what was in flight when the agent was killed
		sent=$(($(bytes_sent) - sent0))
		check "v$v: the download resumed ($sent bytes sent for 200000)" \
			test "$sent" -lt 400000
	fi
	check "v$v: current names a complete slot" complete_slot
	check "v$v: the journal is done" \
		test "$(jq -r .step "$A/update/journal.json")" = done
}

# Every step boundary in turn, each with the next version.
V=1
LAST=1
# (UPDATE_KILL_STEPS narrows the loop when debugging one step.)
for step in ${UPDATE_KILL_STEPS:-verified downloading partial downloaded installing \
	installed rebooting verifying committing}; do
	V=$((V + 1))
	one "$step" "$V"
done
# A failing health hook: rolled back, also when killed during it.
for step in ${UPDATE_KILL_ROLLBACK_STEPS:-verifying rolling_back}; do
	V=$((V + 1))
	one "$step" "$V" unhealthy
done

fleet-agent -c "$T/agent.conf" status >"$T/status.out" || true
check "fleet-agent status shows the firmware that runs" \
	grep -qx "firmware:     v$LAST (version $LAST)" "$T/status.out"
check "fleet-agent status shows the last update's outcome" \
	grep -qx "last update:  v$V (version $V) rolled_back (health-failed)" \
	"$T/status.out"
api GET "/api/v1/devices/$DEV"
check "fleetd's inventory says the device runs v$LAST" \
	test "$(jq -r '[.. | .fw_version_num? // empty] | first // "none"' <<<"$BODY")" = "$LAST"
harness_done
