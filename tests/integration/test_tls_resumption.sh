#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# TLS session resumption on the device listener (issue 15,
# docs/internals/tls-resumption.md), checked with an outside client
# (openssl s_client -sess_out / -sess_in with a device's key) and a real
# agent:
#   - a full handshake gets a TLS 1.3 ticket; the session resumes on the
#     same instance, on a second instance sharing only the database, and
#     after a restart (every worker and host reads the same keys);
#   - a real fleet-agent resumes when fleetd restarts;
#   - a ticket under a key removed from the database falls back to a full
#     handshake (which succeeds);
#   - a resumed session of a revoked certificate is refused, exactly like
#     its full handshake;
#   - tls_ticket_lifetime = 0 issues no ticket and resumes nothing.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"
require_tools openssl jq

harness_init
pki_init
fleetd_write_config 2
A_CONF=$T/fleetd.conf
echo "tls_ticket_lifetime = 4h" >>"$A_CONF"
A_DEV=$DEVICE_PORT
fleetd_start 2
TOKEN=$(admin_token operator)
enrollment_token 5 t-resume
device_enroll dev1
device_enroll dev2

# s_client NAME PORT OUT [s_client args...]: one TLS 1.3 connection as
# device NAME, kept open for a second so that the ticket (sent after the
# handshake) arrives; its output in $T/OUT.out.
s_client() {
	local name=$1 port=$2 out=$3
	shift 3
	sleep 1 | timeout 20 openssl s_client -connect "127.0.0.1:$port" \
		-servername localhost -tls1_3 -CAfile "$FLEET_CA" \
		-cert "$T/dev/$name.pem" -key "$T/dev/$name.key" "$@" \
		>"$T/$out.out" 2>&1 || true
}
reused() { grep -q '^Reused, TLSv1.3' "$T/$1.out"; }
new_session() { grep -q '^New, TLSv1.3' "$T/$1.out"; }
# A session file that holds a ticket.
has_ticket() { openssl sess_id -in "$1" -noout -text 2>/dev/null | grep -q 'TLS session ticket:'; }
keys() { psql_q "SELECT count(*) FROM tls_ticket_keys"; }
# scrape: GET /metrics (the operator token) into $T/metrics.txt.
scrape() {
	api GET /metrics
	printf '%s\n' "$BODY" >"$T/metrics.txt"
}
# msum REGEX: the sum of the samples whose name and labels match.
msum() {
	awk -v re="$1" '$0 !~ /^#/ && $1 ~ re { s += $NF } END { printf "%d\n", s }' \
		"$T/metrics.txt"
}
# resumptions RESULT: fleetd_tls_resumptions_total{result=RESULT}, all workers
resumptions() { msum "^fleetd_tls_resumptions_total[{].*result=\"$1\""; }
handshakes() { msum "^fleetd_tls_handshakes_total[{].*session=\"$1\""; }
some_key() { [ "$(keys)" -ge 1 ]; }

# ---- a ticket, resumed on the same instance --------------------------------
check "the workers made one ticket key between them" \
	wait_for "a ticket key" 10 some_key
assert_eq "$(keys)" 1 "one key for the first rotation, not one per worker"
s_client dev1 "$A_DEV" full1 -sess_out "$T/dev1.sess"
check "full handshake" new_session full1
check "a ticket came with it" has_ticket "$T/dev1.sess"
s_client dev1 "$A_DEV" res1 -sess_in "$T/dev1.sess"
check "resumed on the same instance" reused res1
check "resumed with (EC)DHE: a key share in the resumed handshake" \
	grep -q '^Server Temp Key: ' "$T/res1.out"

# ---- on a second instance sharing only the database -----------------------
fleetd_conf_write "$T/b.conf" "$T/pki" "workers = 1
log_level = info
tls_ticket_lifetime = 4h"
B_DEV=$DEVICE_PORT
B_API=$API_PORT
spawn fleetd-b fleetd -c "$T/b.conf" serve
B_PID=$LAST_PID
check "instance B healthy" wait_for "instance B" 30 curl -sf --max-time 2 \
	--cacert "$FLEET_CA" "https://localhost:$B_API/healthz"
s_client dev1 "$B_DEV" resB -sess_in "$T/dev1.sess"
check "resumed on the other instance" reused resB
kill -TERM "$B_PID"
wait_for "instance B exits" 15 not kill -0 "$B_PID" || true

# ---- after a restart, and by a real agent ----------------------------------
cat >"$T/agent.conf" <<EOT
api_url = $FLEET_SERVER
ca_file = $FLEET_CA
state_dir = $T/agent
token = $ENROLL
model = resume-test
log_level = info
EOT
spawn agent fleet-agent -c "$T/agent.conf"
AGENT_PID=$LAST_PID
check "agent enrolled" wait_for "agent identity" 30 test -f "$T/agent/identity.json"
AGENT_ID=$(jq -r .device_id "$T/agent/identity.json")
online() {
	api GET "/api/v1/devices/$1"
	[ "$STATUS" = 200 ] && [ "$(jq -r .online <<<"$BODY")" = true ]
}
check "agent online" wait_for "agent online" 20 online "$AGENT_ID"
scrape
check "metrics: resumed tickets counted (res1; got $(resumptions resumed))" \
	[ "$(resumptions resumed)" -ge 1 ]
check "metrics: the agent's first session is a full handshake (got $(handshakes full))" \
	[ "$(handshakes full)" -ge 1 ]
fleetd_stop
fleetd_start 2
s_client dev1 "$A_DEV" resR -sess_in "$T/dev1.sess"
check "resumed after fleetd restarted" reused resR
check "agent resumed its session after the restart" \
	wait_for "agent's resumed session" 30 \
	grep -q "$AGENT_ID.*session resumed" "$T/fleetd.log"
check "agent online again" wait_for "agent online" 20 online "$AGENT_ID"
kill -TERM "$AGENT_PID"
wait_for "agent exits" 10 not kill -0 "$AGENT_PID" || true

# ---- a removed key: a full handshake, not a failure -----------------------
s_client dev2 "$A_DEV" full2 -sess_out "$T/dev2.sess"
check "dev2: a ticket" has_ticket "$T/dev2.sess"
psql_q "DELETE FROM tls_ticket_keys" >/dev/null
# The workers load the keys every 10 s (and make a new one: none left).
check "a new key replaces the removed one" \
	wait_for "a new ticket key" 15 some_key
sleep 11 # one more load, so that every worker has dropped the old key
s_client dev2 "$A_DEV" gone2 -sess_in "$T/dev2.sess" -sess_out "$T/dev2b.sess"
check "a ticket under a removed key is not resumed" new_session gone2
check "... and the full handshake works (verification OK)" \
	grep -q 'Verify return code: 0 (ok)' "$T/gone2.out"
s_client dev2 "$A_DEV" res2 -sess_in "$T/dev2b.sess"
check "the new ticket resumes" reused res2

# ---- a revoked certificate: no resumption ----------------------------------
SERIAL=$(openssl x509 -in "$T/dev/dev1.pem" -noout -serial | cut -d= -f2)
s_client dev1 "$A_DEV" pre -sess_out "$T/dev1c.sess"
s_client dev1 "$A_DEV" pre2 -sess_in "$T/dev1c.sess"
check "dev1 resumes before the revocation" reused pre2
api POST "/api/v1/certificates/$SERIAL/revoke" -H 'Content-Type: application/json' \
	--data '{"reason": "keyCompromise"}'
assert_eq "$STATUS" 200 "dev1's certificate revoked"
serial_lc=$(tr 'A-F' 'a-f' <<<"$SERIAL")
refused_resume() {
	s_client dev1 "$A_DEV" rev -sess_in "$T/dev1c.sess"
	! reused rev
}
check "the revoked certificate's ticket does not resume" \
	wait_for "ticket refused" 10 refused_resume
check "fleetd says why" grep -qi "not resuming certificate $serial_lc: certificate refused" "$T/fleetd.log"
check "its full handshake is refused too (a TLS alert)" \
	grep -qi 'alert' "$T/rev.out"

# ---- the counters (since the restart above) --------------------------------
scrape
check "metrics: resumed after the restart (resR, res2, pre2; got $(resumptions resumed))" \
	[ "$(resumptions resumed)" -ge 3 ]
check "metrics: a removed key counted as unknown_key (got $(resumptions unknown_key))" \
	[ "$(resumptions unknown_key)" -ge 1 ]
check "metrics: the revoked certificate's ticket counted as revoked (got $(resumptions revoked))" \
	[ "$(resumptions revoked)" -ge 1 ]
check "metrics: the agent's channel session after the restart was resumed (got $(handshakes resumed))" \
	[ "$(handshakes resumed)" -ge 1 ]
check "metrics: no ticket expired or refused for other reasons" \
	[ "$(resumptions ticket_expired)$(resumptions cert_expired)$(resumptions invalid)" = 000 ]
if command -v promtool >/dev/null; then
	promtool check metrics <"$T/metrics.txt" >"$T/promtool.log" 2>&1 || true
	check "promtool check metrics accepts the scrape with the TLS families" \
		[ "$(grep -c . "$T/promtool.log")" = 0 ]
	cat "$T/promtool.log"
fi

# ---- the agent's ticket under a removed key: a full handshake --------------
# The agent offers its ticket without loading its identity files; fleetd
# cannot decrypt the ticket, asks for the certificate, and the agent loads
# the files only then (agent_ssl_cert_cb).
spawn agent2 fleet-agent -c "$T/agent.conf"
AGENT_PID=$LAST_PID
check "agent online (a full handshake: its ticket was lost with its restart)" \
	wait_for "agent online" 20 online "$AGENT_ID"
psql_q "DELETE FROM tls_ticket_keys" >/dev/null
check "a new key replaces the removed one (again)" \
	wait_for "a new ticket key" 15 some_key
fleetd_stop
lines=$(wc -l <"$T/fleetd.log")
fleetd_start 2
agent_connected() { tail -n +"$((lines + 1))" "$T/fleetd.log" | grep "$AGENT_ID.*connected from"; }
check "agent online again after its ticket's key was removed" \
	wait_for "agent online" 30 online "$AGENT_ID"
check "... through a full handshake (the ticket was not resumed)" \
	not grep -q "session resumed" <<<"$(agent_connected)"
scrape
check "... after offering its ticket (counted as unknown_key; got $(resumptions unknown_key))" \
	[ "$(resumptions unknown_key)" -ge 1 ]
check "the agent never failed to load its identity" \
	not grep -q "identity files do not load" "$T/agent2.log"
kill -TERM "$AGENT_PID"
wait_for "agent exits" 10 not kill -0 "$AGENT_PID" || true

# ---- tls_ticket_lifetime = 0: off --------------------------------------------
fleetd_stop
sed -i 's/^tls_ticket_lifetime = 4h$/tls_ticket_lifetime = 0/' "$A_CONF"
fleetd_start 2
s_client dev2 "$A_DEV" off1 -sess_in "$T/dev2b.sess" -sess_out "$T/dev2off.sess"
check "off: a valid ticket is not resumed" new_session off1
check "off: the full handshake works" grep -q 'Verify return code: 0 (ok)' "$T/off1.out"
check "off: no ticket issued" not has_ticket "$T/dev2off.sess"
sed 's/^tls_ticket_lifetime = 0$/tls_ticket_lifetime = 30s/' "$A_CONF" >"$T/short.conf"
check "a lifetime under a minute is refused" \
	not fleetd -c "$T/short.conf" check-config
harness_done
