#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# fleetd as a systemd service and as installed (issue 13), without a
# running systemd (there is none in the test container):
# - cmake --install (into a staging root) puts the programs, migrations,
#   example configs, man pages and completions in place; the installed
#   fleetd finds its migrations by default, fleetctl has the same version;
# - the installed units (cmake --install into a staging root) pass
#   `systemd-analyze verify` (unit syntax, every directive known, the
#   ExecStart programs present and executable) and carry the hardening;
# - the notification protocol, spoken to a real AF_UNIX datagram socket as
#   systemd's $NOTIFY_SOCKET would be: STATUS= while starting, READY=1 only
#   after the ca loaded its key and every net worker is up, RELOADING=1 and
#   READY=1 around a SIGHUP (the new log level applies), READY=1 with the
#   error in STATUS= after a SIGHUP with a broken file (the old
#   configuration keeps serving), STOPPING=1 on SIGTERM;
# - with stderr on "the journal" ($JOURNAL_STREAM naming stderr's device
#   and inode, as systemd sets it) every line has a syslog priority prefix
#   and no timestamp of its own; without it the plain format is unchanged.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

# ---- the units ------------------------------------------------------------
ROOT=$T/root
DESTDIR=$ROOT cmake --install "$FLEET_BUILD_DIR" >"$T/install.log" 2>&1 ||
	fail "cmake --install into $ROOT"
PREFIX=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$FLEET_BUILD_DIR/CMakeCache.txt")
UNITDIR=$(sed -n 's/^FLEET_SYSTEMD_UNITDIR:PATH=//p' "$FLEET_BUILD_DIR/CMakeCache.txt")
# verify checks that ExecStart's program exists: the staged copies of the
# units point into the staging root (only the prefix is rewritten), and
# --man=no because man does not look there (test_packages.sh verifies the
# units installed by the packages, man pages included).
mkdir -p "$T/units"
for unit in fleetd fleet-agent; do
	f=$ROOT$UNITDIR/$unit.service
	check "$unit.service is installed in $UNITDIR" test -f "$f"
	sed "s|=$PREFIX/|=$ROOT$PREFIX/|g; s| $PREFIX/| $ROOT$PREFIX/|g" "$f" >"$T/units/$unit.service"
	if systemd-analyze --man=no verify "$T/units/$unit.service" >"$T/verify-$unit.log" 2>&1 &&
		! grep -q . "$T/verify-$unit.log"; then
		ok "systemd-analyze verify $unit.service"
	else
		cat "$T/verify-$unit.log"
		fail "systemd-analyze verify $unit.service"
	fi
done
# The socket units' examples (docs/ops/restarts.md), beside the service
# they activate.
for kind in api device; do
	f=$ROOT$PREFIX/share/fleetd/fleetd-$kind.socket.example
	check "fleetd-$kind.socket.example is installed" test -f "$f"
	cp "$f" "$T/units/fleetd-$kind.socket"
	check "fleetd-$kind.socket names its descriptor $kind" \
		grep -qx "FileDescriptorName=$kind" "$f"
done
if systemd-analyze --man=no verify "$T/units/fleetd-api.socket" \
	"$T/units/fleetd-device.socket" >"$T/verify-sockets.log" 2>&1 &&
	! grep -q . "$T/verify-sockets.log"; then
	ok "systemd-analyze verify fleetd-api.socket fleetd-device.socket"
else
	cat "$T/verify-sockets.log"
	fail "systemd-analyze verify fleetd-api.socket fleetd-device.socket"
fi
# A unit with an unknown directive must fail the same check (it can fail).
mkdir -p "$T/broken"
sed 's/^NoNewPrivileges=yes/NoNewPrivileges=yes\nNoSuchDirective=1/' \
	"$T/units/fleetd.service" >"$T/broken/fleetd.service"
systemd-analyze --man=no verify "$T/broken/fleetd.service" >"$T/verify-broken.log" 2>&1 || true
check "systemd-analyze verify reports an unknown directive" \
	grep -q 'NoSuchDirective' "$T/verify-broken.log"

svc=$ROOT$UNITDIR/fleetd.service
for line in Type=notify 'ExecReload=/bin/kill -HUP $MAINPID' NoNewPrivileges=yes \
	ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
	ReadWritePaths=/var/lib/fleetd LimitNOFILE=1048576 \
	"ExecStart=$PREFIX/sbin/fleetd -c" "ConditionPathExists="; do
	check "fleetd.service has $line" grep -qF -- "$line" "$svc"
done
check "fleetd.service does not set User= (the ca must start as root)" \
	not grep -q '^User=' "$svc"
check "fleet-agent.service starts only with a config" \
	grep -q '^ConditionPathExists=.*/fleet-agent.conf$' "$ROOT$UNITDIR/fleet-agent.service"

# ---- what cmake --install put there ------------------------------------------
for f in "$PREFIX/sbin/fleetd" "$PREFIX/bin/fleetctl" "$PREFIX/sbin/fleet-agent" \
	"$PREFIX/share/fleetd/migrations/0001_init.sql" \
	"$PREFIX/share/fleetd/fleetd.conf.example" \
	"$PREFIX/share/fleet-agent/fleet-agent.conf.example" \
	"$PREFIX/share/man/man8/fleetd.8.gz" "$PREFIX/share/man/man1/fleetctl.1.gz" \
	"$PREFIX/share/man/man8/fleet-agent.8.gz" "$PREFIX/share/man/man5/fleetd.conf.5.gz" \
	"$PREFIX/share/bash-completion/completions/fleetctl" \
	"$PREFIX/share/zsh/vendor-completions/_fleetctl" \
	"$PREFIX/share/fish/vendor_completions.d/fleetctl.fish"; do
	check "cmake --install puts $f" test -s "$ROOT$f"
done
check "fleet-sim (a test tool) is not installed" not test -e "$ROOT$PREFIX/bin/fleet-sim"
check "the man pages render" \
	bash -c "MANWIDTH=80 man -l '$ROOT$PREFIX/share/man/man5/fleetd.conf.5.gz' | grep -q heartbeat_timeout"
out=$("$ROOT$PREFIX/sbin/fleetd" -c "$ROOT$PREFIX/share/fleetd/fleetd.conf.example" check-config 2>&1)
assert_eq "$out" "$ROOT$PREFIX/share/fleetd/fleetd.conf.example: ok" "the example config passes check-config"
out=$("$ROOT$PREFIX/bin/fleetctl" --version)
assert_eq "$out" "fleetctl $(fleetd --version | awk '{ print $2 }')" "fleetctl --version is fleetd's version"
"$ROOT$PREFIX/bin/fleetctl" completion tcsh >"$T/compl.out" 2>&1 && rc=0 || rc=$?
assert_eq "$rc" 2 "fleetctl completion of an unknown shell is a usage error"
check "... that names the shells" grep -q 'bash, zsh or fish' "$T/compl.out"

harness_init
# The installed fleetd (here relocated under a staging root) finds the
# migrations installed beside it without being told.
dropdb "$DB" && createdb "$DB"
if (cd / && "$ROOT$PREFIX/sbin/fleetd" migrate) >"$T/installed-migrate.log" 2>&1; then
	ok "an installed fleetd migrates from its own share/fleetd/migrations"
else
	cat "$T/installed-migrate.log"
	fail "an installed fleetd migrates from its own share/fleetd/migrations"
fi
assert_eq "$(psql_q 'SELECT count(*) FROM schema_migrations')" \
	"$(ls "$ROOT$PREFIX/share/fleetd/migrations/"*.sql | wc -l)" "every installed migration applied"
mv "$ROOT$PREFIX/share/fleetd/migrations" "$ROOT$PREFIX/share/fleetd/moved"
out=$(cd / && "$ROOT$PREFIX/sbin/fleetd" migrate 2>&1) && rc=0 || rc=$?
check "a build-tree style fleetd (nothing installed beside it) uses the source tree's" \
	test "$rc" = 0

# ---- the notification protocol ---------------------------------------------
pki_init
fleetd_write_config 2
NOTIFY=$T/notify.sock
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as out:
	while True:
		msg = s.recv(65536).decode()
		out.write(msg.replace("\n", "|") + "\n")
		out.flush()
' "$NOTIFY" "$T/notify.txt" >"$T/notify-listener.log" 2>&1 &
HARNESS_PIDS+=("$!")
wait_for "the notify listener binds $NOTIFY" 10 test -S "$NOTIFY"
: >"$T/notify.txt"

# stderr is "the journal": JOURNAL_STREAM names its device and inode.
: >"$T/journal.log"
JOURNAL_STREAM=$(stat -c '%d:%i' "$T/journal.log")
NOTIFY_SOCKET=$NOTIFY JOURNAL_STREAM=$JOURNAL_STREAM \
	fleetd -c "$T/fleetd.conf" serve 2>>"$T/journal.log" >/dev/null &
FLEETD_PID=$!
HARNESS_PIDS+=("$FLEETD_PID")
check "READY=1 once started" wait_for "READY=1" 30 grep -q '^READY=1' "$T/notify.txt"
wait_healthy && ok "the API answers"
check "STATUS= while starting, before READY=1" \
	awk '/^READY=1/ { exit !s } /^STATUS=starting/ { s = 1 } END { }' "$T/notify.txt"
check "READY=1 carries a serving status" grep -q '^READY=1|STATUS=serving' "$T/notify.txt"
# The ca said it holds its key, and each worker its drop, before READY=1.
check "the ca loaded its key before READY=1" \
	awk '/ca: issuing with/ { c = 1 } /supervisor: ready/ { exit !c }' "$T/journal.log"

# A worker that dies is in STATUS= until it is back.
W1=$(fleetd_child fleetd-net1)
kill -KILL "$W1"
check "STATUS= says a worker died" wait_for "died status" 10 \
	grep -q "^STATUS=net worker #1 (pid $W1) died" "$T/notify.txt"
check "STATUS= says serving once it is back" wait_for "serving again" 20 \
	awk "/^STATUS=net worker #1 \\(pid $W1\\) died/ { d = 1 } /^STATUS=serving/ && d { f = 1 } END { exit !f }" "$T/notify.txt"
wait_healthy && ok "the API answers after the worker's restart"

# Reload with a new log level: RELOADING=1, then READY=1 once every child
# is back; the replaced children log at debug level.
# A port change needs a restart: kept, and said so.
sed -i 's/^log_level = .*/log_level = debug/' "$T/fleetd.conf"
NEW_PORT=$(free_port)
sed -i "s/^api_port = .*/api_port = $NEW_PORT/" "$T/fleetd.conf"
kill -HUP "$FLEETD_PID"
check "RELOADING=1 on SIGHUP" wait_for "RELOADING=1" 10 grep -q '^RELOADING=1' "$T/notify.txt"
check "READY=1 after the reload" wait_for "READY=1 after RELOADING=1" 60 \
	awk '/^RELOADING=1/ { r = 1 } /^READY=1/ && r { f = 1 } END { exit !f }' "$T/notify.txt"
check "the reloaded log level applies (debug lines)" grep -q '^<7>' "$T/journal.log"
wait_healthy && ok "the API answers after the reload, on the port it had"
check "a changed port is reported as needing a restart" \
	grep -q '^<4>fleetd\[[0-9]*\]: supervisor: SIGHUP: listen addresses.*restart' "$T/journal.log"
check "the replaced workers describe the socket they serve, not the new port" \
	not grep -q "serving api on 127.0.0.1:$NEW_PORT" "$T/journal.log"

# A broken file: the reload fails, READY=1 says so, the old config serves.
printf 'no_such_key = 1\n' >>"$T/fleetd.conf"
kill -HUP "$FLEETD_PID"
check "a failed reload is reported" wait_for "reload failed" 10 \
	grep -q '^READY=1|STATUS=reload failed.*no_such_key' "$T/notify.txt"
check "fleetd still runs" kill -0 "$FLEETD_PID"
wait_healthy && ok "the API answers with the old configuration"

kill -TERM "$FLEETD_PID"
check "STOPPING=1 on SIGTERM" wait_for "STOPPING=1" 15 grep -q '^STOPPING=1' "$T/notify.txt"
wait_for "fleetd exits" 20 not kill -0 "$FLEETD_PID"
wait "$FLEETD_PID"
assert_eq "$?" 0 "fleetd exits 0 after SIGTERM"
FLEETD_PID=

# ---- journal format ----------------------------------------------------------
check "journal lines have a syslog priority, a process name and a pid" \
	not grep -vE '^<[0-7]>fleetd(-ca|-net[0-9]+)?\[[0-9]+\]: ' "$T/journal.log"
check "journal lines have no timestamp of their own" \
	not grep -qE '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:' "$T/journal.log"
check "errors are <3>, warnings <4>, info <6>" \
	bash -c "grep -q '^<3>.*no_such_key' '$T/journal.log' && grep -q '^<6>fleetd\[' '$T/journal.log'"
check "the children log under their own names" grep -qE '^<6>fleetd-net1\[' "$T/journal.log"
# Not under the journal (stderr elsewhere, or JOURNAL_STREAM naming another
# file): the plain format with timestamps.
sed -i '/^no_such_key/d' "$T/fleetd.conf"
JOURNAL_STREAM=$JOURNAL_STREAM fleetd -c "$T/fleetd.conf" serve 2>"$T/plain.log" &
FLEETD_PID=$!
HARNESS_PIDS+=("$FLEETD_PID")
wait_for "fleetd ready (plain log)" 30 grep -q 'supervisor: ready' "$T/plain.log"
fleetd_stop
check "a JOURNAL_STREAM naming another file keeps the plain format" \
	grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T.* fleetd\[[0-9]+\] info supervisor: ready' "$T/plain.log"
check "no priority prefixes in the plain format" not grep -q '^<[0-7]>' "$T/plain.log"

harness_done
