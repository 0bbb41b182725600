#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The selector key "online" read from the devices rows (migration 0021,
# docs/internals/device-list.md): devices.in_session and session_seen
# must never disagree with device_sessions, whoever writes the session
# rows: fleetd's opens, ticks and closes for real devices (fleet-sim), a
# net worker killed with SIGKILL (its devices reconnect), the sweep of a
# dead worker's sessions (ON DELETE CASCADE), and SQL. After each step,
# no device row disagrees with its session row, and the devices the API
# lists for "online", "!online" and "online" with other terms are exactly
# those psql finds from device_sessions (the oracle), including sessions
# whose session_seen lags within the 60-second band (the lookup path).
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

harness_init
pki_init
fleetd_start 2

TOKEN=$(admin_token operator)
enrollment_token 20 t-online

enc() { jq -rn --arg s "$1" '$s | @uri'; }
# Device rows whose columns disagree with their session row.
disagreeing() {
	psql_q "SELECT count(*) FROM devices d
		LEFT JOIN device_sessions s ON s.device_id = d.id
		WHERE d.in_session <> (s.device_id IS NOT NULL)
		   OR (s.device_id IS NULL AND d.session_seen IS NOT NULL)
		   OR (s.device_id IS NOT NULL AND d.session_seen IS DISTINCT FROM
		       date_bin('60 seconds', s.last_seen, timestamptz 'epoch'))"
}
# listed SELECTOR: the ids the API lists (one page of 200 is all of them).
listed() {
	api GET "/api/v1/devices?selector=$(enc "$1")&limit=200"
	[ "$STATUS" = 200 ] || echo "status $STATUS"
	jq -r '.items[].id' <<<"$BODY" | sort
}
ONLINE="coalesce(s.last_seen > now() - interval '6 seconds', false)"
oracle() {
	psql_q "SELECT d.id FROM devices d LEFT JOIN device_sessions s ON s.device_id = d.id
		WHERE d.status = 'active' AND ($1) ORDER BY 1"
}
# agree STEP: the columns agree with the sessions, and the selectors list
# what psql finds.
agree() {
	assert_eq "$(disagreeing)" 0 "$1: every device row agrees with its session row"
	assert_eq "$(listed online)" "$(oracle "$ONLINE")" "$1: 'online' lists the devices psql finds"
	assert_eq "$(listed '!online')" "$(oracle "NOT $ONLINE")" "$1: '!online' too"
	assert_eq "$(listed 'online,model=sim-x')" \
		"$(oracle "$ONLINE AND d.model = 'sim-x'")" "$1: 'online,model=sim-x' too"
}

# ---- real devices: opens and ticks -----------------------------------------
spawn sim fleet-sim --count 6 --token "$ENROLL" --api "$FLEET_SERVER" \
	--ca "$FLEET_CA" --state "$T/sim" --status-file "$T/sim.json" \
	--model sim-x --log-level info
SIM_PID=$LAST_PID
sim_online_is() { [ "$(jq -r .online "$T/sim.json" 2>/dev/null || echo 0)" = "$1" ]; }
check "fleet-sim: 6 devices online" wait_for "6 fleet-sim devices online" 30 sim_online_is 6
# Two presence ticks later (heartbeat 2 s): the sessions were rewritten.
sleep 4
assert_eq "$(psql_q "SELECT count(*) FROM devices WHERE in_session")" 6 \
	"the 6 connected devices are in_session"
agree "6 devices connected"

# ---- SQL: sessions of every age, the band, a last_seen moved back -----------
psql_q "INSERT INTO devices (id, model)
	SELECT ('00000000-0000-4000-8000-00000000000' || i)::uuid, 'sim-x'
	FROM generate_series(1, 6) i" >/dev/null
psql_q "INSERT INTO workers (id, host, pid, slot, heartbeat_at)
	VALUES ('online-test', 'test', 1, 0, now() + interval '1 day')" >/dev/null
# 1 fresh, 2 just stale (in the band), 3 stale beyond the band, 4 fresh
# but its session_seen (the minute's start) past the timeout: online only
# through the session lookup, 5 fresh then moved back (stale), 6 no
# session. Device 4 needs a moment 10 to 40 s into a minute: its last_seen
# is then the minute's end (19 to 49 s ahead) and its minute began 10 to
# 40 s ago.
mid_minute() { [ "$(psql_q "SELECT extract(second FROM now()) BETWEEN 10 AND 40")" = t ]; }
check "a moment 10 to 40 s into a minute" wait_for "10 to 40 s into a minute" 40 mid_minute
psql_q "INSERT INTO device_sessions (device_id, worker_id, cert_serial, last_seen)
	VALUES ('00000000-0000-4000-8000-000000000001', 'online-test', 'X', now() + interval '1 hour'),
	       ('00000000-0000-4000-8000-000000000002', 'online-test', 'X', now() - interval '20 seconds'),
	       ('00000000-0000-4000-8000-000000000003', 'online-test', 'X', now() - interval '5 minutes'),
	       ('00000000-0000-4000-8000-000000000004', 'online-test', 'X',
	        date_bin('60 seconds', now(), timestamptz 'epoch') + interval '59 seconds'),
	       ('00000000-0000-4000-8000-000000000005', 'online-test', 'X', now() + interval '1 hour')" >/dev/null
psql_q "UPDATE device_sessions SET last_seen = now() - interval '2 minutes'
	WHERE device_id = '00000000-0000-4000-8000-000000000005'" >/dev/null
assert_eq "$(psql_q "SELECT session_seen < now() - interval '6 seconds' FROM devices
	WHERE id = '00000000-0000-4000-8000-000000000004'")" t \
	"device 4: session_seen lags (in the band) while its session is fresh"
agree "sessions written with SQL"
for i in 1 4; do
	api GET "/api/v1/devices/00000000-0000-4000-8000-00000000000$i"
	assert_eq "$(jq -r .online <<<"$BODY")" true "device $i is online in its own answer too"
done
# Device 4 would cross the boundary during the steps below: its session
# closes now (a delete with SQL).
psql_q "DELETE FROM device_sessions WHERE device_id = '00000000-0000-4000-8000-000000000004'" >/dev/null
agree "a session deleted with SQL"

# ---- a net worker killed: its devices reconnect -----------------------------
NET1=$(fleetd_child fleetd-net1)
kill -KILL "$NET1"
check "the supervisor restarts net1" fleetd_new_child fleetd-net1 "$NET1" 20
check "fleet-sim devices back online" wait_for "6 fleet-sim devices online again" 30 sim_online_is 6
sleep 4
agree "after SIGKILL of net1"

# ---- the sweep: a dead worker's sessions go with it (cascade) ---------------
psql_q "UPDATE workers SET heartbeat_at = now() - interval '1 hour' WHERE id = 'online-test'" >/dev/null
gone() { [ "$(psql_q "SELECT count(*) FROM workers WHERE id = 'online-test'")" = 0 ]; }
check "the live workers sweep the dead worker" wait_for "worker online-test swept" 30 gone
assert_eq "$(psql_q "SELECT count(*) FROM devices WHERE in_session
	AND id::text LIKE '00000000-0000-4000-8000-%'")" 0 \
	"the swept sessions' devices are no longer in_session"
agree "after the sweep"

# ---- closes: fleet-sim stopped ------------------------------------------------
kill -TERM "$SIM_PID"
wait_for "fleet-sim exits" 15 not kill -0 "$SIM_PID" || kill -KILL "$SIM_PID"
none_left() { [ "$(psql_q "SELECT count(*) FROM device_sessions")" = 0 ]; }
check "the sessions closed" wait_for "no session row left" 30 none_left
assert_eq "$(psql_q "SELECT count(*) FROM devices WHERE in_session OR session_seen IS NOT NULL")" 0 \
	"no device is in_session once every session closed"
agree "after the closes"

harness_done
