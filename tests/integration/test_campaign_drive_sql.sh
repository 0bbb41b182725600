#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The campaign driver's half of the store (db/campaign_drive.c) driven by
# real fleetd workers over rows written with psql, without the API or any
# device: what the driver writes is checked against an independent
# computation (ranks with sha256sum) and against the contract's mapping
# (docs/internals/campaigns.md). The end-to-end campaigns with fleet-sim
# and agents are test_campaigns*.sh.
# - one worker drives: pg_stat_activity names it, it is a fleetd-net
#   process, and after kill -9 another takes over; nothing is admitted
#   twice;
# - firmware: phase 0 of 25% admits the lowest ranks; a device of another
#   model is excluded (hardware), one running the version is succeeded
#   (already-running), one installing another deployment's release waits
#   and is admitted once that finishes, one offered another release has
#   that row superseded; the campaign's deployment names the campaign;
# - sync maps every delivery state (offered, downloading, committed,
#   failed, refused, rolled_back, superseded) and the health window
#   (silent when gone quiet after success, succeeded again when back);
#   the offer of a device a new selector excluded is withdrawn;
# - abort cancels the offers not installing yet, once (abort_done);
# - config: the devices get the profile version pinned with their
#   overrides kept, their previous assignment remembered, one change row;
#   applied / failed reports map (a success stays when the device is
#   changed afterwards); abort gives every device its previous
#   assignment back (or none);
# - rotation: a pending rotation per device (an operator's pending one
#   reused); completion maps; exclusion and abort withdraw only the
#   campaign's own pending ones.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

harness_init
pki_init
fleetd_write_config 2
echo "campaign_interval_ms = 200" >>"$T/fleetd.conf"
fleetd_start

uuid() { cat /proc/sys/kernel/random/uuid; }
rank() { printf '%s:%s' "$1" "$2" | sha256sum | cut -c1-16; }
notify() { psql_q "NOTIFY fleet_campaign, 'test'" >/dev/null; }
q_is() { [ "$(psql_q "$1")" = "$2" ]; }
driver_pid() {
	psql_q "SELECT substring(application_name FROM 'pid=([0-9]+)') FROM \
pg_stat_activity WHERE datname = current_database() AND \
application_name LIKE 'fleetd campaign driver pid=%'"
}
one_driver() { [ "$(driver_pid | grep -c .)" = 1 ]; }

# ---- one driver ---------------------------------------------------------
wait_for "a worker holds the campaign driver lock" 20 one_driver
DRV=$(driver_pid)
case "$(cat "/proc/$DRV/comm" 2>/dev/null)" in
fleetd-net*) ok "the driver is a net worker (pid $DRV)" ;;
*) fail "the driver pid $DRV is not a net worker" ;;
esac

# ---- firmware -----------------------------------------------------------
F=$(uuid)
ART=$(uuid)
OTHER_DEP=$(uuid)
# 40 devices site=a; their order by rank decides who is who below.
: >"$T/ranks"
for i in $(seq 1 40); do
	id=$(uuid)
	echo "$(rank "$F" "$id") $id" >>"$T/ranks"
done
LC_ALL=C sort "$T/ranks" >"$T/ranks.sorted"
mapfile -t BYRANK < <(cut -d' ' -f2 "$T/ranks.sorted")
ids_sql() { printf "'%s'," "$@" | sed 's/,$//'; }
psql_q "INSERT INTO devices (id, labels, model, inventory) SELECT \
unnest(ARRAY[$(ids_sql "${BYRANK[@]}")]::uuid[]), '{\"site\": \"a\"}', \
'm1', '{\"fw_version_num\": 1}'" >/dev/null
M2A=${BYRANK[0]} M2B=${BYRANK[1]} RUNNING=${BYRANK[2]} BUSY=${BYRANK[3]}
SUPER=${BYRANK[4]}
psql_q "UPDATE devices SET model = 'm2' WHERE id IN ('$M2A', '$M2B');
UPDATE devices SET inventory = '{\"fw_version_num\": 9}' WHERE id = '$RUNNING';
INSERT INTO artifact_blobs (sha256, size, chunk_size, complete) VALUES
 (repeat('b', 64), 10, 10, true);
INSERT INTO artifacts (id, sha256, name, version, version_int, hw, installer,
 size, expires_at, envelope, manifest, created_by) VALUES
 ('$ART', repeat('b', 64), 'fw', '2.0', 2, '{m1}', 'single-file', 10,
  now() + interval '30 days', '{}', '{}', 'test');
INSERT INTO deployments (id, artifact_id, created_by) VALUES
 ('$OTHER_DEP', '$ART', 'operator');
INSERT INTO deployment_devices (deployment_id, device_id, state) VALUES
 ('$OTHER_DEP', '$BUSY', 'installing'), ('$OTHER_DEP', '$SUPER', 'offered')" \
	>/dev/null
# Never released further, never paused: the test moves the rows.
psql_q "INSERT INTO campaigns (id, name, kind, status, selector, artifact_id,
 definition, started_at, phase_started_at, created_by) VALUES ('$F', 'fw',
 'firmware', 'running', 'site=a', '$ART', '{\"phases\": [25, 100], \"gate\":
 {\"min_success\": 1, \"max_failure\": 1}}', now(), now(), 'test')" >/dev/null
notify
admitted() { psql_q "SELECT count(*) FROM campaign_devices WHERE campaign_id = '$F'"; }
wait_for "phase 0 admitted but the busy device" 20 q_is "SELECT count(*) \
FROM campaign_devices WHERE campaign_id = '$F'" 9
sleep 1 # a few more passes: still nothing more
assert_eq "$(admitted)" 9 "25% of 40 is 10 devices, one of them busy installing"
assert_eq "$(psql_q "SELECT string_agg(device_id::text, ' ' ORDER BY rank COLLATE \"C\") \
FROM campaign_devices WHERE campaign_id = '$F'")" \
	"$(printf '%s\n' "${BYRANK[@]:0:10}" | grep -v "$BUSY" | paste -sd' ')" \
	"the admitted devices are the lowest ranks (sha256sum)"
assert_eq "$(psql_q "SELECT count(*) FROM campaign_devices WHERE campaign_id = '$F' \
AND rank <> substr(encode(sha256(convert_to('$F:' || device_id::text, 'UTF8')), 'hex'), 1, 16)")" \
	0 "each row keeps its rank"
assert_eq "$(psql_q "SELECT state || ':' || coalesce(reason, '') FROM campaign_devices \
WHERE campaign_id = '$F' AND device_id IN ('$M2A', '$M2B', '$RUNNING') ORDER BY rank COLLATE \"C\"" | paste -sd' ')" \
	"excluded:hardware excluded:hardware succeeded:already-running" \
	"other model excluded, a device running the version succeeded"
DEP=$(psql_q "SELECT deployment_id FROM campaigns WHERE id = '$F'")
assert_eq "$(psql_q "SELECT campaign_id || ' ' || created_by || ' ' || status \
FROM deployments WHERE id = '$DEP'")" "$F campaign:$F active" \
	"the campaign's deployment names it"
assert_eq "$(psql_q "SELECT count(*) FROM deployment_devices WHERE deployment_id = '$DEP' \
AND state = 'pending'")" 6 "a pending offer per offered device"
assert_eq "$(psql_q "SELECT state || ':' || reason FROM deployment_devices WHERE \
deployment_id = '$OTHER_DEP' AND device_id = '$SUPER'")" "superseded:superseded" \
	"another deployment's offer not installing yet is superseded"
psql_q "UPDATE deployment_devices SET state = 'committed' WHERE \
deployment_id = '$OTHER_DEP' AND device_id = '$BUSY'" >/dev/null
notify
wait_for "the busy device admitted once its install finished" 10 \
	q_is "SELECT count(*) FROM campaign_devices WHERE campaign_id = '$F'" 10
assert_eq "$(psql_q "SELECT phase FROM campaign_devices WHERE campaign_id = '$F' \
AND device_id = '$BUSY'")" 0 "at its rank's phase"

# sync: one offered device per delivery state
mapfile -t OFFERED < <(psql_q "SELECT device_id FROM deployment_devices WHERE \
deployment_id = '$DEP' ORDER BY device_id")
STATES=(offered downloading committed failed refused rolled_back superseded)
for i in "${!STATES[@]}"; do
	psql_q "UPDATE deployment_devices SET state = '${STATES[$i]}', reason = \
CASE WHEN '${STATES[$i]}' = 'failed' THEN 'install' END, error = CASE WHEN \
'${STATES[$i]}' = 'refused' THEN 'signature' END WHERE deployment_id = '$DEP' \
AND device_id = '${OFFERED[$i]}'" >/dev/null
done
EXPECT="offered: in_progress: succeeded: failed:install failed:signature \
rolled_back:rolled_back failed:superseded"
mapped() {
	local out="" i
	for i in "${!STATES[@]}"; do
		out="$out $(psql_q "SELECT state || ':' || coalesce(reason, '') FROM \
campaign_devices WHERE campaign_id = '$F' AND device_id = '${OFFERED[$i]}'")"
	done
	echo "${out# }"
}
mapped_is() { [ "$(mapped)" = "$1" ]; }
notify
wait_for "delivery states mapped" 10 mapped_is "$EXPECT"
assert_eq "$(mapped)" "$EXPECT" "every delivery state maps as the contract says"
assert_eq "$(psql_q "SELECT count(*) FROM campaign_devices WHERE campaign_id = '$F' \
AND state IN ('succeeded', 'failed', 'rolled_back') AND finished_at IS NULL")" 0 \
	"finished devices have finished_at"
# health: the committed device has no session; seen a moment ago, it may
# be reconnecting (not silent); quiet for over two heartbeat timeouts
# (6 s here), it is silent
OK_DEV=${OFFERED[2]}
psql_q "UPDATE devices SET last_seen = now() - interval '3 seconds' WHERE \
id = '$OK_DEV'" >/dev/null
notify
sleep 1
assert_eq "$(psql_q "SELECT state FROM campaign_devices WHERE campaign_id = \
'$F' AND device_id = '$OK_DEV'")" succeeded "a device that may be reconnecting is not silent"
psql_q "UPDATE devices SET last_seen = now() - interval '13 seconds' WHERE \
id = '$OK_DEV'" >/dev/null
notify
wait_for "silent after success" 10 q_is "SELECT state FROM campaign_devices \
WHERE campaign_id = '$F' AND device_id = '$OK_DEV'" silent
ok "a device gone quiet within the health window is silent"
psql_q "INSERT INTO workers (id, host, pid, slot) VALUES ('test-w', 'x', 1, 99);
INSERT INTO device_sessions (device_id, worker_id, cert_serial) VALUES
 ('$OK_DEV', 'test-w', 'AA')" >/dev/null
notify
wait_for "back online" 10 q_is "SELECT state FROM campaign_devices \
WHERE campaign_id = '$F' AND device_id = '$OK_DEV'" succeeded
ok "a silent device back online is succeeded again"
psql_q "DELETE FROM device_sessions WHERE worker_id = 'test-w';
DELETE FROM workers WHERE id = 'test-w'" >/dev/null

# a device a resume's new selector excluded: its offer is withdrawn
psql_q "UPDATE campaign_devices SET state = 'excluded', reason = 'selector' \
WHERE campaign_id = '$F' AND device_id = '${OFFERED[0]}'" >/dev/null
notify
wait_for "the excluded device's offer withdrawn" 10 q_is "SELECT state || ':' || \
reason FROM deployment_devices WHERE deployment_id = '$DEP' AND device_id = \
'${OFFERED[0]}'" superseded:excluded
ok "an offer to a device the selector no longer matches is withdrawn"

# the driver killed: another takes over; nothing admitted twice
kill -KILL "$DRV"
wait_for "another driver" 20 q_is "SELECT count(*) FROM pg_stat_activity WHERE \
datname = current_database() AND application_name LIKE 'fleetd campaign driver pid=%' AND application_name <> \
'fleetd campaign driver pid=$DRV'" 1
NEW=$(driver_pid)
check "a new driver after kill -9 ($DRV -> $NEW)" [ "$NEW" != "$DRV" ]
psql_q "INSERT INTO devices (id, labels, model) VALUES ('$(uuid)', \
'{\"site\": \"b\"}', 'm1')" >/dev/null # a pass over a changed fleet
notify
sleep 1
assert_eq "$(admitted) $(psql_q "SELECT count(*) FROM deployment_devices WHERE \
deployment_id = '$DEP'")" "10 7" "the new driver admits nobody twice"

# abort: the offers not installing yet are cancelled, once
psql_q "UPDATE campaigns SET status = 'aborted', finished_at = now(), revision \
= revision + 1 WHERE id = '$F'" >/dev/null
notify
wait_for "abort effects done" 10 q_is "SELECT abort_done FROM campaigns WHERE id = '$F'" t
assert_eq "$(psql_q "SELECT count(*) FROM deployment_devices WHERE deployment_id = \
'$DEP' AND reason = 'cancelled'") $(psql_q "SELECT status FROM deployments WHERE \
id = '$DEP'")" "1 cancelled" "the downloading offer cancelled, the deployment too"
assert_eq "$(psql_q "SELECT count(*) FROM campaign_events WHERE campaign_id = '$F' \
AND kind = 'cancelled_offers'")" 1 "one cancelled_offers event"

# ---- config -------------------------------------------------------------
C=$(uuid)
P=$(uuid)
mapfile -t CD < <(for i in 1 2 3 4; do uuid; done)
D1='{"mode":"eco","temp":20}'
D2='{"mode":"comfort","temp":21}'
psql_q "INSERT INTO devices (id, labels, model) SELECT unnest(ARRAY[$(ids_sql \
"${CD[@]}")]::uuid[]), '{\"site\": \"c\"}', 'm1';
INSERT INTO config_profiles (id, name, latest_version, created_by) VALUES
 ('$P', 'hvac', 2, 'test');
INSERT INTO config_versions (profile_id, version, document, sha256, created_by)
 VALUES ('$P', 1, '$D1', encode(sha256('$D1'), 'hex'), 'test'),
 ('$P', 2, '$D2', encode(sha256('$D2'), 'hex'), 'test');
INSERT INTO device_config (device_id, profile_id, pinned_version, overrides,
 desired_document, desired_sha256, desired_generation) VALUES
 ('${CD[0]}', '$P', 1, '{\"temp\":18}', '{\"mode\":\"eco\",\"temp\":18}',
  encode(sha256('{\"mode\":\"eco\",\"temp\":18}'), 'hex'), 3),
 ('${CD[1]}', '$P', NULL, NULL, '$D2', encode(sha256('$D2'), 'hex'), 1)" \
	>/dev/null
psql_q "INSERT INTO campaigns (id, name, kind, status, selector, profile_id,
 profile_version, definition, started_at, phase_started_at, created_by) VALUES
 ('$C', 'cfg', 'config', 'running', 'site=c', '$P', 1, '{\"phases\": [100],
 \"gate\": {\"min_success\": 1, \"max_failure\": 1}}', now(), now(), 'test')" \
	>/dev/null
notify
wait_for "config campaign admitted" 10 q_is "SELECT count(*) FROM \
campaign_devices WHERE campaign_id = '$C'" 4
cfg() {
	psql_q "SELECT coalesce(pinned_version::text, '-') || ' ' || \
coalesce(desired_document, '-') || ' ' || desired_generation FROM device_config \
WHERE device_id = '$1'"
}
assert_eq "$(cfg "${CD[0]}")" '1 {"mode":"eco","temp":18} 3' \
	"a device already on the version keeps its document and generation"
assert_eq "$(cfg "${CD[1]}")" "1 $D1 2" "a follower of latest is pinned to the campaign's version"
assert_eq "$(cfg "${CD[2]}")" "1 $D1 1" "a device without configuration gets it"
assert_eq "$(psql_q "SELECT coalesce(prev_pinned_version::text, '-') || ':' || \
coalesce(prev_overrides, '-') || ':' || generation FROM campaign_devices WHERE \
campaign_id = '$C' ORDER BY device_id = '${CD[0]}' DESC, device_id = '${CD[1]}' \
DESC, device_id = '${CD[2]}' DESC, device_id" | paste -sd' ')" \
	'1:{"temp":18}:3 -:-:2 -:-:1 -:-:1' "previous assignments and generations remembered"
CHG=$(psql_q "SELECT id FROM config_changes WHERE source ->> 'campaign' = '$C'")
assert_eq "$(psql_q "SELECT kind || ' ' || matched || ' ' || changed FROM \
config_changes WHERE id = '$CHG'") $(psql_q "SELECT count(*) FROM \
config_change_devices WHERE change_id = '$CHG'")" "clone 4 3 4" "one change row for the batch"
psql_q "INSERT INTO device_config_reported (device_id, generation, sha256, status,
 reason) VALUES ('${CD[1]}', 2, encode(sha256('$D1'), 'hex'), 'applied', NULL),
 ('${CD[2]}', 1, NULL, 'failed', 'hook exited 3'),
 ('${CD[3]}', 0, NULL, 'failed', 'older')" >/dev/null
notify
wait_for "config reports mapped" 10 q_is "SELECT string_agg(state || ':' || \
coalesce(reason, ''), ' ' ORDER BY device_id = '${CD[1]}' DESC, device_id = \
'${CD[2]}' DESC) FROM campaign_devices WHERE campaign_id = '$C' AND device_id \
<> '${CD[0]}'" "succeeded: failed:hook exited 3 offered:"
ok "applied with the desired hash succeeds, failed fails, an older report does not count"
# someone else's later change (as a set would make it) does not undo it
psql_q "UPDATE device_config SET desired_document = '$D2', desired_sha256 = \
encode(sha256('$D2'), 'hex'), desired_generation = 3 WHERE device_id = '${CD[1]}'" >/dev/null
notify
sleep 1
assert_eq "$(psql_q "SELECT state FROM campaign_devices WHERE campaign_id = '$C' \
AND device_id = '${CD[1]}'")" succeeded "a success stays when the device is changed afterwards"
psql_q "UPDATE device_config SET desired_document = '$D1', desired_sha256 = \
encode(sha256('$D1'), 'hex'), desired_generation = 2 WHERE device_id = '${CD[1]}'" >/dev/null
# excluded by a new selector after the campaign changed it: reverted too
psql_q "UPDATE campaign_devices SET state = 'excluded', reason = 'selector' \
WHERE campaign_id = '$C' AND device_id = '${CD[3]}'" >/dev/null
psql_q "UPDATE campaigns SET status = 'aborted', revision = revision + 1 WHERE \
id = '$C'" >/dev/null
notify
wait_for "config abort done" 10 q_is "SELECT abort_done FROM campaigns WHERE id = '$C'" t
assert_eq "$(cfg "${CD[1]}")" "- $D2 3" "the follower of latest follows latest again"
assert_eq "$(cfg "${CD[2]}") $(cfg "${CD[3]}")" "- - 2 - - 2" \
	"devices that had no configuration (one excluded since) have none again"
assert_eq "$(cfg "${CD[0]}")" '1 {"mode":"eco","temp":18} 3' "an unchanged device stays"
assert_eq "$(psql_q "SELECT count(*) FROM campaign_devices WHERE campaign_id = \
'$C' AND state = 'reverted'")" 4 "every device reverted"

# ---- rotation -----------------------------------------------------------
R=$(uuid)
OPROT=$(uuid)
mapfile -t RD < <(for i in 1 2 3; do uuid; done)
psql_q "INSERT INTO devices (id, labels, model) SELECT unnest(ARRAY[$(ids_sql \
"${RD[@]}")]::uuid[]), '{\"site\": \"r\"}', 'm1';
INSERT INTO cert_rotations (id, device_id, reason, requested_by) VALUES
 ('$OPROT', '${RD[0]}', 'operator', 'ops')" >/dev/null
psql_q "INSERT INTO campaigns (id, name, kind, status, selector, definition,
 started_at, phase_started_at, created_by) VALUES ('$R', 'rot', 'rotation',
 'running', 'site=r', '{\"phases\": [100], \"gate\": {\"min_success\": 1,
 \"max_failure\": 1}}', now(), now(), 'test')" >/dev/null
notify
wait_for "rotation campaign admitted" 10 q_is "SELECT count(*) FROM \
campaign_devices WHERE campaign_id = '$R'" 3
assert_eq "$(psql_q "SELECT count(*) FROM cert_rotations WHERE reason = \
'campaign' AND requested_by = 'campaign:$R'") $(psql_q "SELECT rotation_id FROM \
campaign_devices WHERE campaign_id = '$R' AND device_id = '${RD[0]}'")" \
	"2 $OPROT" "a rotation per device, an operator's pending one reused"
psql_q "UPDATE cert_rotations SET completed_at = now() WHERE device_id = '${RD[1]}'" >/dev/null
notify
wait_for "completed rotation maps" 10 q_is "SELECT state FROM campaign_devices \
WHERE campaign_id = '$R' AND device_id = '${RD[1]}'" succeeded
ok "a completed rotation is succeeded"
psql_q "UPDATE campaign_devices SET state = 'excluded', reason = 'selector' \
WHERE campaign_id = '$R' AND device_id = '${RD[2]}'" >/dev/null
notify
wait_for "the excluded device's rotation withdrawn" 10 q_is "SELECT count(*) \
FROM cert_rotations WHERE device_id = '${RD[2]}'" 0
ok "a pending rotation of a device the selector no longer matches is withdrawn"
psql_q "UPDATE campaigns SET status = 'aborted', revision = revision + 1 WHERE \
id = '$R'" >/dev/null
notify
wait_for "rotation abort done" 10 q_is "SELECT abort_done FROM campaigns WHERE id = '$R'" t
assert_eq "$(psql_q "SELECT string_agg(reason, ' ' ORDER BY reason) FROM \
cert_rotations WHERE device_id IN ($(ids_sql "${RD[@]}"))")" "campaign operator" \
	"the campaign's pending rotation withdrawn, the completed and the operator's kept"

fleetd_stop
if grep -q "postgresql query failed" "$T/fleetd.log"; then
	fail "a statement failed: $(grep -m 3 "postgresql query failed" "$T/fleetd.log")"
else
	ok "no statement failed"
fi
harness_done
