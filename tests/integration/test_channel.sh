#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The device channel from the server side, with clients we did not write or
# that do only what we tell them (openssl s_client, tests/integration/
# wsclient.py, fleet-sim): the device listener refuses a missing, foreign,
# expired or decommissioned certificate and upgrades a valid one; hello gets
# welcome with the certificate's device id; oversized frames close with
# 1009; bad messages get `error` and the session lives on; presence follows
# connections (closed: offline at once; silent: dropped within the
# heartbeat timeout); decommissioning closes the session within 1 s on
# whichever worker holds it; after SIGKILL of a net worker its devices come
# back and no device stays online without a live connection.
# (Agent restart and reconnect backoff are covered by test_agent.sh.)
# It stops PostgreSQL under fleetd: a cluster of its own, not the suite's.
HARNESS_PRIVATE_PG=1
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

harness_init
pki_init
fleetd_start 2

TOKEN=$(admin_token operator)
enrollment_token 100 t-chan

# s_client_upgrade HOLD [s_client args...]: a websocket upgrade through
# openssl s_client on the device listener; prints everything s_client says.
UPGRADE_REQ='GET /agent/v1 HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: fleet.v1\r\n\r\n'
# HOLD is a duration, not a wait: the client holds its end open for HOLD
# seconds after the request while the server answers (nothing to observe
# from inside the pipeline). A refused handshake ends s_client as soon as
# the server's alert arrives, so a refusal is given 8 s (a loaded machine
# took over 2 s to send it), and an accepted upgrade, whose connection
# stays open, 2 s; `timeout 10` bounds the whole call.
s_client_upgrade() {
	local hold=$1
	shift
	(printf "$UPGRADE_REQ"; sleep "$hold") | timeout 10 openssl s_client \
		-connect "127.0.0.1:$DEVICE_PORT" -servername localhost \
		-CAfile "$FLEET_CA" -quiet "$@" 2>&1 | tr -d '\0' || true
}

# device_field ID FIELD: a field of GET /api/v1/devices/ID.
device_field() {
	api GET "/api/v1/devices/$1"
	jq -r ".$2" <<<"$BODY"
}

# field_is ID FIELD VALUE: the field has the value now.
field_is() { [ "$(device_field "$1" "$2")" = "$3" ]; }
# wait_field ID FIELD VALUE SECONDS: until the field has the value (bounded).
wait_field() {
	wait_for "device $1: $2 = $3" "$4" field_is "$1" "$2" "$3"
}

# ticked_since TS: every registered worker has written its presence
# heartbeat after TS (a timestamp from PostgreSQL's clock), i.e. each one
# has started a presence tick since then.
ticked_since() {
	test "$(psql_q "SELECT count(*) FILTER (WHERE heartbeat_at > '$1') = count(*) AND count(*) >= 2 FROM workers")" = t
}
# wait_ticks DESCRIPTION: waits (bounded) for two presence ticks of every
# worker from now on, so that one whole tick (heartbeat, sessions, sweep)
# has run on each of them after this point.
wait_ticks() {
	local t0
	t0=$(psql_q "SELECT now()")
	wait_for "$1: a presence tick of every worker" 15 ticked_since "$t0" || return 1
	t0=$(psql_q "SELECT now()")
	wait_for "$1: a second presence tick of every worker" 15 ticked_since "$t0"
}

for n in a b c d e f g h i j k l; do
	check "device $n enrolled (curl + openssl CSR)" device_enroll "$n" chan-test
done

# ---- handshake refusals (openssl s_client as the outside client) ---------
out=$(s_client_upgrade 2 -cert "$T/dev/a.pem" -key "$T/dev/a.key")
check "valid certificate: HTTP/1.1 101" grep -q 'HTTP/1.1 101' <<<"$out"
check "valid certificate: subprotocol fleet.v1" \
	grep -qi 'Sec-WebSocket-Protocol: fleet.v1' <<<"$out"

out=$(s_client_upgrade 8)
check "no client certificate: no 101" bash -c "! grep -q ' 101' <<<'$out'"
check "no client certificate: alert certificate required" \
	grep -q 'certificate required' <<<"$out"

# A foreign CA issuing a certificate that names a real device.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$T/foreign-ca.key" -out "$T/foreign-ca.pem" -days 30 \
	-subj "/CN=Foreign CA" 2>/dev/null
openssl req -new -key "$T/dev/b.key" -subj "/CN=$(id_of b)" \
	-out "$T/foreign.csr" 2>/dev/null
openssl x509 -req -in "$T/foreign.csr" -CA "$T/foreign-ca.pem" \
	-CAkey "$T/foreign-ca.key" -CAcreateserial -days 30 \
	-out "$T/foreign.pem" 2>/dev/null
out=$(s_client_upgrade 8 -cert "$T/foreign.pem" -key "$T/dev/b.key")
check "foreign CA: no 101" bash -c "! grep -q ' 101' <<<'$out'"
check "foreign CA: alert unknown ca" grep -q 'unknown ca' <<<"$out"

# An expired certificate from the fleet's own issuing CA (openssl ca, dates
# in the past), naming a real device.
issuing_ca_sign "$T/foreign.csr" "$T/expired.pem" \
	-startdate 20200101000000Z -enddate 20200201000000Z ||
	cat "$T/expired.pem.log"
check "expired certificate is from the fleet CA (openssl verify says expired)" \
	bash -c "openssl verify -CAfile '$FLEET_CA' '$T/expired.pem' 2>&1 | grep -q 'expired'"
out=$(s_client_upgrade 8 -cert "$T/expired.pem" -key "$T/dev/b.key")
check "expired certificate: no 101" bash -c "! grep -q ' 101' <<<'$out'"
check "expired certificate: alert certificate expired" \
	grep -q 'certificate expired' <<<"$out"

# ---- hello, welcome, presence ---------------------------------------------
A=$(id_of a)
B=$(id_of b)
HELLO='{"type":"hello","seq":1,"agent_version":"0.9.9","fw_version":"2.0.1","model":"chan-x","boot_id":"b0","uptime":5,"addresses":["127.0.0.1"],"config_version":0,"config_hash":"","inventory":{"cpu":"test","ram_mb":64}}'
assert_eq "$(device_field "$A" online)" false "device a offline before connecting"
ws_bg a wsa "send $HELLO" "read 5" "drain 30"
check "device a online after hello" wait_field "$A" online true 5
check "device a inventory stored" wait_field "$A" inventory.reported.ram_mb 64 5
assert_eq "$(device_field "$A" fw_version)" 2.0.1 "device a fw_version from hello"
assert_eq "$(device_field "$A" model)" chan-x "device a model from hello"
welcome=$(grep -m1 '^TEXT ' "$T/wsa.log" | cut -c6-)
assert_eq "$(jq -r .type <<<"$welcome")" welcome "hello gets welcome"
assert_eq "$(jq -r .device_id <<<"$welcome")" "$A" "welcome names the certificate's device"
assert_eq "$(jq -r .heartbeat_interval <<<"$welcome")" 2 "welcome carries heartbeat_interval"
assert_eq "$(psql_q "SELECT count(*) FROM device_sessions WHERE device_id = '$A'")" 1 \
	"one session row for device a"

# Closing the client: offline at once (row gone), not after a timeout.
kill -TERM "$LAST_PID"
start=$(date +%s%N)
check "closed client: offline within 1 s" wait_field "$A" online false 1
echo "# offline $((($(date +%s%N) - start) / 1000000)) ms after the client went"
assert_eq "$(psql_q "SELECT count(*) FROM device_sessions WHERE device_id = '$A'")" 0 \
	"closed client: session row deleted"

# ---- bad input: errors, and the session stays open ----------------------
out=$(ws a "send $HELLO" "read 5" "send {nope" "read 5" \
	'send {"type":"frobnicate"}' "read 5" "binary {\"type\":\"hello\"}" \
	"read 5" 'send [1,2]' "read 5" "send $HELLO" "read 5" "close")
errors=$(grep '^TEXT ' <<<"$out" | cut -c6- | jq -r 'select(.type=="error") | .code' | tr '\n' ' ')
assert_eq "$errors" "malformed unknown-type malformed malformed " \
	"invalid JSON, unknown type, binary frame, non-object: error messages"
assert_eq "$(grep '^TEXT ' <<<"$out" | cut -c6- | jq -r .type | tail -n1)" welcome \
	"the session stays open: a hello after the errors still gets welcome"
check "clean close answered with 1000" grep -q '^CLOSE 1000' <<<"$out"

out=$(ws a "send $HELLO" "read 5" "big 70000" "wait-close 5")
check "frame over 64 KiB closes with 1009" grep -q '^CLOSE 1009' <<<"$out"
out=$(ws a "big 65000" "read 5" "send $HELLO" "read 5" "close")
check "a 65000-byte frame is under the limit (session stays open)" \
	grep -q '"type":"welcome"' <<<"$out"
out=$(ws a "garbage 101" "wait-close 10")
check "a peer that keeps sending garbage is closed with 1008" \
	grep -q '^CLOSE 1008' <<<"$out"

# hello naming another device: bad-hello, and b's inventory is untouched.
before=$(device_field "$B" inventory)
out=$(ws a "send {\"type\":\"hello\",\"device_id\":\"$B\",\"inventory\":{\"evil\":1}}" \
	"read 5" "close")
assert_eq "$(grep -m1 '^TEXT ' <<<"$out" | cut -c6- | jq -r .code)" bad-hello \
	"hello with another device's id: error bad-hello"
# A duration, not a wait: this checks that nothing happens, so there is
# no event to wait for; 0.5 s gives a wrong write (a job queued by the bad
# hello) time to land before b is read.
sleep 0.5
assert_eq "$(device_field "$B" inventory)" "$before" "device b's inventory unchanged"
check "device a's inventory not overwritten by the bad hello" \
	test "$(device_field "$A" inventory.reported.evil)" = null

# A websocket upgrade on the api listener (no client certificate) is refused.
out=$($WS --port "$API_PORT" --ca "$FLEET_CA" "send $HELLO" "read 2" || true)
check "upgrade on the api listener refused" grep -q '^REFUSED' <<<"$out"
out=$($WS --port "$API_PORT" --ca "$FLEET_CA" --cert "$T/dev/a.pem" \
	--key "$T/dev/a.key" "send $HELLO" "read 2" || true)
check "upgrade on the api listener refused also with a device certificate" \
	grep -q '^REFUSED' <<<"$out"

# ---- a peer that stops answering pings is dropped -------------------------
C=$(id_of c)
ws_bg a wsa2 "send $HELLO" "drain 30" "close"
ALIVE_PID=$LAST_PID
ws_bg c wsc "send $HELLO" "read 5" "sleep 40"
check "device c online" wait_field "$C" online true 5
start=$(date +%s%N)
wait_field "$C" online false 12 || true
ms=$((($(date +%s%N) - start) / 1000000))
# heartbeat_timeout 6 s + one presence tick (1 s) + polling slack.
check "silent peer (reads nothing, answers no ping) offline within heartbeat_timeout + tick (${ms} ms)" \
	test "$ms" -le 7800
# Offline (its row's last frame is older than the timeout) comes first;
# the loop drops the session at its next tick.
check "silent peer: the server says why it dropped it" \
	wait_for "silent-for line" 3 grep -q "$C.*silent for" "$T/fleetd.log"
session_rows() { test "$(psql_q "SELECT count(*) FROM device_sessions WHERE device_id = '$1'")" = "$2"; }
check "silent peer: session row deleted" \
	wait_for "no session row of c" 3 session_rows "$C" 0
kill -TERM "$LAST_PID"
check "a peer answering pings stays online past the heartbeat timeout" \
	test "$(device_field "$A" online)" = true
check "a peer answering pings was not closed" bash -c "! grep -q '^CLOSE\|^EOF' '$T/wsa2.log'"
kill -TERM "$ALIVE_PID"

# ---- two sessions of one device: the newest wins -------------------------
L=$(id_of l)
ws_bg l wsl1 "send $HELLO" "read 5" "wait-close 30"
check "device l online (first session)" wait_field "$L" online true 5
ws_bg l wsl2 "send $HELLO" "read 5" "drain 25"
L2_PID=$LAST_PID
check "second session of l gets welcome" \
	wait_for "welcome on wsl2" 5 grep -q '"type":"welcome"' "$T/wsl2.log"
# Same worker: at once; the other worker: at its next presence tick.
check "the older session of l is closed with 4000" \
	wait_for "CLOSE 4000 on wsl1" 5 grep -q '^CLOSE 4000' "$T/wsl1.log"
check "both workers ran a presence tick since the close" \
	wait_ticks "after l's older session closed"
assert_eq "$(device_field "$L" online)" true \
	"device l stays online after its older session was closed"
assert_eq "$(psql_q "SELECT count(*) FROM device_sessions WHERE device_id = '$L'")" 1 \
	"one session row for device l"
check "the newer session of l is still open" \
	bash -c "! grep -q '^CLOSE\|^EOF' '$T/wsl2.log'"
kill -TERM "$L2_PID"
check "device l offline once its last session closed" wait_field "$L" online false 2

# The same across the two workers: the older session's worker notices at its
# next presence tick. Which worker accepts is the kernel's choice, so try
# until the two sessions land on different workers (bounded).
row_worker() { psql_q "SELECT worker_id FROM device_sessions WHERE device_id = '$L'"; }
cross=0
for try in 1 2 3 4 5 6 7 8; do
	rm -f "$T/wsx1.log" "$T/wsx2.log"
	ws_bg l wsx1 "send $HELLO" "read 5" "wait-close 30"
	X1_PID=$LAST_PID
	wait_field "$L" online true 5 || true
	w1=$(row_worker)
	ws_bg l wsx2 "send $HELLO" "read 5" "drain 25"
	X2_PID=$LAST_PID
	wait_for "welcome on wsx2" 5 grep -q '"type":"welcome"' "$T/wsx2.log" || true
	w2=$(row_worker)
	if [ -n "$w1" ] && [ -n "$w2" ] && [ "$w1" != "$w2" ]; then
		cross=1
		break
	fi
	kill -TERM "$X1_PID" "$X2_PID" 2>/dev/null || true
	wait_field "$L" online false 5 || true
done
echo "# two sessions of l on different workers after $try tries: $w1 / $w2"
if [ "$cross" = 1 ]; then
	check "across workers: the older session of l is closed with 4000" \
		wait_for "CLOSE 4000 on wsx1" 5 grep -q '^CLOSE 4000' "$T/wsx1.log"
	check "across workers: both workers ran a presence tick since the close" \
		wait_ticks "after l's older session closed (across workers)"
	assert_eq "$(device_field "$L" online)" true \
		"across workers: device l stays online after the older session was closed"
	assert_eq "$(row_worker)" "$w2" "across workers: the newer session's worker owns the row"
	check "across workers: the newer session of l is still open" \
		bash -c "! grep -q '^CLOSE\|^EOF' '$T/wsx2.log'"
	kill -TERM "$X2_PID"
	check "across workers: device l offline once its last session closed" \
		wait_field "$L" online false 2
else
	fail "could not get two sessions of l onto different workers in 8 tries"
fi

# ---- last_seen is the last frame from the device ---------------------------
K=$(id_of k)
ws_bg k wsk "send $HELLO" "read 5" "drain 60"
K_PID=$LAST_PID
check "device k online" wait_field "$K" online true 5
# last_seen_of ID: the API's last_seen in epoch seconds (with fraction).
last_seen_of() {
	local v
	v=$(device_field "$1" last_seen)
	date -d "$v" +%s.%N
}
# A ping and its pong: last_seen moves past the hello's.
K_SEEN0=$(last_seen_of "$K" || echo 0)
seen_after() { awk -v a="$(last_seen_of "$1")" -v b="$2" 'BEGIN { exit !(a > b) }'; }
check "device k: last_seen advances with its pongs" \
	wait_for "k's last_seen past $K_SEEN0" 15 seen_after "$K" "$K_SEEN0"
kill -STOP "$K_PID"
FROZEN=$(date +%s.%N)
seen_before_freeze() {
	awk -v a="$(last_seen_of "$K")" -v b="$FROZEN" 'BEGIN { exit !(a <= b + 0.05) }'
}
# A duration, not a wait: the frozen process must stay frozen for a while
# (about 4 s, under heartbeat_timeout) while last_seen is sampled.
frozen_ok=1
for _ in 1 2 3 4 5 6 7 8; do
	seen_before_freeze || frozen_ok=0
	sleep 0.5
done
check "frozen device k: last_seen does not advance while it is online (SIGSTOP)" \
	test "$frozen_ok" = 1
check "frozen device k goes offline (heartbeat timeout)" wait_field "$K" online false 8
check "frozen device k: last_seen after the drop is still its last frame" \
	seen_before_freeze
dbseen=$(psql_q "SELECT extract(epoch FROM last_seen) FROM devices WHERE id = '$K'")
check "frozen device k: devices.last_seen is before the freeze ($dbseen <= $FROZEN)" \
	awk -v a="$dbseen" -v b="$FROZEN" 'BEGIN { exit !(a <= b + 0.05) }'
kill -CONT "$K_PID"
kill -TERM "$K_PID"

# ---- decommission closes the session within 1 s on either worker --------
NET1=$(fleetd_child fleetd-net1)
NET2=$(fleetd_child fleetd-net2)
declare -A WSPID
DECOM=()
for n in b d e f g h i j; do
	ws_bg "$n" "ws-$n" "send $HELLO" "read 5" "wait-close 300"
	WSPID[$n]=$LAST_PID
done
for n in b d e f g h i j; do wait_field "$(id_of "$n")" online true 5 || true; done
worker_of() { # worker_of NAME: 1 or 2, the net worker holding the session
	local w
	w=$(psql_q "SELECT worker_id FROM device_sessions WHERE device_id = '$(id_of "$1")'")
	case "$w" in
	*":1:$NET1") echo 1 ;;
	*":2:$NET2") echo 2 ;;
	*) echo "?$w" ;;
	esac
}
declare -A ON
for n in b d e f g h i j; do
	ON[$n]=$(worker_of "$n")
	echo "# device $n on worker ${ON[$n]}"
done
# Take one device from each worker (as far as the accept race allowed).
victims=()
for w in 1 2; do
	for n in b d e f g h i j; do
		if [ "${ON[$n]}" = "$w" ]; then victims+=("$n"); break; fi
	done
done
check "sessions spread over both workers (${#victims[@]} of 2)" test "${#victims[@]}" = 2
for n in "${victims[@]}"; do
	t0=$(date +%s.%N)
	api POST "/api/v1/devices/$(id_of "$n")/decommission"
	assert_eq "$STATUS" 200 "decommission device $n (worker ${ON[$n]})"
	# The 1 s bound is measured from the client's own close timestamp.
	wait_for "device $n's session closed" 15 grep -q '^CLOSE\|^EOF' "$T/ws-$n.log" || true
	line=$(grep -m1 '^CLOSE\|^EOF' "$T/ws-$n.log" || echo "none t=99999999999")
	t1=${line##*t=}
	t1=${t1%% *}
	ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", (b - a) * 1000 }')
	echo "# device $n: '$line' ${ms} ms after the decommission call"
	check "decommissioned device $n (worker ${ON[$n]}): session closed within 1 s (${ms} ms)" \
		test "$ms" -lt 1000
	check "decommissioned device $n: close code 1008" grep -q '^CLOSE 1008' "$T/ws-$n.log"
	assert_eq "$(device_field "$(id_of "$n")" online)" false "decommissioned device $n offline"
	out=$(s_client_upgrade 8 -cert "$T/dev/$n.pem" -key "$T/dev/$n.key")
	check "decommissioned device $n: reconnect gets no 101" \
		bash -c "! grep -q ' 101' <<<'$out'"
	check "decommissioned device $n: alert certificate revoked" \
		grep -q 'certificate revoked' <<<"$out"
	out=$(ws "$n" "send $HELLO" "read 3" || true)
	check "decommissioned device $n: wsclient refused too" grep -q '^REFUSED' <<<"$out"
	DECOM+=("$n")
done

# ---- SIGKILL of a net worker ----------------------------------------------
# fleet-sim devices reconnect by themselves; the wsclient sessions that are
# still open (f g h i j d minus the decommissioned) do not. Afterwards every
# device shown online must really have a live connection.
spawn sim fleet-sim --count 6 --token "$ENROLL" --api "$FLEET_SERVER" \
	--ca "$FLEET_CA" --state "$T/sim" --status-file "$T/sim.json" \
	--model sim-x --log-level info
sim_online() { jq -r .online "$T/sim.json" 2>/dev/null || echo 0; }
sim_online_is() { [ "$(sim_online)" = "$1" ]; }
wait_for "fleet-sim: 6 devices online" 30 sim_online_is 6 || true
assert_eq "$(sim_online)" 6 "fleet-sim: 6 devices online"
SIM_IDS=$(for n in 0 1 2 3 4 5; do jq -r .device_id "$T/sim/$n/identity.json"; done | sort)
on1=$(psql_q "SELECT count(*) FROM device_sessions WHERE worker_id LIKE '%:1:$NET1'")
echo "# sessions on net1 before SIGKILL: $on1"
check "net1 holds sessions before the kill" test "$on1" -ge 1
SIM_SQL=$(sed "s/.*/'&'/" <<<"$SIM_IDS" | paste -sd, -)
sim_on_net1() { psql_q "SELECT count(*) FROM device_sessions WHERE worker_id LIKE '%:1:$NET1' AND device_id IN ($SIM_SQL)"; }
sim1=$(sim_on_net1)
echo "# fleet-sim sessions on net1 before SIGKILL: $sim1"
sim_off_net1() { test "$(sim_on_net1)" = 0; }
a0=$(jq -r .attempts "$T/sim.json")
kill -KILL "$NET1"
# The fleet-sim devices that were on net1 have reconnected (the new
# session takes the row) or their rows were swept with the dead worker:
# either way no fleet-sim session names the killed net1 any more. Then
# all 6 are online again in fleet-sim's own view, each of net1's devices
# after a new attempt (its status file may not have seen the kill yet).
check "no fleet-sim session left on the killed net1" \
	wait_for "fleet-sim sessions off the killed net1" 30 sim_off_net1
check "fleet-sim devices back online after SIGKILL of net1" \
	wait_for "fleet-sim devices back online" 30 \
	sim_back_online "$T/sim.json" $((a0 + sim1)) 6
echo "# fleet-sim attempts for the reconnect: $(($(jq -r .attempts "$T/sim.json") - a0))"
# Past the heartbeat timeout nothing stale may be left: wait until the
# killed net1's last heartbeat is older than heartbeat_timeout (6 s), then
# for a whole presence tick of the live workers (the sweep).
net1_stale() {
	test "$(psql_q "SELECT count(*) FROM workers WHERE id LIKE '%:1:$NET1' AND heartbeat_at > now() - interval '6 seconds'")" = 0
}
check "the killed net1's heartbeat is older than heartbeat_timeout" \
	wait_for "net1 (pid $NET1) stale" 20 net1_stale
live_ticked_since() {
	test "$(psql_q "SELECT count(*) FROM workers WHERE heartbeat_at > '$1'")" -ge 2
}
t0=$(psql_q "SELECT now()")
wait_for "a presence tick of the live workers" 15 live_ticked_since "$t0" || true
t0=$(psql_q "SELECT now()")
check "the live workers ran a whole presence tick since net1 went stale" \
	wait_for "a second presence tick of the live workers" 15 live_ticked_since "$t0"
live=$(
	echo "$SIM_IDS"
	for n in b d e f g h i j; do
		grep -q '^CLOSE\|^EOF' "$T/ws-$n.log" || id_of "$n"
	done
)
api GET '/api/v1/devices?online=true&limit=1000'
shown=$(jq -r '.items[].id' <<<"$BODY" | sort)
assert_eq "$shown" "$(sort <<<"$live")" \
	"devices shown online are exactly the ones with a live connection"
for id in $SIM_IDS; do
	api GET "/api/v1/devices/$id"
	[ "$(jq -r .online <<<"$BODY")" = true ] || fail "sim device $id not online"
done
dead=$(psql_q "SELECT count(*) FROM device_sessions s WHERE NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = s.worker_id AND w.heartbeat_at > now() - interval '6 seconds')")
assert_eq "$dead" 0 "no session row names a dead worker"
NEWNET1=$(fleetd_child fleetd-net1 || echo none)
check "the supervisor restarted net1 ($NEWNET1)" test "$NEWNET1" != "$NET1" -a "$NEWNET1" != none

# ---- PostgreSQL outage longer than heartbeat_timeout -------------------------
# Before: the first worker to tick after the outage deleted the other's row
# (with its sessions), which never registered again.
NET1=$(fleetd_child fleetd-net1)
NET2=$(fleetd_child fleetd-net2)
sim_all_online_api() {
	local id
	for id in $SIM_IDS; do
		api GET "/api/v1/devices/$id"
		[ "$(jq -r .online <<<"$BODY")" = true ] || return 1
	done
}
check "before the outage: every fleet-sim device online" \
	wait_for "sim devices online" 10 sim_all_online_api
pgcluster_stop "$HARNESS_PG_DIR" fast
# A duration, not a wait: the outage must last longer than
# heartbeat_timeout (6 s), so that every worker row looks dead afterwards.
sleep 8
pgcluster_start "$HARNESS_PG_DIR" "$PGCLUSTER_TEST_OPTIONS"
check "after the outage: every fleet-sim device online again" \
	wait_for "sim devices online after the outage" 20 sim_all_online_api
live_workers() {
	test "$(psql_q "SELECT count(*) FROM workers WHERE heartbeat_at > now() - interval '6 seconds' AND (id LIKE '%:1:$NET1' OR id LIKE '%:2:$NET2')")" = 2
}
check "after the outage: both workers registered again (no restart)" \
	wait_for "both workers registered" 10 live_workers
assert_eq "$(fleetd_child fleetd-net1)/$(fleetd_child fleetd-net2)" "$NET1/$NET2" \
	"the net workers were not restarted"
# A duration, not a wait: heartbeat_timeout (6 s) plus a tick must pass
# with both workers registered, so that a wrong sweep would have run.
sleep 7
check "still every fleet-sim device online after heartbeat_timeout" sim_all_online_api
check "still both workers registered" live_workers
out=$(ws a "send $HELLO" "read 5" "close")
check "after the outage: a new session gets welcome" grep -q '"type":"welcome"' <<<"$out"

harness_done
