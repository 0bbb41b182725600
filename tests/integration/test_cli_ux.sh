#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Issue 13, "as a person meets them": devices named by an id prefix (an
# ambiguous one lists the candidates, a 404 says what was not found);
# devices list with --limit, --sort, a total, certificate expiry and
# address columns, status as a selector key and decommissioned devices
# left out unless asked for; bulk label and decommission on a selector
# (dry run first, --yes, one transaction and one audit row, nothing
# written on a refusal); admin tokens that expire (fleetctl and fleetd
# token create); the audit log with actor names and filters. Real fleetd,
# real PostgreSQL; openssl and psql as outside oracles.
source "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
source "$FLEET_SOURCE_DIR/tests/lib/cli.sh"
source "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

harness_init
pki_init
fleetd_start

ADMIN=$(admin_token admin boss)
ADMIN_ID=$(psql_q "SELECT id FROM admin_tokens WHERE name = 'boss'")
export FLEET_TOKEN=$ADMIN TOKEN=$ADMIN
VIEWER=$(admin_token viewer watcher)

# expect RC STDERR-ERE DESCRIPTION ARGS...: exit code and one stderr line.
expect() {
	local want=$1 pattern=$2 what=$3
	shift 3
	run "$@"
	if [ "$RC" = "$want" ] && grep -qE -- "$pattern" "$T/err" &&
		[ "$(wc -l <"$T/err")" -le 1 ]; then
		ok "$what"
	else
		fail "$what (rc $RC, want $want; stderr: $ERR; stdout: $OUT)"
	fi
}

jq_is() { assert_eq "$(jq -r "$1" <<<"$2" 2>&1)" "$3" "$4"; }

audit_count() { psql_q "SELECT count(*) FROM audit_log WHERE action = '$1'"; }

# ---- devices: three enrolled, two sharing an 8-character prefix --------------
enrollment_token 2 b7
device_enroll a plc-x
device_enroll b plc-y
enrollment_token 1 b9
device_enroll c plc-x
A=$(id_of a) B=$(id_of b) C=$(id_of c)
P1=abcdef01-0000-4000-8000-000000000001
P2=abcdef01-0000-4000-8000-000000000002
psql_q "INSERT INTO devices (id, labels, model) VALUES
	('$P1', '{\"site\": \"b9\"}', 'sim'), ('$P2', '{\"site\": \"b9\"}', 'sim')" >/dev/null

# ---- id prefixes and 404s -----------------------------------------------------
run devices show "${A:0:8}" -o json
jq_is .id "$OUT" "$A" "devices show takes an 8-character prefix"
run devices show "$(tr a-f A-F <<<"${B:0:13}")" -o json
jq_is .id "$OUT" "$B" "a prefix in upper case names the same device"
api GET "/api/v1/devices/${C:0:8}"
assert_eq "$STATUS" 200 "GET /devices/{prefix} answers 200"
api GET /api/v1/devices/abcdef01
assert_eq "$STATUS" 409 "an ambiguous prefix is a 409"
jq_is '.type + " " + (.candidates | join(","))' "$BODY" \
	"urn:fleet:problem:ambiguous-id $P1,$P2" "... listing the candidates"
expect 1 "^fleetctl: 409 Ambiguous id: abcdef01 names 2 devices; give more of the id \(candidates: $P1, $P2\)$" \
	"fleetctl names the candidates of an ambiguous prefix" devices show abcdef01
run devices show "$P2" -o json
jq_is .id "$OUT" "$P2" "a full id beside a prefix-sharing one"
expect 1 '^fleetctl: 404 Not found: no device 12345678$' \
	"a 404 says which device was not found" devices show 12345678
expect 1 '^fleetctl: 404 Not found: no device 00000000-0000-4000-8000-000000000000$' \
	"... also for a full id" devices show 00000000-0000-4000-8000-000000000000
expect 1 '^fleetctl: 404 Not found: no device: give its id or a prefix of at least 8 characters$' \
	"a 7-character prefix is refused with the rule" devices show abcdef0
api GET /api/v1/devices/not-an-id
assert_eq "$STATUS $(jq -r .detail <<<"$BODY")" \
	"404 no device: give its id or a prefix of at least 8 characters" "a non-hex name is a 404 with the rule"
run devices label "${A:0:8}" room=12 -o json
jq_is .labels.room "$OUT" 12 "devices label takes a prefix"

# ---- devices list: total, limit, sort, columns, status ------------------------
run devices list
assert_eq "$RC:$ERR" "0:5 of 5 devices" "devices list counts what matched (stderr)"
grep -E "^$A +no +plc-x +- +room=12,site=b7 +- +[0-9T:-]+Z +-$" "$T/out" >/dev/null &&
	ok "devices table row with certificate expiry and address" || fail "devices row ($OUT)"
NOT_AFTER=$(date -u -d "$(openssl x509 -in "$T/dev/a.pem" -noout -enddate | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ)
check "CERT EXPIRES is the certificate's notAfter (openssl x509)" \
	grep -qE "^$A .* $NOT_AFTER +-$" "$T/out"
run devices list --limit 2
assert_eq "$ERR" "2 of 5 devices" "--limit 2 shows 2 of 5"
api GET '/api/v1/devices?limit=2'
jq_is '"\(.items | length) \(.total)"' "$BODY" "2 5" "the API's total is all that match"
api GET '/api/v1/devices?selector=site%3Db9&limit=1'
jq_is .total "$BODY" 3 "the total follows the selector"
api GET '/api/v1/devices?selector=site%3Dnowhere'
jq_is '"\(.items | length) \(.total)"' "$BODY" "0 0" "an empty list has the total 0"
run devices list --sort -created -o json
jq_is '[.[].id] | join(",")' "$OUT" "$P2,$P1,$C,$B,$A" "--sort -created: newest first"
run devices list --sort created -o json
jq_is '.[0].id' "$OUT" "$A" "--sort created: oldest first"
run devices list --sort cert_expiry -o json
jq_is '[.[].id][:2] | sort | join(",")' "$OUT" "$P1,$P2" "--sort cert_expiry: devices without a certificate first"
FLEETCTL_PAGE_SIZE=1 run devices list --sort -last_seen -o json
jq_is 'length' "$OUT" 5 "--sort -last_seen pages through every device"
api GET '/api/v1/devices?limit=1&sort=created'
CURSOR=$(jq -r .next_cursor <<<"$BODY")
api GET "/api/v1/devices?limit=1&sort=-created&cursor=$CURSOR"
assert_eq "$STATUS $(jq -r .field <<<"$BODY")" "400 cursor" "a cursor of one sort is refused by another"
api GET '/api/v1/devices?sort=name'
assert_eq "$STATUS $(jq -r .field <<<"$BODY")" "400 sort" "an unknown sort key is a 400"
expect 2 "^fleetctl: devices list: --sort must be created, last_seen or cert_expiry" \
	"fleetctl refuses an unknown sort key" devices list --sort name
expect 2 "^fleetctl: devices list: --limit must be a positive number, not '0'" \
	"fleetctl refuses --limit 0" devices list --limit 0
run devices list --selector status=active -o json
jq_is length "$OUT" 5 "status is a selector key"
api GET '/api/v1/devices?selector=status%3Dretired'
assert_eq "$STATUS $(jq -r .detail <<<"$BODY")" \
	"400 selector key 'status' takes active or decommissioned, not 'retired'" "status takes active or decommissioned"

# ---- bulk label ----------------------------------------------------------------
AUDITS=$(psql_q "SELECT count(*) FROM audit_log")
run devices label --selector site=b9 tier=gold
assert_eq "$RC" 0 "bulk label dry run exits 0"
check "the dry run says how many match" grep -qx "3 devices match 'site=b9' (dry run: nothing changed)" "$T/out"
check "... with a sample" grep -qx "  $C" "$T/out"
check "... and how to go on" grep -qx "run again with --yes to label them" "$T/out"
assert_eq "$(psql_q "SELECT count(*) FROM devices WHERE labels ? 'tier'")" 0 "the dry run changed nothing"
assert_eq "$(psql_q "SELECT count(*) FROM audit_log")" "$AUDITS" "the dry run wrote no audit row"
run devices label --selector site=b9 tier=gold --remove room --yes
check "bulk label with --yes" grep -qx "labeled 3 devices matching 'site=b9'" "$T/out"
assert_eq "$(psql_q "SELECT count(*) FROM devices WHERE labels @> '{\"tier\": \"gold\"}'")" 3 "three devices got the label"
assert_eq "$(audit_count device.bulk_label)" 1 "one audit row for the bulk label"
assert_eq "$(psql_q "SELECT target || ' ' || (details->>'count') || ' ' || (details->'labels')::text || ' ' || jsonb_array_length(details->'devices') FROM audit_log WHERE action = 'device.bulk_label'")" \
	'site=b9 3 {"room": null, "tier": "gold"} 3' "... naming the selector, the patch and the devices"
# a device at the label limit refuses the whole patch
psql_q "UPDATE devices SET labels = labels || (SELECT jsonb_object_agg('k' || i, 'v') FROM generate_series(1, 62) i) WHERE id = '$P1'" >/dev/null
assert_eq "$(psql_q "SELECT count(*) FROM jsonb_object_keys((SELECT labels FROM devices WHERE id = '$P1'))")" 64 "one device has 64 labels"
expect 1 "^fleetctl: 409 Conflict: device $P1 would have more than 64 labels; nothing was changed$" \
	"a bulk label past the limit is refused, naming the device" devices label --selector site=b9 extra=1 --yes
assert_eq "$(psql_q "SELECT count(*) FROM devices WHERE labels ? 'extra'")" 0 "... and nothing was written"
api POST /api/v1/devices/bulk-label -H 'Content-Type: application/json' --data '{"labels": {"a": "b"}}'
assert_eq "$STATUS $(jq -r .field <<<"$BODY")" "400 selector" "bulk label needs a selector"
api POST /api/v1/devices/bulk-label -H 'Content-Type: application/json' --data '{"selector": "site in (", "labels": {"a": "b"}}'
assert_eq "$STATUS $(jq -r .field <<<"$BODY")" "400 selector" "a bad selector is a 400"
api POST /api/v1/devices/bulk-label -H 'Content-Type: application/json' --data '{"selector": "site=b9", "labels": {}}'
assert_eq "$STATUS $(jq -r .field <<<"$BODY")" "400 labels" "an empty patch is a 400"
api POST /api/v1/devices/bulk-label -H 'Content-Type: application/json' --data '{"selector": "site=b9", "labels": {"a": "b"}, "dry_run": "yes"}'
assert_eq "$STATUS $(jq -r .field <<<"$BODY")" "400 dry_run" "dry_run must be a boolean"
api POST /api/v1/devices/bulk-label -H 'Content-Type: application/json' --data '{"selector": "site=b9", "labels": {"a": "b"}, "force": true}'
assert_eq "$STATUS" 400 "an unknown member is a 400"
api GET /api/v1/devices/bulk-label
assert_eq "$STATUS" 405 "GET on bulk-label is a 405"
TOKEN=$VIEWER api POST /api/v1/devices/bulk-label -H 'Content-Type: application/json' --data '{"selector": "site=b9", "labels": {"a": "b"}, "dry_run": true}'
assert_eq "$STATUS" 403 "a viewer may not bulk label, not even a dry run"
expect 2 "^fleetctl: devices label: --yes goes with --selector" "--yes without --selector is a usage error" \
	devices label "$A" x=1 --yes
assert_eq "$(psql_q "SELECT count(*) FROM audit_log WHERE action = 'device.bulk_label'")" 1 "refused bulk labels wrote no audit row"

# ---- bulk decommission --------------------------------------------------------
SERIAL_C=$(openssl x509 -in "$T/dev/c.pem" -noout -serial | cut -d= -f2)
run devices decommission --selector 'site=b9,model=sim'
check "bulk decommission dry run" grep -qx "2 devices match 'site=b9,model=sim' (dry run: nothing changed)" "$T/out"
assert_eq "$(psql_q "SELECT count(*) FROM devices WHERE status = 'decommissioned'")" 0 "the dry run decommissioned nothing"
run devices decommission --selector site=b9 --yes
check "bulk decommission with --yes" grep -qx "decommissioned 3 devices matching 'site=b9'" "$T/out"
check "... and says how many certificates it revoked" grep -qx "certificates revoked: 1" "$T/out"
assert_eq "$(psql_q "SELECT string_agg(id::text, ',' ORDER BY id) FROM devices WHERE status = 'decommissioned'")" \
	"$(printf '%s\n' "$P1" "$P2" "$C" | sort | paste -sd,)" "exactly the matched devices are decommissioned"
assert_eq "$(audit_count device.bulk_decommission)" 1 "one audit row for the bulk decommission"
curl -sS --cacert "$FLEET_CA" -o "$T/crl.der" "$FLEET_SERVER/pki/v1/crl"
check "the CRL lists the revoked certificate (openssl crl)" \
	grep -qi "Serial Number: $SERIAL_C" <(openssl crl -inform DER -in "$T/crl.der" -noout -text)
run devices decommission --selector site=b9 --yes
check "a second bulk decommission matches nothing" grep -qx "decommissioned 0 devices matching 'site=b9'" "$T/out"
expect 2 "give an ID or --selector, not both" "ID and --selector together are refused" \
	devices decommission "$A" --selector site=b7

# decommissioned devices are not "offline" unless asked for
run devices list --offline -o json
jq_is '[.[].id] | sort | join(",")' "$OUT" "$(printf '%s\n' "$A" "$B" | sort | paste -sd,)" \
	"--offline lists active devices only"
run devices list --all -o json
jq_is length "$OUT" 5 "--all lists decommissioned devices too"
run devices list --selector status=decommissioned
assert_eq "$ERR" "3 of 3 devices" "status=decommissioned lists them"
check "... shown as decom, not offline" grep -qE "^$C +decom " "$T/out"
expect 1 "^fleetctl: 409 Conflict: the device is already decommissioned$" \
	"decommissioning one again is a 409" devices decommission "${C:0:8}"

# ---- admin tokens that expire -------------------------------------------------
run admin-tokens create --role viewer --name brief --expires 1s -o json
BRIEF=$(jq -r .token <<<"$OUT")
check "an admin token with --expires has expires_at" jq -e '.expires_at | test("Z$")' <<<"$OUT"
run admin-tokens create --role viewer --name forever -o json
jq_is .expires_at "$OUT" null "without --expires it never expires"
run admin-tokens create --role viewer --name forever2
check "... and the table says never" grep -qE '^EXPIRES: +never$' "$T/out"
run admin-tokens create --role viewer --name monthly --expires 30d
check "the table shows when it expires" grep -qE '^EXPIRES: +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' "$T/out"
brief_refused() { TOKEN=$BRIEF api GET /api/v1/devices && [ "$STATUS" = 401 ]; }
check "the expired admin token is refused (401)" wait_for "the 1-second admin token expires" 10 brief_refused
TOKEN=$BRIEF api GET /api/v1/devices
assert_eq "$STATUS $(jq -r .reason <<<"$BODY")" "401 expired" "... and the 401 says it expired"
run admin-tokens list
grep -qE "^[0-9a-f-]{36} +brief +viewer +expired " "$T/out" &&
	ok "admin-tokens list shows it expired" || fail "admin-tokens list shows it expired ($OUT)"
expect 2 "^fleetctl: admin-tokens create: --expires must be a duration such as 30m, 24h or 90d \(at most 366 days\), not '400d'" \
	"--expires past 366 days is refused" admin-tokens create --role viewer --name x --expires 400d
api POST /api/v1/admin-tokens -H 'Content-Type: application/json' --data '{"role": "viewer", "name": "x", "expires_in": 0}'
assert_eq "$STATUS $(jq -r .field <<<"$BODY")" "400 expires_in" "expires_in 0 is a 400"
CLI_TOKEN=$(fleetd token create --role operator --name cli-short --expires 2h)
assert_eq "$(psql_q "SELECT round(extract(epoch FROM expires_at - created_at)) FROM admin_tokens WHERE name = 'cli-short'")" 7200 \
	"fleetd token create --expires 2h"
TOKEN=$CLI_TOKEN api GET /api/v1/devices
assert_eq "$STATUS" 200 "... and the token works"
set +e
fleetd token create --role viewer --expires soon >"$T/out" 2>"$T/err"
RC=$?
set -e
assert_eq "$RC:$(cat "$T/err")" "2:fleetd token: --expires 'soon': give seconds or 30m, 24h, 90d, at most 366 days" \
	"fleetd token create refuses a bad --expires"

# ---- the audit log: names and filters ----------------------------------------
run audit list --actor boss -o json
jq_is "[.[].actor] | unique | join(\",\")" "$OUT" "token:$ADMIN_ID" "--actor takes a token's name"
jq_is "[.[].actor_name] | unique | join(\",\")" "$OUT" boss "... and each entry names the actor"
run audit list --actor "token:$ADMIN_ID" --action 'device.*' -o json
jq_is '[.[].action] | unique | join(",")' "$OUT" \
	"device.bulk_decommission,device.bulk_label,device.update" "--action device.* is the family"
run audit list --target "$A" -o json
jq_is '[.[].target] | unique | join(",")' "$OUT" "$A" "--target narrows to one device"
jq_is '[.[].action] | index("device.update") != null' "$OUT" true "... its label change among them"
run audit list --action device.bulk_label
check "the table names the actor and its id" grep -qE "^[0-9T:-]+Z +boss \(token:$ADMIN_ID\) +device.bulk_label +site=b9 " "$T/out"
# Pages of 5: a body over ~4 KB on a "Connection: close" request is cut
# short by the api listener (fleetd/http/request.c closes with bytes still
# buffered by lws; reported to the lead), which this test does not own.
FLEETCTL_PAGE_SIZE=5 run audit list --since 1h -o json
ALL=$(psql_q "SELECT count(*) FROM audit_log")
jq_is length "$OUT" "$ALL" "--since 1h lists everything of this test"
run audit list --until 2020-01-01T00:00:00Z -o json
jq_is length "$OUT" 0 "--until in the past lists nothing"
api GET '/api/v1/audit?since=2026-13-01T00:00:00Z'
assert_eq "$STATUS $(jq -r .field <<<"$BODY")" "400 since" "a bad time is a 400"
api GET '/api/v1/audit?since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z'
assert_eq "$STATUS $(jq -r .field <<<"$BODY")" "400 until" "until before since is a 400"
api GET '/api/v1/audit?action=*'
assert_eq "$STATUS $(jq -r .field <<<"$BODY")" "400 action" "a bare * is not an action family"
expect 2 "^fleetctl: audit list: --since must be a UTC time" "fleetctl refuses a bad --since" \
	audit list --since yesterday

# ---- fleet-agent's command line ------------------------------------------------
# agent CMD ARGS...: runs fleet-agent, sets $RC and $ERR (stdout in $OUT).
agent() {
	set +e
	timeout 20 fleet-agent "$@" >"$T/out" 2>"$T/err"
	RC=$?
	set -e
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}
agent frob
assert_eq "$RC:$ERR" "2:fleet-agent: unknown command 'frob' (run, status, report; see fleet-agent --help)" \
	"fleet-agent names an unknown command"
agent status extra
assert_eq "$RC:$ERR" "2:fleet-agent: status: unexpected argument 'extra' (see fleet-agent --help)" \
	"fleet-agent names an unexpected argument"
# status without a config file: defaults and the environment, not an error
FLEET_AGENT_STATE_DIR=$T/no-agent agent status
assert_eq "$RC" 3 "status without a config file and not enrolled exits 3 (docs/agent.md)"
check "... and says it is not enrolled" grep -q 'not enrolled' "$T/out"
agent status -c "$T/missing.conf"
assert_eq "$RC:$ERR" "1:fleet-agent: $T/missing.conf: cannot open: No such file or directory" \
	"status with a missing -c file is an error (1)"
# a CA file without certificates is a configuration error, not a retry loop
printf 'not a certificate\n' >"$T/empty-ca.pem"
printf 'api_url = %s\nca_file = %s\nstate_dir = %s\ntoken = fle_x\n' \
	"$FLEET_SERVER" "$T/empty-ca.pem" "$T/agent-state" >"$T/agent.conf"
agent -c "$T/agent.conf"
assert_eq "$RC:$ERR" "2:fleet-agent: ca_file $T/empty-ca.pem holds no PEM certificate (expected the bundle of GET /pki/v1/ca.pem)" \
	"a CA file without certificates exits 2 with a message"
agent -c "$T/agent.conf" report
assert_eq "$RC" 2 "report without a report is a usage error"
agent --version
check "fleet-agent --version" grep -qE '^fleet-agent [0-9]+\.[0-9]+\.[0-9]+' "$T/out"

# ---- deploy/local/up.sh remembers its ports (deploy/local/ports.sh) ----------
. "$FLEET_SOURCE_DIR/deploy/local/ports.sh"
mkdir -p "$T/var"
ports() { # ports STATE [VAR=VALUE...]: the ports a run of up.sh would use
	(
		unset FLEET_API_PORT FLEET_DEVICE_PORT
		local state=$1
		shift
		[ $# -eq 0 ] || export "$@"
		fleet_local_ports "$T/var" "$state" 2>"$T/ports.err" && echo "$api_port $device_port"
	)
}
assert_eq "$(ports stopped)" "8443 8444" "up.sh: the default ports on a first run"
assert_eq "$(ports stopped FLEET_API_PORT=9443 FLEET_DEVICE_PORT=9444)" "9443 9444" "up.sh: ports from the environment"
assert_eq "$(ports stopped)" "9443 9444" "up.sh: a second run without the variables keeps them"
assert_eq "$(ports stopped FLEET_DEVICE_PORT=9555)" "9443 9555" "up.sh: one variable changes one port, the other is kept"
assert_eq "$(ports running FLEET_API_PORT=7443)" "9443 9555" "up.sh: while fleetd runs, its ports win"
check "... and it says so" grep -q 'fleetd runs on ports 9443 and 9555' "$T/ports.err"
assert_eq "$(cat "$T/var/ports")" "$(printf 'api_port=9443\ndevice_port=9555')" "up.sh: var/ports records them"
assert_eq "$(ports stopped FLEET_API_PORT=70000; echo "rc $?")" "rc 2" "up.sh: a value that is not a port is refused"
check "... naming it" grep -q "'70000' is not a port" "$T/ports.err"
assert_eq "$(ports stopped FLEET_API_PORT=9555; echo "rc $?")" "rc 2" "up.sh: the same port twice is refused"

harness_done
