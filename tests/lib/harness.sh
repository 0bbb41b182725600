# SPDX-License-Identifier: Apache-2.0
# Integration test harness, sourced by tests/integration/test_*.sh.
#
#   harness_init              temp dir $T, a fresh database, migrations
#   pki_init                  `fleetd pki init` into $T/pki
#   fleetd_start [WORKERS]    fleetd on free loopback ports; waits for /healthz
#   free_port                 a free port on 127.0.0.1 (tests/lib/net.sh)
#   fleetd_stop               SIGTERM, waits
#   admin_token ROLE          prints a new admin token (fleetd token create)
#   api METHOD PATH [curl args...]   curl to the api listener with $TOKEN;
#                             sets $STATUS, $BODY, $CTYPE; records the answer
#                             for the OpenAPI check of harness_done
#   ok/fail/check/assert_eq   results; harness_done validates every answer
#                             api() got against the OpenAPI document
#                             (tests/lib/oas_validate.js; one failure per
#                             undocumented answer) and prints the summary
#   spawn NAME CMD...         runs CMD in the background, logged to $T/NAME.log,
#                             stopped on exit
#   wait_for DESCRIPTION TIMEOUT_S CMD...   (tests/lib/wait.sh)
#                             bounded polling: runs CMD every 0.1 s until it
#                             succeeds (returns 0) or TIMEOUT_S seconds
#                             (fractions allowed) have passed; then prints
#                             "timed out after TIMEOUT_S s: DESCRIPTION" to
#                             stderr and returns 1. CMD's output is discarded.
#                             Use it instead of fixed sleeps:
#                               wait_for "agent online" 20 device_online "$ID"
#                               wait_for "fleetd exited" 15 not kill -0 "$PID"
#   not CMD...                succeeds when CMD fails (for wait_for/check)
#   require_tools [--hint TEXT] TOOL...
#                             every TOOL must be on PATH; else the test is
#                             skipped (exit 77, ctest's "Skipped"), or fails
#                             when FLEET_REQUIRE_TOOLS=1 (tests/run.sh sets
#                             it: it installs them all, so none may be missing)
#   proc_uid PID              real uid of PID (from /proc/PID/status)
#   proc_ids PID              "uid:R E S FS gid:R E S FS groups:..." of PID
#   fd_open PID PATTERN       succeeds if PID holds a file matching PATTERN
#                             (an ERE on the /proc/PID/fd link targets) open
#   fleetd_new_child NAME OLDPID [TIMEOUT_S]
#                             waits for a NAME child of the supervisor whose
#                             pid is not OLDPID (a restart); prints its pid
#
# As root, fleetd runs its children as the user `fleetd`
# (docs/internals/privsep.md): $T is made 0711 so that they reach
# $T/pki (`fleetd pki init` gives them the server key) without being able
# to list $T; put nothing there that a worker must read unless it is
# world-readable.
#
# Everything started is stopped on exit, the database is dropped and $T is
# removed, also when the test fails. Traffic goes to 127.0.0.1 only.
set -euo pipefail

: "${FLEET_SOURCE_DIR:?run through ctest or tests/run.sh}"
: "${FLEET_BUILD_DIR:?run through ctest or tests/run.sh}"
: "${FLEET_TESTPG_FILE:?run through ctest or tests/run.sh}"
. "$FLEET_TESTPG_FILE"
. "$FLEET_SOURCE_DIR/tests/lib/pgcluster.sh"
. "$FLEET_SOURCE_DIR/tests/lib/net.sh"
. "$FLEET_SOURCE_DIR/tests/lib/wait.sh"
. "$FLEET_SOURCE_DIR/tests/lib/oas_tools.sh"

# Our binaries, then PostgreSQL's own (psql without Debian's Perl
# wrapper: 60 ms less per call), then Debian's tools ahead of whatever the
# caller's PATH puts first: the tests use the packages deploy/packages.sh
# installs, and a version manager's shim (pyenv's python3 costs 0.4 s per
# call on our machines, minutes over the suite) is not what they test.
export PATH="$FLEET_BUILD_DIR/fleetd:$FLEET_BUILD_DIR/fleetd/ctl:$FLEET_BUILD_DIR/agent:$PG_BINDIR:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "/tmp/fleet-$TEST_NAME.XXXXXX")
[ "$(id -u)" != 0 ] || chmod 0711 "$T"
# HARNESS_PRIVATE_PG=1 (set before sourcing): a cluster of the test's own
# in $T/pg, for a test that stops and starts PostgreSQL under fleetd;
# the others share the suite's cluster and run side by side with it.
# Either way $HARNESS_PG_DIR is the cluster the test's database is in.
HARNESS_PG_DIR=$FLEET_TESTPG_DIR
if [ "${HARNESS_PRIVATE_PG:-0}" = 1 ]; then
	HARNESS_PG_DIR=$T/pg
	export PGHOST=$HARNESS_PG_DIR
fi
DB="t_${TEST_NAME}_$$"
export FLEETD_DATABASE="host=$PGHOST user=postgres dbname=$DB connect_timeout=5"
PASSED=0
FAILED=0
HARNESS_OAS_N=0
HARNESS_PIDS=()
FLEETD_PID=

harness_cleanup() {
	local rc=$?
	set +e
	for pid in "${HARNESS_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${HARNESS_PIDS[@]}"; do
		wait_for "pid $pid exits after SIGTERM" 10 not kill -0 "$pid" ||
			kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [ "$rc" != 0 ] || [ "$FAILED" != 0 ]; then
		for log in "$T"/*.log; do
			[ -f "$log" ] || continue
			echo "---- last lines of $(basename "$log") ----"
			tail -n 40 "$log"
		done
	fi
	# Leak or sanitizer reports in any log fail the test.
	if grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/*.log 2>/dev/null; then
		echo "FAIL: sanitizer report in the logs above"
		rc=1
	fi
	dropdb --if-exists "$DB" >/dev/null 2>&1
	[ "$HARNESS_PG_DIR" = "$FLEET_TESTPG_DIR" ] ||
		pgcluster_stop "$HARNESS_PG_DIR" immediate
	[ -n "${HARNESS_KEEP:-}" ] || rm -rf "$T"
	exit "$rc"
}
trap harness_cleanup EXIT
if [ "$HARNESS_PG_DIR" != "$FLEET_TESTPG_DIR" ]; then
	pgcluster_init "$HARNESS_PG_DIR"
	pgcluster_start "$HARNESS_PG_DIR" "$PGCLUSTER_TEST_OPTIONS"
fi

ok() {
	PASSED=$((PASSED + 1))
	echo "ok - $*"
}

fail() {
	FAILED=$((FAILED + 1))
	echo "FAIL - $*"
}

require_tools() {
	local hint= tool
	if [ "${1:-}" = --hint ]; then
		hint=" ($2)"
		shift 2
	fi
	for tool in "$@"; do
		command -v "$tool" >/dev/null && continue
		if [ "${FLEET_REQUIRE_TOOLS:-0}" = 1 ]; then
			echo "FAIL: $tool is not installed$hint" >&2
			exit 1
		fi
		echo "SKIP: $tool is not installed$hint"
		exit 77
	done
}

# check DESCRIPTION COMMAND...: passes if COMMAND succeeds.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}

assert_eq() {
	if [ "$1" = "$2" ]; then ok "$3"; else fail "$3 (expected '$2', got '$1')"; fi
}

harness_done() {
	oas_validate_calls "$T/.oas" || FAILED=$((FAILED + 1))
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" = 0 ]
}

spawn() {
	local name=$1
	shift
	"$@" >>"$T/$name.log" 2>&1 &
	HARNESS_PIDS+=("$!")
	LAST_PID=$!
}

# sim_back_online STATUS_FILE ATTEMPTS COUNT: fleet-sim's status file shows
# COUNT devices online after at least ATTEMPTS connection attempts in all.
# fleet-sim rewrites the file every 200 ms, so just after a disruption it
# may still show the devices that were cut off as online: a wait for the
# count alone can pass on that stale file. Both figures come from one
# write, so attempts made after the disruption date the count.
sim_back_online() {
	jq -e --argjson a "$2" --argjson n "$3" \
		'.attempts >= $a and .online == $n' "$1" >/dev/null 2>&1
}

psql_q() {
	psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$DB" -c "$1"
}

harness_init() {
	createdb "$DB"
	fleetd migrate >"$T/migrate.log" 2>&1 || {
		cat "$T/migrate.log"
		return 1
	}
}

pki_init() {
	fleetd pki init --dir "$T/pki" --server-name localhost \
		--server-name 127.0.0.1 >"$T/pki-init.log" 2>&1 || {
		cat "$T/pki-init.log"
		return 1
	}
	export FLEET_CA="$T/pki/ca-bundle.pem"
}

# fleetd_write_config [WORKERS]: writes $T/fleetd.conf with fresh ports.
fleetd_write_config() {
	fleetd_conf_write "$T/fleetd.conf" "$T/pki" "# written by tests/lib/harness.sh
workers = ${1:-2}
heartbeat_interval = ${HEARTBEAT_INTERVAL:-2s}
heartbeat_timeout = ${HEARTBEAT_TIMEOUT:-6s}
log_level = ${FLEETD_LOG_LEVEL:-info}"
	export FLEET_SERVER="https://localhost:$API_PORT"
	export FLEET_DEVICE_SERVER="wss://localhost:$DEVICE_PORT/agent/v1"
}

# Waits until /healthz answers 200 (bounded).
wait_healthy() {
	wait_for "fleetd healthy ($FLEET_SERVER/healthz answers 200)" 30 \
		curl -sf --max-time 2 --cacert "$FLEET_CA" "$FLEET_SERVER/healthz"
}

fleetd_start() {
	[ -f "$T/fleetd.conf" ] || fleetd_write_config "${1:-2}"
	spawn fleetd fleetd -c "$T/fleetd.conf" serve
	FLEETD_PID=$LAST_PID
	wait_healthy
}

fleetd_stop() {
	[ -n "$FLEETD_PID" ] || return 0
	kill -TERM "$FLEETD_PID" 2>/dev/null || true
	wait_for "fleetd (pid $FLEETD_PID) exits after SIGTERM" 15 \
		not kill -0 "$FLEETD_PID" || true
	wait "$FLEETD_PID" 2>/dev/null || true
	FLEETD_PID=
}

# Child pids of the supervisor, by their process name (fleetd-ca, fleetd-net1).
fleetd_child() {
	local name=$1
	for pid in $(pgrep -P "$FLEETD_PID" 2>/dev/null); do
		if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
			echo "$pid"
			return 0
		fi
	done
	return 1
}

proc_uid() {
	awk '/^Uid:/ { print $2 }' "/proc/$1/status"
}

proc_ids() {
	awk '/^Uid:/ { u = $2 " " $3 " " $4 " " $5 }
	     /^Gid:/ { g = $2 " " $3 " " $4 " " $5 }
	     /^Groups:/ { $1 = ""; sub(/^ +/, ""); s = $0 }
	     END { print "uid:" u " gid:" g " groups:" s }' "/proc/$1/status"
}

fd_open() {
	local fd
	for fd in "/proc/$1/fd/"*; do
		readlink "$fd" 2>/dev/null
	done | grep -Eq -- "$2"
}

# _new_child NAME OLDPID: one try of fleetd_new_child.
_new_child() {
	local pid
	pid=$(fleetd_child "$1") || return 1
	[ "$pid" != "$2" ] || return 1
	echo "$pid"
}

fleetd_new_child() {
	wait_for "a new $1 (the old pid was $2)" "${3:-10}" _new_child "$1" "$2" &&
		_new_child "$1" "$2"
}

admin_token() {
	fleetd token create --role "$1" --name "${2:-test-$1}"
}

# api METHOD PATH [curl args...]: sets $STATUS, $BODY and $CTYPE (no
# subshell needed: `api GET /api/v1/devices; echo "$BODY"`). Every answer
# is also recorded under $T/.oas and checked against the OpenAPI document
# by harness_done (tests/lib/oas_validate.js): an answer the document does
# not describe fails the test. Safe to run in the background.
api() {
	local method=$1 path=$2 meta n
	shift 2
	HARNESS_OAS_N=$((HARNESS_OAS_N + 1))
	n="$BASHPID-$HARNESS_OAS_N"
	mkdir -p "$T/.oas"
	meta=$(curl -sS --max-time 20 --cacert "$FLEET_CA" -X "$method" \
		-H "Authorization: Bearer ${TOKEN:-}" -o "$T/.oas/$n.body" \
		-w '%{http_code} %{content_type}' "$@" "$FLEET_SERVER$path") || meta="000 "
	STATUS=${meta%% *}
	CTYPE=${meta#* }
	BODY=$(cat "$T/.oas/$n.body" 2>/dev/null || true)
	printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$method" "$path" "$STATUS" \
		"$CTYPE" >>"$T/.oas/calls.tsv"
}
