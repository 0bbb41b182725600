#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# fleetctl against a real fleetd: every command in table and JSON output,
# pagination, enrollment checked with openssl, and the failures an operator
# meets (bad token, missing role, unreachable server, wrong CA, usage
# errors), each of which must be one line on stderr and a non-zero exit.
source "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
source "$FLEET_SOURCE_DIR/tests/lib/cli.sh"

harness_init
pki_init
fleetd_start

ADMIN=$(admin_token admin)
export FLEET_TOKEN=$ADMIN # FLEET_SERVER and FLEET_CA come from the harness

# ---- help ------------------------------------------------------------------
expect_ok "fleetctl --help" --help
out_has '^usage: fleetctl' "--help prints usage"
for cmd in "tokens create" "tokens list" "tokens revoke" \
	"admin-tokens create" "admin-tokens list" "admin-tokens revoke" \
	"audit list" "devices list" "devices show" "devices label" \
	"devices decommission" "enroll" "tokens" "admin-tokens" "devices" \
	"audit" "keys" "keys gen" "devices certificates" "devices rotate" \
	"certificates" "certificates revoke"; do
	# shellcheck disable=SC2086
	expect_ok "fleetctl $cmd --help" $cmd --help
	out_has "^usage: fleetctl $cmd" "fleetctl $cmd --help names the command"
done
expect_fail "no command is a usage error" 2 '' devices

# ---- keys (offline; parsed like every other command) ---------------------
expect_ok "keys gen" keys gen --out "$T/rel.key"
out_has '^[0-9a-f]{64}$' "keys gen prints the key id"
KEYID=$OUT
assert_eq "$(stat -c %a "$T/rel.key")" 600 "the private key is 0600"
check "the key id is the SHA-256 of the public key's DER (openssl)" bash -c \
	"[ \"\$(openssl pkey -pubin -in '$T/rel.key.pub' -outform DER | sha256sum | cut -c1-64)\" = '$KEYID' ]"
expect_ok "keys gen --type ed25519 (global options accepted too)" \
	keys gen --type ed25519 --out "$T/rel2.key" -o json
check "an Ed25519 key (openssl)" bash -c "openssl pkey -in '$T/rel2.key' -noout -text | grep -q ED25519"
expect_fail "keys gen refuses to overwrite" 1 '^fleetctl: keys gen: .*exists' keys gen --out "$T/rel.key"
expect_fail "keys gen without --out" 2 '^fleetctl: keys gen: --out FILE is required' keys gen
expect_fail "keys gen with a bad type" 2 "--type must be p256 or ed25519, not 'rsa'" \
	keys gen --type rsa --out "$T/x.key"
expect_fail "keys gen with an unknown option" 2 "unknown option '--bogus'" keys gen --bogus
expect_fail "keys with an unknown subcommand" 2 "^fleetctl: keys: unknown command 'frob'" keys frob
expect_fail "unknown subcommand" 2 "^fleetctl: devices: unknown command 'frob'" devices frob
expect_fail "unknown option" 2 "unknown option '--bogus'" devices list --bogus
expect_fail "bad -o" 2 "table or json" -o yaml devices list
expect_fail "missing required option" 2 "--expires is required" tokens create --uses 1
expect_fail "bad duration" 2 "--expires must be a duration" tokens create --uses 1 --expires soon
expect_fail "bad role" 2 "--role must be" admin-tokens create --role root --name x

# ---- admin tokens ------------------------------------------------------------
expect_ok "admin-tokens create viewer (json)" admin-tokens create --role viewer --name ci-viewer -o json
json_is '.role' viewer "admin token role"
json_is '.token | test("^fla_[0-9a-f]{64}$")' true "admin token is shown in json"
VIEWER=$(printf '%s' "$OUT" | jq -r .token)
VIEWER_ID=$(printf '%s' "$OUT" | jq -r .id)

expect_ok "admin-tokens create operator (table)" admin-tokens create --role operator --name ops
out_has 'shown only once' "a new admin token is announced as shown once"
out_has '^    fla_[0-9a-f]{64}$' "the admin token stands on its own line"
OPERATOR=$(grep -oE 'fla_[0-9a-f]{64}' "$T/out")

expect_ok "admin-tokens list (table)" admin-tokens list
out_has '^ID +NAME +ROLE +STATUS +CREATED +EXPIRES +LAST USED$' "admin-tokens table header"
out_has "^$VIEWER_ID +ci-viewer +viewer +active" "admin-tokens table row"
expect_ok "admin-tokens list (json)" admin-tokens list -o json
json_is '[.[] | select(.role == "operator")] | length' 1 "admin-tokens json lists the operator"
json_is '[.[] | select(has("token"))] | length' 0 "listed admin tokens carry no secret"

# ---- enrollment tokens -------------------------------------------------------
expect_ok "tokens create (json)" tokens create --uses 2 --expires 1h --label site=b7 -o json
json_is '.uses_total' 2 "token uses"
json_is '.labels.site' b7 "token labels"
json_is '.token | startswith("fle_")' true "enrollment token shown in json"
ETOKEN=$(printf '%s' "$OUT" | jq -r .token)
ETOKEN_ID=$(printf '%s' "$OUT" | jq -r .id)

expect_ok "tokens create (table)" tokens create --uses 1 --expires 7d --label site=b8 --label tier=edge
out_has 'shown only once' "a new enrollment token is announced as shown once"
out_has '^    fle_' "the enrollment token stands on its own line"
out_has '^LABELS: +site=b8,tier=edge$' "token labels in table output"
ETOKEN2=$(grep -oE 'fle_[0-9A-Za-z_-]+' "$T/out" | head -n 1)
ETOKEN2_ID=$(sed -n 's/^ID: *//p' "$T/out")

expect_ok "tokens list (table)" tokens list
out_has '^ID +STATUS +USES +EXPIRES +PROFILE +LABELS$' "tokens table header"
out_has "^$ETOKEN_ID +active +2/2 " "tokens table row"
expect_ok "tokens list (json)" tokens list -o json
json_is 'length' 2 "tokens json lists both"
json_is '[.[] | select(has("token"))] | length' 0 "listed tokens carry no secret"

# ---- enroll ------------------------------------------------------------------
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	-out "$T/dev1.key" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	-out "$T/dev2.key" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	-out "$T/dev3.key" 2>/dev/null

# enroll needs no admin token, and must not send one.
FLEET_TOKEN= run enroll --token "$ETOKEN" --key "$T/dev1.key" \
	--out "$T/dev1.pem" --chain "$T/dev1-chain.pem" --label role=gw \
	--label site=zz --model plc-x --serial SN1
if [ "$RC" = 0 ] && [ -z "$ERR" ]; then ok "enroll (table)"; else fail "enroll (rc $RC: $ERR)"; fi
DEV1=$(sed -n 's/^DEVICE ID: *//p' "$T/out")
check "enroll prints a device id" \
	grep -qE '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' <<<"$DEV1"
check "the device certificate verifies against the chain (openssl verify)" \
	openssl verify -CAfile "$T/dev1-chain.pem" "$T/dev1.pem"
check "the device certificate verifies against the CA bundle" \
	openssl verify -CAfile "$FLEET_CA" "$T/dev1.pem"
assert_eq "$(openssl x509 -in "$T/dev1.pem" -noout -pubkey)" \
	"$(openssl pkey -in "$T/dev1.key" -pubout)" "the certificate holds the device key"
check "the certificate names the device" \
	grep -q "$DEV1" <(openssl x509 -in "$T/dev1.pem" -noout -subject -ext subjectAltName)

run enroll --token "$ETOKEN" --key "$T/dev2.key" --out "$T/dev2.pem" -o json
if [ "$RC" = 0 ]; then ok "enroll (json)"; else fail "enroll json (rc $RC: $ERR)"; fi
json_is '.certificate | startswith("-----BEGIN CERTIFICATE-----")' true "enroll json has the certificate"
DEV2=$(printf '%s' "$OUT" | jq -r .device_id)

expect_fail "an exhausted enrollment token is refused" 1 '^fleetctl: 401 .*' \
	enroll --token "$ETOKEN" --key "$T/dev3.key" --out "$T/dev3.pem"
check "no certificate is written when enrollment fails" test ! -e "$T/dev3.pem"
expect_fail "enroll with a missing key file" 1 "dev-missing.key" \
	enroll --token "$ETOKEN2" --key "$T/dev-missing.key" --out "$T/dev3.pem"

# ---- devices -----------------------------------------------------------------
run devices list
assert_eq "$RC:$ERR" "0:2 of 2 devices" "devices list (table) counts on stderr"
out_has '^ID +ONLINE +MODEL +FW +LABELS +LAST SEEN +CERT EXPIRES +ADDRESS$' "devices table header"
out_has "^$DEV1 +no +plc-x +- +role=gw,site=b7 " "devices table row (token label wins)"
expect_ok "devices list (json)" devices list -o json
json_is 'length' 2 "devices json lists both"
expect_ok "devices list --selector" devices list --selector 'site=b7,role=gw' -o json
json_is '[.[].id] | join(",")' "$DEV1" "selector narrows the list"
expect_ok "devices list --selector with no match" devices list --selector 'site in (x,y)' -o json
json_is 'length' 0 "selector without a match gives an empty list"
expect_ok "devices list --online" devices list --online -o json
json_is 'length' 0 "no device is online"
expect_ok "devices list --offline" devices list --offline -o json
json_is 'length' 2 "both devices are offline"
expect_fail "bad selector" 1 '^fleetctl: 400 ' devices list --selector 'a in ('

expect_ok "devices show (table)" devices show "$DEV1"
out_has "^ID: +$DEV1$" "devices show id"
out_has '^MODEL: +plc-x$' "devices show model"
out_has '^SERIAL: +SN1$' "devices show serial"
out_has '^CERTIFICATE: +serial [0-9A-Fa-f]+, valid ' "devices show certificate"
expect_ok "devices show (json)" devices show "$DEV1" -o json
json_is '.labels.role' gw "device keeps the requested label"
json_is '.labels.site' b7 "the token's label wins over the requested one"

expect_ok "devices label set" devices label "$DEV1" env=prod floor=3 -o json
json_is '.labels.env + "," + .labels.floor + "," + .labels.site' "prod,3,b7" "labels merged"
expect_ok "devices label --remove (table)" devices label "$DEV1" --remove floor
out_has '^LABELS: +env=prod,role=gw,site=b7$' "label removed, others kept"
expect_fail "devices label without changes" 2 "nothing to change" devices label "$DEV1"
expect_fail "devices label with a bad key" 1 '^fleetctl: 400 ' devices label "$DEV1" 'bad key=1'

# ---- certificates ------------------------------------------------------------
expect_ok "devices certificates (table)" devices certificates "$DEV1"
out_has '^SERIAL +STATUS +NOT BEFORE +NOT AFTER +REVOKED$' "certificates table header"
SERIAL1=$(openssl x509 -in "$T/dev1.pem" -noout -serial | cut -d= -f2)
out_has "^$SERIAL1 +active " "the enrolled certificate is active"
expect_ok "devices rotate" devices rotate "$DEV1"
out_has "^rotation requested for device $DEV1$" "rotate confirms"
out_has '^STATUS: +pending$' "an offline device's rotation is pending"
expect_ok "devices rotate again" devices rotate "$DEV1"
out_has 'already pending' "asking again returns the pending rotation"
expect_fail "certificates revoke needs a reason" 2 '--reason R is required' \
	certificates revoke "$SERIAL1"
expect_fail "certificates revoke with a bad reason" 1 '^fleetctl: 400 ' \
	certificates revoke "$SERIAL1" --reason certificateHold
expect_ok "certificates revoke" certificates revoke "$SERIAL1" --reason keyCompromise
out_has "^revoked certificate $SERIAL1 of device $DEV1 \(keyCompromise\)$" "revoke confirms"
expect_ok "devices certificates (json)" devices certificates "$DEV1" -o json
json_is '.[0].status + "," + .[0].revocation_reason' "revoked,keyCompromise" "the certificate shows revoked with its reason"
expect_fail "revoked twice" 1 '^fleetctl: 409 ' certificates revoke "$SERIAL1" --reason keyCompromise

expect_ok "devices decommission" devices decommission "$DEV2"
out_has "^decommissioned device $DEV2$" "decommission confirms"
expect_ok "decommissioned device shows" devices show "$DEV2" -o json
json_is '.status' decommissioned "device status after decommission"
expect_fail "unknown device" 1 '^fleetctl: 404 ' devices show 00000000-0000-4000-8000-000000000000

# ---- revoke and audit --------------------------------------------------------
expect_ok "tokens revoke (json)" tokens revoke "$ETOKEN2_ID" -o json
json_is '.revoked_at != null' true "revoked token has revoked_at"
expect_ok "tokens list after revoke" tokens list
out_has "^$ETOKEN2_ID +revoked " "revoked token listed as revoked"
expect_fail "a revoked enrollment token is refused" 1 '^fleetctl: 401 ' \
	enroll --token "$ETOKEN2" --key "$T/dev3.key" --out "$T/dev3.pem"

expect_ok "audit list (json)" audit list -o json
N_AUDIT=$(printf '%s' "$OUT" | jq length)
check "audit has entries for the mutations above" test "$N_AUDIT" -ge 8
json_is '[.[] | select(.actor | startswith("token:"))] | length > 0' true "audit names token actors"
FULL_AUDIT=$OUT
# Follow next_cursor: two items per page must give the same list.
FLEETCTL_PAGE_SIZE=2 run audit list -o json
assert_eq "$OUT" "$FULL_AUDIT" "audit list follows next_cursor pages"
expect_ok "audit list --limit" audit list --limit 3 -o json
json_is 'length' 3 "audit --limit caps the list"
FLEETCTL_PAGE_SIZE=2 run audit list --limit 3 -o json
assert_eq "$(printf '%s' "$OUT" | jq length)" 3 "audit --limit across pages"
expect_ok "audit list (table)" audit list --limit 5
out_has '^AT +ACTOR +ACTION +TARGET +DETAILS$' "audit table header"
assert_eq "$(wc -l <"$T/out")" 6 "audit table has the header and 5 rows"

# Compare with curl as an outside oracle.
TOKEN=$ADMIN api GET '/api/v1/devices?limit=1000'
expect_ok "devices list for the curl comparison" devices list -o json
assert_eq "$(printf '%s' "$OUT" | jq -c '[.[].id] | sort')" \
	"$(printf '%s' "$BODY" | jq -c '[.items[].id] | sort')" "fleetctl and curl list the same devices"

# ---- roles and bad tokens ----------------------------------------------------
FLEET_TOKEN=$VIEWER expect_ok "viewer may read devices" devices list -o json
FLEET_TOKEN=$VIEWER expect_fail "viewer may not create tokens (403)" 1 \
	'^fleetctl: 403 ' tokens create --uses 1 --expires 1h
FLEET_TOKEN=$VIEWER expect_fail "viewer may not label devices (403)" 1 \
	'^fleetctl: 403 ' devices label "$DEV1" a=b
FLEET_TOKEN=$OPERATOR expect_ok "operator may create enrollment tokens" tokens create --uses 1 --expires 1h -o json
FLEET_TOKEN=$OPERATOR expect_fail "operator may not create admin tokens (403)" 1 \
	'^fleetctl: 403 ' admin-tokens create --role admin --name x
expect_fail "a bad token gives 401" 1 '^fleetctl: 401 ' \
	--token "fla_$(printf '0%.0s' $(seq 1 64))" devices list
FLEET_TOKEN= expect_fail "no token is reported before connecting" 1 \
	'no admin token' devices list
expect_ok "admin-tokens revoke" admin-tokens revoke "$VIEWER_ID"
FLEET_TOKEN=$VIEWER expect_fail "a revoked admin token gives 401" 1 \
	'^fleetctl: 401 ' devices list

# ---- transport failures ------------------------------------------------------
DEAD_PORT=$(free_port)
expect_fail "unreachable server" 1 \
	"^fleetctl: connect 127.0.0.1:$DEAD_PORT: Connection refused$" \
	--server "https://127.0.0.1:$DEAD_PORT" devices list
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$T/other.key" -out "$T/other-ca.pem" -subj /CN=other-ca \
	-days 1 2>/dev/null
expect_fail "wrong CA" 1 '^fleetctl: TLS: certificate verify failed: ' \
	--ca "$T/other-ca.pem" devices list
expect_fail "missing CA file" 1 'CA bundle .*: No such file' \
	--ca "$T/nope.pem" devices list
expect_fail "server URL must be https" 1 'must start with https://' \
	--server "http://127.0.0.1:1" devices list
# The server certificate names localhost and 127.0.0.1 only.
API_HOST_PORT=${FLEET_SERVER#https://localhost:}
check "the IP address in the server URL is checked too" \
	fleetctl --server "https://127.0.0.1:$API_HOST_PORT" devices list -o json

harness_done
