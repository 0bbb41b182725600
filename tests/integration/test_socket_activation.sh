#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Socket activation (docs/ops/restarts.md): fleetd takes its api and device
# listen sockets from the service manager (sd_listen_fds(3): LISTEN_FDS,
# LISTEN_PID, LISTEN_FDNAMES "api:device"), as fleetd.socket passes them.
# sockhold.py plays the socket unit (there is no systemd in the test
# container): it holds the sockets and restarts fleetd on SIGHUP.
# - fleetd serves on the sockets it was given and binds none itself;
# - a restart refuses nothing: API requests made during it wait in the
#   queue and are answered by the new fleetd, and every device comes
#   back with exactly one new connection (none refused, none backing
#   off);
# - the sockets outlive fleetd (the old supervisor does not shut them
#   down);
# - a descriptor that is not a listening socket is refused with a clear
#   error and a non-zero exit; LISTEN_PID naming another process is
#   ignored (fleetd binds its own).
set -euo pipefail
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"
require_tools python3 curl jq ss

harness_init
pki_init
fleetd_write_config 2
HOLD=$FLEET_SOURCE_DIR/tests/integration/sockhold.py
spawn hold python3 "$HOLD" --listen "api=127.0.0.1:$API_PORT" \
	--listen "device=127.0.0.1:$DEVICE_PORT" --pidfile "$T/fleetd.pid" --grace 8 \
	-- fleetd -c "$T/fleetd.conf" serve
HOLD_PID=$LAST_PID
wait_healthy
FLEETD_PID=$(cat "$T/fleetd.pid")
check "fleetd took the api socket from the service manager" \
	grep -q "the api listener is the service manager's" "$T/hold.log"
check "... and the device socket" \
	grep -q "the device listener is the service manager's" "$T/hold.log"
check "fleetd bound no listen socket of its own (only the held ones listen)" \
	test "$(ss -Htln "sport = :$API_PORT" | wc -l)" = 1

TOKEN=$(admin_token operator)
enrollment_token 20 sockact
spawn sim fleet-sim --count 8 --token "$ENROLL" --api "$FLEET_SERVER" \
	--ca "$FLEET_CA" --state "$T/sim" --status-file "$T/sim.json" \
	--model sockact --log-level info
sim() { jq -r ".$1" "$T/sim.json" 2>/dev/null || echo 0; }
sim_online_is() { [ "$(sim online)" = "$1" ]; }
check "8 simulated devices online" wait_for "8 online" 60 sim_online_is 8

# ---- a restart refuses nothing ----------------------------------------------
# Devices reset their backoff after 60 s online; a restart before that
# still needs no backoff when no connection fails.
attempts0=$(sim attempts)
: >"$T/during.txt"
# healthz_once: one request, its status (or curl's exit) into during.txt;
# curl's exit code 7 would be a refused connection.
healthz_once() {
	curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 \
		--cacert "$FLEET_CA" "$FLEET_SERVER/healthz" >>"$T/during.txt" ||
		echo "curl-exit-$?" >>"$T/during.txt"
}
# Requests in a loop until fleetd is back, and two started right after the
# HUP (the old fleetd stopping, the new one not yet serving), so that some
# certainly fall into the restart however slow the machine is.
requests_during() {
	local i
	for ((i = 0; i < 60; i++)); do
		[ ! -e "$T/restarted" ] || break
		healthz_once
		sleep 0.1
	done
}
requests_during &
REQ_PID=$!
sleep 0.5
kill -HUP "$HOLD_PID"
healthz_once &
GAP1_PID=$!
healthz_once
new_fleetd() { [ "$(cat "$T/fleetd.pid")" != "$FLEETD_PID" ]; }
check "the service manager restarted fleetd" wait_for "a new fleetd" 30 new_fleetd
wait_healthy
touch "$T/restarted"
wait "$REQ_PID" "$GAP1_PID"
FLEETD_PID=$(cat "$T/fleetd.pid")
n=$(grep -c . "$T/during.txt")
echo "# requests around the restart: $n; answers: $(sort "$T/during.txt" | uniq -c | tr '\n' ';')"
assert_eq "$(grep -c 'curl-exit-7' "$T/during.txt" || true)" 0 \
	"no request was refused during the restart"
assert_eq "$(grep -vc '^200$' "$T/during.txt" || true)" 0 \
	"every request made during the restart was answered 200"
check "all 8 devices online again" wait_for "8 online again" 60 \
	sim_back_online "$T/sim.json" $((attempts0 + 8)) 8
assert_eq "$(($(sim attempts) - attempts0))" 8 \
	"each device came back with one connection (none refused, no backoff)"
check "the new fleetd took the held sockets too" \
	test "$(grep -c "the device listener is the service manager's" "$T/hold.log")" = 2

# ---- bad input ------------------------------------------------------------
# fd 3 is /dev/null, not a socket: refused, with the reason, before serving.
fleetd_write_config 2
rc=0
bash -c 'exec env LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=api fleetd -c "$1" serve 3</dev/null' \
	_ "$T/fleetd.conf" >"$T/notsock.log" 2>&1 || rc=$?
check "a descriptor that is not a listening socket: non-zero exit ($rc)" test "$rc" != 0
check "... saying which descriptor and why" \
	grep -q 'descriptor 3 ("api") is not a listening stream socket' "$T/notsock.log"
# LISTEN_PID of another process: the sockets are not ours; fleetd binds
# its own (ports of its own: the held ones are busy).
sed -i "s/^api_port = .*/api_port = $(free_port)/; s/^device_port = .*/device_port = $(free_port)/" \
	"$T/fleetd.conf"
OTHER_API=$(sed -n 's/^api_port = //p' "$T/fleetd.conf")
LISTEN_PID=1 LISTEN_FDS=1 LISTEN_FDNAMES=api spawn other fleetd -c "$T/fleetd.conf" serve
OTHER_PID=$LAST_PID
check "LISTEN_PID of another process: fleetd binds its own sockets" \
	wait_for "the other fleetd" 30 curl -sf --max-time 2 --cacert "$FLEET_CA" \
	"https://localhost:$OTHER_API/healthz"
check "... and says nothing of socket activation" \
	not grep -q "service manager's" "$T/other.log"
kill -TERM "$OTHER_PID"
wait_for "the other fleetd exits" 15 not kill -0 "$OTHER_PID" || true

# The holder stops fleetd on SIGTERM (harness_cleanup sends it).
harness_done
