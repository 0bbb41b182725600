#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Highly available PostgreSQL (issue 15, docs/ha.md): fleetd on a
# pg_auto_failover formation (a monitor, a primary and a synchronous
# secondary on loopback, deploy/ha/pg_auto_failover.sh) through a
# multi-host connection string with target_session_attrs=read-write.
# A failover in the middle of enrollments and configuration changes:
# - loses no acknowledged write (every 201 enrollment and every 200
#   configuration change is on the new primary);
# - answers what it cannot do meanwhile with 503 problem+json, never a 500;
# - fleetd recovers without a restart (the same supervisor and net worker
#   processes), /readyz is ready again;
# - devices stay or come back online, and a change made after the
#   failover reaches them.
set -euo pipefail
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

HA_CTL="$FLEET_SOURCE_DIR/deploy/ha/pg_auto_failover.sh"
HA="$T/ha"
ha_down() {
	local rc=$?
	set +e
	"$HA_CTL" down "$HA" >/dev/null 2>&1
	cp "$HA"/*.log "$T/" 2>/dev/null
	(exit "$rc")
	harness_cleanup
}
trap ha_down EXIT

mport=$(free_port)
p1=$(free_port)
p2=$(free_port)
CONNINFO=$("$HA_CTL" up "$HA" "$mport" "$p1" "$p2" 2>"$T/ha-up.log") || {
	cat "$T/ha-up.log"
	exit 1
}
ok "pg_auto_failover formation up: primary on $("$HA_CTL" primary "$HA"), synchronous secondary"
export FLEETD_DATABASE="$CONNINFO"
hq() { psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$FLEETD_DATABASE" -c "$1"; }
assert_eq "$(hq 'SHOW synchronous_standby_names' | grep -c pgautofailover)" 1 \
	"commits wait for the secondary (synchronous_standby_names)"

pki_init
fleetd migrate >"$T/migrate.log" 2>&1 || {
	cat "$T/migrate.log"
	exit 1
}
fleetd_start 2
NET1=$(fleetd_child fleetd-net1)
NET2=$(fleetd_child fleetd-net2)
TOKEN=$(admin_token admin)
JSON=(-H 'Content-Type: application/json')

enrollment_token 200 ha
spawn sim fleet-sim --count 6 --token "$ENROLL" --api "$FLEET_SERVER" \
	--ca "$FLEET_CA" --state "$T/sim" --status-file "$T/sim.json" \
	--model sim-ha --log-level info
sim_online() { jq -r .online "$T/sim.json" 2>/dev/null || echo 0; }
sim_online_is() { [ "$(sim_online)" = "$1" ]; }
wait_for "fleet-sim: 6 devices online" 60 sim_online_is 6 || true
assert_eq "$(sim_online)" 6 "6 simulated devices online"
SIM0=$(jq -r .device_id "$T/sim/0/identity.json")

# ---- writes during a failover -----------------------------------------------
# One writer enrolls devices, another changes a device's configuration; each
# records what fleetd acknowledged, and every other answer's status.
writer_enroll() {
	local i
	for ((i = 1; i <= 60; i++)); do
		if device_enroll "w$i" 2>>"$T/enroll-errors.txt"; then
			id_of "w$i" >>"$T/acked-enroll.txt"
		fi
		sleep 0.1
	done
}
writer_config() {
	local i
	for ((i = 1; i <= 60; i++)); do
		api PATCH "/api/v1/devices/$SIM0/config" "${JSON[@]}" \
			--data "{\"overrides\": {\"n\": $i}}"
		if [ "$STATUS" = 200 ]; then
			echo "$i" >>"$T/acked-config.txt"
		else
			echo "$STATUS $CTYPE" >>"$T/config-errors.txt"
		fi
		sleep 0.1
	done
}
: >"$T/acked-enroll.txt"
: >"$T/acked-config.txt"
writer_enroll &
WE=$!
writer_config &
WC=$!
wait_for "some writes acknowledged before the failover" 30 \
	test -s "$T/acked-config.txt" || true
before=$("$HA_CTL" primary "$HA")
t0=$(date +%s.%N)
"$HA_CTL" failover "$HA" >>"$T/ha-failover.log" 2>&1
t1=$(date +%s.%N)
after=$("$HA_CTL" primary "$HA")
check "the primary moved (port $before -> $after)" test "$before" != "$after"
echo "# switchover took $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
wait "$WE" "$WC"

n_enroll=$(wc -l <"$T/acked-enroll.txt")
n_config=$(wc -l <"$T/acked-config.txt")
echo "# acknowledged: $n_enroll of 60 enrollments, $n_config of 60 configuration changes"
echo "# refused meanwhile: enroll $(wc -l <"$T/enroll-errors.txt" 2>/dev/null || echo 0), config: $(sort "$T/config-errors.txt" 2>/dev/null | uniq -c | tr '\n' ';')"
check "most writes were acknowledged" test "$n_enroll" -ge 30 -a "$n_config" -ge 30

# Not one acknowledged enrollment is missing on the new primary.
ids=$(sed "s/.*/'&'/" "$T/acked-enroll.txt" | paste -sd,)
assert_eq "$(hq "SELECT count(*) FROM devices WHERE id IN ($ids)")" "$n_enroll" \
	"every acknowledged enrollment is on the new primary"
# The last acknowledged configuration change is the device's state.
last=$(tail -n 1 "$T/acked-config.txt")
assert_eq "$(hq "SELECT overrides::jsonb ->> 'n' FROM device_config WHERE device_id = '$SIM0'")" \
	"$last" "the last acknowledged configuration change is on the new primary"
# What could not be done was said with 503 problem+json, never a 500.
if [ -s "$T/config-errors.txt" ]; then
	assert_eq "$(grep -vc '^503 application/problem+json' "$T/config-errors.txt" || true)" 0 \
		"refusals during the failover are 503 problem+json"
fi
check "no enrollment answered 500" not grep -q '^enroll .*: 500' "$T/enroll-errors.txt"
if [ -s "$T/enroll-errors.txt" ]; then
	assert_eq "$(grep -Evc '^enroll w[0-9]+: (503|000) ' "$T/enroll-errors.txt" || true)" 0 \
		"refused enrollments were 503 (or cut connections)"
fi
# A refused enrollment cost no token use: the token lost exactly one use
# per device that exists (6 simulated ones and the acknowledged ones).
assert_eq "$(hq "SELECT uses_total - uses_left FROM enrollment_tokens WHERE uses_total = 200")" \
	"$((6 + n_enroll))" "no token use was lost or double-spent by the failover"

# ---- recovery without a restart --------------------------------------------
assert_eq "$(fleetd_child fleetd-net1)/$(fleetd_child fleetd-net2)" "$NET1/$NET2" \
	"the same net workers: fleetd recovered without a restart"
ready() { curl -sf --max-time 2 --cacert "$FLEET_CA" "$FLEET_SERVER/readyz" >/dev/null; }
wait_for "/readyz ready after the failover" 30 ready || true
check "/readyz ready after the failover" ready
online_now() {
	[ "$(hq "SELECT count(*) FROM device_sessions s JOIN devices d ON d.id = s.device_id
		WHERE d.model = 'sim-ha' AND s.last_seen > now() - interval '6 seconds'")" = 6 ]
}
wait_for "6 devices online on the new primary" 30 online_now || true
check "the 6 devices are online (fresh sessions on the new primary)" online_now

# A change made after the failover reaches a device.
api PATCH "/api/v1/devices/$SIM0/config" "${JSON[@]}" --data '{"overrides": {"after": "failover"}}'
assert_eq "$STATUS" 200 "a configuration change after the failover"
applied() {
	api GET "/api/v1/devices/$SIM0/config"
	[ "$(jq -r .state <<<"$BODY")" = in_sync ]
}
wait_for "the device applies the change made after the failover" 30 applied || true
check "the device applied the change made after the failover" applied

harness_done
