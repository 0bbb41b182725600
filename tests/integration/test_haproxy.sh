#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Many hosts (issue 15, DESIGN.md §11): two fleetd instances (two
# supervisors, own api/device/metrics ports) on one PostgreSQL and one pki
# directory, behind Debian's HAProxy in TCP mode, run from
# deploy/haproxy/haproxy.cfg with loopback ports substituted. Six real
# fleet-agents enroll and connect through HAProxy only (device_url names
# HAProxy's device port). TLS is verified everywhere: curl and the agents
# check fleetd's certificate (name localhost) through HAProxy, HAProxy's
# /readyz checks verify it too, and the device port still asks for a
# client certificate (TLS ends in fleetd).
# - the devices spread over both instances (device_sessions -> workers);
# - a config change made through instance B's own port reaches the
#   devices connected to instance A (file written, in_sync);
# - kill -9 of A's supervisor: its ca and net workers exit too (parent-death
#   signal), every device is online again through HAProxy within 10 s
#   (measured and printed), and a loop of GET /api/v1/devices through
#   HAProxy loses at most the call in flight at the kill (this check fails
#   in about 2 runs of 3 today: a call HAProxy sends to A while A's
#   workers drain is reset, docs/scale-out.md "When an instance dies",
#   point 4, names the fix);
# - A restarted: HAProxy marks it up, devices that reconnect land on it
#   (leastconn), and a clone made through B's own port reaches them.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

NAGENTS=6
export HEARTBEAT_INTERVAL=2s HEARTBEAT_TIMEOUT=6s

harness_init
pki_init

# ---- ports, instance configs ---------------------------------------------
HA_API=$(free_port)
HA_DEV=$(free_port)
HA_STATS=$(free_port)
# instance_conf NAME: $T/NAME.conf; sets NAME_API, NAME_DEV.
instance_conf() {
	fleetd_conf_write "$T/$1.conf" "$T/pki" "workers = 2
heartbeat_interval = $HEARTBEAT_INTERVAL
heartbeat_timeout = $HEARTBEAT_TIMEOUT
log_level = info
metrics_port = $(free_port)
device_url = wss://localhost:$HA_DEV/agent/v1
crl_url = https://localhost:$HA_API/pki/v1/crl"
	printf -v "${1}_API" '%s' "$API_PORT"
	printf -v "${1}_DEV" '%s' "$DEVICE_PORT"
}
instance_conf A
instance_conf B
ports=$(printf '%s\n' "$HA_API" "$HA_DEV" "$HA_STATS" "$A_API" "$A_DEV" \
	"$B_API" "$B_DEV" | sort -u | wc -l)
assert_eq "$ports" 7 "seven distinct loopback ports"

# instance_start NAME: a supervisor for $T/NAME.conf; sets NAME_PID.
instance_start() {
	spawn "fleetd-$1-$(date +%s%N)" fleetd -c "$T/$1.conf" serve
	printf -v "${1}_PID" '%s' "$LAST_PID"
	local port_var="${1}_API"
	wait_for "instance $1 /healthz" 30 curl -sf --max-time 2 \
		--cacert "$FLEET_CA" "https://localhost:${!port_var}/healthz"
}
instance_start A
instance_start B
export FLEET_SERVER="https://localhost:$HA_API"
B_SERVER="https://localhost:$B_API"

# ---- HAProxy from the example configuration ------------------------------
# Loopback ports and this test's CA for the example's addresses; no chroot,
# no user switch, no daemon, logs on stdout ($T/haproxy.log).
sed -E -e '/^\s*(chroot|user|group|daemon)(\s|$)/d' \
	-e "s#^(\s*)log /dev/log .*#\1log stdout format raw local0#" \
	-e "s#^(\s*)maxconn [0-9]+\$#\1maxconn 2000#" \
	-e "s#/run/haproxy/admin.sock#$T/haproxy.sock#" \
	-e "s#/etc/haproxy/fleet-ca.pem#$FLEET_CA#" \
	-e "s#fleet\.example\.com#localhost#g" \
	-e "s#bind :8443\$#bind 127.0.0.1:$HA_API#" \
	-e "s#bind :8444\$#bind 127.0.0.1:$HA_DEV#" \
	-e "s#bind 127\.0\.0\.1:8404\$#bind 127.0.0.1:$HA_STATS#" \
	-e "s#10\.0\.0\.11:8443\$#127.0.0.1:$A_API#" \
	-e "s#10\.0\.0\.12:8443\$#127.0.0.1:$B_API#" \
	-e "s#10\.0\.0\.11:8444\$#127.0.0.1:$A_DEV#" \
	-e "s#10\.0\.0\.12:8444\$#127.0.0.1:$B_DEV#" \
	"$FLEET_SOURCE_DIR/deploy/haproxy/haproxy.cfg" >"$T/haproxy.cfg"
# unsubstituted: a line of the example left as it was (comments aside).
unsubstituted() {
	grep -Ev '^\s*#' "$T/haproxy.cfg" | grep -Eq \
		'10\.0\.0\.|example\.com|/etc/haproxy|/run/haproxy|:84(43|44|04)$|^\s*(chroot|daemon)|maxconn 200000'
}
check "every example address was substituted" not unsubstituted
check "haproxy -c accepts the generated configuration" \
	haproxy -c -q -f "$T/haproxy.cfg"
spawn haproxy haproxy -db -f "$T/haproxy.cfg"
HA_PID=$LAST_PID

# ha_status BACKEND SERVER: HAProxy's view (UP, DOWN, ...) from its stats CSV.
ha_status() {
	curl -sf --max-time 2 "http://127.0.0.1:$HA_STATS/stats;csv" |
		awk -F, -v b="$1" -v s="$2" '$1 == b && $2 == s { print $18 }'
}
ha_up() { [ "$(ha_status "$1" "$2")" = UP ]; }
for s in fleet1 fleet2; do
	check "HAProxy: api $s up (verified TLS /readyz check)" \
		wait_for "api $s up" 20 ha_up fleet_api "$s"
	check "HAProxy: device $s up (TCP check)" \
		wait_for "device $s up" 20 ha_up fleet_device "$s"
done
# Nothing below means anything without both instances behind HAProxy.
[ "$FAILED" = 0 ] || { echo "HAProxy did not come up; stopping here"; exit 1; }

# TLS ends in fleetd: through HAProxy the client sees fleetd's certificate
# (verified for localhost), and the device port wants a client certificate.
check "api through HAProxy: fleetd's certificate verifies for localhost" \
	curl -sf --max-time 5 --cacert "$FLEET_CA" "$FLEET_SERVER/healthz" -o /dev/null
check "device port through HAProxy: refused without a client certificate" \
	not curl -s --max-time 5 --cacert "$FLEET_CA" -o /dev/null \
	"https://localhost:$HA_DEV/agent/v1"

TOKEN=$(admin_token operator)
api POST /api/v1/tokens -H 'Content-Type: application/json' \
	--data "{\"uses\": $NAGENTS, \"expires_in\": \"1h\", \"labels\": {\"site\": \"ha\"}}"
assert_eq "$STATUS" 201 "enrollment token created through HAProxy"
jq -r .token <<<"$BODY" >"$T/token"
chmod 600 "$T/token"

# ---- agents, through HAProxy only ------------------------------------------
declare -A AGENT_PID
agent_start() { # agent_start N
	local n=$1
	mkdir -p "$T/a$n"
	cat >"$T/a$n.conf" <<EOT
api_url = $FLEET_SERVER
ca_file = $FLEET_CA
state_dir = $T/a$n
token_file = $T/token
model = ha-x
log_level = info
EOT
	spawn "agent$n" env FLEET_AGENT_CONFIG_PATH="$T/a$n/app.json" \
		fleet-agent -c "$T/a$n.conf"
	AGENT_PID[$n]=$LAST_PID
}
agent_stop() {
	kill -TERM "${AGENT_PID[$1]}"
	wait_for "agent $1 exits" 10 not kill -0 "${AGENT_PID[$1]}"
	wait "${AGENT_PID[$1]}" 2>/dev/null || true
}
id_of_agent() { jq -r .device_id "$T/a$1/identity.json"; }

online_is() {
	api GET "/api/v1/devices?online=true&limit=100"
	[ "$STATUS" = 200 ] && [ "$(jq '.items | length' <<<"$BODY")" = "$1" ]
}

for n in $(seq 1 "$NAGENTS"); do agent_start "$n"; done
check "$NAGENTS agents online through HAProxy" \
	wait_for "$NAGENTS online" 60 online_is "$NAGENTS"
assert_eq "$(jq -r .device_server "$T/a1/identity.json")" \
	"wss://localhost:$HA_DEV/agent/v1" "enrollment gave the agents HAProxy's device URL"

# instance_of N: A or B, the instance whose net worker holds agent N's
# session (the worker's parent is that instance's supervisor); "-" if none.
instance_of() {
	local pid ppid
	pid=$(psql_q "SELECT w.pid FROM device_sessions s JOIN workers w ON w.id = s.worker_id WHERE s.device_id = '$(id_of_agent "$1")'")
	ppid=$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
	case "${ppid:--}" in
	"$A_PID") echo A ;;
	"$B_PID") echo B ;;
	*) echo - ;;
	esac
}
# on INSTANCE: the agents whose session is on INSTANCE.
on() {
	local n
	for n in $(seq 1 "$NAGENTS"); do
		[ "$(instance_of "$n")" = "$1" ] && echo "$n"
	done
	true
}
spread() { [ -n "$(on A)" ] && [ -n "$(on B)" ]; }
check "devices spread over both instances" wait_for "spread" 10 spread
echo "# on A: $(on A | xargs) / on B: $(on B | xargs)"
echo "# PostgreSQL connections of both instances (2 net workers each):" \
	"$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE datname = '$DB' AND pid <> pg_backend_pid()")"

state_is() { # state_is N STATE: agent N's config state in the API
	api GET "/api/v1/devices/$(id_of_agent "$1")/config"
	[ "$STATUS" = 200 ] && [ "$(jq -r .state <<<"$BODY")" = "$2" ]
}
file_is() { # file_is N JSON: agent N's file holds that document
	[ -f "$T/a$1/app.json" ] &&
		[ "$(jq -cS . "$T/a$1/app.json" 2>/dev/null)" = "$(jq -cS . <<<"$2")" ]
}
# on_b METHOD PATH [curl args]: api() through instance B's own port.
on_b() {
	local keep=$FLEET_SERVER
	FLEET_SERVER=$B_SERVER
	api "$@"
	FLEET_SERVER=$keep
}
# clone_on_b PROFILE JSON: a profile with one version, cloned to site=ha,
# all through instance B's own port.
clone_on_b() {
	on_b POST /api/v1/profiles -H 'Content-Type: application/json' \
		--data "{\"name\": \"$1\", \"description\": \"haproxy test\"}"
	assert_eq "$STATUS" 201 "profile $1 created through B"
	on_b POST "/api/v1/profiles/$1/versions" -H 'Content-Type: application/json' \
		--data "{\"document\": $2}"
	assert_eq "$STATUS" 201 "profile $1 version through B"
	on_b POST /api/v1/config/clone -H 'Content-Type: application/json' \
		--data "{\"source\": {\"profile\": \"$1\", \"version\": \"latest\"}, \"selector\": \"site=ha\"}"
	assert_eq "$STATUS" 201 "clone of $1 to site=ha through B"
}

# ---- a change through B reaches the devices on A -------------------------
V1='{"name": "app", "port": 8080, "via": "instance B"}'
clone_on_b app "$V1"
for n in $(on A); do
	check "clone through B reaches agent $n on A (file)" \
		wait_for "agent $n file" 10 file_is "$n" "$V1"
	check "agent $n on A in_sync" wait_for "agent $n in_sync" 10 state_is "$n" in_sync
done
for n in $(on B); do
	check "clone through B reaches agent $n on B" \
		wait_for "agent $n file" 10 file_is "$n" "$V1"
done

# ---- kill -9 instance A's supervisor ---------------------------------------
A_CHILDREN=$(pgrep -P "$A_PID" | xargs)
A_NET=$(for p in $A_CHILDREN; do
	case "$(cat "/proc/$p/comm")" in fleetd-net*) echo "$p" ;; esac
done | xargs)
assert_eq "$(wc -w <<<"$A_NET")" 2 "instance A has 2 net workers ($A_NET)"

# The API loop: GET /api/v1/devices through HAProxy, one call at a time,
# until $T/api-loop.stop exists (bounded: 1200 calls). One line per call:
# start and end time (uptime), http code, curl's exit status.
cat >"$T/api-loop.sh" <<'EOT'
#!/usr/bin/env bash
for _ in $(seq 1 1200); do
	[ -e "$1/api-loop.stop" ] && break
	t=$(cut -d' ' -f1 /proc/uptime)
	code=$(curl -s --max-time 5 --cacert "$FLEET_CA" -o /dev/null \
		-w '%{http_code} curl-exit-%{exitcode}' \
		-H "Authorization: Bearer $TOKEN" \
		"$FLEET_SERVER/api/v1/devices?limit=10") || true
	echo "$t $(cut -d' ' -f1 /proc/uptime) ${code:-000}" >>"$1/api-loop.tsv"
	sleep 0.05
done
EOT
chmod 755 "$T/api-loop.sh"
export TOKEN
spawn api-loop "$T/api-loop.sh" "$T"
LOOP_PID=$LAST_PID
loop_calls() { [ "$(wc -l <"$T/api-loop.tsv" 2>/dev/null || echo 0)" -ge "$1" ]; }
check "API loop running through HAProxy" wait_for "20 API calls" 20 loop_calls 20

# every_online_on_b: each agent's session is on a net worker of B, and the
# API (through HAProxy) counts all of them online.
every_online_on_b() {
	local n
	for n in $(seq 1 "$NAGENTS"); do
		[ "$(instance_of "$n")" = B ] || return 1
	done
	online_is "$NAGENTS"
}
T_KILL=$(cut -d' ' -f1 /proc/uptime)
kill -KILL "$A_PID"
wait "$A_PID" 2>/dev/null || true
# alive PID: running (a zombie left to an init that does not reap is gone).
alive() { [ -e "/proc/$1/status" ] && ! grep -q '^State:.*Z' "/proc/$1/status"; }
gone() { local p; for p in $A_CHILDREN; do ! alive "$p" || return 1; done; }
check "A's ca and net workers exit after its supervisor is killed" \
	wait_for "A's children gone" 10 gone
T_GONE=$(cut -d' ' -f1 /proc/uptime)
if wait_for "every device online on B" 15 every_online_on_b; then
	T_BACK=$(cut -d' ' -f1 /proc/uptime)
	secs=$(awk -v a="$T_KILL" -v b="$T_BACK" 'BEGIN { printf "%.2f", b - a }')
	echo "# A's children gone $(awk -v a="$T_KILL" -v b="$T_GONE" 'BEGIN { printf "%.2f", b - a }') s after kill -9; every device online again through HAProxy after $secs s"
	check "every device online again within 10 s (took $secs s)" \
		awk -v s="$secs" 'BEGIN { exit !(s < 10) }'
else
	fail "every device online again on B after kill -9 of A"
fi
check "HAProxy marks A down (api)" wait_for "api fleet1 down" 10 not ha_up fleet_api fleet1
check "HAProxy marks A down (device)" wait_for "device fleet1 down" 10 not ha_up fleet_device fleet1

# A few more calls after the recovery, then stop the loop.
n_now=$(wc -l <"$T/api-loop.tsv")
wait_for "20 more API calls" 20 loop_calls $((n_now + 20)) || true
: >"$T/api-loop.stop"
wait_for "API loop exits" 10 not kill -0 "$LOOP_PID" || true
# A call is in flight at the kill if it started before it and ended after.
total=$(wc -l <"$T/api-loop.tsv")
failed=$(awk '$3 != 200' "$T/api-loop.tsv" | wc -l)
inflight=$(awk -v k="$T_KILL" '$1 < k && $2 >= k' "$T/api-loop.tsv" | wc -l)
not_inflight=$(awk -v k="$T_KILL" '$3 != 200 && !($1 < k && $2 >= k)' "$T/api-loop.tsv" | wc -l)
after=$(awk -v k="$T_KILL" '$1 >= k' "$T/api-loop.tsv" | wc -l)
after_ok=$(awk -v k="$T_KILL" '$1 >= k && $3 == 200' "$T/api-loop.tsv" | wc -l)
echo "# API loop through HAProxy: $total calls, $inflight in flight at the kill, $after started after it ($after_ok answered 200), $failed failed:" \
	"$(awk -v k="$T_KILL" '$3 != 200 { printf "%s %s started %+.2f s from the kill; ", $3, $4, $1 - k }' "$T/api-loop.tsv")"
# HAProxy's view of api sessions that did not end normally (termination
# state other than --), for the record.
grep ' fleet_api fleet_api/' "$T/haproxy.log" | grep -v ' -- ' | head -n 5 |
	sed 's/^/# haproxy: /' || true
check "API loop: only calls in flight at the kill failed ($not_inflight others failed)" \
	test "$not_inflight" = 0
check "API loop: calls after the kill answered ($after_ok of $after)" \
	test "$after_ok" -ge 20

# ---- A restarted: devices that land on it get a change made through B -----
instance_start A
check "HAProxy marks A up again (api)" wait_for "api fleet1 up" 20 ha_up fleet_api fleet1
check "HAProxy marks A up again (device)" wait_for "device fleet1 up" 20 ha_up fleet_device fleet1
# Three agents reconnect (a restart reuses the identity); leastconn sends
# them to A, which holds no device.
for n in 1 2 3; do
	agent_stop "$n"
	agent_start "$n"
done
check "$NAGENTS agents online again" wait_for "$NAGENTS online" 30 online_is "$NAGENTS"
on_a() { [ -n "$(on A)" ]; }
check "reconnected devices land on the restarted A" wait_for "a device on A" 15 on_a
echo "# after the restart: on A: $(on A | xargs) / on B: $(on B | xargs)"
V2='{"name": "app2", "port": 9191, "via": "instance B after the restart"}'
clone_on_b app2 "$V2"
ON_A=$(on A)
for n in $ON_A; do
	check "clone through B reaches agent $n on the restarted A (file)" \
		wait_for "agent $n file" 10 file_is "$n" "$V2"
	check "agent $n on A in_sync" wait_for "agent $n in_sync" 10 state_is "$n" in_sync
done
for n in $(seq 1 "$NAGENTS"); do
	grep -qw "$n" <<<"$ON_A" && continue
	check "clone through B reaches agent $n" wait_for "agent $n file" 10 file_is "$n" "$V2"
done

check "HAProxy ran through the whole test" kill -0 "$HA_PID"

harness_done
