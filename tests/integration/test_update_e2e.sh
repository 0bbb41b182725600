#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Signed updates end to end (issue 11 acceptance): real PostgreSQL, fleetd,
# fleetctl and fleet-agents on loopback, Debian's update modules and ours.
#
# - three release keys (`fleetctl keys gen`), releases signed offline with
#   two of them (`fleetctl release sign`), uploaded (`fleetctl artifacts
#   upload`) and deployed (`fleetctl deployments create`) to real agents
#   that pin the three keys with threshold 2;
# - agent "ab" installs with dir-ab: the download goes through a proxy
#   that cuts the first connection after CUT bytes (fleetd's
#   artifact_url_base points agents at it; TLS stays end to end); the
#   agent resumes with Range: fleetd answered a 206 and served less than
#   size + CUT bytes in all; then it "reboots" (its reboot command stops
#   it and the test's init starts it again; the journal resumes in the new
#   process), checks the slot, passes its health hook and commits: fleetd shows committed
#   and the new version, current -> B holds the release;
# - agent "sf" installs a Mender Artifact made by mender-artifact with
#   Debian's unmodified single-file module: committed, the file is at its
#   destination with its permissions;
# - agent "bad" installs with dir-ab, reboots by re-executing itself
#   (update_reboot_command = reexec), but its health hook fails: it rolls
#   back (current -> A again) and fleetd shows rolled_back and the old
#   version; once its health hook passes, the same release deployed again
#   commits.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/cli.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

MODULES="$FLEET_SOURCE_DIR/agent/modules:/usr/share/mender/modules/v3"
require_tools mender-artifact jq python3
require_tools --hint "Debian's mender-client: its update modules" \
	/usr/share/mender/modules/v3/single-file

harness_init
pki_init
fleetd_write_config 2

# ---- a proxy that cuts the first download mid-way -------------------------
CUT=$((6 * 1048576))
cat >"$T/cutdl.py" <<'EOF'
# TCP relay to 127.0.0.1:TARGET; connection 1 is closed after CUT bytes
# from the server (a download interrupted mid-way), later ones relayed.
import os, select, socket, sys, threading
target, cut, portfile, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(16)
with open(portfile + ".tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
os.rename(portfile + ".tmp", portfile)
lock = threading.Lock()
count = [0]
def note(line):
    with lock, open(log, "a") as f:
        f.write(line + "\n")
def relay(k, c):
    s = socket.create_connection(("127.0.0.1", target))
    down = 0
    limit = cut if k == 1 else None
    try:
        while True:
            r, _, _ = select.select([c, s], [], [], 120)
            if not r:
                break
            if c in r:
                b = c.recv(65536)
                if not b:
                    break
                s.sendall(b)
            if s in r:
                b = s.recv(65536)
                if not b:
                    break
                if limit is not None and down + len(b) >= limit:
                    c.sendall(b[:limit - down])
                    down = limit
                    note("conn %d: cut after %d bytes" % (k, down))
                    return
                c.sendall(b)
                down += len(b)
        note("conn %d: relayed %d bytes" % (k, down))
    except OSError as e:
        note("conn %d: %s after %d bytes" % (k, e, down))
    finally:
        for x in (c, s):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()
while True:
    c, _ = ls.accept()
    with lock:
        count[0] += 1
        k = count[0]
    threading.Thread(target=relay, args=(k, c), daemon=True).start()
EOF
spawn cutdl python3 "$T/cutdl.py" "$DEVICE_PORT" "$CUT" "$T/cutdl.port" \
	"$T/cutdl.conns"
wait_for "cutting proxy listens" 10 test -s "$T/cutdl.port"
PROXY_PORT=$(cat "$T/cutdl.port")
echo "artifact_url_base = https://127.0.0.1:$PROXY_PORT" >>"$T/fleetd.conf"
fleetd_start 2

ADMIN=$(admin_token admin)
TOKEN=$ADMIN
export FLEET_TOKEN=$ADMIN
VIEWER=$(admin_token viewer)
api POST /api/v1/tokens -H 'Content-Type: application/json' \
	--data '{"uses": 10, "expires_in": "1h", "labels": {"site": "e2e"}}'
assert_eq "$STATUS" 201 "enrollment token created"
jq -r .token <<<"$BODY" >"$T/token"
chmod 600 "$T/token"

# run from tests/lib/cli.sh; expect_ok here looks only at the exit code
# (cli.sh's also wants an empty stderr).
expect_ok() {
	local what=$1
	shift
	run "$@"
	if [ "$RC" = 0 ]; then ok "$what"; else fail "$what (rc $RC: $ERR)"; fi
}

# ---- release keys and releases, signed offline ---------------------------
mkdir -p "$T/rel"
for k in k1 k2 k3; do
	expect_ok "fleetctl keys gen $k" keys gen --out "$T/rel/$k.key"
done
KEYS="$T/rel/k1.key.pub,$T/rel/k2.key.pub,$T/rel/k3.key.pub"

# The dir-ab release: a tar of a firmware tree, 16 MiB (so the cut lands
# mid-way).
mkdir -p "$T/fw/bin"
echo "2.0" >"$T/fw/VERSION"
head -c $((16 * 1048576)) /dev/urandom >"$T/fw/bin/image"
tar -cf "$T/rel/fw-2.0.tar" -C "$T/fw" .
FW_SIZE=$(stat -c %s "$T/rel/fw-2.0.tar")

# The single-file release: a Mender Artifact for Debian's module.
SF_DEST="$T/sf-dest"
mkdir -p "$T/sf" "$SF_DEST"
echo "setting = 2" >"$T/sf/app.conf"
printf '%s' "$SF_DEST" >"$T/sf/dest_dir"
printf 'app.conf' >"$T/sf/filename"
printf '0640' >"$T/sf/permissions"
(cd "$T/sf" && mender-artifact write module-image -T single-file \
	-n app-conf-2 -t e2e-model -o "$T/rel/app-2.mender" -f dest_dir \
	-f filename -f permissions -f app.conf) >"$T/mender-artifact.log" 2>&1
check "mender-artifact made the single-file artifact" test -s "$T/rel/app-2.mender"

sign() { # sign FILE NAME INSTALLER
	expect_ok "release sign $2 with 2 of 3 keys" release sign \
		--key "$T/rel/k1.key" --key "$T/rel/k3.key" --name "$2" \
		--version 2.0 --version-int 200 --hw e2e-model \
		--installer "$3" --expires 1d --out "$1.release.json" "$1"
	expect_ok "release verify $2 (2 of 3)" release verify --keys "$KEYS" \
		--threshold 2 "$1.release.json" "$1"
}
sign "$T/rel/fw-2.0.tar" fw dir-ab
sign "$T/rel/app-2.mender" app-conf single-file

# upload FILE: sets ART (the artifact id).
upload() {
	expect_ok "artifacts upload $(basename "$1")" -o json artifacts upload \
		"$1.release.json" "$1"
	ART=$(jq -r .id <<<"$OUT")
	check "the artifact is ready" test "$(jq -r .status <<<"$OUT")" = ready
}
upload "$T/rel/fw-2.0.tar"
ART_FW=$ART
upload "$T/rel/app-2.mender"
ART_SF=$ART

# ---- agents ----------------------------------------------------------------
# Each agent runs under a minimal "init" that starts it again when it
# exits, as a device's service manager does after a reboot. The reboot
# command (update_reboot_command) asks for that: it stops the agent a
# second after the agent ran it (the agent waits to be stopped, then its
# journal resumes in the new process). SIGTERM to init stops both.
cat >"$T/init.sh" <<'EOF2'
#!/bin/bash
# init.sh LOG CONF: runs fleet-agent -c CONF again each time it exits.
log=$1 conf=$2 child=
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 0' TERM
while :; do
	fleet-agent -c "$conf" >>"$log" 2>&1 &
	child=$!
	wait "$child"
	echo "init: fleet-agent exited ($?), starting it again" >>"$log"
done
EOF2
chmod 755 "$T/init.sh"
REBOOT='(sleep 1; kill -TERM "$FLEET_AGENT_PID") >/dev/null 2>&1 &'

declare -A AGENT_PID
# agent_start NAME HEALTH-COMMAND [REBOOT-COMMAND]
agent_start() {
	local n=$1 health=$2 reboot=${3:-$REBOOT}
	mkdir -p "$T/$n"
	cat >"$T/$n.conf" <<EOT
api_url = $FLEET_SERVER
ca_file = $FLEET_CA
state_dir = $T/$n
token_file = $T/token
model = e2e-model
fw_version = 1.0
fw_version_num = 100
log_level = info
update_keys = $KEYS
update_threshold = 2
update_modules_dir = $MODULES
update_reboot_command = $reboot
update_health_command = $health
update_health_deadline = 20s
update_download_deadline = 60s
EOT
	spawn "init-$n" "$T/init.sh" "$T/agent-$n.log" "$T/$n.conf"
	AGENT_PID[$n]=$LAST_PID
}
id_of_agent() { jq -r .device_id "$T/$1/identity.json" 2>/dev/null; }
online() {
	local id
	id=$(id_of_agent "$1") || return 1
	[ -n "$id" ] && [ "$id" != null ] || return 1
	api GET "/api/v1/devices/$id"
	[ "$STATUS" = 200 ] && [ "$(jq -r .online <<<"$BODY")" = true ]
}
# dev_state NAME DEPLOYMENT: the device's state in the deployment.
dev_state() {
	api GET "/api/v1/deployments/$2/devices"
	[ "$STATUS" = 200 ] || return 1
	jq -r --arg d "$(id_of_agent "$1")" \
		'.items[] | select(.device_id == $d) | .state' <<<"$BODY"
}
state_is() { [ "$(dev_state "$1" "$2")" = "$3" ]; }
fw_of() {
	api GET "/api/v1/devices/$(id_of_agent "$1")"
	jq -r .fw_version <<<"$BODY"
}
# deploy NAME ARTIFACT: sets DEP.
deploy() {
	expect_ok "deployments create $2 -> $1" -o json deployments create \
		--artifact "$2" --device "$(id_of_agent "$1")"
	DEP=$(jq -r .id <<<"$OUT")
}
metric() { # metric NAME [LABEL-SUBSTRING]: summed over workers
	curl -sf --cacert "$FLEET_CA" -H "Authorization: Bearer $VIEWER" \
		"$FLEET_SERVER/metrics" |
		awk -v m="$1" -v s="${2:-}" '$1 ~ "^" m "({|$)" && (s == "" || index($1, s)) { t += $NF } END { printf "%d\n", t }'
}

agent_start ab true
agent_start sf true
printf '#!/bin/sh\necho "app does not answer" >&2\nexit 1\n' >"$T/unhealthy.sh"
chmod 755 "$T/unhealthy.sh"
agent_start bad "$T/unhealthy.sh" reexec
for n in ab sf bad; do
	wait_for "agent $n online" 30 online "$n"
done
check "three agents online" online ab

# ---- dir-ab, with a download cut mid-way ----------------------------------
sent0=$(metric fleetd_artifact_bytes_sent_total)
r206_0=$(metric fleetd_artifact_requests_total 'status="206"')
deploy ab "$ART_FW"
DEP_AB=$DEP
if wait_for "ab committed" 60 state_is ab "$DEP_AB" committed; then
	ok "dir-ab: the deployment is committed"
else
	fail "dir-ab: the deployment is $(dev_state ab "$DEP_AB")"
fi
assert_eq "$(fw_of ab)" 2.0 "fleetd shows ab running 2.0"
check "the proxy cut the first download" grep -q "conn 1: cut after $CUT bytes" "$T/cutdl.conns"
sent=$(($(metric fleetd_artifact_bytes_sent_total) - sent0))
r206=$(($(metric fleetd_artifact_requests_total 'status="206"') - r206_0))
check "the agent resumed with Range (fleetd answered 206)" test "$r206" -ge 1
check "fleetd served less than size + cut ($sent < $FW_SIZE + $CUT): resumed, not restarted" \
	test "$sent" -lt $((FW_SIZE + CUT))
check "fleetd served at least the size ($sent >= $FW_SIZE)" test "$sent" -ge "$FW_SIZE"
assert_eq "$(readlink "$T/ab/dir-ab/current")" B "dir-ab: current -> B"
assert_eq "$(cat "$T/ab/dir-ab/current/VERSION" 2>/dev/null)" 2.0 "dir-ab: slot B holds 2.0"
check "dir-ab: the image is intact" cmp "$T/fw/bin/image" "$T/ab/dir-ab/B/bin/image"
assert_eq "$(cat "$T/ab/dir-ab/committed")" B "dir-ab: B committed"
check "the agent was restarted by the reboot command" \
	grep -q "init: fleet-agent exited" "$T/agent-ab.log"

# ---- Debian's single-file and a failing health check, together -------------
deploy sf "$ART_SF"
DEP_SF=$DEP
deploy bad "$ART_FW"
DEP_BAD=$DEP
if wait_for "sf committed" 60 state_is sf "$DEP_SF" committed; then
	ok "single-file: committed"
else
	fail "single-file: the deployment is $(dev_state sf "$DEP_SF")"
fi
assert_eq "$(cat "$SF_DEST/app.conf" 2>/dev/null)" "setting = 2" \
	"Debian's single-file module put app.conf at its destination"
assert_eq "$(stat -c %a "$SF_DEST/app.conf" 2>/dev/null)" 640 \
	"with the permissions from the artifact"
assert_eq "$(fw_of sf)" 2.0 "fleetd shows sf running 2.0"

if wait_for "bad rolled back" 90 state_is bad "$DEP_BAD" rolled_back; then
	ok "health hook fails: rolled_back"
else
	fail "health hook fails: the deployment is $(dev_state bad "$DEP_BAD")"
fi
assert_eq "$(fw_of bad)" 1.0 "fleetd shows bad still running 1.0"
assert_eq "$(readlink "$T/bad/dir-ab/current")" A "dir-ab: current -> A again"
api GET "/api/v1/deployments/$DEP_BAD"
check "the deployment names the failure" grep -q health <<<"$BODY"
check "bad re-executed itself for its reboot (reexec)" \
	grep -q "re-executing the agent (reboot)" "$T/agent-bad.log"
check "and did not exit for it" not grep -q "init: fleet-agent exited" "$T/agent-bad.log"

# The device is fixed (its health hook passes now) and the same release is
# offered again: not refused as not newer, since 1.0 is what runs.
kill -TERM "${AGENT_PID[bad]}"
wait_for "agent bad stopped" 15 not kill -0 "${AGENT_PID[bad]}"
agent_start bad true reexec
wait_for "agent bad online again" 30 online bad
deploy bad "$ART_FW"
DEP_BAD2=$DEP
if wait_for "bad committed the same release" 60 state_is bad "$DEP_BAD2" committed; then
	ok "the same release deployed again after the rollback: committed"
else
	fail "the same release again: the deployment is $(dev_state bad "$DEP_BAD2")"
fi
assert_eq "$(fw_of bad)" 2.0 "fleetd shows bad running 2.0 now"
assert_eq "$(readlink "$T/bad/dir-ab/current")" B "bad: current -> B"

for n in ab sf bad; do
	check "agent $n is online at the end" online "$n"
done
harness_done
