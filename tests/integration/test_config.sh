#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# fleetd's command line and config file as an operator meets them:
# `check-config` on good and bad files (errors name file:line), the
# FLEETD_<KEY> environment overrides, --help, --version and unknown commands
# or options. No database and no listener are needed.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

# Only what this test sets may come from the environment.
unset FLEETD_WORKERS FLEETD_LOG_LEVEL FLEETD_API_PORT

# fleetd_run NAME ARGS...: output in $T/NAME.log, exit code in RC.
fleetd_run() {
	local name=$1
	shift
	RC=0
	fleetd "$@" >"$T/$name.log" 2>&1 || RC=$?
}

has() { grep -q -- "$2" "$T/$1.log"; }

cat >"$T/good.conf" <<'EOT'
# a complete, valid file
database = host=/nonexistent dbname=fleet
pki_dir = /var/lib/fleetd/pki
api_bind = 127.0.0.1
api_port = 8443
device_port = 8444
workers = 2
job_threads = 4
cert_validity = 30d
heartbeat_interval = 10s
heartbeat_timeout = 1m

log_level = debug
log_syslog = false
EOT

fleetd_run good -c "$T/good.conf" check-config
assert_eq "$RC" 0 "check-config accepts a good file"
check "check-config says the file is ok" has good "good.conf: ok"
fleetd_run good-long --config "$T/good.conf" check-config
assert_eq "$RC" 0 "--config is the long form of -c"

# --- unknown key ----------------------------------------------------------
sed 's/^job_threads = 4$/job_thread = 4/' "$T/good.conf" >"$T/unknown.conf"
line=$(grep -n '^job_thread =' "$T/unknown.conf" | cut -d: -f1)
fleetd_run unknown -c "$T/unknown.conf" check-config
assert_eq "$RC" 1 "an unknown key exits 1"
check "the error names file:line ($T/unknown.conf:$line)" has unknown "$T/unknown.conf:$line:"
check "the error names the key" has unknown "job_thread"

# --- bad values -------------------------------------------------------------
bad_value() { # bad_value NAME SED-EXPR KEY
	sed "$2" "$T/good.conf" >"$T/$1.conf"
	local n
	n=$(grep -n "^$3 " "$T/$1.conf" | cut -d: -f1)
	fleetd_run "$1" -c "$T/$1.conf" check-config
	assert_eq "$RC" 1 "$1: a bad value exits 1"
	check "$1: the error names file:line" has "$1" "$T/$1.conf:$n:"
}
bad_value port-range 's/^api_port = 8443$/api_port = 70000/' api_port
bad_value port-text 's/^api_port = 8443$/api_port = https/' api_port
bad_value workers-neg 's/^workers = 2$/workers = -1/' workers
bad_value duration 's/^cert_validity = 30d$/cert_validity = 30 fortnights/' cert_validity
bad_value bool 's/^log_syslog = false$/log_syslog = maybe/' log_syslog

printf 'workers = 2\nthis line has no equals sign\n' >"$T/syntax.conf"
fleetd_run syntax -c "$T/syntax.conf" check-config
assert_eq "$RC" 1 "a line without '=' exits 1"
check "the syntax error names file:line" has syntax "$T/syntax.conf:2:"

# a cross-key check: the timeout must exceed the interval
sed 's/^heartbeat_timeout = 1m$/heartbeat_timeout = 5s/' "$T/good.conf" >"$T/heartbeat.conf"
fleetd_run heartbeat -c "$T/heartbeat.conf" check-config
assert_eq "$RC" 1 "heartbeat_timeout <= heartbeat_interval exits 1"
check "the error names the file and both keys" \
	grep -q "heartbeat.conf.*heartbeat_timeout.*heartbeat_interval" "$T/heartbeat.log"

sed 's/^log_level = debug$/log_level = chatty/' "$T/good.conf" >"$T/level.conf"
fleetd_run level -c "$T/level.conf" check-config
assert_eq "$RC" 1 "an unknown log_level exits 1"
check "the error names log_level" has level "log_level"

# --- missing file -------------------------------------------------------------
fleetd_run missing -c "$T/nope.conf" check-config
assert_eq "$RC" 1 "a missing file exits 1"
check "the error names the missing file" has missing "$T/nope.conf"
fleetd_run no-file check-config
check "check-config without -c fails (exit $RC)" [ "$RC" != 0 ]
check "and says it needs -c" has no-file "-c"
fleetd_run no-arg -c
check "-c without a file fails (exit $RC)" [ "$RC" != 0 ]

# --- environment overrides ----------------------------------------------------
RC=0
FLEETD_WORKERS=0 fleetd -c "$T/good.conf" check-config >"$T/env-good.log" 2>&1 || RC=$?
assert_eq "$RC" 0 "FLEETD_WORKERS=0 is accepted"
RC=0
FLEETD_WORKERS=x fleetd -c "$T/good.conf" check-config >"$T/env-bad.log" 2>&1 || RC=$?
assert_eq "$RC" 1 "FLEETD_WORKERS=x is refused (the environment overrides the file's 2)"
check "the error names the variable" has env-bad FLEETD_WORKERS
RC=0
FLEETD_WORKERS=65 fleetd -c "$T/good.conf" check-config >"$T/env-range.log" 2>&1 || RC=$?
assert_eq "$RC" 1 "FLEETD_WORKERS=65 (out of range) is refused"
RC=0
FLEETD_API_PORT=0 fleetd -c "$T/good.conf" check-config >"$T/env-port.log" 2>&1 || RC=$?
assert_eq "$RC" 1 "FLEETD_API_PORT=0 is refused"
check "the error names FLEETD_API_PORT" has env-port FLEETD_API_PORT
# the environment alone, no file: migrate reads FLEETD_DATABASE
RC=0
FLEETD_DATABASE="host=$T/no-such-dir dbname=x connect_timeout=2" fleetd migrate \
	>"$T/env-db.log" 2>&1 || RC=$?
check "FLEETD_DATABASE is used without a file (migrate fails on it, exit $RC)" [ "$RC" != 0 ]
check "the failure names the database from the environment" has env-db "$T/no-such-dir"

# --- --help, --version, unknown commands and options --------------------------
fleetd_run help --help
assert_eq "$RC" 0 "--help exits 0"
check "--help lists the commands" grep -q "migrate" "$T/help.log"
check "--help shows usage" has help "usage: fleetd"
fleetd_run help-short -h
assert_eq "$RC" 0 "-h exits 0"
fleetd_run version --version
assert_eq "$RC" 0 "--version exits 0"
check "--version prints fleetd and the schema version" grep -qE '^fleetd .*schema [0-9]+' "$T/version.log"
fleetd_run unknown-cmd frobnicate
check "an unknown command fails (exit $RC)" [ "$RC" != 0 ]
check "it names the unknown command" has unknown-cmd "frobnicate"
fleetd_run unknown-opt --frobnicate
check "an unknown option fails (exit $RC)" [ "$RC" != 0 ]
check "it names the unknown option" has unknown-opt "frobnicate"
# an unknown command must not start anything, even with a good config
fleetd_run unknown-cmd-conf -c "$T/good.conf" serv
check "a misspelt 'serv' fails (exit $RC) instead of serving" [ "$RC" != 0 ]

harness_done
