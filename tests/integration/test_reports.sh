#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Reports are delivered at least once and applied exactly once per
# (device, seq) (docs/protocol.md): a scripted device (wsclient.py) sends a
# report and drops the TCP connection before reading the ack; sent again
# after a reconnect it is acknowledged as a duplicate and applied once
# (checked in PostgreSQL with psql). The same seq sent five times at once
# (job threads in parallel) is applied once; reports that overtake each
# other are each applied once and the latest status stays the highest seq;
# a seq far below the window is acknowledged as stale; an invalid report
# gets bad-<type> and ack "rejected" and is stored nowhere. A real agent:
# reports queued while it is stopped survive the restart and drain after
# it reconnects; a report sent while the server is frozen, with the agent
# SIGKILLed before the ack, is applied once and acknowledged as a
# duplicate after the agent restarts.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

HASH=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08

harness_init
pki_init
fleetd_start 2

TOKEN=$(admin_token operator)
enrollment_token 10 t-rep

# wsd ACTIONS...: wsclient.py as the scripted device d. When the actions
# end the process exits: the TCP connection drops without a close frame.
wsd() { ws d "$@"; }

HELLO='{"type":"hello","agent_version":"0.2.0","fw_version":"1.0","model":"rep-x","boot_id":"b1"}'
cstatus() { # cstatus SEQ: a config.status report
	printf '{"type":"config.status","seq":%s,"config_version":%s,"config_hash":"%s","state":"applied"}' \
		"$1" "$1" "$HASH"
}
cmdres() { # cmdres SEQ: a cmd.result report
	printf '{"type":"cmd.result","seq":%s,"cmd_id":"0b6f4c1e-8f0a-4a51-9d3c-2f1e0a9b7c11","status":"ok","exit_code":%s}' \
		"$1" "$1"
}
# applied KIND: "<applied count> <latest seq>" from PostgreSQL.
applied() {
	psql_q "SELECT applied || ' ' || seq FROM device_reports WHERE device_id = '$D' AND kind = '$1'"
}
# acks OUTPUT: "seq:status ..." of the ack messages in wsclient output.
acks() {
	grep '^TEXT ' <<<"$1" | cut -c6- |
		jq -r 'select(.type=="ack") | "\(.seq):\(.status)"' | tr '\n' ' '
}

device_enroll d rep-test
D=$(cat "$T/dev/d.id")

# ---- dropped before the ack, sent again: applied once -------------------
out=$(wsd "send $HELLO" "read 5" "send $(cstatus 1)")
check "hello answered by welcome" grep -q '"type":"welcome"' <<<"$out"
check "report applied although the connection dropped before the ack" \
	wait_for "config.status seq 1 stored" 10 \
	bash -c "[ \"\$(psql -X -q -t -A -d '$DB' -c \"SELECT seq FROM device_reports WHERE device_id = '$D' AND kind = 'config.status'\")\" = 1 ]"
out=$(wsd "send $HELLO" "read 5" "send $(cstatus 1)" "read 5" "close")
assert_eq "$(acks "$out")" "1:duplicate " "re-sent report acknowledged as a duplicate"
assert_eq "$(applied config.status)" "1 1" "re-sent report applied once (psql)"

# ---- the next seq, then the old one again --------------------------------
out=$(wsd "send $HELLO" "read 5" "send $(cstatus 2)" "read 5" \
	"send $(cstatus 1)" "read 5" "close")
assert_eq "$(acks "$out")" "2:applied 1:duplicate " "new seq applied, old seq duplicate"
assert_eq "$(applied config.status)" "2 2" "two reports applied, latest is seq 2"
assert_eq "$(psql_q "SELECT body->>'config_version' FROM device_reports WHERE device_id = '$D' AND kind = 'config.status'")" \
	2 "latest config.status body stored"

# ---- the same seq five times at once: job threads race, one applies ----
out=$(wsd "send $HELLO" "read 5" "send $(cstatus 3)" "send $(cstatus 3)" \
	"send $(cstatus 3)" "send $(cstatus 3)" "send $(cstatus 3)" \
	"read 5" "read 5" "read 5" "read 5" "read 5" "close")
a=$(acks "$out")
assert_eq "$(tr ' ' '\n' <<<"$a" | grep -c '^3:applied$')" 1 "one of five concurrent copies applied ($a)"
assert_eq "$(tr ' ' '\n' <<<"$a" | grep -c '^3:duplicate$')" 4 "four concurrent copies acknowledged as duplicates"
assert_eq "$(applied config.status)" "3 3" "seq 3 applied once (psql)"

# ---- overtaking reports, and one far below the window -------------------
out=$(wsd "send $HELLO" "read 5" "send $(cmdres 10)" "read 5" \
	"send $(cmdres 9)" "read 5" "send $(cmdres 100)" "read 5" \
	"send $(cmdres 30)" "read 5" "close")
assert_eq "$(acks "$out")" "10:applied 9:applied 100:applied 30:stale " \
	"late seq within the window applied, far below it stale"
assert_eq "$(applied cmd.result)" "3 100" "cmd.result: 3 applied, latest stays the highest seq"
assert_eq "$(psql_q "SELECT hwm FROM device_report_windows WHERE device_id = '$D'")" 100 \
	"window high-water mark"

# ---- an invalid report: error and ack rejected, nothing stored ----------
bad='{"type":"update.status","seq":101,"state":"exploded","version":1}'
out=$(wsd "send $HELLO" "read 5" "send $bad" "read 5" "read 5" "close")
check "invalid report: error bad-update.status" \
	grep -q '"code":"bad-update.status"' <<<"$out"
assert_eq "$(acks "$out")" "101:rejected " "invalid report: ack rejected (the agent drops it)"
assert_eq "$(psql_q "SELECT count(*) FROM device_reports WHERE device_id = '$D' AND kind = 'update.status'")" \
	0 "invalid report stored nowhere"
out=$(wsd "send {\"type\":\"ack\",\"seq\":1,\"status\":\"applied\"}" "read 5" "close")
check "a server->agent type from a device: unknown-type" \
	grep -q '"code":"unknown-type"' <<<"$out"

# ---- a real agent: the queue survives a restart and drains --------------
printf '%s\n' "$ENROLL" >"$T/token"
chmod 600 "$T/token"
cat >"$T/a1.conf" <<EOT
api_url = $FLEET_SERVER
ca_file = $FLEET_CA
state_dir = $T/a1
token_file = $T/token
model = rep-agent
fw_version = 2.0
log_level = debug
EOT
spawn agent1 fleet-agent -c "$T/a1.conf"
AGENT=$LAST_PID
check "agent enrolled" wait_for "agent identity" 30 test -f "$T/a1/identity.json"
A=$(jq -r .device_id "$T/a1/identity.json")
check "agent online" wait_for "agent connected" 30 \
	bash -c "fleet-agent status -c '$T/a1.conf' | grep -q 'connected:    yes'"
kill -TERM "$AGENT"
check "agent stopped" wait_for "agent exit" 15 not kill -0 "$AGENT"
for n in 1 2 3; do
	fleet-agent report -c "$T/a1.conf" \
		"{\"type\":\"cmd.result\",\"cmd_id\":\"0b6f4c1e-8f0a-4a51-9d3c-2f1e0a9b7c1$n\",\"status\":\"ok\"}" \
		>>"$T/report-cli.log" 2>&1
done
assert_eq "$(ls "$T/a1/queue" | wc -l)" 3 "three reports queued on disk while the agent is stopped"
check "fleet-agent report refuses a report that breaks the protocol" \
	not fleet-agent report -c "$T/a1.conf" '{"type":"cmd.result","status":"maybe"}'
spawn agent1b fleet-agent -c "$T/a1.conf"
AGENT=$LAST_PID
check "queue drained after the restart" wait_for "queue empty" 30 \
	bash -c "[ -z \"\$(ls '$T/a1/queue')\" ]"
appliedA() {
	psql_q "SELECT applied || ' ' || (body->>'cmd_id') FROM device_reports WHERE device_id = '$A' AND kind = 'cmd.result'"
}
assert_eq "$(appliedA)" "3 0b6f4c1e-8f0a-4a51-9d3c-2f1e0a9b7c13" \
	"the three queued reports applied once each, the last one is the latest"

# ---- SIGKILL between send and ack ---------------------------------------
# Freeze the net workers, queue a report: the agent sends it into the
# socket and gets no ack. SIGKILL the agent, thaw the workers: they read
# and apply the report and cannot answer. The restarted agent sends it
# again: duplicate, applied once, gone from the queue.
NET1=$(fleetd_child fleetd-net1)
NET2=$(fleetd_child fleetd-net2)
kill -STOP "$NET1" "$NET2"
fleet-agent report -c "$T/a1.conf" \
	'{"type":"config.status","config_version":7,"config_hash":"'$HASH'","state":"failed","error":"hook exit 3"}' \
	>"$T/report-cli.log" 2>&1
seq=$(awk '{print $4}' "$T/report-cli.log")
check "report $seq sent by the agent while the server is frozen" \
	wait_for "agent sent seq $seq" 10 grep -q "report $seq sent" "$T/agent1b.log"
kill -KILL "$AGENT"
wait "$AGENT" 2>/dev/null || true
kill -CONT "$NET1" "$NET2"
check "report applied by the thawed server" wait_for "seq $seq applied" 15 \
	bash -c "[ \"\$(psql -X -q -t -A -d '$DB' -c \"SELECT seq FROM device_reports WHERE device_id = '$A' AND kind = 'config.status'\")\" = '$seq' ]"
check "the killed agent still holds the report" test -f "$T/a1/queue/$(printf '%020d' "$seq").json"
spawn agent1c fleet-agent -c "$T/a1.conf"
check "restarted agent's queue drained" wait_for "queue empty" 30 \
	bash -c "[ -z \"\$(ls '$T/a1/queue')\" ]"
check "the re-sent report was acknowledged as a duplicate" \
	grep -q "report $seq acknowledged (duplicate)" "$T/agent1c.log"
assert_eq "$(psql_q "SELECT applied || ' ' || seq || ' ' || (body->>'state') FROM device_reports WHERE device_id = '$A' AND kind = 'config.status'")" \
	"1 $seq failed" "report applied exactly once (psql)"

harness_done
