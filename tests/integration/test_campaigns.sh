#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Firmware campaigns with fleet-sim (issue 12 acceptance,
# docs/internals/campaigns.md): real PostgreSQL, fleetd (2 workers, the
# driver looking every 200 ms), fleet-sim processes per cohort on
# loopback, driven through the API with curl and jq. Expected cohorts are
# computed here from the contract's rank (SHA-256 of "<campaign>:<device>"),
# not read from fleetd.
#
# - 40 devices (model sim-ok), phases 10,25,50,100, soak only on phase 2:
#   phases 1 and 2 are the 4 and 10 devices of lowest rank; a device
#   enrolled after phase 2 was released (a new fleet-sim process, same
#   labels) is admitted in the phase of its position among the 41 and no
#   earlier than that phase's release; the worker holding the driver lock
#   (pg_locks + pg_stat_activity.application_name) is killed with kill -9
#   once phase 3 is released: another pid drives, the campaign completes,
#   and the counts are exact: 41 rows, one deployment, one deployment row
#   per device, every device succeeded and running 2.0, the document's
#   totals equal the rows;
# - a silent-after-update cohort (--update-silent 1.0), phases 40,100 with
#   a soak on phase 1: the health gate pauses it in phase 1 with both
#   devices silent, phase 2 never admitted;
# - 41 good devices plus a second fleet-sim process of another model
#   (17 devices, --update-fail 1.0, 29 %): the campaign pauses by itself
#   in the first phase whose failure share is above 0.1 (each phase's gate
#   judged once all its devices finished: min_finished = its size), with
#   exactly that phase's failed and succeeded counts, an event naming the
#   phase and the share, and the audit row; resumed with a selector that
#   excludes the model, it completes: the bad devices excluded, all 41
#   good ones succeeded.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/campaigns.sh"

require_tools jq

harness_init
pki_init
fleetd_write_config 2
echo "campaign_interval_ms = 200" >>"$T/fleetd.conf"
fleetd_start 2
TOKEN=$(admin_token operator)
release_keys

# enroll_token SITE USES: prints an enrollment token for USES devices
# labelled site=SITE.
enroll_token() {
	api POST /api/v1/tokens -H 'Content-Type: application/json' \
		--data "{\"uses\": $2, \"expires_in\": \"1h\", \"labels\": {\"site\": \"$1\"}}"
	[ "$STATUS" = 201 ] || {
		fail "enrollment token for $1 (HTTP $STATUS)"
		return 1
	}
	jq -r .token <<<"$BODY"
}
TOK_CAMP=$(enroll_token camp 70)
TOK_QUIET=$(enroll_token quiet 5)

# sim NAME COUNT TOKEN MODEL [fleet-sim options...]: a fleet-sim process
# with its own state directory and status file; SIM_PID[NAME].
declare -A SIM_PID SIM_COUNT
sim() {
	local name=$1 count=$2 tok=$3 model=$4
	shift 4
	spawn "sim-$name" fleet-sim --count "$count" --token "$tok" \
		--api "$FLEET_SERVER" --ca "$FLEET_CA" --state "$T/sim-$name" \
		--model "$model" --fw 1.0 --threads 4 --start-rate 50 \
		--status-file "$T/sim-$name.status" \
		"${SIM_KEY_ARGS[@]}" --update-threshold 2 "$@"
	SIM_PID[$name]=$LAST_PID
	SIM_COUNT[$name]=$count
}
sim_online() {
	[ "$(jq -r .online "$T/sim-$1.status" 2>/dev/null)" = "${SIM_COUNT[$1]}" ]
}
# The device ids of a fleet-sim process (from its devices' identities).
sim_ids() {
	local f
	for f in "$T/sim-$1"/*/identity.json; do
		jq -r .device_id "$f"
	done
}

sim ok 40 "$TOK_CAMP" sim-ok
sim bad 17 "$TOK_CAMP" sim-bad --update-fail 1.0
sim quiet 5 "$TOK_QUIET" sim-quiet --update-silent 1.0
for s in ok bad quiet; do
	check "fleet-sim $s: all ${SIM_COUNT[$s]} devices online" \
		wait_for "fleet-sim $s online" 90 sim_online "$s"
done
mapfile -t OK_IDS < <(sim_ids ok)
mapfile -t BAD_IDS < <(sim_ids bad)
mapfile -t QUIET_IDS < <(sim_ids quiet)
assert_eq "${#OK_IDS[@]} ${#BAD_IDS[@]} ${#QUIET_IDS[@]}" "40 17 5" "device identities on disk"

release_make fw 2.0 200 sim-ok,sim-bad,sim-quiet dir-ab 4096
ART2=$ART
release_make fw 3.0 300 sim-ok,sim-bad dir-ab 4096
ART3=$ART

# ==== silent after the update: the health gate pauses ======================
camp_create "{\"name\": \"quiet\", \"kind\": \"firmware\", \"artifact_id\": \"$ART2\",
	\"selector\": \"site=quiet\", \"phases\": [40, 100],
	\"gate\": {\"max_failure\": 0.1, \"min_finished\": 1, \"health_window_seconds\": 120},
	\"gates\": [{\"soak_seconds\": 120}, {}], \"start\": true}"
QUIET=$CAMP

# ==== 40 devices over 4 phases, a late joiner, the driver killed ==========
camp_create "{\"name\": \"fw 2.0 ok\", \"kind\": \"firmware\", \"artifact_id\": \"$ART2\",
	\"selector\": \"site=camp,model=sim-ok\", \"phases\": [10, 25, 50, 100],
	\"gate\": {\"min_success\": 1.0}, \"gates\": [{}, {\"soak_seconds\": 15}, {}, {}],
	\"start\": true}"
C1=$CAMP
check "C1: phase 2 released" wait_for "C1 phase 2" 60 camp_phase_released "$C1" 2
ten_admitted() {
	[ "$(psql_q "SELECT count(*) FROM campaign_devices WHERE campaign_id = '$C1'")" = 10 ]
}
check "C1: 10 devices admitted in phases 1 and 2" wait_for "C1 10 admitted" 10 ten_admitted

# Phases 1 and 2 were released to the 40: the 4 and 10 of lowest rank.
admitted_in() { # CID PHASE: the admitted device ids of PHASE, sorted
	psql_q "SELECT device_id FROM campaign_devices WHERE campaign_id = '$1'
		AND phase = $2 - 1 ORDER BY 1"
}
camp_expected_phases "$C1" 40 10,25,50,100 "${OK_IDS[@]}" >"$T/c1-40.txt"
assert_eq "$(admitted_in "$C1" 1 | xargs)" \
	"$(awk '$2 == 1 { print $1 }' "$T/c1-40.txt" | sort | xargs)" \
	"C1: phase 1 = the 4 devices of lowest rank"
assert_eq "$(admitted_in "$C1" 2 | xargs)" \
	"$(awk '$2 == 2 { print $1 }' "$T/c1-40.txt" | sort | xargs)" \
	"C1: phase 2 = the next 6 by rank"

# A device enrolled now (phase 2 soaks for 15 s): same labels and model.
spawn sim-late fleet-sim --count 1 --token "$TOK_CAMP" --api "$FLEET_SERVER" \
	--ca "$FLEET_CA" --state "$T/sim-late" --model sim-ok --fw 1.0 \
	--status-file "$T/sim-late.status" "${SIM_KEY_ARGS[@]}" --update-threshold 2
SIM_PID[late]=$LAST_PID
SIM_COUNT[late]=1
check "the late device is online" wait_for "late device online" 30 sim_online late
LATE=$(sim_ids late)

# rows_per_phase CID: the campaign's counted rows (not excluded or
# reverted) per phase, as a JSON array over its 4 phases.
rows_per_phase() {
	psql_q "SELECT json_agg(coalesce(n, 0) ORDER BY p) FROM generate_series(0, 3) p
		LEFT JOIN (SELECT phase, count(*) AS n FROM campaign_devices
		WHERE campaign_id = '$1' AND state NOT IN ('excluded', 'reverted')
		GROUP BY phase) c ON c.phase = p" | tr -d ' '
}

# The driver: the backend holding the advisory lock; its application_name
# carries the worker's pid.
driver_pid() {
	psql_q "SELECT a.application_name FROM pg_locks l
		JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objid = 1718379877
		AND a.datname = current_database()
		AND a.application_name LIKE 'fleetd campaign driver%'" |
		grep -oE '[0-9]+' | tail -n 1
}
new_driver() { # OLD: a driver whose pid is not OLD holds the lock
	local p
	p=$(driver_pid)
	[ -n "$p" ] && [ "$p" != "$1" ] && kill -0 "$p" 2>/dev/null
}
check "C1: phase 3 released" wait_for "C1 phase 3" 90 camp_phase_released "$C1" 3
DRIVER=$(driver_pid)
if [ -n "$DRIVER" ] && [ "$(cat "/proc/$DRIVER/comm" 2>/dev/null)" != "" ]; then
	open=$(psql_q "SELECT count(*) FROM campaign_devices WHERE campaign_id = '$C1'
		AND state IN ('offered', 'in_progress')")
	kill -KILL "$DRIVER"
	ok "C1: the driving worker (pid $DRIVER, $(cat "/proc/$DRIVER/comm" 2>/dev/null || echo gone)) killed with kill -9 in phase 3 ($open devices open)"
	check "C1: another worker drives (a new pid holds the lock)" \
		wait_for "a new driver" 20 new_driver "$DRIVER"
	echo "# driver after the kill: pid $(driver_pid)"
else
	fail "C1: no driver found in pg_locks/pg_stat_activity (application_name 'fleetd campaign driver <pid>')"
fi
c1_settled() { camp_status_is "$C1" completed || camp_status_is "$C1" paused; }
wait_for "C1 completed or paused" 90 c1_settled || true
camp_doc "$C1"
if [ "$(jq -r .status <<<"$BODY")" = paused ]; then
	# The kill closed the sessions of the dead worker's devices; they
	# reconnect within a second or two, well inside heartbeat_timeout,
	# and must not count as silent.
	fail "C1: not paused after the kill (paused by $(jq -r .paused_by <<<"$BODY"): $(jq -r .pause_reason <<<"$BODY"))"
	api POST "/api/v1/campaigns/$C1/resume" -H 'Content-Type: application/json' \
		--data '{"reason": "test: go on after the spurious pause"}'
fi
check "C1: completed" wait_for "C1 completed" 60 camp_status_is "$C1" completed

# The late device joined at its rank among the 41.
camp_expected_phases "$C1" 41 10,25,50,100 "${OK_IDS[@]}" "$LATE" >"$T/c1-41.txt"
LATE_PHASE=$(awk -v d="$LATE" '$1 == d { print $2 }' "$T/c1-41.txt")
assert_eq "$(psql_q "SELECT phase + 1 || ' ' || state FROM campaign_devices
	WHERE campaign_id = '$C1' AND device_id = '$LATE'")" "$LATE_PHASE succeeded" \
	"C1: the late device was admitted in phase $LATE_PHASE (its position among 41) and succeeded"
assert_eq "$(psql_q "SELECT d.admitted_at >= e.at FROM campaign_devices d, campaign_events e
	WHERE d.campaign_id = '$C1' AND d.device_id = '$LATE' AND e.campaign_id = '$C1'
	AND e.kind = 'phase_released' AND e.phase = $LATE_PHASE - 1")" t \
	"C1: the late device was admitted no earlier than its phase's release"
if [ "$LATE_PHASE" -le 2 ]; then
	assert_eq "$(psql_q "SELECT d.admitted_at < e.at FROM campaign_devices d, campaign_events e
		WHERE d.campaign_id = '$C1' AND d.device_id = '$LATE' AND e.campaign_id = '$C1'
		AND e.kind = 'phase_released' AND e.phase = 2")" t \
		"C1: the late device (phase $LATE_PHASE, already released) was admitted before phase 3"
fi

# Exact counts after the kill.
camp_doc "$C1"
echo "# C1 counts at the end: $(jq -c '[.counts[] | [.phase, .devices, .pending, .succeeded]]' <<<"$BODY")"
assert_eq "$(jq -r '[.totals.succeeded, .totals.failed, .totals.offered, .totals.in_progress, .totals.pending, .phase] | join(" ")' <<<"$BODY")" \
	"41 0 0 0 0 4" "C1: the document counts 41 succeeded, nothing else, phase 4"
assert_eq "$(jq -r '[.counts[].devices] | add' <<<"$BODY")" 41 "C1: the phases hold 41 devices"
assert_eq "$(jq -c '[.counts[].devices]' <<<"$BODY")" "$(rows_per_phase "$C1")" \
	"C1: each phase counts the devices admitted in it (no pending left once every device has a row, also after the late device moved the cutoffs)"
DEP1=$(jq -r .deployment_id <<<"$BODY")
assert_eq "$(psql_q "SELECT count(*) || ' ' || count(DISTINCT device_id) || ' ' ||
	count(*) FILTER (WHERE state = 'succeeded') FROM campaign_devices
	WHERE campaign_id = '$C1'")" "41 41 41" "C1: 41 campaign rows, 41 devices, all succeeded"
assert_eq "$(psql_q "SELECT count(*) FROM deployments WHERE campaign_id = '$C1'")" 1 \
	"C1: one deployment"
assert_eq "$(psql_q "SELECT count(*) || ' ' || count(DISTINCT device_id) || ' ' ||
	count(*) FILTER (WHERE state = 'committed') || ' ' || count(offered_at)
	FROM deployment_devices WHERE deployment_id = '$DEP1'")" "41 41 41 41" \
	"C1: one deployment row per device, each offered once and committed"
assert_eq "$(psql_q "SELECT count(*) FROM (SELECT device_id FROM deployment_devices x
	JOIN deployments d ON d.id = x.deployment_id WHERE d.campaign_id = '$C1'
	GROUP BY device_id HAVING count(*) > 1) y")" 0 "C1: no device has two rows"
assert_eq "$(camp_events "$C1" phase_released) $(camp_events "$C1" completed)" "4 1" \
	"C1: each phase released once, completed once"
assert_eq "$(psql_q "SELECT count(*) FROM devices WHERE model = 'sim-ok' AND fw_version = '2.0'")" 41 \
	"C1: 41 devices run 2.0"

# ==== the silent cohort (running beside C1) ================================
check "quiet: paused by the health gate" wait_for "quiet paused" 90 camp_status_is "$QUIET" paused
two_silent() { [ "$(camp_count "$QUIET" silent 1)" = 2 ]; }
check "quiet: both devices of phase 1 silent" wait_for "2 silent" 30 two_silent
camp_doc "$QUIET"
assert_eq "$(jq -r '[.paused_by, .phase, .counts[0].silent, .counts[1].offered + .counts[1].in_progress + .counts[1].succeeded + .counts[1].failed + .counts[1].silent] | join(" ")' <<<"$BODY")" \
	"campaign-driver 1 2 0" "quiet: paused by the driver in phase 1 with 2 silent, phase 2 never offered"
assert_eq "$(psql_q "SELECT count(*) FROM campaign_devices WHERE campaign_id = '$QUIET'")" 2 \
	"quiet: only the 2 devices of phase 1 admitted"
assert_eq "$(psql_q "SELECT phase FROM campaign_events WHERE campaign_id = '$QUIET'
	AND kind = 'paused' ORDER BY id LIMIT 1")" 0 "quiet: the paused event names phase 1"
echo "# quiet pause reason: $(jq -r .pause_reason <<<"$BODY")"

# ==== 29 % install failures: pause in the right phase, resume, complete ===
ALL2=("${OK_IDS[@]}" "$LATE" "${BAD_IDS[@]}")
N2=${#ALL2[@]}
MIN_FIN=$(awk -v t="$N2" 'BEGIN { split("10,25,50,100", p, ","); prev = 0
	for (i = 1; i <= 4; i++) { c = int((t * p[i] + 99) / 100); printf "%s{\"min_finished\": %d}", (i > 1 ? ", " : ""), c - prev; prev = c } }')
camp_create "{\"name\": \"fw 3.0 all\", \"kind\": \"firmware\", \"artifact_id\": \"$ART3\",
	\"selector\": \"site=camp\", \"phases\": [10, 25, 50, 100],
	\"gate\": {\"min_success\": 0.9, \"max_failure\": 0.1}, \"gates\": [$MIN_FIN], \"start\": true}"
C2=$CAMP
printf '%s\n' "${BAD_IDS[@]}" | sort >"$T/bad.txt"
camp_expected_phases "$C2" "$N2" 10,25,50,100 "${ALL2[@]}" >"$T/c2.txt"
# Per phase: size and bad devices; the pause phase is the first whose
# share is above 0.1.
read -r PP PSIZE PBAD PADM < <(awk 'NR == FNR { bad[$1] = 1; next }
	{ n[$2]++; if ($1 in bad) b[$2]++ }
	END { adm = 0
	      for (p = 1; p <= 4; p++) { adm += b[p] + 0
		if ((b[p] + 0) * 10 > n[p]) { print p, n[p], b[p] + 0, adm; exit } }
	      print 0, 0, 0, adm }' "$T/bad.txt" "$T/c2.txt")
echo "# C2: $N2 devices, pause expected in phase $PP ($PBAD of $PSIZE failed)"
if [ "$PP" = 0 ]; then
	fail "C2: the ranks put no phase above 0.1 failures (cannot test the pause)"
else
	check "C2: paused by itself" wait_for "C2 paused" 120 camp_status_is "$C2" paused
	settled() { [ "$(camp_field "$C2" ".counts[$PP - 1] | .succeeded + .failed")" = "$PSIZE" ]; }
	wait_for "C2 phase $PP settled" 30 settled || true
	camp_doc "$C2"
	assert_eq "$(jq -r --argjson p "$PP" '[.paused_by, .phase, .counts[$p - 1].failed, .counts[$p - 1].succeeded] | join(" ")' <<<"$BODY")" \
		"campaign-driver $PP $PBAD $((PSIZE - PBAD))" \
		"C2: paused in phase $PP with $PBAD failed and $((PSIZE - PBAD)) succeeded"
	assert_eq "$(jq -r --argjson p "$PP" '[.counts[$p:][] | .offered + .in_progress + .succeeded + .failed] | add // 0' <<<"$BODY")" \
		0 "C2: nothing admitted after phase $PP"
	api GET "/api/v1/campaigns/$C2/events?limit=100"
	ev=$(jq -c '[.items[] | select(.kind == "paused")][0]' <<<"$BODY")
	echo "# C2 paused event: $ev"
	assert_eq "$(jq -r '.phase, .actor' <<<"$ev" | xargs)" "$PP campaign-driver" \
		"C2: the paused event names phase $PP and the driver"
	# The share when the gate tripped: k of the phase's devices (or of
	# those finished), k at most the phase's failures, above 10 %.
	msg=$(jq -r .message <<<"$ev")
	check "C2: the paused event's message names phase $PP" grep -q "phase $PP:" <<<"$msg"
	read -r k m pct < <(sed -nE 's/.* ([0-9]+) of ([0-9]+) (finished )?devices failed \(([0-9.]+)%.*/\1 \2 \4/p' <<<"$msg") || true
	check "C2: the paused event gives the share (${k:-?} of ${m:-?}, ${pct:-?} %: above 10 %, at most $PBAD of $PSIZE failed)" \
		awk -v k="${k:-0}" -v m="${m:-0}" -v p="${pct:-0}" -v b="$PBAD" -v n="$PSIZE" \
		'BEGIN { exit !(k >= 1 && k <= b && m >= k && m <= n && p > 10 && (p - 100 * k / m) ^ 2 < 0.01) }'
	assert_eq "$(psql_q "SELECT count(*) FROM audit_log WHERE action = 'campaign.auto_pause'
		AND target LIKE '%$C2%'")" 1 "C2: audit campaign.auto_pause"

	api POST "/api/v1/campaigns/$C2/resume" -H 'Content-Type: application/json' \
		--data '{"selector": "site=camp,model!=sim-bad", "reason": "sim-bad excluded"}'
	assert_eq "$STATUS $(jq -r .status <<<"$BODY")" "200 running" "C2: resumed with a selector without sim-bad"
	check "C2: completed" wait_for "C2 completed" 60 camp_status_is "$C2" completed
	camp_doc "$C2"
	# min_success 0.9: the last phase may complete with a few devices
	# still updating; they commit all the same.
	c2_committed() {
		[ "$(psql_q "SELECT count(*) FROM deployment_devices x JOIN campaigns c
			ON c.deployment_id = x.deployment_id WHERE c.id = '$C2'
			AND x.state = 'committed'")" = 41 ]
	}
	check "C2: 41 devices committed" wait_for "C2 41 committed" 30 c2_committed
	camp_doc "$C2"
	assert_eq "$(jq -r '[.totals.succeeded + .totals.offered + .totals.in_progress, .totals.failed, .totals.rolled_back, .totals.silent] | join(" ")' <<<"$BODY")" \
		"41 0 0 0" "C2: 41 counted (succeeded or updating), the failed ones no longer counted"
	check "C2: at least 90 % of the last phase succeeded" \
		test "$(jq -r '.counts[3] | (.succeeded * 10 >= .devices * 9)' <<<"$BODY")" = true
	echo "# C2 at the end: $(jq -c .totals <<<"$BODY")"
	assert_eq "$(jq -c '[.counts[].devices]' <<<"$BODY")" "$(rows_per_phase "$C2")" \
		"C2: each phase counts the devices admitted in it (no pending left after the excluded devices moved the cutoffs)"
	assert_eq "$(camp_count "$C2" excluded)" "$PADM" "C2: the $PADM admitted sim-bad devices excluded"
	assert_eq "$(camp_events "$C2" selector_changed)" 1 "C2: a selector_changed event"
	assert_eq "$(psql_q "SELECT count(*) FROM devices WHERE model = 'sim-ok' AND fw_version = '3.0'")" 41 \
		"C2: 41 devices run 3.0"
	assert_eq "$(psql_q "SELECT count(*) FROM devices WHERE model = 'sim-bad' AND fw_version = '3.0'")" 0 \
		"C2: no sim-bad device runs 3.0"
fi
harness_done
