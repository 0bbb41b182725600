#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# fleetctl's configuration commands against a real fleetd, PostgreSQL and
# real fleet-agents (issue 9): profiles create/list/show/publish/versions,
# devices config show/set (pinned, latest, overrides), config clone
# (dry-run writes nothing; the real one reaches the agents), config status
# --watch (plain lines when stdout is not a terminal, a live bar on a pty)
# until nothing is pending, config drift (pending, failed with the hook's
# reason), and every bad input an operator meets: a missing file, not
# JSON, over 256 KiB, an unknown profile or device, a racing change (412),
# usage errors: one line on stderr, a non-zero exit, nothing written.
# Outside oracles: jq over the agents' files and psql over the tables.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/cli.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

harness_init
pki_init
fleetd_start 2

ADMIN=$(admin_token admin)
TOKEN=$ADMIN # for api() and enrollment_token
export FLEET_TOKEN=$ADMIN

# What the database holds, for "nothing was written" checks.
db_state() {
	psql_q "SELECT (SELECT count(*) FROM config_profiles) || '/' ||
		(SELECT count(*) FROM config_versions) || '/' ||
		(SELECT count(*) FROM config_changes) || '/' ||
		(SELECT coalesce(sum(revision), 0) FROM device_config)"
}

# ---- devices: two real agents, two enrolled devices that stay offline ---
enrollment_token 10 t-cfg
printf '%s\n' "$ENROLL" >"$T/enroll-token"
chmod 600 "$T/enroll-token"
# The validate hook refuses a document whose "mode" is "broken", with a
# reason on its first line of output.
cat >"$T/validate.sh" <<'EOT'
#!/bin/sh
if jq -e '.mode == "broken"' "$1" >/dev/null; then
	echo "mode broken is not allowed"
	exit 3
fi
exit 0
EOT
chmod 755 "$T/validate.sh"

agent_start() { # agent_start N: fleet-agent with its config file in $T/aN
	mkdir -p "$T/a$1" "$T/etc$1"
	cat >"$T/a$1.conf" <<EOT
api_url = $FLEET_SERVER
ca_file = $FLEET_CA
state_dir = $T/a$1
token_file = $T/enroll-token
model = plc-c$1
fw_version = 2.0.$1
labels = role=r$1
log_level = info
EOT
	spawn "agent$1" env FLEET_AGENT_CONFIG_PATH="$T/etc$1/app.json" \
		FLEET_AGENT_CONFIG_VALIDATE="$T/validate.sh" \
		FLEET_AGENT_CONFIG_DRIFT_INTERVAL=1 \
		fleet-agent -c "$T/a$1.conf"
	AGENT_PID[$1]=$LAST_PID
}
declare -A AGENT_PID
agent_start 1
agent_start 2
for n in 1 2; do
	check "agent $n enrolled" \
		wait_for "agent $n identity" 30 test -f "$T/a$n/identity.json"
done
A1=$(jq -r .device_id "$T/a1/identity.json")
A2=$(jq -r .device_id "$T/a2/identity.json")
device_enroll off1
device_enroll off2
OFF1=$(id_of off1)
OFF2=$(id_of off2)
online_is() {
	api GET "/api/v1/devices/$1"
	[ "$(jq -r .online <<<"$BODY")" = true ]
}
for id in "$A1" "$A2"; do
	check "agent $id online" wait_for "agent $id online" 30 online_is "$id"
done

# ---- profiles ------------------------------------------------------------
cat >"$T/v1.json" <<'EOT'
{"mode": "normal", "mqtt": {"host": "broker.b7", "port": 1883}, "ntp": ["a", "b"]}
EOT
cat >"$T/v2.json" <<'EOT'
{"mode": "normal", "mqtt": {"host": "broker.b7", "port": 8883, "tls": true}, "ntp": ["a", "b"]}
EOT
cat >"$T/v3.json" <<'EOT'
{"mode": "normal", "mqtt": {"host": "broker.b8", "port": 8883, "tls": true}}
EOT

for cmd in "profiles" "profiles create" "profiles list" "profiles show" \
	"profiles publish" "profiles versions" "config" "config clone" \
	"config drift" "config status" "devices config" "devices config show" \
	"devices config set"; do
	# shellcheck disable=SC2086
	expect_ok "fleetctl $cmd --help" $cmd --help
	out_has "^usage: fleetctl $cmd" "fleetctl $cmd --help names the command"
done

expect_ok "profiles create with -f" profiles create base -f "$T/v1.json" \
	--description "building b7 controllers"
out_has '^created profile base' "create says what it made"
expect_ok "profiles publish --expect-latest 1" profiles publish base \
	-f "$T/v2.json" --expect-latest 1
out_has '^published profile base version 2' "publish names the new version"
expect_ok "profiles list" profiles list
out_has '^base +2 ' "list shows base at version 2"
expect_ok "profiles versions" profiles versions base
assert_eq "$(grep -cE '^[12] ' "$T/out")" 2 "versions lists 1 and 2"
expect_ok "profiles show base@1" profiles show base@1
out_has '"port": 1883' "show base@1 prints version 1's document"
expect_ok "profiles show -o json" -o json profiles show base
json_is .version.document.mqtt.port 8883 "show base is the latest (2)"
json_is .version.version 2 "show base names version 2"
V2HASH=$(jq -r '.version.sha256' "$T/out")
check "version hash is the SHA-256 of the canonical document" \
	[ "$V2HASH" = "$(jq -cS . "$T/v2.json" | tr -d '\n' | sha256sum | cut -c1-64)" ]

# ---- bad input: one line, non-zero exit, nothing written -----------------
before=$(db_state)
printf '{"pad": "%s"}' "$(head -c 270000 /dev/zero | tr '\0' x)" >"$T/big.json"
printf '{"a": 1,' >"$T/broken.json"
printf '[1, 2]' >"$T/array.json"
printf '{"a": 1, "a": 2}' >"$T/dup.json"
expect_fail "publish: missing file" 1 'nothing.json: No such file' \
	profiles publish base -f "$T/nothing.json"
expect_fail "publish: not JSON" 1 'broken.json: not JSON' \
	profiles publish base -f "$T/broken.json"
expect_fail "publish: over 256 KiB" 1 'larger than 256 KiB' \
	profiles publish base -f "$T/big.json"
expect_fail "publish: not an object" 1 'must be a JSON object' \
	profiles publish base -f "$T/array.json"
expect_fail "publish: duplicate member names" 1 'duplicate' \
	profiles publish base -f "$T/dup.json"
expect_fail "publish: -f is required" 2 '-f FILE is required' \
	profiles publish base
expect_fail "publish: unknown profile" 1 '^fleetctl: 404 .*no profile nosuch' \
	profiles publish nosuch -f "$T/v1.json"
expect_fail "publish: --expect-latest that is not the latest" 1 \
	'^fleetctl: 412 .*the latest version is not 1: nothing published' \
	profiles publish base -f "$T/v3.json" --expect-latest 1
expect_fail "create: the name is taken" 1 '^fleetctl: 409 ' \
	profiles create base -f "$T/v1.json"
expect_fail "create: a name the server refuses" 1 '^fleetctl: 400 ' \
	profiles create 'Bad Name' -f "$T/v1.json"
expect_fail "show: unknown profile" 1 '^fleetctl: 404 .*no profile nosuch' \
	profiles show nosuch
expect_fail "show: unknown version" 1 \
	'^fleetctl: 404 .*profile base has no version 9' profiles show base@9
expect_fail "show: not NAME@VERSION" 2 'not NAME or NAME@VERSION' \
	profiles show base@x
expect_fail "set: unknown profile" 1 '^fleetctl: 422 Unknown profile' \
	devices config set "$A1" --profile nosuch
expect_fail "set: unknown version" 1 '^fleetctl: 422 Unknown profile version' \
	devices config set "$A1" --profile base@9
expect_fail "set: unknown device" 1 '^fleetctl: 404 ' \
	devices config set 00000000-0000-4000-8000-000000000000 --profile base
expect_fail "set: nothing to change" 2 'nothing to change' \
	devices config set "$A1"
expect_fail "set: --profile and --no-profile" 2 'contradict' \
	devices config set "$A1" --profile base --no-profile
expect_fail "set: override not JSON" 1 'broken.json: not JSON' \
	devices config set "$A1" --override "$T/broken.json"
expect_fail "clone: two sources" 2 'give one source' \
	config clone --from-device "$A1" --from-profile base --selector site=t-cfg
expect_fail "clone: no selector" 2 '--selector S is required' \
	config clone --from-device "$A1"
expect_fail "clone: bad mode" 2 '--mode is assign or copy' \
	config clone --from-profile base --selector site=t-cfg --mode move
expect_fail "clone: a selector that matches nothing" 1 \
	'^fleetctl: 422 Selector matches no device' \
	config clone --from-profile base@1 --selector site=nowhere
expect_fail "clone: a malformed selector" 1 '^fleetctl: 400 ' \
	config clone --from-profile base@1 --selector 'site in (a'
expect_fail "status: unknown change" 1 '^fleetctl: 404 .*no change 0{8}-' \
	config status 00000000-0000-4000-8000-000000000000
expect_fail "status: bad --interval" 2 '--interval takes 1 to 60' \
	config status x --interval 0
assert_eq "$(db_state)" "$before" "no bad input wrote anything"

# ---- devices config set: latest, pinned, overrides ------------------------
expect_ok "set agent 1 to base (latest)" devices config set "$A1" --profile base
out_has '^PROFILE: +base@latest' "set shows the profile follows latest"
expect_ok "set agent 2 to base@1 (pinned)" devices config set "$A2" \
	--profile base@1
out_has '^PROFILE: +base@1 \(pinned\)' "set shows the pinned version"

# applied DEVICE HASH: the device reported applied with HASH.
applied() {
	api GET "/api/v1/devices/$1/config"
	[ "$(jq -r '.reported.status' <<<"$BODY")" = applied ] &&
		[ "$(jq -r '.reported.sha256' <<<"$BODY")" = "$2" ]
}
desired_hash() {
	api GET "/api/v1/devices/$1/config"
	jq -r '.desired.sha256' <<<"$BODY"
}
H1=$(desired_hash "$A1")
assert_eq "$H1" "$V2HASH" "agent 1's desired hash is version 2's"
check "agent 1 applied version 2" wait_for "agent 1 applied" 30 applied "$A1" "$H1"
check "agent 1's file holds version 2" \
	[ "$(jq -cS . "$T/etc1/app.json")" = "$(jq -cS . "$T/v2.json")" ]
H2=$(desired_hash "$A2")
check "agent 2 applied version 1 (pinned)" wait_for "agent 2 applied" 30 \
	applied "$A2" "$H2"
check "agent 2's file holds version 1" \
	[ "$(jq -cS . "$T/etc2/app.json")" = "$(jq -cS . "$T/v1.json")" ]

expect_ok "devices config show" devices config show "$A1"
out_has '^STATE: +in_sync: the device applied the desired document$' \
	"show: the state, explained"
out_has "^SHA256 +${H1:0:16} +${H1:0:16}\$" \
	"show: desired and reported hash side by side (16 digits)"
out_has '^STATUS +- +applied$' "show: the reported status"
expect_ok "devices config show -o json" -o json devices config show "$A1"
json_is '.desired.document.mqtt.port' 8883 "show -o json: the desired document"

# publish v3: agent 1 (latest) follows, agent 2 (pinned) keeps version 1
expect_ok "publish version 3 (-fX, and a note that starts with -f)" \
	profiles publish base "-f$T/v3.json" --note -fixed
out_has '^NOTE: +-fixed$' "an option's value is never taken for -f"
H1=$(desired_hash "$A1")
check "agent 1 (latest) applied version 3" wait_for "agent 1 applied v3" 30 \
	applied "$A1" "$H1"
check "agent 1's file holds version 3" \
	[ "$(jq -cS . "$T/etc1/app.json")" = "$(jq -cS . "$T/v3.json")" ]
assert_eq "$(desired_hash "$A2")" "$H2" "agent 2 (pinned) still has version 1"

# overrides: a merge patch over the profile version
printf '{"mqtt": {"port": 9883}, "site_note": "line 4"}' >"$T/ovr.json"
expect_ok "set overrides" devices config set "$A1" --override "$T/ovr.json"
H1=$(desired_hash "$A1")
check "agent 1 applied the overrides" wait_for "agent 1 overrides" 30 \
	applied "$A1" "$H1"
check "agent 1's file is version 3 merged with the overrides" \
	[ "$(jq -cS . "$T/etc1/app.json")" = \
	  "$(jq -cS '.mqtt.port = 9883 | .site_note = "line 4"' "$T/v3.json")" ]

# ---- 412: a change made between the read and the write ------------------
# fleetctl reads the device's configuration, then the override file: a
# FIFO holds it there (after its GET, which fleetd's log shows) while
# another writer changes the configuration.
# requests PATTERN: how many requests matching PATTERN fleetd has logged.
requests() { grep -cE -- "$1" "$T/fleetd.log" || true; }
more_requests() { [ "$(requests "$1")" -gt "$2" ]; }
mkfifo "$T/ovr.fifo"
seen=$(requests "GET /api/v1/devices/$A2/config -> 200")
set +e
fleetctl devices config set "$A2" --override "$T/ovr.fifo" \
	>"$T/race.out" 2>"$T/race.err" &
RACE=$!
set -e
wait_for "the racing set read the configuration" 20 \
	more_requests "GET /api/v1/devices/$A2/config -> 200" "$seen"
# the other writer, through the API, with the device's current ETag
api GET "/api/v1/devices/$A2/config" -D "$T/hdr"
ETAG=$(awk 'tolower($1) == "etag:" { print $2 }' "$T/hdr" | tr -d '\r')
api PATCH "/api/v1/devices/$A2/config" -H "If-Match: $ETAG" \
	-H 'Content-Type: application/json' \
	--data '{"profile": "base", "version": 2, "overrides": null}'
assert_eq "$STATUS" 200 "the other writer's change (base@2)"
printf '{"mode": "racer"}' >"$T/ovr.fifo"
set +e
wait "$RACE"
RC=$?
set -e
assert_eq "$RC" 1 "the racing set fails"
check "the racing set names the 412 and says nothing was written" \
	grep -qE '^fleetctl: 412 .*nothing written' "$T/race.err"
api GET "/api/v1/devices/$A2/config"
assert_eq "$(jq -c '[.version, .overrides]' <<<"$BODY")" '[2,null]' \
	"the other writer's change stands"

# the same for publish
mkfifo "$T/pub.fifo"
seen=$(requests "GET /api/v1/profiles/base -> 200")
set +e
fleetctl profiles publish base -f "$T/pub.fifo" >"$T/race.out" \
	2>"$T/race.err" &
RACE=$!
set -e
wait_for "the racing publish read the profile" 20 \
	more_requests "GET /api/v1/profiles/base -> 200" "$seen"
expect_ok "a version published meanwhile" profiles publish base -f "$T/v1.json"
printf '{"mode": "racer"}' >"$T/pub.fifo"
set +e
wait "$RACE"
RC=$?
set -e
assert_eq "$RC" 1 "the racing publish fails"
check "the racing publish names the 412 and publishes nothing" \
	grep -qE '^fleetctl: 412 .*nothing published' "$T/race.err"
assert_eq "$(psql_q "SELECT max(version) FROM config_versions v
	JOIN config_profiles p ON p.id = v.profile_id WHERE p.name = 'base'")" \
	4 "versions: 1..4, the racer's is not among them"

# ---- clone: dry-run writes nothing; the real one reaches the agents ------
# copy mode: every target's effective config becomes agent 1's
before=$(db_state)
expect_ok "clone --dry-run" config clone --from-device "$A1" \
	--selector site=t-cfg --mode copy --dry-run
out_has '^dry run: nothing was changed' "dry-run says nothing changed"
out_has '^MATCHED: +4$' "dry-run: 4 devices matched"
out_has '^WOULD CHANGE: +3$' "dry-run: 3 would change"
out_has '^UNCHANGED: +1$' "dry-run: 1 (the source) unchanged"
out_has '^OFFLINE: +2$' "dry-run: 2 of them offline"
out_has '^DIFF for a sample of 3 devices' "dry-run shows a diff sample"
out_has '^  ~ /mqtt/port: 8883 -> 9883$' "the diff names what changes, from and to"
assert_eq "$(db_state)" "$before" "dry-run wrote nothing"
expect_ok "clone -o json --dry-run" -o json config clone --from-device "$A1" \
	--selector site=t-cfg --mode copy --dry-run
json_is '.counts.matched' 4 "dry-run JSON: matched"
json_is '.change_id' null "dry-run JSON: no change id"
expect_ok "clone --from-profile P (latest) --dry-run" config clone \
	--from-profile base --selector "id=$OFF1" --dry-run
out_has '^ASSIGN: +base@latest \(version 4\)$' "a profile without @V follows latest"

expect_ok "clone (copy)" config clone --from-device "$A1" \
	--selector site=t-cfg --mode copy
out_has '^CHANGE: +[0-9a-f-]{36}$' "clone prints the change id"
out_has 'fleetctl config status [0-9a-f-]{36} --watch' "clone says how to follow it"
CHANGE=$(awk '/^CHANGE:/ { print $2 }' "$T/out")
expect_ok "status --watch (plain, not a terminal)" config status "$CHANGE" \
	--watch
check "watch printed plain progress lines (no bar, no escapes)" \
	bash -c "grep -qE '^2/4 applied, 0 failed, 2 offline, 0 pending$' $T/out &&
		! grep -q \$'\\r' $T/out && ! grep -q '\\[#' $T/out"
check "agent 2 applied the clone" applied "$A2" "$(desired_hash "$A1")"
check "agent 2's file is agent 1's effective config" \
	[ "$(jq -cS . "$T/etc2/app.json")" = "$(jq -cS . "$T/etc1/app.json")" ]
expect_ok "status of the change" config status "$CHANGE"
out_has '^PROGRESS: +2/4 applied, 0 failed, 2 offline, 0 pending$' \
	"status counts: 2 applied, 2 offline"
out_has '^KIND: +clone$' "status names the kind"

# ---- drift: offline devices, a refused config ---------------------------
expect_ok "config drift" config drift --selector site=t-cfg
out_has "^$OFF1 +offline " "drift lists offline device 1"
out_has "^$OFF2 +offline " "drift lists offline device 2"
check "drift does not list the agents that applied" \
	bash -c "! grep -qE '^($A1|$A2) ' $T/out"
expect_ok "config drift -o json" -o json config drift --selector "id=$OFF1"
json_is '.[0].state' offline "drift -o json: the state"

# a profile the validate hook refuses, assigned by a clone to agent 2
printf '{"mode": "broken"}' >"$T/broken-doc.json"
expect_ok "profiles create (a document the hook refuses)" profiles create \
	refused -f "$T/broken-doc.json"
H2_BEFORE=$(jq -cS . "$T/etc2/app.json")
expect_ok "clone the refused profile to agent 2" config clone \
	--from-profile refused@1 --selector "id=$A2"
CHANGE2=$(awk '/^CHANGE:/ { print $2 }' "$T/out")
run config status "$CHANGE2" --watch
assert_eq "$RC" 1 "--watch exits 1 when a device failed"
check "--watch says how many failed" \
	grep -qE "^fleetctl: change $CHANGE2: 1 device failed$" "$T/err"
check "--watch lists the failure with the hook's reason" \
	grep -qE "^$A2 .*mode broken is not allowed" "$T/out"
check "agent 2's file was kept" \
	[ "$(jq -cS . "$T/etc2/app.json")" = "$H2_BEFORE" ]
expect_ok "config drift after the refusal" config drift
out_has "^$A2 +failed +refused .*mode broken is not allowed" \
	"drift: agent 2 failed, with the hook's reason"
expect_ok "devices config show of the failed device" devices config show "$A2"
out_has '^STATE: +failed: the device refused' "show explains the failure"

# copy a profile version onto agent 2: its effective config becomes it
expect_ok "clone base@1 to agent 2 (copy)" config clone \
	--from-profile base@1 --selector "id=$A2" --mode copy
CHANGE3=$(awk '/^CHANGE:/ { print $2 }' "$T/out")
expect_ok "watch the copy" config status "$CHANGE3" --watch
check "agent 2's file is version 1" \
	[ "$(jq -cS . "$T/etc2/app.json")" = "$(jq -cS . "$T/v1.json")" ]

# ---- a local edit on a device is drift ------------------------------------
printf '{"mode": "edited on the device"}\n' >"$T/etc1/app.json"
state_is() {
	api GET "/api/v1/devices/$1/config"
	[ "$(jq -r .state <<<"$BODY")" = "$2" ]
}
check "agent 1's local edit is reported as drift" \
	wait_for "agent 1 drifted" 20 state_is "$A1" drifted
expect_ok "config drift lists the edited device" config drift \
	--selector "id=$A1"
out_has "^$A1 +drifted " "drift: agent 1 drifted"
expect_ok "devices config show of the drifted device" devices config show "$A1"
out_has '^STATE: +drifted: the file on the device was changed there$' \
	"show explains the drift"

# ---- --watch -o json, and Ctrl-C ----------------------------------------
expect_ok "status --watch -o json" -o json config status "$CHANGE3" --watch
json_is '.counts.pending' 0 "--watch -o json prints the last answer"
# A frozen agent stays online (until the heartbeat timeout) and applies
# nothing: its change stays pending until the watch is interrupted.
kill -STOP "${AGENT_PID[2]}"
expect_ok "pin the frozen agent to base@2" devices config set "$A2" \
	--profile base@2 --no-override
CHANGE4=$(awk '/^follow it with:/ { print $7 }' "$T/out")
set +e
fleetctl config status "$CHANGE4" --watch >"$T/watch.out" 2>"$T/watch.err" &
WATCH=$!
set -e
check "the watch shows the change pending" wait_for "the watch's first line" \
	10 grep -q '1 pending' "$T/watch.out"
kill -INT "$WATCH"
set +e
wait "$WATCH"
RC=$?
set -e
kill -CONT "${AGENT_PID[2]}"
assert_eq "$RC" 130 "Ctrl-C ends --watch with 130"
check "--watch says the change goes on" \
	grep -qE '^stopped watching; the change goes on \(1 pending\)$' "$T/watch.out"
check "agent 2 applies it once it runs again" \
	wait_for "agent 2 applied after SIGCONT" 30 state_is "$A2" in_sync

# ---- status --watch on a terminal: a live bar --------------------------
script -qec "fleetctl config status $CHANGE3 --watch" /dev/null \
	>"$T/tty.out" 2>&1 </dev/null || true
check "on a terminal --watch draws a progress bar" \
	grep -qE '\[#+\] 100%  1/1 applied' "$T/tty.out"

harness_done
