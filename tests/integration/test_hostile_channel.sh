#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The device listener against a hostile network (issue 14), with clients we
# did not write (openssl s_client, curl) or that do exactly what we tell
# them (tests/integration/wsclient.py, raw frames over TLS):
# - identity: a root-signed client certificate naming a real device is
#   refused in the handshake; a certificate from the issuing CA that the
#   database does not know gets no message read (no welcome) and writes
#   nothing; the victim's row and live session are untouched; resumed TLS
#   sessions are refused on the device listener;
# - listener separation: the device port serves only GET /agent/v1 as a
#   fleet.v1 websocket (no API, no enrollment, subprotocol required);
# - TLS policy on both listeners: TLS 1.3, or TLS 1.2 with ECDHE + AEAD;
# - websocket rules: an unmasked client frame closes with 1002;
# - fairness: two devices flooding hellos do not make the API answer 503
#   (or anything but 2xx); a device that writes without reading is closed
#   and the worker's memory stays bounded; the log does not grow by
#   hundreds of thousands of lines; the other devices stay online and both
#   workers keep their presence heartbeat.
# Loopback only; every loop is bounded.
# ASan keeps freed memory in quarantine (256 MiB by default), which would
# make every worker "grow" under connection churn; a small quarantine lets
# the memory check below see what fleetd itself holds.
# Appended, so that it holds also under tests/run.sh, which sets ASAN_OPTIONS.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}:quarantine_size_mb=4:thread_local_quarantine_size_kb=64"
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

harness_init
pki_init
fleetd_start 2

TOKEN=$(admin_token operator)
enrollment_token 100 t-hostile

device_field() {
	api GET "/api/v1/devices/$1"
	jq -r ".$2" <<<"$BODY"
}
device_online() { [ "$(device_field "$1" online)" = true ]; }
# The parts of a device row a hostile hello could overwrite.
device_facts() {
	psql_q "SELECT model, coalesce(fw_version, ''), coalesce(agent_version, ''), coalesce(inventory::text, '') FROM devices WHERE id = '$1'"
}

for n in victim other f1 f2 reader; do
	check "device $n enrolled" device_enroll "$n" victim-model
done
VICTIM=$(id_of victim)
HELLO='{"type":"hello","seq":1,"agent_version":"1.0.0","fw_version":"1.0.0","model":"victim-model","boot_id":"b1","uptime":5,"addresses":["127.0.0.1"],"config_version":0,"config_hash":"","inventory":{"cpu":"real"}}'
EVIL=$(jq -c --arg id "$VICTIM" '.model = "evil" | .fw_version = "6.6.6" | .inventory = {"evil": true} | .device_id = $id' <<<"$HELLO")

# The victim and another device are connected throughout (they answer pings).
ws_bg victim victim "send $HELLO" "read 5" "drain 240"
VICTIM_PID=$LAST_PID
ws_bg other other "send $HELLO" "read 5" "drain 240"
OTHER=$(id_of other)
check "victim online" wait_for "victim online" 10 device_online "$VICTIM"
check "other device online" wait_for "other online" 10 device_online "$OTHER"
wait_for "victim's hello stored" 5 test "$(device_field "$VICTIM" fw_version)" = 1.0.0 || true
FACTS=$(device_facts "$VICTIM")
SESSION_AT=$(psql_q "SELECT connected_at FROM device_sessions WHERE device_id = '$VICTIM'")

# ---- identity ----------------------------------------------------------------
# A clientAuth certificate signed directly by the root, naming the victim.
cat >"$T/leaf.cnf" <<EOT
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:urn:fleet:device:$VICTIM
EOT
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/evil.key" 2>/dev/null
openssl req -new -key "$T/evil.key" -subj "/CN=$VICTIM" -out "$T/evil.csr" 2>/dev/null
openssl x509 -req -in "$T/evil.csr" -CA "$T/pki/root/root.pem" \
	-CAkey "$T/pki/root/root.key" -CAcreateserial -days 30 -sha256 \
	-extfile "$T/leaf.cnf" -out "$T/root-signed.pem" 2>/dev/null
check "the root-signed certificate verifies against the fleet bundle (openssl verify)" \
	openssl verify -CAfile "$FLEET_CA" -purpose sslclient "$T/root-signed.pem"
out=$($WS --port "$DEVICE_PORT" --ca "$FLEET_CA" --cert "$T/root-signed.pem" \
	--key "$T/evil.key" "send $EVIL" "read 3" || true)
check "root-signed client certificate: refused in the handshake" grep -q '^REFUSED' <<<"$out"
check "root-signed client certificate: no welcome" not grep -q welcome <<<"$out"

# A certificate from the issuing CA that PostgreSQL does not know (not
# enrolled): the handshake passes, but the session is refused before any of
# its messages is read.
if issuing_ca_sign "$T/evil.csr" "$T/unknown.pem" -days 30; then
	# Several times, so that it meets the victim's worker too (the kernel
	# picks the worker): an unchecked session must not push the victim's
	# live session out.
	for i in 1 2 3 4 5 6; do
		out=$($WS --port "$DEVICE_PORT" --ca "$FLEET_CA" --cert "$T/unknown.pem" \
			--key "$T/evil.key" "send $EVIL" "read 5" "read 5" || true)
		grep -q '^CLOSE 1008' <<<"$out" || sed 's/^/# got: /' <<<"$out"
		check "unknown issuing-CA certificate ($i): closed with 1008" \
			grep -q '^CLOSE 1008' <<<"$out"
		check "unknown issuing-CA certificate ($i): its hello was never read (no welcome)" \
			not grep -q welcome <<<"$out"
	done
else
	fail "openssl ca could not issue the unknown certificate: $(tail -n 3 "$T/unknown.pem.log")"
fi
# A duration, not a wait: this checks that nothing happened, so there is
# no event to wait for; 1 s lets any job a hostile session might have
# queued run before the victim's rows are read.
sleep 1
assert_eq "$(device_facts "$VICTIM")" "$FACTS" "the victim's row is unchanged"
assert_eq "$(psql_q "SELECT connected_at FROM device_sessions WHERE device_id = '$VICTIM'")" \
	"$SESSION_AT" "the victim's session row is its own, untouched"
check "the victim's live session was not closed" not grep -q '^CLOSE\|^EOF' "$T/victim.log"

# TLS resumption is refused on the device listener (every handshake checks
# the certificate and the revoked set again).
out=$(timeout 30 openssl s_client -connect "127.0.0.1:$DEVICE_PORT" \
	-servername localhost -CAfile "$FLEET_CA" -cert "$T/dev/reader.pem" \
	-key "$T/dev/reader.key" -reconnect </dev/null 2>&1 || true)
check "device listener: handshakes succeed (s_client -reconnect)" grep -q '^New, ' <<<"$out"
check "device listener: no session is resumed" not grep -q '^Reused, ' <<<"$out"

# ---- listener separation: the device port is not the API -------------------
dev_curl() { # METHOD PATH [args]: status of a request on the device port
	local m=$1 p=$2
	shift 2
	curl -s --max-time 10 --cacert "$FLEET_CA" --cert "$T/dev/reader.pem" \
		--key "$T/dev/reader.key" -o "$T/dev.body" -w '%{http_code}' \
		-X "$m" -H "Authorization: Bearer $TOKEN" "$@" \
		"https://localhost:$DEVICE_PORT$p" || true
}
for p in /api/v1/devices /healthz /pki/v1/ca.pem /agent/v1 /; do
	st=$(dev_curl GET "$p")
	check "device port: GET $p is not served ($st)" test "$st" = 404 -o "$st" = 426 -o "$st" = 000
	check "device port: GET $p shows no API data" not grep -q "$VICTIM" "$T/dev.body"
done
st=$(dev_curl POST /enroll/v1 -H 'Content-Type: application/json' \
	--data "{\"token\": \"$ENROLL\", \"csr\": \"x\"}")
check "device port: POST /enroll/v1 is not served ($st)" test "$st" = 405 -o "$st" = 404 -o "$st" = 000
st=$(dev_curl DELETE "/api/v1/devices/$VICTIM")
check "device port: DELETE is not served ($st)" test "$st" = 405 -o "$st" = 404 -o "$st" = 000
assert_eq "$(device_field "$VICTIM" status)" active "the victim is still active"
out=$(ws reader --protocol '' "send $HELLO" "read 3" || true)
check "device port: a websocket without the fleet.v1 subprotocol is refused" grep -q '^REFUSED' <<<"$out"
out=$(ws reader --protocol chat "send $HELLO" "read 3" || true)
check "device port: a websocket with another subprotocol is refused" grep -q '^REFUSED' <<<"$out"
out=$(ws reader --path /agent/v2 "send $HELLO" "read 3" || true)
check "device port: a websocket on another path is refused" grep -q '^REFUSED' <<<"$out"

# ---- TLS policy on both listeners --------------------------------------------
# tls_ok PORT ARGS...: the handshake completes (with the reader's
# certificate, which the api listener ignores).
tls_ok() {
	local port=$1
	shift
	timeout 20 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
		-CAfile "$FLEET_CA" -cert "$T/dev/reader.pem" -key "$T/dev/reader.key" \
		"$@" </dev/null >"$T/s_client.out" 2>&1 &&
		grep -q 'Cipher is [A-Z0-9]' "$T/s_client.out" &&
		! grep -q 'Cipher is (NONE)' "$T/s_client.out"
}
for port in "$API_PORT" "$DEVICE_PORT"; do
	name=api
	[ "$port" = "$DEVICE_PORT" ] && name=device
	for c in ECDHE-ECDSA-AES128-SHA ECDHE-ECDSA-AES256-SHA384 ECDHE-ECDSA-AES128-SHA256 AES128-GCM-SHA256 AES256-SHA; do
		check "$name listener: TLS 1.2 $c refused" not tls_ok "$port" -tls1_2 -cipher "$c"
	done
	for c in ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305; do
		check "$name listener: TLS 1.2 $c accepted" tls_ok "$port" -tls1_2 -cipher "$c"
	done
	check "$name listener: TLS 1.3 accepted" tls_ok "$port" -tls1_3
	check "$name listener: TLS 1.1 refused" not tls_ok "$port" -tls1_1 -cipher 'ALL:@SECLEVEL=0'
done

# ---- websocket rules -----------------------------------------------------------
out=$(ws reader "unmasked $HELLO" "wait-close 5" || true)
check "an unmasked client frame closes with 1002" grep -q '^CLOSE 1002' <<<"$out"
check "an unmasked client frame is not processed (no welcome)" not grep -q welcome <<<"$out"

# ---- fairness: flooders, the API, memory, the log ---------------------------
NET1=$(fleetd_child fleetd-net1)
NET2=$(fleetd_child fleetd-net2)
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
RSS1=$(rss_kib "$NET1")
RSS2=$(rss_kib "$NET2")
LINES0=$(wc -l <"$T/fleetd.log")

# flooder NAME SECONDS: reconnects and floods hellos without reading until
# SECONDS have passed (bounded: at most 200 connections).
flooder() {
	local name=$1 end=$(($(date +%s) + $2))
	for _ in $(seq 1 200); do
		[ "$(date +%s)" -lt "$end" ] || break
		ws "$name" "flood 20000 $HELLO" || true
	done
}
flooder f1 20 >"$T/flood-f1.log" 2>&1 &
F1=$!
flooder f2 20 >"$T/flood-f2.log" 2>&1 &
F2=$!
HARNESS_PIDS+=("$F1" "$F2")

# The admin API while the flood runs: 4 parallel callers, 25 calls each.
caller() {
	for _ in $(seq 1 25); do
		curl -s --max-time 20 --cacert "$FLEET_CA" -o /dev/null \
			-w '%{http_code} %{time_total}\n' \
			-H "Authorization: Bearer $TOKEN" \
			"$FLEET_SERVER/api/v1/devices?limit=50"
	done
}
# The flood has started: each flooder's hello reached fleetd (its device
# came online) or a first flood connection already ended.
flood_started() {
	local n
	for n in f1 f2; do
		device_online "$(id_of "$n")" || test -s "$T/flood-$n.log" || return 1
	done
}
check "the flooders are connected and flooding" \
	wait_for "the flooders' first hellos" 15 flood_started
CALLERS=()
for i in 1 2 3 4; do
	caller >"$T/api-$i.out" &
	CALLERS+=("$!")
done
wait "${CALLERS[@]}" || true
cat "$T"/api-*.out >"$T/api.out"
TOTAL=$(wc -l <"$T/api.out")
NON2XX=$(awk '$1 !~ /^2/' "$T/api.out" | wc -l)
N503=$(awk '$1 == 503' "$T/api.out" | wc -l)
SLOWEST=$(awk '{ print $2 }' "$T/api.out" | sort -n | tail -n 1)
echo "# API under the flood: $TOTAL calls, $NON2XX non-2xx, $N503 503, slowest ${SLOWEST}s"
assert_eq "$TOTAL" 100 "all 100 API calls answered during the flood"
assert_eq "$N503" 0 "no API call answered 503 during the flood"
assert_eq "$NON2XX" 0 "every API call answered 2xx during the flood"
check "no API call took more than 5 s (slowest ${SLOWEST}s)" \
	awk -v s="$SLOWEST" 'BEGIN { exit !(s < 5) }'
check "the other device stays online during the flood" device_online "$OTHER"
check "the victim stays online during the flood" device_online "$VICTIM"
flooders_done() { not kill -0 "$F1" && not kill -0 "$F2"; }
wait_for "the flooders end (20 s each)" 30 flooders_done || true
check "a flooder that does not read is closed by the server" \
	grep -q '^EOF' "$T/flood-f1.log"
check "no flood connection delivered all of its 20000 hellos" \
	not grep -q '^SENT 20000' "$T/flood-f1.log" "$T/flood-f2.log"
check "flooders were refused with 1008 reasons in the log" \
	grep -q 'keeps flooding; closing\|does not read' "$T/fleetd.log"
RSS1M=$(rss_kib "$NET1")
RSS2M=$(rss_kib "$NET2")
echo "# worker RSS after the hello floods: net1 ${RSS1} -> ${RSS1M} KiB, net2 ${RSS2} -> ${RSS2M} KiB"

# One device writes without reading, on one connection: closed, and memory
# stays bounded.
out=$(ws reader "flood 300000 $HELLO" || true)
check "a device writing 300000 messages without reading is cut off" grep -q '^EOF' <<<"$out"
echo "# $(grep -m1 '^EOF\|^SENT' <<<"$out")"
RSS1B=$(rss_kib "$NET1")
RSS2B=$(rss_kib "$NET2")
echo "# worker RSS: net1 ${RSS1} -> ${RSS1B} KiB, net2 ${RSS2} -> ${RSS2B} KiB"
check "net1 grew by less than 32 MiB" test $((RSS1B - RSS1)) -lt 32768
check "net2 grew by less than 32 MiB" test $((RSS2B - RSS2)) -lt 32768
LINES=$(($(wc -l <"$T/fleetd.log") - LINES0))
echo "# fleetd log lines during the floods: $LINES"
check "the log grew by fewer than 5000 lines ($LINES)" test "$LINES" -lt 5000
# A device that makes fleetd log on every message: 3 x 101 bad messages
# (each session is closed with 1008) give at most a burst of lines, then
# one summary with the count.
READER=$(id_of reader)
for _ in 1 2 3; do
	out=$(ws reader "garbage 101" "wait-close 10" || true)
	check "garbage flood closed with 1008" grep -q '^CLOSE 1008' <<<"$out"
done
bad=$(grep -c "info \[$READER\] channel: malformed" "$T/fleetd.log" || true)
# The limit is per process: 20 lines per 10 s in each of the 2 workers.
check "303 bad messages logged as at most 2 x 20 lines ($bad)" test "$bad" -le 40
check "and summarised with a count" wait_for "a summary line" 15 \
	grep -q "suppressed [0-9]* similar lines: \[$READER\] channel: malformed" "$T/fleetd.log"

# Presence after the floods: both workers heartbeat, the others are online.
live_workers() {
	test "$(psql_q "SELECT count(*) FROM workers WHERE heartbeat_at > now() - interval '6 seconds' AND (id LIKE '%:1:$NET1' OR id LIKE '%:2:$NET2')")" = 2
}
check "both workers keep their presence heartbeat" live_workers
# A duration, not a wait: heartbeat_timeout (6 s) plus a tick must pass
# after the floods for a worker that lost its heartbeat to show.
sleep 7
check "both workers still heartbeat after heartbeat_timeout" live_workers
check "the other device is online after the floods" device_online "$OTHER"
check "the victim is online after the floods" device_online "$VICTIM"
check "the victim's session survived everything" not grep -q '^CLOSE\|^EOF' "$T/victim.log"
assert_eq "$(device_facts "$VICTIM")" "$FACTS" "the victim's row is still unchanged"
out=$(ws reader "send $HELLO" "read 5" "close")
check "a new session still gets welcome" grep -q '"type":"welcome"' <<<"$out"
check "fleetd's workers are the same processes (nothing crashed)" \
	test "$(fleetd_child fleetd-net1)/$(fleetd_child fleetd-net2)" = "$NET1/$NET2"
kill -TERM "$VICTIM_PID" 2>/dev/null || true

harness_done
