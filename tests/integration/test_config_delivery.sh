#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configuration delivery end to end (issue 9): real PostgreSQL, fleetd and
# fleet-agents that write a JSON file with validate and reload hooks.
# Changes are made through the API (curl); what a user checks is the file on
# the device and the device's config state in the API.
# - an assignment and a clone reach online agents (file written, reload run,
#   state in_sync); a dry run changes nothing;
# - a validate hook that refuses: the file is left as it was, the device
#   reports failed with the hook's exit status and first line;
# - a local edit is reported as drifted; an agent configured to restore
#   writes the applied document back;
# - a config.status about a generation never sent is acknowledged, not
#   stored, and counted;
# - an offline device catches up when it reconnects;
# - a net worker killed with SIGKILL as a clone commits: the change still
#   reaches every device;
# - two fleetd instances on one PostgreSQL: a clone made through A reaches
#   a device connected to B within 1 s of the commit.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

harness_init
pki_init
fleetd_start 2
TOKEN=$(admin_token operator)

api POST /api/v1/tokens -H 'Content-Type: application/json' \
	--data '{"uses": 10, "expires_in": "1h", "labels": {"site": "cfgd"}}'
assert_eq "$STATUS" 201 "enrollment token created"
jq -r .token <<<"$BODY" >"$T/token"
chmod 600 "$T/token"

# Hooks: validate refuses documents with "reject": true (only agent 3 uses
# it); reload counts its runs beside the file.
cat >"$T/validate-strict.sh" <<'EOT'
#!/bin/sh
if grep -q '"reject": true' "$1"; then
	echo "rejected by validate: reject is set"
	exit 3
fi
exit 0
EOT
cat >"$T/reload.sh" <<'EOT'
#!/bin/sh
echo reload >>"$(dirname "$1")/reloads"
EOT
chmod 755 "$T/validate-strict.sh" "$T/reload.sh"

declare -A AGENT_PID
# agent_start N [ENV...]: fleet-agent N writing $T/aN/app.json.
agent_start() {
	local n=$1
	shift
	mkdir -p "$T/a$n"
	cat >"$T/a$n.conf" <<EOT
api_url = $FLEET_SERVER
ca_file = $FLEET_CA
state_dir = $T/a$n
token_file = $T/token
log_level = info
EOT
	spawn "agent$n" env FLEET_AGENT_CONFIG_PATH="$T/a$n/app.json" \
		FLEET_AGENT_CONFIG_DRIFT_INTERVAL=1 "$@" \
		fleet-agent -c "$T/a$n.conf"
	AGENT_PID[$n]=$LAST_PID
}

agent_stop() {
	kill -TERM "${AGENT_PID[$1]}"
	wait_for "agent $1 exits" 10 not kill -0 "${AGENT_PID[$1]}"
	wait "${AGENT_PID[$1]}" 2>/dev/null || true
}

id_of_agent() { jq -r .device_id "$T/a$1/identity.json"; }

# state N: the device's config state in the API (in_sync, failed, ...).
state() {
	api GET "/api/v1/devices/$(id_of_agent "$1")/config"
	[ "$STATUS" = 200 ] && jq -r .state <<<"$BODY"
}
state_is() { [ "$(state "$1")" = "$2" ]; }

# file_is N JSON: agent N's file holds that document (any formatting).
file_is() {
	[ -f "$T/a$1/app.json" ] &&
		[ "$(jq -cS . "$T/a$1/app.json" 2>/dev/null)" = "$(jq -cS . <<<"$2")" ]
}

online_is() {
	api GET "/api/v1/devices?online=true&limit=100"
	[ "$STATUS" = 200 ] && [ "$(jq '.items | length' <<<"$BODY")" = "$1" ]
}

publish() { # publish PROFILE JSON: a new version (all follow latest)
	api POST "/api/v1/profiles/$1/versions" \
		-H 'Content-Type: application/json' \
		--data "{\"document\": $2, \"note\": \"test\"}"
	[ "$STATUS" = 201 ] || echo "publish $1: $STATUS $BODY" >&2
	CHANGE=$(jq -r '.change.change_id // empty' <<<"$BODY")
}

agent_start 1 FLEET_AGENT_CONFIG_RELOAD="$T/reload.sh"
agent_start 2 FLEET_AGENT_CONFIG_RELOAD="$T/reload.sh" \
	FLEET_AGENT_CONFIG_RESTORE=true
agent_start 3 FLEET_AGENT_CONFIG_VALIDATE="$T/validate-strict.sh" \
	FLEET_AGENT_CONFIG_RELOAD="$T/reload.sh"
check "three agents online" wait_for "3 devices online" 40 online_is 3
A=$(id_of_agent 1)

# ---- assign, dry run, clone ----------------------------------------------
V1='{"name": "app", "port": 8080, "limits": {"conns": 10}}'
api POST /api/v1/profiles -H 'Content-Type: application/json' \
	--data '{"name": "app", "description": "delivery test"}'
assert_eq "$STATUS" 201 "profile created"
publish app "$V1"
# An assignment of one device: a clone of the profile to its id.
api POST /api/v1/config/clone -H 'Content-Type: application/json' \
	--data "{\"source\": {\"profile\": \"app\", \"version\": \"latest\"}, \"selector\": \"id=$A\"}"
assert_eq "$STATUS" 201 "device 1 assigned profile app (latest)"
check "assignment reaches device 1 (file written)" \
	wait_for "agent 1 file" 10 file_is 1 "$V1"
check "device 1 reports applied (in_sync)" \
	wait_for "agent 1 in_sync" 10 state_is 1 in_sync
assert_eq "$(wc -l <"$T/a1/reloads")" 1 "reload hook ran once"
assert_eq "$(stat -c %a "$T/a1/app.json")" 644 "file mode 0644"
check "no temp file left" not test -e "$T/a1/app.json.fleet-new"

api POST /api/v1/config/clone -H 'Content-Type: application/json' \
	--data "{\"source\": {\"device\": \"$A\"}, \"selector\": \"site=cfgd\", \"dry_run\": true}"
assert_eq "$STATUS" 200 "clone dry run"
assert_eq "$(jq -c '[.counts.matched, .counts.would_change]' <<<"$BODY")" "[3,2]" \
	"dry run counts: 3 matched, 2 would change"
assert_eq "$(state 2)" none "dry run wrote nothing (device 2 has no config)"

api POST /api/v1/config/clone -H 'Content-Type: application/json' \
	--data "{\"source\": {\"device\": \"$A\"}, \"selector\": \"site=cfgd\"}"
assert_eq "$STATUS" 201 "clone from device 1 to site=cfgd"
for n in 2 3; do
	check "clone reaches device $n" wait_for "agent $n file" 10 file_is "$n" "$V1"
	check "device $n in_sync" wait_for "agent $n in_sync" 10 state_is "$n" in_sync
done

# ---- a validate hook that refuses --------------------------------------
V2='{"name": "app", "port": 8081, "reject": true}'
publish app "$V2"
check "new version reaches device 1" wait_for "agent 1 v2" 10 file_is 1 "$V2"
check "device 3 reports failed" wait_for "agent 3 failed" 10 state_is 3 failed
api GET "/api/v1/devices/$(id_of_agent 3)/config"
REASON=$(jq -r .reported.reason <<<"$BODY")
case "$REASON" in
*"exit 3"*"rejected by validate: reject is set"*) ok "failed with the hook's exit status and first line ($REASON)" ;;
*) fail "failure reason is the hook's (got '$REASON')" ;;
esac
check "device 3's file restored (still version 1)" file_is 3 "$V1"
check "no temp file left on device 3" not test -e "$T/a3/app.json.fleet-new"
assert_eq "$(wc -l <"$T/a3/reloads")" 1 "device 3 did not reload the refused file"
if [ -n "$CHANGE" ]; then
	api GET "/api/v1/config/changes/$CHANGE"
	assert_eq "$(jq -r '.counts.failed' <<<"$BODY")" 1 "the change counts one failure"
fi

# ---- drift ----------------------------------------------------------------
check "device 2 in_sync on version 2" wait_for "agent 2 v2" 10 state_is 2 in_sync
echo '{"port": 1}' >"$T/a1/app.json"
check "local edit on device 1 reported as drifted" \
	wait_for "agent 1 drifted" 10 state_is 1 drifted
check "device 1 keeps the edit (no restore configured)" file_is 1 '{"port": 1}'
echo '{"port": 2}' >"$T/a2/app.json"
check "device 2 restores the applied document" \
	wait_for "agent 2 file restored" 10 file_is 2 "$V2"
check "device 2 in_sync again after the restore" \
	wait_for "agent 2 in_sync" 10 state_is 2 in_sync
api GET "/api/v1/devices/$A/config"
assert_eq "$(jq -r .reported.status <<<"$BODY")" drifted "reported status drifted"

# ---- a report about a generation never sent --------------------------------
C=$(id_of_agent 3)
api GET "/api/v1/devices/$C/config"
C_REPORTED=$(jq -c .reported <<<"$BODY")
fleet-agent report -c "$T/a3.conf" '{"type": "config.status", "config_version": 999, "config_hash": "'"$(printf '%064d' 7)"'", "state": "applied"}' >/dev/null
never_sent() {
	[ "$(psql_q "SELECT count || ' ' || last_verdict FROM config_reports_ignored WHERE device_id = '$C'")" = "1 never-sent" ]
}
check "a report for a generation never sent is acknowledged, ignored and counted" \
	wait_for "ignored report counted" 10 never_sent
check "the report left the agent's queue (acknowledged)" \
	wait_for "queue empty" 10 bash -c "[ -z \"\$(ls '$T/a3/queue' 2>/dev/null)\" ]"
api GET "/api/v1/devices/$C/config"
assert_eq "$(jq -c .reported <<<"$BODY")" "$C_REPORTED" "the reported state is unchanged"

# ---- offline catch-up ----------------------------------------------------
agent_stop 2
V3='{"name": "app", "port": 8082}'
publish app "$V3"
check "devices 1 and 3 get version 3 (1 overwrites its edit)" \
	wait_for "agents 1, 3 v3" 10 bash -c "jq -e '.port == 8082' '$T/a1/app.json' && jq -e '.port == 8082' '$T/a3/app.json'"
check "device 2 (offline) is not in_sync" not state_is 2 in_sync
agent_start 2 FLEET_AGENT_CONFIG_RELOAD="$T/reload.sh"
check "offline device catches up on reconnect" \
	wait_for "agent 2 v3" 20 file_is 2 "$V3"
check "device 2 in_sync" wait_for "agent 2 in_sync" 10 state_is 2 in_sync

# ---- a net worker killed as a clone commits ------------------------------
V4='{"name": "app2", "port": 9090}'
api POST /api/v1/profiles -H 'Content-Type: application/json' \
	--data '{"name": "app2"}'
publish app2 "$V4"
NET1=$(fleetd_child fleetd-net1)
kill -KILL "$NET1"
api POST /api/v1/config/clone -H 'Content-Type: application/json' \
	--data '{"source": {"profile": "app2", "version": "latest"}, "selector": "site=cfgd"}'
assert_eq "$STATUS" 201 "clone while net worker 1 dies"
for n in 1 2 3; do
	check "clone reaches device $n despite the killed worker" \
		wait_for "agent $n v4" 30 file_is "$n" "$V4"
done
all_in_sync() { state_is 1 in_sync && state_is 2 in_sync && state_is 3 in_sync; }
check "all in_sync after the worker restart" \
	wait_for "all in_sync" 20 all_in_sync

# ---- two instances, one PostgreSQL ---------------------------------------
SERVER1=$FLEET_SERVER
fleetd_conf_write "$T/fleetd2.conf" "$T/pki" "workers = 1
heartbeat_interval = 2s
heartbeat_timeout = 6s
log_level = info"
spawn fleetd2 fleetd -c "$T/fleetd2.conf" serve
FLEETD2_PID=$LAST_PID
check "instance B healthy" wait_for "instance B /healthz" 30 \
	curl -sf --max-time 2 --cacert "$FLEET_CA" "https://localhost:$API_PORT/healthz"
mkdir -p "$T/a4"
cat >"$T/a4.conf" <<EOT
api_url = $SERVER1
device_url = wss://localhost:$DEVICE_PORT/agent/v1
ca_file = $FLEET_CA
state_dir = $T/a4
token_file = $T/token
log_level = info
EOT
spawn agent4 env FLEET_AGENT_CONFIG_PATH="$T/a4/app.json" fleet-agent -c "$T/a4.conf"
check "device 4 online through instance B" wait_for "4 online" 30 online_is 4
D=$(id_of_agent 4)
# on_b: device 4's session row belongs to a worker of instance B.
on_b() {
	local pid
	pid=$(psql_q "SELECT w.pid FROM device_sessions s JOIN workers w ON w.id = s.worker_id WHERE s.device_id = '$D'")
	[ -n "$pid" ] && [ "$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" = "$FLEETD2_PID" ]
}
check "device 4's session is on instance B" wait_for "session on B" 10 on_b
V5='{"name": "app2", "port": 9191, "via": "instance A"}'
api POST "/api/v1/profiles/app2/versions" -H 'Content-Type: application/json' \
	--data "{\"document\": $V5}"
assert_eq "$STATUS" 201 "version made through instance A"
api POST /api/v1/config/clone -H 'Content-Type: application/json' \
	--data "{\"source\": {\"profile\": \"app2\", \"version\": \"latest\"}, \"selector\": \"id=$D\"}"
assert_eq "$STATUS" 201 "clone through instance A to device 4 (on B)"
check "clone through A reaches the device on B within 1 s of the commit" \
	wait_for "agent 4 file within 1 s" 1 file_is 4 "$V5"
check "device 4 in_sync" wait_for "agent 4 in_sync" 10 state_is 4 in_sync

check "no other config.status ignored as never sent" \
	test "$(psql_q "SELECT coalesce(sum(count), 0) FROM config_reports_ignored WHERE last_verdict = 'never-sent'")" = 1

harness_done
