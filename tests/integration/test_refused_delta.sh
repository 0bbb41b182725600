#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Exact refused-serial deltas (migration 0020, docs/internals/renew-rate.md
# "What is left", point 2): every transaction that refuses a certificate
# stamps it with the CRL generation it bumps, and each net worker loads
# only what was stamped after the generation of its last load.
#   - a revocation reaches every net worker at once: live sessions of
#     scripted devices spread over both workers, their certificates
#     revoked through the API, each worker closes its own session from its
#     refused set (the presence tick, which also closes the sessions of
#     refused devices, is slowed down to 30 s so that it cannot);
#   - during a rotation of fleet-sim devices (concurrent renewals, their
#     installs in batches, one stamp and notification per batch), a
#     revocation and a renewal's superseded certificate (a real
#     fleet-agent rotated through the API) are refused by BOTH workers'
#     handshakes within seconds;
#   - every refused certificate is stamped, with a generation the CRL
#     generation has reached.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"
require_tools openssl jq python3

export HEARTBEAT_INTERVAL=60s HEARTBEAT_TIMEOUT=180s
export FLEETD_CERT_VALIDITY=1h
SIMS=${REFUSED_SIMS:-60}
harness_init
pki_init
fleetd_start 2

TOKEN=$(admin_token operator)
enrollment_token 100 t-refused
TOK=$ENROLL

serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
# The pids of the net workers (fleetd-net1, fleetd-net2).
NET1=$(fleetd_child fleetd-net1)
NET2=$(fleetd_child fleetd-net2)
# refused_by PID SERIAL: that worker's handshake refused the serial.
refused_by() { grep -q "fleetd\[$1\] .*refused revoked certificate $2" "$T/fleetd.log"; }
# closed_by PID SERIAL: that worker closed a live session of the serial
# because its refused set holds it.
closed_by() { grep -q "fleetd\[$1\] .*certificate $2 revoked; closing" "$T/fleetd.log"; }
# handshake NAME KEY CERT: one TLS handshake and hello; 0 when welcomed.
handshake() {
	$WS --port "$DEVICE_PORT" --ca "$FLEET_CA" --cert "$3" --key "$2" \
		'send {"type":"hello","agent_version":"t","fw_version":"1","model":"m","boot_id":"b"}' \
		"read 3" 2>/dev/null | grep -q '"type":"welcome"'
}
# both_refuse KEY CERT: handshakes (at most 40) until both workers have
# refused the certificate; fails if one is welcomed or a worker never
# got one of them.
both_refuse() {
	local key=$1 cert=$2 serial i
	serial=$(serial_of "$cert")
	for ((i = 0; i < 40; i++)); do
		if handshake x "$key" "$cert"; then
			echo "certificate $serial welcomed (attempt $i)" >&2
			return 1
		fi
		if refused_by "$NET1" "$serial" && refused_by "$NET2" "$serial"; then
			return 0
		fi
	done
	echo "certificate $serial: not refused by both workers in 40 handshakes" >&2
	return 1
}

# ---- a revocation reaches every worker at once ----------------------------
# Scripted devices hold sessions until both workers have some (bounded).
held=()
both_workers() {
	[ "$(psql_q "SELECT count(DISTINCT worker_id) FROM device_sessions")" = 2 ]
}
sessions_are() { [ "$(psql_q "SELECT count(*) FROM device_sessions")" = "$1" ]; }
for ((i = 0; i < 16; i++)); do
	device_enroll "h$i"
	ws_bg "h$i" "h$i-ws" \
		'send {"type":"hello","agent_version":"t","fw_version":"1","model":"m","boot_id":"b"}' \
		"wait-close 120"
	held+=("h$i")
	wait_for "session of h$i" 20 sessions_are "${#held[@]}"
	if [ "${#held[@]}" -ge 4 ] && both_workers; then
		break
	fi
done
check "sessions on both workers (${#held[@]} devices)" both_workers
for n in "${held[@]}"; do
	api POST "/api/v1/certificates/$(serial_of "$T/dev/$n.pem")/revoke" \
		-H 'Content-Type: application/json' --data '{"reason": "keyCompromise"}'
	assert_eq "$STATUS" 200 "$n: revoked"
done
# closed_all: every held session was closed by the worker that held it.
closed_all() {
	local n serial pid
	for n in "${held[@]}"; do
		serial=$(serial_of "$T/dev/$n.pem")
		pid=0
		grep -q "CLOSE 1008" "$T/$n-ws.log" || return 1
		closed_by "$NET1" "$serial" && pid=$NET1
		closed_by "$NET2" "$serial" && pid=$NET2
		[ "$pid" != 0 ] || return 1
	done
	return 0
}
check "every held session closed by its own worker's refused set within 5 s" \
	wait_for "sessions closed" 5 closed_all
check "both workers closed some" bash -c \
	'grep -q "fleetd\[$1\] .*revoked; closing" "$3" &&
	 grep -q "fleetd\[$2\] .*revoked; closing" "$3"' _ "$NET1" "$NET2" "$T/fleetd.log"
check "a revoked certificate is refused by both workers' handshakes" \
	both_refuse "$T/dev/${held[0]}.key" "$T/dev/${held[0]}.pem"

# ---- during a rotation of many devices ------------------------------------
spawn sim fleet-sim --count "$SIMS" --token "$TOK" --api "$FLEET_SERVER" \
	--ca "$FLEET_CA" --state "$T/sim" --threads 4 --start-rate 50 \
	--status-file "$T/sim.status"
sim_online() { [ "$(jq -r .online "$T/sim.status" 2>/dev/null)" = "$SIMS" ]; }
check "$SIMS fleet-sim devices online" wait_for "sim online" 90 sim_online
# A real agent whose old certificate and key the test keeps.
cat >"$T/agent.conf" <<EOT
api_url = $FLEET_SERVER
ca_file = $FLEET_CA
state_dir = $T/agent
token_file = $T/token
model = refused-test
log_level = info
EOT
printf '%s\n' "$TOK" >"$T/token"
chmod 600 "$T/token"
spawn agent env FLEET_AGENT_RENEW_JITTER=0 fleet-agent -c "$T/agent.conf"
check "agent enrolled" wait_for "agent identity" 30 test -f "$T/agent/identity.json"
AGENT=$(jq -r .device_id "$T/agent/identity.json")
agent_online() {
	api GET "/api/v1/devices/$AGENT"
	[ "$STATUS" = 200 ] && [ "$(jq -r .online <<<"$BODY")" = true ]
}
check "agent online" wait_for "agent online" 20 agent_online
cp "$T/agent/cert.pem" "$T/agent-old.pem"
cp "$T/agent/device.key" "$T/agent-old.key"
device_enroll late
# Every device rotates at once (one transaction, one notification), the
# agent through the API, and a certificate is revoked in the middle.
psql_q "BEGIN; INSERT INTO cert_rotations (id, device_id, reason, requested_by)
	SELECT gen_random_uuid(), device_id, 'campaign', 'test_refused_delta'
	FROM device_sessions WHERE device_id <> '$AGENT';
	SELECT pg_notify('fleet_certs', 'test'); COMMIT;" >/dev/null
api POST "/api/v1/devices/$AGENT/rotate"
assert_eq "$STATUS" 202 "agent: rotation requested"
some_installed() {
	[ "$(psql_q "SELECT count(*) FROM cert_rotations WHERE completed_at IS NOT NULL")" -ge 5 ]
}
check "renewals under way" wait_for "some renewals" 60 some_installed
api POST "/api/v1/certificates/$(serial_of "$T/dev/late.pem")/revoke" \
	-H 'Content-Type: application/json' --data '{"reason": "keyCompromise"}'
assert_eq "$STATUS" 200 "late: revoked during the rotation"
check "a revocation during the rotation: refused by both workers" \
	both_refuse "$T/dev/late.key" "$T/dev/late.pem"
OLD=$(serial_of "$T/agent-old.pem")
superseded() {
	[ "$(psql_q "SELECT status FROM certificates WHERE serial = '$OLD'")" = superseded ]
}
check "agent: old certificate superseded" wait_for "agent renewed" 60 superseded
check "a renewal's superseded certificate: refused by both workers" \
	both_refuse "$T/agent-old.key" "$T/agent-old.pem"
all_rotated() {
	[ "$(psql_q "SELECT count(*) FROM cert_rotations WHERE completed_at IS NULL")" = 0 ]
}
check "every rotation completed" wait_for "rotations" 120 all_rotated

# ---- the stamps -----------------------------------------------------------
assert_eq "$(psql_q "SELECT count(*) FROM certificates WHERE status <> 'active' AND refused_generation IS NULL")" \
	0 "every refused certificate is stamped"
assert_eq "$(psql_q "SELECT count(*) FROM certificates WHERE status = 'active' AND refused_generation IS NOT NULL")" \
	0 "no active certificate is stamped"
assert_eq "$(psql_q "SELECT count(*) FROM certificates c, crl_generation g WHERE c.refused_generation > g.generation")" \
	0 "no stamp beyond the CRL generation"
check "at least $SIMS certificates superseded" test \
	"$(psql_q "SELECT count(*) FROM certificates WHERE status = 'superseded'")" -ge "$SIMS"
harness_done
