#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# fleet-sim applies firmware offers in memory, with failure cohorts
# (issue 12, docs/internals/fleet-sim.md): real PostgreSQL and fleetd, a
# release signed offline with two of two keys (`fleetctl keys gen`,
# `fleetctl release sign`), uploaded (`fleetctl artifacts upload`) and
# deployed (`fleetctl deployments create`) to 40 virtual devices in two
# fleet-sim processes that pin both keys with threshold 2:
# - "a": 20 devices of model sim-a with --update-fail 0.25 and
#   --update-rollback 0.25: the devices of the fail cohort end `failed`
#   with reason install-failed, those of the rollback cohort (not in the
#   fail one) `rolled_back` with health-failed after their reboot, both
#   keeping their old version; every other one ends `committed`;
# - "b": 20 devices of model sim-b with --update-silent 0.25: every device
#   commits; the silent cohort is offline afterwards and stays so;
# - the cohorts are computed here independently from the device ids
#   (SHA-256("<option>:<device id>"), first 8 bytes / 2^64 < share) and
#   must match fleetd's rows exactly; fleet-sim's own counts agree;
# - every device that got past the install reported every state (its
#   log: downloading to the last byte, downloaded, installing, installed,
#   rebooting, verifying, committed) and rebooted (reconnected);
#   committed devices show the new fw_version in their device document,
#   and one that stays online says it in its hello too;
# - a second offer of the same release (a new deployment) is refused
#   not-newer by committed devices, as fleet-agent would;
# - a newer release deployed right after an older one to a third process
#   (10 devices, one download thread, so most offers wait in its queue):
#   the older update is superseded wherever nothing was installed yet
#   (fleet-sim reports failed/superseded and takes the newer offer), and
#   every device ends on the release fleetd's rows say.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

require_tools jq python3

harness_init
pki_init
fleetd_write_config 1
fleetd_start
TOKEN=$(admin_token operator)
export FLEET_TOKEN=$TOKEN
N=20

# ---- a release signed offline with two keys --------------------------------
mkdir -p "$T/rel"
for k in k1 k2; do
	fleetctl keys gen --out "$T/rel/$k.key" >/dev/null
done
head -c $((2 * 1048576)) /dev/urandom >"$T/rel/fw-2.0.bin"
fleetctl release sign --key "$T/rel/k1.key" --key "$T/rel/k2.key" \
	--name sim-fw --version 2.0 --version-int 2 --hw sim-a,sim-b,sim-c \
	--installer single-file --expires 1d --out "$T/rel/fw.json" \
	"$T/rel/fw-2.0.bin" >/dev/null
fleetctl -o json artifacts upload "$T/rel/fw.json" "$T/rel/fw-2.0.bin" \
	</dev/null >"$T/upload.json"
ART=$(jq -r .id "$T/upload.json")
assert_eq "$(jq -r .status "$T/upload.json")" ready "artifact uploaded"

# ---- two fleet-sim processes, one per cohort option --------------------------
enrollment_token $((2 * N)) simupd
sim_start() { # NAME MODEL OPTION...
	local name=$1 model=$2
	shift 2
	spawn "sim-$name" fleet-sim --count "$N" --token "$ENROLL" \
		--api "$FLEET_SERVER" --ca "$FLEET_CA" --state "$T/sim-$name" \
		--status-file "$T/sim-$name.json" --model "$model" \
		--labels "cohort=$name" --log-level info \
		--update-keys "$T/rel/k1.key.pub" \
		--update-keys "$T/rel/k2.key.pub" --update-threshold 2 \
		--download-threads 4 "$@"
}
sim_start a sim-a --update-fail 0.25 --update-rollback 0.25
SIM_A=$LAST_PID
sim_start b sim-b --update-silent 0.25
SIM_B=$LAST_PID
sim_field() { jq -r "$2" "$T/sim-$1.json" 2>/dev/null || echo 0; }
sim_online_is() { [ "$(sim_field "$1" .online)" = "$2" ]; }
check "fleet-sim a: $N devices online" wait_for "sim a online" 60 sim_online_is a "$N"
check "fleet-sim b: $N devices online" wait_for "sim b online" 60 sim_online_is b "$N"

# The cohorts, computed here from the device ids (the oracle).
cohort() { # NAME OPTION SHARE: "<id> <in cohort: 1|0>" per device
	for n in $(seq 0 $((N - 1))); do
		jq -r .device_id "$T/sim-$1/$n/identity.json"
	done | python3 -c '
import hashlib, sys
opt, share = sys.argv[1], float(sys.argv[2])
for line in sys.stdin:
    d = line.strip()
    v = int.from_bytes(hashlib.sha256(("%s:%s" % (opt, d)).encode()).digest()[:8], "big")
    print(d, 1 if v / 2**64 < share else 0)' "$2" "$3"
}
cohort a update-fail 0.25 >"$T/cohort-a"
cohort a update-rollback 0.25 >"$T/cohort-a-rb"
cohort b update-silent 0.25 >"$T/cohort-b"
# What each device of a should end as: failed first, then rolled back.
paste -d' ' "$T/cohort-a" <(awk '{ print $2 }' "$T/cohort-a-rb") |
	awk '{ print $1, ($2 == 1 ? "failed" : ($3 == 1 ? "rolled_back" : "committed")) }' \
		>"$T/expect-a"
FAIL_N=$(awk '$2 == "failed"' "$T/expect-a" | wc -l)
RB_N=$(awk '$2 == "rolled_back"' "$T/expect-a" | wc -l)
SILENT_N=$(awk '$2 == 1' "$T/cohort-b" | wc -l)
echo "# cohorts: $FAIL_N of $N fail and $RB_N roll back (a), $SILENT_N of $N go silent (b)"
check "the fail cohort is neither empty nor everyone" test "$FAIL_N" -gt 0 -a "$FAIL_N" -lt "$N"
check "the silent cohort is neither empty nor everyone" test "$SILENT_N" -gt 0 -a "$SILENT_N" -lt "$N"

# ---- the deployment ------------------------------------------------------
T0=$(date +%s.%N)
fleetctl -o json deployments create --artifact "$ART" --selector site=simupd \
	>"$T/dep.json"
DEP=$(jq -r .id "$T/dep.json")
assert_eq "$(jq -r .targets "$T/dep.json")" $((2 * N)) "deployment: $((2 * N)) targets"
# Done when no row is open. (The deployment's status is not waited for:
# two last reports applied at once can each see the other's row still
# open, and then neither marks the deployment finished; reported to the
# lead, see the report of this change.)
dep_done() { # ID
	api GET "/api/v1/deployments/$1"
	[ "$STATUS" = 200 ] && [ "$(jq -r .open <<<"$BODY")" = 0 ]
}
check "every row of the deployment ends" wait_for "deployment rows done" 120 dep_done "$DEP"
T1=$(date +%s.%N)
echo "# deployment to $((2 * N)) fleet-sim devices: create to the last row ended in $(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }') s"
api GET "/api/v1/deployments/$DEP"
echo "# counts: $(jq -c .counts <<<"$BODY"), status $(jq -r .status <<<"$BODY")"
assert_eq "$(jq -r '.counts.committed // 0' <<<"$BODY")" $((2 * N - FAIL_N - RB_N)) \
	"committed: everyone but the fail and rollback cohorts"
assert_eq "$(jq -r '.counts.failed // 0' <<<"$BODY")" "$FAIL_N" "failed: the fail cohort"
assert_eq "$(jq -r '.counts.rolled_back // 0' <<<"$BODY")" "$RB_N" \
	"rolled_back: the rollback cohort"
assert_eq "$(jq -r '[.failures[] | select(.state == "failed") | .reason] | unique | join(",")' <<<"$BODY")" \
	install-failed "failed rows say install-failed"
if [ "$RB_N" -gt 0 ]; then
	assert_eq "$(jq -r '[.failures[] | select(.state == "rolled_back") | .reason] | unique | join(",")' <<<"$BODY")" \
		health-failed "rolled_back rows say health-failed"
fi
assert_eq "$(jq -r '[.failures[] | "\(.fw_version) \(.running_version)"] | unique | join(",")' <<<"$BODY")" \
	"1.0.0 0" "failed and rolled back devices still run 1.0.0"

# Row by row: the rows fleetd holds are exactly the cohorts.
api GET "/api/v1/deployments/$DEP/devices?limit=100"
jq -r '.items[] | "\(.device_id) \(.state)"' <<<"$BODY" | sort >"$T/rows"
{
	cat "$T/expect-a"
	awk '{ print $1, "committed" }' "$T/cohort-b"
} | sort >"$T/expected"
check "every row is the state its cohort says" diff "$T/expected" "$T/rows"

# fleet-sim's own counts.
sim_done() { [ "$(sim_field "$1" .updates.active)" = 0 ]; }
wait_for "sim a idle" 10 sim_done a || true
wait_for "sim b idle" 10 sim_done b || true
assert_eq "$(sim_field a '.updates | [.committed, .failed, .rolled_back, .refused, .silent] | join(" ")')" \
	"$((N - FAIL_N - RB_N)) $FAIL_N $RB_N 0 0" "fleet-sim a counts committed, failed and rolled back"
assert_eq "$(sim_field b '.updates | [.committed, .failed, .rolled_back, .refused, .silent] | join(" ")')" \
	"$((N - SILENT_N)) 0 0 0 $SILENT_N" "fleet-sim b counts committed and silent"

# ---- the device documents ---------------------------------------------------
dev_doc() { api GET "/api/v1/devices/$1"; }
silent_offline() {
	local id
	for id in $(awk '$2 == 1 { print $1 }' "$T/cohort-b"); do
		dev_doc "$id"
		[ "$(jq -r .online <<<"$BODY")" = false ] || return 1
	done
}
check "the silent devices are offline" wait_for "silent offline" 30 silent_offline
assert_eq "$(sim_field b .online)" $((N - SILENT_N)) "fleet-sim b: only the others online"
bad=0
while read -r id end; do
	dev_doc "$id"
	want=2.0
	[ "$end" != committed ] && want=1.0.0
	[ "$(jq -r .fw_version <<<"$BODY")" = "$want" ] || {
		bad=$((bad + 1))
		echo "# device $id: fw_version $(jq -r .fw_version <<<"$BODY"), want $want"
	}
done <"$T/expected"
assert_eq "$bad" 0 "device documents: 2.0 when committed, 1.0.0 when failed or rolled back"
# The hello after the reboot already says 2.0 for a device that stays
# online (firmware.json, as fleet-agent): fleetd keeps it online at 2.0.
stayed=$(awk '$2 == 0 { print $1; exit }' "$T/cohort-b")
dev_doc "$stayed"
assert_eq "$(jq -r '[.online, .fw_version] | join(" ")' <<<"$BODY")" "true 2.0" \
	"a committed device of b is online with 2.0"

# ---- every state, from the devices' side --------------------------------------
state_lines() { grep -c "update.status $2 (version 2)" "$T/sim-$1.log" || true; }
for st in downloading downloaded installing; do
	assert_eq "$(($(state_lines a $st) + $(state_lines b $st)))" $((2 * N)) \
		"every device reported $st"
done
for st in installed rebooting verifying; do
	assert_eq "$(($(state_lines a $st) + $(state_lines b $st)))" $((2 * N - FAIL_N)) \
		"every device past the install reported $st"
done
assert_eq "$(($(state_lines a committed) + $(state_lines b committed)))" \
	$((2 * N - FAIL_N - RB_N)) "every device that committed reported it"
assert_eq "$(state_lines a failed)" "$FAIL_N" "the fail cohort reported failed"
assert_eq "$(state_lines a rolled_back)" "$RB_N" "the rollback cohort reported rolled_back"
reboots=$(($(grep -c 'rebooting (boot id' "$T/sim-a.log" || true) + \
	$(grep -c 'rebooting (boot id' "$T/sim-b.log" || true)))
assert_eq "$reboots" $((2 * N - FAIL_N)) "every device past the install rebooted"
check "no report was refused by fleetd" not grep -q 'rejected report' \
	"$T/sim-a.log" "$T/sim-b.log"
check "no report went unqueued" not grep -q 'not queued' "$T/sim-a.log" "$T/sim-b.log"

# ---- the same release again: refused not-newer by committed devices ---------
api POST /api/v1/deployments -H 'Content-Type: application/json' \
	--data "{\"artifact_id\":\"$ART\",\"selector\":\"model=sim-a\"}"
assert_eq "$STATUS" 201 "the same release deployed again to a"
DEP2=$(jq -r .id <<<"$BODY")
check "every row of the second deployment ends" \
	wait_for "deployment 2 rows done" 60 dep_done "$DEP2"
api GET "/api/v1/deployments/$DEP2"
assert_eq "$(jq -r '[.counts.refused // 0, .counts.committed // 0, .counts.failed // 0, .counts.rolled_back // 0] | join(" ")' <<<"$BODY")" \
	"$((N - FAIL_N - RB_N)) 0 $FAIL_N $RB_N" \
	"again: committed ones refuse (not-newer), the cohorts fail and roll back again"
assert_eq "$(jq -r '[.failures[] | select(.state == "refused") | .reason] | unique | join(",")' <<<"$BODY")" \
	not-newer "refusals say not-newer"

# ---- a newer release right after an older one: superseded -------------------
head -c $((1048576)) /dev/urandom >"$T/rel/fw-3.0.bin"
fleetctl release sign --key "$T/rel/k1.key" --key "$T/rel/k2.key" \
	--name sim-fw --version 3.0 --version-int 3 --hw sim-c \
	--installer single-file --expires 1d --out "$T/rel/fw3.json" \
	"$T/rel/fw-3.0.bin" >/dev/null
fleetctl -o json artifacts upload "$T/rel/fw3.json" "$T/rel/fw-3.0.bin" \
	</dev/null >"$T/upload3.json"
ART3=$(jq -r .id "$T/upload3.json")
NC=10
enrollment_token "$NC" simsup
spawn sim-c fleet-sim --count "$NC" --token "$ENROLL" --api "$FLEET_SERVER" \
	--ca "$FLEET_CA" --state "$T/sim-c" --status-file "$T/sim-c.json" \
	--model sim-c --log-level info --update-keys "$T/rel/k1.key.pub" \
	--update-keys "$T/rel/k2.key.pub" --update-threshold 2 \
	--download-threads 1
SIM_C=$LAST_PID
check "fleet-sim c: $NC devices online" wait_for "sim c online" 60 sim_online_is c "$NC"
fleetctl -o json deployments create --artifact "$ART" --selector site=simsup \
	>"$T/depc1.json"
fleetctl -o json deployments create --artifact "$ART3" --selector site=simsup \
	>"$T/depc2.json"
DEPC1=$(jq -r .id "$T/depc1.json")
DEPC2=$(jq -r .id "$T/depc2.json")
check "2.0's rows end" wait_for "depc1 rows done" 120 dep_done "$DEPC1"
check "3.0's rows end" wait_for "depc2 rows done" 120 dep_done "$DEPC2"
api GET "/api/v1/deployments/$DEPC1"
C1=$(jq -c .counts <<<"$BODY")
api GET "/api/v1/deployments/$DEPC2"
echo "# 2.0 then 3.0 to $NC devices: 2.0 $C1, 3.0 $(jq -c .counts <<<"$BODY") (busy $(jq -r .busy "$T/depc2.json"))"
rows_of() { # DEPLOYMENT: "<device> <state>" lines
	api GET "/api/v1/deployments/$1/devices?limit=100"
	jq -r '.items[] | "\(.device_id) \(.state)"' <<<"$BODY" | sort
}
rows_of "$DEPC1" >"$T/rows-c1"
rows_of "$DEPC2" >"$T/rows-c2"
check "3.0: every row it has committed" \
	test "$(awk '$2 != "committed"' "$T/rows-c2" | wc -l)" = 0
# Each device: on 3.0 when 3.0 has its row, else (it was installing 2.0
# when 3.0 was created: skipped as busy) committed 2.0.
bad=0
for n in $(seq 0 $((NC - 1))); do
	id=$(jq -r .device_id "$T/sim-c/$n/identity.json")
	if grep -q "^$id committed" "$T/rows-c2"; then want=3.0; else want=2.0; fi
	if [ "$want" = 2.0 ] && ! grep -q "^$id committed" "$T/rows-c1"; then
		bad=$((bad + 1))
		echo "# device $id: neither 3.0 nor 2.0 committed"
	fi
	dev_doc "$id"
	[ "$(jq -r .fw_version <<<"$BODY")" = "$want" ] || {
		bad=$((bad + 1))
		echo "# device $id: fw_version $(jq -r .fw_version <<<"$BODY"), want $want"
	}
done
assert_eq "$bad" 0 "every device of c runs the release its rows say"
sup=$(sim_field c .updates.superseded)
echo "# fleet-sim c: $(jq -c .updates "$T/sim-c.json")"
check "fleet-sim c superseded queued 2.0 updates for 3.0" test "$sup" -ge 1
assert_eq "$(grep -c 'superseded by a newer offer' "$T/sim-c.log")" "$sup" \
	"each supersede was reported once"
assert_eq "$(awk '$2 == "superseded" || $2 == "committed"' "$T/rows-c1" | wc -l)" \
	"$NC" "2.0: every row committed or superseded by 3.0"
check "2.0: no more rows superseded than 3.0 has" test \
	"$(awk '$2 == "superseded"' "$T/rows-c1" | wc -l)" -le "$(wc -l <"$T/rows-c2")"

# ---- memory: idle devices hold nothing of the update ----------------------------
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
echo "# fleet-sim RSS after the updates: a $(rss "$SIM_A") KiB, b $(rss "$SIM_B") KiB"

kill -TERM "$SIM_A" "$SIM_B" "$SIM_C"
check "fleet-sim a exits on SIGTERM" wait_for "sim a exits" 20 not kill -0 "$SIM_A"
check "fleet-sim b exits on SIGTERM" wait_for "sim b exits" 20 not kill -0 "$SIM_B"
check "fleet-sim c exits on SIGTERM" wait_for "sim c exits" 20 not kill -0 "$SIM_C"
harness_done
