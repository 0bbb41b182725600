#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The fleetd process model under failure (the "fleetd service" acceptance):
# a SIGKILLed net worker is restarted and the API keeps answering; a
# SIGKILLed (or stopped) ca process makes enrollments fail cleanly with 503
# problem+json, never hang or 500, and nothing is half-written; a
# PostgreSQL restart under fleetd gives 503 during the outage and normal
# answers afterwards; SIGTERM exits 0 and leaves no children; a SIGKILLed
# supervisor leaves no orphan workers. Clients are curl and openssl.
# Started as root (as on CI), the children run as the user fleetd: the ca
# only after it loaded the issuing-CA key, which no worker can open, also
# after restarts and SIGHUP; a missing user or wrong key modes refuse to
# start; started by an ordinary user, nothing changes hands and no user is
# needed (docs/internals/privsep.md).
# It stops PostgreSQL under fleetd: a cluster of its own, not the suite's.
HARNESS_PRIVATE_PG=1
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

harness_init
pki_init
fleetd_start 2

ADMIN=$(admin_token admin)
ENROLLED=0 # successful enrollments, to compare with the devices table

TOKEN=$ADMIN api POST /api/v1/tokens -H 'Content-Type: application/json' \
	--data '{"uses": 500, "expires_in": "1h", "labels": {"test": "service"}}'
assert_eq "$STATUS" 201 "an enrollment token is made"
ENROLL_TOKEN=$(jq -r .token <<<"$BODY")
ENROLL_TOKEN_ID=$(jq -r .id <<<"$BODY")

# Enrollment requests, prepared up front: a P-256 key and CSR each.
NCSR=12
for i in $(seq 1 "$NCSR"); do
	openssl ecparam -name prime256v1 -genkey -noout -out "$T/key$i.pem"
	openssl req -new -key "$T/key$i.pem" -subj "/CN=device-$i" -out "$T/csr$i.pem"
	jq -n --arg t "$ENROLL_TOKEN" --rawfile c "$T/csr$i.pem" \
		'{token: $t, csr: $c, model: "svc-test"}' >"$T/enroll$i.json"
done

# enroll_bg TAG I: one enrollment in the background; writes
# "$T/res-TAG.meta" as "STATUS CONTENT-TYPE SECONDS" and the body beside it.
enroll_bg() {
	local tag=$1 i=$2
	curl -sS --max-time 30 --cacert "$FLEET_CA" -o "$T/res-$tag.body" \
		-w '%{http_code} %{content_type} %{time_total}' \
		-H 'Content-Type: application/json' \
		--data-binary @"$T/enroll$i.json" "$FLEET_SERVER/enroll/v1" \
		>"$T/res-$tag.meta" 2>/dev/null &
}

# classify TAGS...: counts 201s into OK201 and clean 503s into OK503;
# anything else (500, 000 = hang or reset, a 503 that is not
# problem+json service-unavailable) goes to BAD with a description.
classify() {
	OK201=0 OK503=0 BAD=
	local tag st ct secs
	for tag in "$@"; do
		st= ct= secs=
		# curl's -w output has no newline: read fails at EOF but reads
		read -r st ct secs <"$T/res-$tag.meta" || true
		st=${st:-000}
		case $st in
		201)
			OK201=$((OK201 + 1))
			ENROLLED=$((ENROLLED + 1))
			;;
		503)
			if [ "$ct" = application/problem+json ] &&
				[ "$(jq -r .type "$T/res-$tag.body")" = urn:fleet:problem:service-unavailable ]; then
				OK503=$((OK503 + 1))
			else
				BAD="$BAD $tag:503($ct)"
			fi
			;;
		*) BAD="$BAD $tag:$st(${secs:-?}s)" ;;
		esac
	done
}

# enroll_batch TAG N: N enrollments in parallel, waits, classifies.
enroll_batch() {
	local tag=$1 n=$2 tags=()
	for k in $(seq 1 "$n"); do
		enroll_bg "$tag-$k" $(((k - 1) % NCSR + 1))
		tags+=("$tag-$k")
	done
	wait_bg
	classify "${tags[@]}"
}

# Waits for the background curls (not for fleetd, a harness child too).
wait_bg() {
	local pid
	for pid in $(jobs -pr); do
		[ "$pid" = "$FLEETD_PID" ] && continue
		case " ${HARNESS_PIDS[*]} " in *" $pid "*) continue ;; esac
		wait "$pid" 2>/dev/null || true
	done
}

# get_batch N PATH: N GETs in parallel (admin token, 10 s limit each);
# prints the number that answered 200.
get_batch() {
	local n=$1 path=$2
	for k in $(seq 1 "$n"); do
		curl -s --max-time 10 --cacert "$FLEET_CA" -o /dev/null \
			-H "Authorization: Bearer $ADMIN" -w '%{http_code}\n' \
			"$FLEET_SERVER$path" >"$T/get-$k.code" 2>/dev/null &
	done
	wait_bg
	cat "$T"/get-*.code | grep -c '^200$' || true
	rm -f "$T"/get-*.code
}

devices() { psql_q "SELECT count(*) FROM devices"; }

ROOT=0
[ "$(id -u)" = 0 ] && ROOT=1
if [ "$ROOT" = 1 ]; then
	FUID=$(id -u fleetd)
	FGID=$(id -g fleetd)
	FLEETD_IDS="uid:$FUID $FUID $FUID $FUID gid:$FGID $FGID $FGID $FGID groups:"
fi
KEY=$T/pki/issuing/issuing.key

uid_is() { [ "$(proc_uid "$1" 2>/dev/null)" = "$2" ]; }

# serving N SLOT: the log shows worker SLOT ready at least N times.
serving() { [ "$(grep -c "worker $2: serving api" "$T/fleetd.log")" -ge "$1" ]; }

# enroll_ok TAG N: a batch of N enrollments all succeed.
enroll_ok() {
	enroll_batch "$1" "$2"
	[ "$OK201" = "$2" ]
}

# gone PIDS...: none of them runs any more.
gone() {
	local pid
	for pid in "$@"; do
		! kill -0 "$pid" 2>/dev/null || return 1
	done
}

# children_dropped WHAT: as root, every child of the supervisor runs as
# fleetd (all ids, no groups, no capabilities) and holds no key file open.
children_dropped() {
	[ "$ROOT" = 1 ] || return 0
	local name pid
	for name in fleetd-ca fleetd-net1 fleetd-net2; do
		pid=$(fleetd_child "$name" || true)
		if [ -z "$pid" ]; then
			fail "$1: $name is not running"
			continue
		fi
		# The ca drops once it has loaded the key: wait for that.
		wait_for "$name drops to uid $FUID" 10 uid_is "$pid" "$FUID" || true
		assert_eq "$(proc_ids "$pid")" "$FLEETD_IDS" "$1: $name runs as fleetd"
		assert_eq "$(awk '/^Cap(Prm|Eff|Amb):/ { printf "%s ", $2 }' "/proc/$pid/status")" \
			"0000000000000000 0000000000000000 0000000000000000 " \
			"$1: $name has no capabilities"
		check "$1: $name holds no key of the issuing CA open" not fd_open "$pid" 'issuing\.key'
	done
}

# --- baseline -------------------------------------------------------------------
enroll_batch base 2
assert_eq "$OK201/$BAD" "2/" "enrollment works before anything is killed"

# --- privilege separation -------------------------------------------------------
if [ "$ROOT" = 1 ]; then
	assert_eq "$(proc_uid "$FLEETD_PID")" 0 "the supervisor stays root (to bind and restart)"
	children_dropped "at start"
	check "the issuing-CA key is 0600 and root's" [ "$(stat -c '%a %U' "$KEY")" = "600 root" ]
	check "user fleetd (a net worker) cannot read the issuing-CA key" \
		not runuser -u fleetd -- cat "$KEY"
	check "user fleetd can read the server key the workers need" \
		runuser -u fleetd -- cat "$T/pki/server/server.key"
	CA=$(fleetd_child fleetd-ca)
	check "a worker's user cannot read the ca's memory or environment (not dumpable)" \
		not runuser -u fleetd -- cat "/proc/$CA/environ"

	# Refusals happen before anything binds, so the running fleetd's ports
	# are no obstacle and a refusal is all these can show.
	refused() { # refused LOG PATTERN [ENV=VALUE...]
		local log=$1 pattern=$2 rc=0
		shift 2
		env "$@" timeout 30 fleetd -c "$T/fleetd.conf" serve >"$T/$log.log" 2>&1 || rc=$?
		[ "$rc" = 1 ] && grep -Eq -- "$pattern" "$T/$log.log"
	}
	check "as root with a user that does not exist, fleetd refuses to start" \
		refused nouser "user 'fleetd-nosuchuser', which does not exist" FLEETD_USER=fleetd-nosuchuser
	check "a root user is refused too" refused rootuser "must run as an unprivileged user" FLEETD_USER=root
	chmod 0755 "$(dirname "$KEY")"
	chmod 0644 "$KEY"
	check "an issuing-CA key readable by fleetd refuses the start" \
		refused keymode "user fleetd can read the issuing-CA key"
	chmod 0600 "$KEY"
	chmod 0700 "$(dirname "$KEY")"
	chmod 0600 "$T/pki/server/server.key"
	check "a server key fleetd cannot read refuses the start, naming it" \
		refused srvkey "user fleetd cannot read .*/server/server.key"
	chmod 0640 "$T/pki/server/server.key"
	# A database socket only root can reach (through a closed directory).
	mkdir -m 0700 "$T/closed"
	ln -s "$(ls -d "$PGHOST"/.s.PGSQL.*[0-9])" "$T/closed/"
	check "a database the workers' user cannot reach refuses the start" \
		refused closeddb "user fleetd cannot connect to the database" \
		"FLEETD_DATABASE=host=$T/closed user=postgres dbname=$DB connect_timeout=5"
else
	echo "# not root: privilege separation is not exercised (fleetd drops nothing)"
fi

# --- a net worker is SIGKILLed ----------------------------------------------------
NET1=$(fleetd_child fleetd-net1)
NET2=$(fleetd_child fleetd-net2)
check "two net workers run (pids $NET1 $NET2)" [ -n "$NET1" ] && [ -n "$NET2" ]
kill -KILL "$NET1"
assert_eq "$(get_batch 20 /api/v1/devices)" 20 \
	"while net1 is down, all 20 requests are answered (net2 accepts on the shared socket)"
NEW1=$(fleetd_new_child fleetd-net1 "$NET1" || true)
check "the supervisor restarts net1 (new pid ${NEW1:-none})" [ -n "$NEW1" ]
check "the supervisor logs the death" grep -q "(pid $NET1) died of signal 9" "$T/fleetd.log"
assert_eq "$(fleetd_child fleetd-net2)" "$NET2" "net2 was left alone"
check "the new net1 gets to its loop" wait_for "net1 serving again" 20 serving 2 1
t0=$(date +%s%N)
assert_eq "$(get_batch 40 /api/v1/devices)" 40 "after the restart, all of 40 parallel requests succeed"
ms=$((($(date +%s%N) - t0) / 1000000))
check "and none hangs (batch took ${ms} ms)" [ "$ms" -lt 10000 ]
# Both workers really serve: kill net2, and the restarted net1 alone answers.
kill -KILL "$NET2"
assert_eq "$(get_batch 10 /healthz)" 10 "the restarted net1 serves alone while net2 is down"
NEW2=$(fleetd_new_child fleetd-net2 "$NET2" || true)
check "the supervisor restarts net2 too" [ -n "$NEW2" ]
enroll_batch after-net 4
assert_eq "$OK201/$BAD" "4/" "enrollments succeed after the worker restarts"
children_dropped "after the worker restarts"

# --- SIGHUP: every child is replaced, and drops again ---------------------------
OLD_CA=$(fleetd_child fleetd-ca)
OLD1=$(fleetd_child fleetd-net1)
OLD2=$(fleetd_child fleetd-net2)
kill -HUP "$FLEETD_PID"
HUP_CA=$(fleetd_new_child fleetd-ca "$OLD_CA" 30 || true)
HUP1=$(fleetd_new_child fleetd-net1 "$OLD1" 30 || true)
HUP2=$(fleetd_new_child fleetd-net2 "$OLD2" 30 || true)
check "SIGHUP replaces the ca and both workers (${HUP_CA:-none} ${HUP1:-none} ${HUP2:-none})" \
	[ -n "$HUP_CA" ] && [ -n "$HUP1" ] && [ -n "$HUP2" ]
children_dropped "after SIGHUP"
enroll_batch after-hup 2
assert_eq "$OK201/$BAD" "2/" "after SIGHUP the new ca (which reopened the key before dropping) signs"

# --- the ca process is SIGKILLed --------------------------------------------------
CA=$(fleetd_child fleetd-ca)
check "the ca process runs (pid $CA)" [ -n "$CA" ]
kill -KILL "$CA"
enroll_batch ca-kill 8
check "with the ca killed, enrollments end in 201 or 503 problem+json, never 500 or a hang:${BAD:- none bad}" [ -z "$BAD" ]
echo "# ca SIGKILL: $OK201 enrolled, $OK503 refused with 503"
NEWCA=$(fleetd_new_child fleetd-ca "$CA" || true)
check "the supervisor restarts the ca process (new pid ${NEWCA:-none})" [ -n "$NEWCA" ]
check "the supervisor logs the ca's death" grep -q "(pid $CA) died of signal 9" "$T/fleetd.log"
check "enrollments succeed again once the ca is back" \
	wait_for "enrollments after the ca restart" 20 enroll_ok ca-back 2

# --- the ca process hangs (SIGSTOP): a clean 503 within the signer timeout ------
CA=$(fleetd_child fleetd-ca)
kill -STOP "$CA"
t0=$(date +%s%N)
enroll_batch ca-stop 3
ms=$((($(date +%s%N) - t0) / 1000000))
kill -CONT "$CA"
assert_eq "$OK201/$OK503/$BAD" "0/3/" "with the ca stopped, all 3 enrollments get 503 service-unavailable"
# Enrollments on one token queue on its row lock while each waits for the
# signer's 5 s timeout, so 3 of them take up to 15 s.
check "and they end within 20 s (took ${ms} ms)" [ "$ms" -lt 20000 ]
enroll_batch ca-cont 3
assert_eq "$OK201/$BAD" "3/" "after SIGCONT the ca signs again"

# --- nothing half-written --------------------------------------------------------
assert_eq "$(devices)" "$ENROLLED" "devices in the database = successful enrollments ($ENROLLED)"
assert_eq "$(psql_q "SELECT count(*) FROM certificates")" "$ENROLLED" \
	"certificates in the database = successful enrollments"
assert_eq "$(psql_q "SELECT count(*) FROM audit_log WHERE action = 'device.enroll'")" "$ENROLLED" \
	"device.enroll audit rows = successful enrollments"
assert_eq "$(psql_q "SELECT uses_left FROM enrollment_tokens WHERE id = '$ENROLL_TOKEN_ID'")" \
	"$((500 - ENROLLED))" "refused enrollments gave their token use back"

# --- PostgreSQL restarts under fleetd ----------------------------------------------
FLEETD_BEFORE=$FLEETD_PID
pgcluster_stop "$HARNESS_PG_DIR" fast
hz=$(curl -s --max-time 15 --cacert "$FLEET_CA" -o "$T/hz.body" -w '%{http_code} %{content_type}' \
	"$FLEET_SERVER/healthz" || echo "000 -")
assert_eq "${hz%% *}" 503 "/healthz answers 503 while PostgreSQL is down"
check "as problem+json" [ "${hz#* }" = application/problem+json ]
api_codes=
for _ in 1 2 3 4 5 6 7 8 9 10; do
	TOKEN=$ADMIN api GET /api/v1/devices
	api_codes="$api_codes$STATUS,"
done
assert_eq "$api_codes" "503,503,503,503,503,503,503,503,503,503," "API calls answer 503 during the outage"
enroll_batch pg-down 4
assert_eq "$OK201/$OK503/$BAD" "0/4/" "enrollments answer 503 during the outage"
pgcluster_start "$HARNESS_PG_DIR" "$PGCLUSTER_TEST_OPTIONS"
check "/healthz is 200 again after PostgreSQL is back" wait_healthy
assert_eq "$(get_batch 40 /api/v1/devices)" 40 "after PostgreSQL is back, all of 40 requests succeed"
enroll_batch pg-back 4
assert_eq "$OK201/$BAD" "4/" "enrollments succeed after PostgreSQL is back"
assert_eq "$FLEETD_PID" "$FLEETD_BEFORE" "fleetd was not restarted"
check "the supervisor is still the same process" kill -0 "$FLEETD_BEFORE"
assert_eq "$(devices)" "$ENROLLED" "devices still = successful enrollments"

# A quick restart while nobody calls: idle pooled connections must notice
# the server went away, so not even the first request afterwards fails.
pgcluster_stop "$HARNESS_PG_DIR" fast
pgcluster_start "$HARNESS_PG_DIR" "$PGCLUSTER_TEST_OPTIONS"
assert_eq "$(get_batch 40 /api/v1/devices)" 40 "after an unobserved PostgreSQL restart, all of 40 requests succeed"

# --- SIGTERM: exit 0, within seconds, no children left ----------------------------
children=$(pgrep -P "$FLEETD_PID" | tr '\n' ' ')
check "fleetd has 3 children (ca + 2 workers): $children" [ "$(wc -w <<<"$children")" = 3 ]
kill -TERM "$FLEETD_PID"
t0=$(date +%s%N)
rc=0
if wait_for "fleetd exits after SIGTERM" 15 gone "$FLEETD_PID"; then
	wait "$FLEETD_PID" || rc=$?
else
	rc=timeout
fi
ms=$((($(date +%s%N) - t0) / 1000000))
assert_eq "$rc" 0 "SIGTERM: fleetd exits 0"
check "within 5 s (took ${ms} ms)" [ "$ms" -lt 5000 ]
left=
for pid in $children; do kill -0 "$pid" 2>/dev/null && left="$left $pid"; done
assert_eq "$left" "" "SIGTERM leaves no child processes"
check "the api port is closed" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$API_PORT) 2>/dev/null"
FLEETD_PID=

# --- SIGKILL of the supervisor: no orphans ----------------------------------------
fleetd_start 2
children=$(pgrep -P "$FLEETD_PID" | tr '\n' ' ')
check "the new fleetd has 3 children: $children" [ "$(wc -w <<<"$children")" = 3 ]
kill -KILL "$FLEETD_PID"
wait "$FLEETD_PID" 2>/dev/null || true
FLEETD_PID=
# shellcheck disable=SC2086 # a list of pids
check "a SIGKILLed supervisor leaves no orphan workers or ca ($children)" \
	wait_for "the children of a SIGKILLed supervisor exit" 10 gone $children
check "nothing listens on the api port" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$API_PORT) 2>/dev/null"

# --- not started as root: nothing changes hands -----------------------------------
# fleetd started by the user fleetd itself (its own copy of the PKI, key
# included): no drop, no user needed (`user` names one that does not exist).
if [ "$ROOT" = 1 ]; then
	cp -a "$T/pki" "$T/np-pki"
	chown -R fleetd: "$T/np-pki"
	fleetd_conf_write "$T/np.conf" "$T/np-pki" "workers = 1
user = fleetd-nosuchuser
log_level = info"
	chmod 0644 "$T/np.conf"
	NP_URL=https://localhost:$API_PORT
	spawn np runuser -u fleetd -- env "FLEETD_DATABASE=$FLEETD_DATABASE" \
		"$(command -v fleetd)" -c "$T/np.conf" serve
	RUNUSER=$LAST_PID
	check "fleetd started as an ordinary user serves" wait_for "unprivileged fleetd healthy" 30 \
		curl -sf --max-time 2 --cacert "$T/np-pki/ca-bundle.pem" "$NP_URL/healthz"
	NP=$(pgrep -P "$RUNUSER" || true)
	assert_eq "$(proc_uid "${NP:-0}" 2>/dev/null)" "$FUID" "its supervisor runs as that user"
	np_uids=
	for pid in $(pgrep -P "${NP:-0}"); do np_uids="$np_uids $(proc_uid "$pid")"; done
	assert_eq "$np_uids" " $FUID $FUID" "so do its ca and worker, with no drop and no user needed"
	st=$(curl -s --max-time 30 --cacert "$T/np-pki/ca-bundle.pem" -o /dev/null -w '%{http_code}' \
		-H 'Content-Type: application/json' --data-binary @"$T/enroll1.json" "$NP_URL/enroll/v1")
	assert_eq "$st" 201 "its ca signs (it reads a key its user owns)"
	kill -TERM "${NP:-0}" 2>/dev/null || true
	check "it stops on SIGTERM" wait_for "unprivileged fleetd exits" 15 gone "${NP:-0}" "$RUNUSER"
fi

harness_done
