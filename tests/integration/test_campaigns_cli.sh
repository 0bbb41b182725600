#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# fleetctl campaigns against a real fleetd, PostgreSQL and fleet-sim
# devices (issue 12, docs/campaigns.md): configuration campaigns, since
# fleet-sim applies config.apply in memory.
# - create --dry-run prints the devices per phase (summing to the matched
#   fleet) and creates nothing;
# - a config campaign 50,100 created with --start completes: `watch`
#   prints plain lines (stdout is not a terminal) and exits 0, `show`
#   prints one row per phase with every device succeeded, and the devices
#   report the campaign's profile version applied (psql); on a pty
#   `watch` draws one bar per phase;
# - a campaign whose whole cohort fails its hook (fleet-sim
#   --config-fail 1) pauses itself: watch exits 3 and names the gate;
# - a second campaign paused by the operator while `watch` follows it:
#   watch exits 3 with who and why; resumed, then aborted while watched:
#   watch exits 4, its admitted devices are reverted, and `events` shows
#   every transition (created, started, phase_released, paused, resumed,
#   aborted); Ctrl-C ends a watch with 130 and the campaign goes on;
# - a firmware campaign 1,10,50,100 (a signed release, fleet-sim applying
#   offers in memory) with a time window and a cap completes: show names
#   its deployment and the devices per phase, psql counts the committed
#   rows;
# - list (and --status), devices (--state, --phase), -o json;
# - usage errors exit 2 with one line on stderr and send nothing; API
#   errors (unknown campaign, a transition not allowed) exit 1.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/cli.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

harness_init
pki_init
fleetd_start 2

TOKEN=$(admin_token operator camp-operator)
export FLEET_TOKEN=$TOKEN

# ---- a signed release (two keys, both needed) -----------------------------
mkdir -p "$T/rel"
for k in k1 k2; do
	fleetctl keys gen --out "$T/rel/$k.key" >/dev/null
done
head -c 4096 /dev/urandom >"$T/rel/fw-2.0.bin"
fleetctl release sign --key "$T/rel/k1.key" --key "$T/rel/k2.key" \
	--name sim-fw --version 2.0 --version-int 2 --hw sim-x \
	--installer single-file --expires 1d --out "$T/rel/fw.json" \
	"$T/rel/fw-2.0.bin" >/dev/null
fleetctl -o json artifacts upload "$T/rel/fw.json" "$T/rel/fw-2.0.bin" \
	</dev/null >"$T/upload.json"
ART=$(jq -r .id "$T/upload.json")

# ---- devices: 10 site=a, 6 site=b, 4 site=c whose hook always fails ------
sim() { # NAME COUNT SITE [fleet-sim args...]
	local name=$1 count=$2 site=$3
	shift 3
	enrollment_token "$count" "$site"
	spawn "$name" fleet-sim --count "$count" --token "$ENROLL" \
		--api "$FLEET_SERVER" --ca "$FLEET_CA" --state "$T/$name" \
		--status-file "$T/$name.json" --model sim-x --threads 2 "$@"
}
sim sima 10 a --update-keys "$T/rel/k1.key.pub" \
	--update-keys "$T/rel/k2.key.pub" --update-threshold 2
sim simb 6 b
sim simc 4 c --config-fail 1
online_is() { [ "$(jq -r .online "$T/$1.json" 2>/dev/null || echo 0)" = "$2" ]; }
check "fleet-sim: 10 site=a devices online" wait_for "site=a online" 60 online_is sima 10
check "fleet-sim: 6 site=b devices online" wait_for "site=b online" 60 online_is simb 6
check "fleet-sim: 4 site=c devices online" wait_for "site=c online" 60 online_is simc 4

# ---- a profile with three versions ---------------------------------------
for v in 1 2 3; do
	echo "{\"setpoint\": $((20 + v)), \"fan\": \"auto\"}" >"$T/hvac-$v.json"
done
fleetctl profiles create hvac -f "$T/hvac-1.json" >/dev/null
fleetctl profiles publish hvac -f "$T/hvac-2.json" >/dev/null
fleetctl profiles publish hvac -f "$T/hvac-3.json" >/dev/null
HVAC=$(psql_q "SELECT id FROM config_profiles WHERE name = 'hvac'")

# ---- usage errors: exit 2, one line, nothing sent ------------------------
NCAMP() { psql_q "SELECT count(*) FROM campaigns"; }
expect_fail "create without --name: usage error" 2 \
	'^fleetctl: campaigns create: --name is required' \
	campaigns create --kind config --profile hvac --version 1 --phases 100
expect_fail "create with an unknown kind: usage error" 2 \
	"--kind must be firmware, config or rotation, not 'fw'" \
	campaigns create --name x --kind fw --phases 100
expect_fail "config without --version: usage error" 2 \
	'--kind config needs --profile P and --version V' \
	campaigns create --name x --kind config --profile hvac --phases 100
expect_fail "firmware without --artifact: usage error" 2 \
	'--kind firmware needs --artifact ID' \
	campaigns create --name x --kind firmware --phases 100
expect_fail "--artifact on a rotation: usage error" 2 \
	'--artifact is for --kind firmware only' \
	campaigns create --name x --kind rotation --artifact abc --phases 100
expect_fail "phases that are not numbers: usage error" 2 \
	"--phases takes whole numbers separated by commas, not '1,ten,100'" \
	campaigns create --name x --kind rotation --phases 1,ten,100
expect_fail "'all' without --devices: usage error" 2 \
	"--phases takes whole numbers" \
	campaigns create --name x --kind rotation --phases 1,all
expect_fail "a share above 1: usage error" 2 \
	"--max-failure takes a share from 0 to 1 \(0.9\) or a percentage \(90%\), not '1.5'" \
	campaigns create --name x --kind rotation --phases 100 --max-failure 1.5
expect_fail "a bad duration: usage error" 2 \
	"--soak takes a duration such as 90, 90s, 10m or 2h" \
	campaigns create --name x --kind rotation --phases 100 --soak 10x
expect_fail "--start with --dry-run: usage error" 2 \
	'--start and --dry-run exclude each other' \
	campaigns create --name x --kind rotation --phases 100 --start --dry-run
expect_fail "watch without an id: usage error" 2 \
	'^fleetctl: campaigns watch: missing argument' campaigns watch
expect_fail "watch with a zero interval: usage error" 2 \
	"--interval takes a duration from 1s to 1h" \
	campaigns watch 00000000-0000-0000-0000-000000000000 --interval 0
expect_fail "list with an unknown status: usage error" 2 \
	"--status must be draft, running, paused, completed or aborted" \
	campaigns list --status finished
expect_fail "devices with phase 0: usage error" 2 \
	"--phase takes a phase number from 1 to 16" \
	campaigns devices 00000000-0000-0000-0000-000000000000 --phase 0
expect_fail "an unknown option: usage error" 2 \
	"^fleetctl: campaigns pause: unknown option '--selector'" \
	campaigns pause 00000000-0000-0000-0000-000000000000 --selector x
expect_fail "an unknown subcommand: usage error" 2 \
	"^fleetctl: campaigns: unknown command 'stop'" campaigns stop x
assert_eq "$(NCAMP)" 0 "usage errors created no campaign"

# ---- preflight -----------------------------------------------------------
expect_ok "create --dry-run" campaigns create --name preflight --kind config \
	--profile hvac --version 1 --selector 'site in (a,b)' \
	--phases 1,10,50,100 --soak 10m --dry-run
out_has '^dry run: nothing was created$' "dry run says nothing was created"
out_has '^MATCHED: +16$' "dry run: 16 devices matched"
out_has '^OFFLINE NOW: +0$' "dry run: none offline"
out_has '^MIN DURATION: +40m$' "dry run: the least duration is the soak times (4 x 10m)"
rows=$(awk '$1 ~ /^[0-9]+$/ { n++; s += $2; last = $3 } END { print n, s, last }' "$T/out")
assert_eq "$rows" "4 16 16" "dry run: one row per phase, the devices sum to 16, cumulative 16"
run -o json campaigns create --name preflight --kind config --profile hvac \
	--version 1 --selector 'site in (a,b)' --phases 1,10,50,100 --dry-run
assert_eq "$RC $(jq -c '[.dry_run, .matched, (.phases | length), ([.phases[].devices] | add)]' "$T/out")" \
	"0 [true,16,4,16]" "dry run -o json: the API's preflight"
run -o json campaigns create --name preflight --kind rotation \
	--selector 'site in (a,b)' --phases 2,all --devices --dry-run
assert_eq "$RC $(jq -c '[.phases[].devices]' "$T/out")" "0 [2,14]" \
	"dry run --devices 2,all: 2 devices, then the other 14"
assert_eq "$(NCAMP)" 0 "dry runs created no campaign"

# ---- a config campaign 50,100 that completes -----------------------------
expect_ok "create --start" campaigns create --name "hvac v1 to site a" \
	--kind config --profile hvac --version 1 --selector site=a \
	--phases 50,100 --soak 0 --min-success 1 --start
A=$(awk '/^CAMPAIGN:/ { print $2 }' "$T/out")
out_has '^TARGET: +profile hvac version 1$' "create prints the target"
out_has "^follow it with: fleetctl campaigns watch $A$" "create says how to follow it"
t0=$(date +%s)
set +e
timeout 120 fleetctl campaigns watch "$A" >"$T/watchA.out" 2>"$T/watchA.err" </dev/null
RC=$?
set -e
assert_eq "$RC" 0 "watch exits 0 when the campaign completes ($(($(date +%s) - t0)) s)"
plain() { ! grep -qE '\[#' "$1" && ! grep -q $'\e' "$1"; }
check "watch on a pipe prints plain lines (no bar, no escapes)" \
	plain "$T/watchA.out"
check "watch's last progress line: 10/10 succeeded" \
	grep -qE '^completed, phase 2 of 2: 10/10 succeeded, 0 failed' "$T/watchA.out"
check "watch ends with the outcome" \
	grep -qE "^campaign $A completed: 10/10 succeeded" "$T/watchA.out"
expect_ok "show" campaigns show "$A"
out_has '^STATUS: +completed$' "show: completed"
out_has '^PHASE: +2 of 2 released$' "show: 2 of 2 phases released"
out_has '^MATCHED: +10$' "show: 10 matched"
# PHASE UP-TO DEVICES PENDING OFFERED IN-PROGRESS SUCCEEDED FAILED SILENT ROLLED-BACK FAILURES
out_has '^1 +50% +5 +0 +0 +0 +5 +0 +0 +0 +0%$' "show: phase 1 row, 5 of 5 succeeded"
out_has '^2 +100% +5 +0 +0 +0 +5 +0 +0 +0 +0%$' "show: phase 2 row, 5 of 5 succeeded"
out_has '^all +- +10 +0 +0 +0 +10 +0 +0 +0 +0%$' "show: totals row"
out_has '^1 +100% +0s +10% +1 +10m$' "show: the gates of phase 1"
run -o json campaigns show "$A"
assert_eq "$(jq -c '[.status, .totals.succeeded, (.counts | length)]' "$T/out")" \
	'["completed",10,2]' "show -o json: the API's document"
applied=$(psql_q "SELECT count(*) FROM device_config dc
	JOIN device_config_reported r ON r.device_id = dc.device_id
	AND r.generation = dc.desired_generation AND r.status = 'applied'
	JOIN devices d ON d.id = dc.device_id
	WHERE d.labels->>'site' = 'a' AND dc.profile_id = '$HVAC'
	AND dc.pinned_version = 1")
assert_eq "$applied" 10 "psql: the 10 site=a devices applied hvac version 1"
script -qec "fleetctl campaigns watch $A" /dev/null >"$T/tty.out" 2>&1 </dev/null || true
check "on a terminal watch draws one bar per phase" \
	grep -qE '^phase 1 +\[#{30}\] 100%  5/5 ok' "$T/tty.out"
check "... and phase 2's" grep -qE 'phase 2 +\[#{30}\] 100%  5/5 ok' "$T/tty.out"
expect_fail "pause a completed campaign: 409, exit 1" 1 '^fleetctl: 409 ' \
	campaigns pause "$A"
expect_fail "show an unknown campaign: 404, exit 1" 1 '^fleetctl: 404 ' \
	campaigns show 00000000-0000-0000-0000-000000000000

# ---- a firmware campaign 1,10,50,100 with a window and a cap ----------------
expect_ok "create a firmware campaign" campaigns create --name "fw 2.0 to site a" \
	--kind firmware --artifact "$ART" --selector site=a --phases 1,10,50,100 \
	--min-success 100% --soak 0 --max-failure 10% --health-window 30s \
	--hours 0-23 --weekdays sun-sat --max-concurrent 3 --start
F=$(awk '/^CAMPAIGN:/ { print $2 }' "$T/out")
out_has "^TARGET: +artifact $ART$" "firmware: the target is the artifact"
out_has '^WINDOW: +hours 0-23, sun-sat \(UTC\)$' "firmware: the window as given"
out_has '^MAX CONCURRENT: +3 offered or in progress at once$' "firmware: the cap"
# On a terminal (script's pty): the header and 4 bars redrawn in place.
set +e
timeout 120 script -qec "fleetctl campaigns watch $F --interval 1s" /dev/null \
	>"$T/watchF.out" 2>&1 </dev/null
RC=$?
set -e
assert_eq "$RC" 0 "watch on a terminal exits 0 when the firmware campaign completes"
check "watch redraws the header and the 4 phase bars in place (cursor up 5)" \
	grep -q $'\e\\[5A' "$T/watchF.out"
check "... ending with phase 4 full" \
	grep -qE 'phase 4 +\[#{30}\] 100%  5/5 ok, 0 failed, 0 open' "$T/watchF.out"
expect_ok "show the firmware campaign" campaigns show "$F"
out_has '^DEPLOYMENT: +[0-9a-f-]{36}$' "firmware: show names the campaign's deployment"
out_has '^PHASE: +4 of 4 released$' "firmware: 4 of 4 phases released"
# 10 devices: 1% -> 1, 10% -> 1, 50% -> 5, 100% -> 10 (cumulative, rounded up)
out_has '^1 +1% +1 +0 +0 +0 +1 +0 +0 +0 +0%$' "firmware: phase 1 is one device, succeeded"
out_has '^2 +10% +0 +0 +0 +0 +0 +0 +0 +0 +0%$' "firmware: phase 2 adds no device (10% of 10 is the same one)"
out_has '^3 +50% +4 +0 +0 +0 +4 +0 +0 +0 +0%$' "firmware: phase 3, 4 devices succeeded"
out_has '^4 +100% +5 +0 +0 +0 +5 +0 +0 +0 +0%$' "firmware: phase 4, 5 devices succeeded"
committed=$(psql_q "SELECT count(*) FROM deployment_devices dd
	JOIN deployments d ON d.id = dd.deployment_id
	WHERE d.campaign_id = '$F' AND dd.state = 'committed'")
assert_eq "$committed" 10 "psql: 10 committed rows in the campaign's deployment"
expect_ok "list the firmware campaign" campaigns list --status completed
out_has "^$F +fw 2.0 to site a +firmware +completed +4/4 +artifact ${ART:0:8} " \
	"list: the firmware campaign and its artifact"

# ---- a gate pauses a campaign by itself ----------------------------------
expect_ok "create a campaign for the failing cohort" campaigns create \
	--name "hvac v2 to site c" --kind config --profile hvac --version 2 \
	--selector site=c --phases 50,100 --max-failure 0.2 --min-finished 2 \
	--start
G=$(awk '/^CAMPAIGN:/ { print $2 }' "$T/out")
set +e
timeout 90 fleetctl campaigns watch "$G" >"$T/watchG.out" 2>&1 </dev/null
RC=$?
set -e
assert_eq "$RC" 3 "watch exits 3 when a gate pauses the campaign"
check "watch says the driver paused it" \
	grep -qE "^campaign $G paused by campaign-driver" "$T/watchG.out"
run -o json campaigns show "$G"
assert_eq "$(jq -c '[.status, .phase, .counts[0].failed, .counts[1].offered]' "$T/out")" \
	'["paused",1,2,0]' "paused in phase 1 with its 2 devices failed, nothing offered in phase 2"
expect_ok "devices --state failed" campaigns devices "$G" --state failed
assert_eq "$(grep -c ' failed ' "$T/out")" 2 "devices --state failed lists the 2"

# ---- paused by the operator, resumed, aborted ----------------------------
expect_ok "create a second campaign (draft)" campaigns create \
	--name "hvac v3 to site b" --kind config --profile hvac --version 3 \
	--selector site=b --phases 50,100 --soak 10m
B=$(awk '/^CAMPAIGN:/ { print $2 }' "$T/out")
out_has '^STATUS: +draft$' "without --start it is a draft"
out_has "^start it with: fleetctl campaigns start $B$" "create says how to start it"
fleetctl campaigns watch "$B" >"$T/watchB.out" 2>&1 </dev/null &
WB=$!
HARNESS_PIDS+=("$WB")
expect_ok "start" campaigns start "$B"
out_has "^started campaign $B$" "start says so"
phase1_done() {
	fleetctl -o json campaigns show "$B" | jq -e '.counts[0].succeeded == 3' >/dev/null
}
check "phase 1 (3 devices) succeeds and soaks" wait_for "phase 1 succeeded" 60 phase1_done
expect_ok "pause" campaigns pause "$B" --reason "checking the setpoints"
out_has '^STATUS: +paused by .*: checking the setpoints$' "pause shows who and why"
set +e
timeout 30 bash -c "while kill -0 $WB 2>/dev/null; do sleep 0.2; done"
wait "$WB"
RC=$?
set -e
assert_eq "$RC" 3 "watch exits 3 when the operator pauses the campaign"
check "watch says who paused it and why" \
	grep -qE "^campaign $B paused by .*: checking the setpoints$" "$T/watchB.out"
check "watch followed it while running" grep -qE '^running, phase 1 of 2' "$T/watchB.out"
run campaigns watch "$B"
assert_eq "$RC" 3 "watch on a paused campaign exits 3 at once"
expect_ok "resume" campaigns resume "$B" --reason "setpoints fine"
out_has '^STATUS: +running$' "resumed: running"
fleetctl campaigns watch "$B" >"$T/watchINT.out" 2>&1 </dev/null &
WB=$!
HARNESS_PIDS+=("$WB")
check "watch follows the resumed campaign" wait_for "watch's first line" 10 \
	grep -q '^running, phase 1 of 2' "$T/watchINT.out"
kill -INT "$WB"
set +e
wait "$WB"
RC=$?
set -e
assert_eq "$RC" 130 "Ctrl-C ends watch with 130"
check "watch says the campaign goes on" \
	grep -qx 'stopped watching; the campaign goes on' "$T/watchINT.out"
fleetctl campaigns watch "$B" --interval 1s >"$T/watchB2.out" 2>&1 </dev/null &
WB=$!
HARNESS_PIDS+=("$WB")
expect_ok "abort" campaigns abort "$B" --reason "wrong season"
out_has '^STATUS: +aborted$' "abort: aborted"
set +e
timeout 30 bash -c "while kill -0 $WB 2>/dev/null; do sleep 0.2; done"
wait "$WB"
RC=$?
set -e
assert_eq "$RC" 4 "watch exits 4 when the campaign is aborted"
check "watch says it was aborted" grep -qE "^campaign $B aborted" "$T/watchB2.out"
reverted_all() {
	[ "$(fleetctl -o json campaigns devices "$B" --state reverted | jq length)" = 3 ]
}
check "abort reverts the 3 devices the campaign changed" \
	wait_for "3 devices reverted" 30 reverted_all
expect_ok "devices --phase 1" campaigns devices "$B" --phase 1
assert_eq "$(grep -c ' reverted ' "$T/out")" 3 "devices --phase 1: the 3 reverted"
expect_ok "events" campaigns events "$B"
for kind in created started phase_released paused resumed aborted; do
	check "events shows '$kind'" grep -qE "^[^ ]+ +[^ ]+ +$kind " "$T/out"
done
check "events shows the operator's reason" grep -q 'checking the setpoints' "$T/out"
expect_fail "resume an aborted campaign: 409, exit 1" 1 '^fleetctl: 409 ' \
	campaigns resume "$B"

# ---- list -----------------------------------------------------------------
expect_ok "list" campaigns list
assert_eq "$(grep -cE "^($A|$B|$G|$F) " "$T/out")" 4 "list shows the four campaigns"
out_has "^$A +hvac v1 to site a +config +completed +2/2 +hvac@1 +site=a " "list: A completed, 2/2 phases, hvac@1"
expect_ok "list --status aborted" campaigns list --status aborted
assert_eq "$(tail -n +2 "$T/out" | awk '{ print $1 }')" "$B" "list --status aborted: only B"

harness_done
