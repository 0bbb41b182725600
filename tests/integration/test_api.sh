#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The JSON API end to end: real PostgreSQL, real fleetd (ca process + net
# workers), curl and openssl as outside clients. Enrollment with an openssl
# CSR verified by `openssl verify`, token use counts under concurrency,
# refusals as problem+json with nothing written, roles, audit rows,
# selectors, pagination, If-Match and Idempotency-Key (also on /enroll/v1);
# enrollment holds no lock while the ca signs (a stopped ca costs no use and
# no serialised waits); strict JSON bodies and server-made cursors only.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

harness_init
pki_init
# two net workers, as fleetd runs on this machine by default
fleetd_start 2

ADMIN=$(admin_token admin)
OPERATOR=$(admin_token operator)
VIEWER=$(admin_token viewer)

count() { psql_q "SELECT count(*) FROM $1"; }

# --- the token store contract: the unit tests' fake behaves like db/ -------
# (run first, while the database holds no enrollment token)
CONTRACT=$FLEET_BUILD_DIR/tests/unit/core
"$CONTRACT/token_contract_fake" >"$T/contract.fake"
"$CONTRACT/token_contract_pg" "$FLEETD_DATABASE" >"$T/contract.pg" 2>"$T/contract.log"
check "the token contract runs against PostgreSQL ($(wc -l <"$T/contract.pg") lines)" [ -s "$T/contract.pg" ]
check "the in-memory store and PostgreSQL give the same transcript" \
	diff -u "$T/contract.fake" "$T/contract.pg"

# new_token USES [EXTRA JSON MEMBERS]: prints "id token".
new_token() {
	TOKEN=$OPERATOR api POST /api/v1/tokens -H 'Content-Type: application/json' \
		--data "{\"uses\": $1${2:+, $2}}"
	[ "$STATUS" = 201 ] || { echo "token create: $STATUS $BODY" >&2; return 1; }
	jq -r '.id + " " + .token' <<<"$BODY"
}

csr_new() { # csr_new DIR [openssl genpkey args]: writes DIR/key.pem DIR/csr.pem
	mkdir -p "$1"
	local d=$1
	shift
	if [ $# = 0 ]; then
		set -- -algorithm EC -pkeyopt ec_paramgen_curve:P-256
	fi
	openssl genpkey "$@" -out "$d/key.pem" 2>/dev/null
	openssl req -new -key "$d/key.pem" -subj "/CN=enrolling" -out "$d/csr.pem"
}

# enroll TOKEN CSRFILE [LABELS JSON]: sets STATUS/BODY/CTYPE
enroll() {
	jq -n --arg t "$1" --rawfile c "$2" --argjson l "${3:-{\}}" \
		'{token: $t, csr: $c, labels: $l, model: "plc-x", serial: "SN1"}' >"$T/enroll.json"
	TOKEN= api POST /enroll/v1 -H 'Content-Type: application/json' --data-binary @"$T/enroll.json"
}

is_problem() { # is_problem STATUS SLUG
	[ "$STATUS" = "$1" ] && [ "$CTYPE" = application/problem+json ] &&
		[ "$(jq -r .type <<<"$BODY")" = "urn:fleet:problem:$2" ] &&
		[ "$(jq -r .status <<<"$BODY")" = "$1" ]
}

# --- enrollment and the chain -------------------------------------------
curl -sS --cacert "$FLEET_CA" -o "$T/ca.pem" "$FLEET_SERVER/pki/v1/ca.pem"
check "ca.pem holds two certificates" [ "$(grep -c 'BEGIN CERTIFICATE' "$T/ca.pem")" = 2 ]

read -r TID3 TOK3 < <(new_token 3 '"labels": {"site": "b7"}')
csr_new "$T/d1"
enroll "$TOK3" "$T/d1/csr.pem" '{"site": "evil", "room": "12"}'
assert_eq "$STATUS" 201 "enrollment answers 201"
DEV1=$(jq -r .device_id <<<"$BODY")
jq -r .certificate <<<"$BODY" >"$T/d1/cert.pem"
jq -r .chain <<<"$BODY" >"$T/d1/chain.pem"
check "device_server is the device listener" [ "$(jq -r .device_server <<<"$BODY")" = "$FLEET_DEVICE_SERVER" ]
check "openssl verify accepts the certificate and chain against ca.pem" \
	openssl verify -CAfile "$T/ca.pem" -untrusted "$T/d1/chain.pem" -purpose sslclient "$T/d1/cert.pem"
check "certificate subject is the device id" \
	grep -q "CN *= *$DEV1" <(openssl x509 -in "$T/d1/cert.pem" -noout -subject)
check "certificate holds the CSR's key" [ \
	"$(openssl x509 -in "$T/d1/cert.pem" -noout -pubkey)" = "$(openssl pkey -in "$T/d1/key.pem" -pubout)" ]
TOKEN=$VIEWER api GET "/api/v1/devices/$DEV1"
assert_eq "$(jq -c .labels <<<"$BODY")" '{"room":"12","site":"b7"}' "the token's labels win over the request's"
assert_eq "$(psql_q "SELECT count(*) FROM audit_log WHERE action='device.enroll' AND target='$DEV1'")" 1 "enrollment has its audit row"

csr_new "$T/d2"
enroll "$TOK3" "$T/d2/csr.pem"
assert_eq "$STATUS" 201 "second use"
enroll "$TOK3" "$T/d2/csr.pem"
assert_eq "$STATUS" 201 "third use"
enroll "$TOK3" "$T/d2/csr.pem"
check "a 3-use token refuses the 4th enrollment (token-exhausted)" is_problem 401 token-exhausted
assert_eq "$(psql_q "SELECT count(*) FROM devices WHERE enrolled_with='$TID3'")" 3 "3 devices from the 3-use token"

read -r TIDX TOKX < <(new_token 5 '"expires_in": 1')
# fleetd compares expires_at (whole seconds) with the wall clock this
# machine shares with PostgreSQL: wait until that clock has passed it.
token_expired() {
	test "$(psql_q "SELECT now() >= expires_at FROM enrollment_tokens WHERE id = '$1'")" = t
}
check "the 1-second token's expires_at has passed" \
	wait_for "token $TIDX past its expires_at" 15 token_expired "$TIDX"
enroll "$TOKX" "$T/d2/csr.pem"
check "an expired token is refused (token-expired)" is_problem 401 token-expired

read -r TIDR TOKR < <(new_token 5)
TOKEN=$OPERATOR api POST "/api/v1/tokens/$TIDR/revoke"
assert_eq "$STATUS" 200 "revoking a token"
check "revoked token has revoked_at" [ "$(jq -r .revoked_at <<<"$BODY")" != null ]
enroll "$TOKR" "$T/d2/csr.pem"
check "a revoked token is refused (token-revoked)" is_problem 401 token-revoked
enroll "fle_$(printf '%064d' 0)" "$T/d2/csr.pem"
check "an unknown token is refused (token-invalid)" is_problem 401 token-invalid

# --- concurrency: 20 enrollments on a 10-use token ------------------------
read -r TID10 TOK10 < <(new_token 10)
jq -n --arg t "$TOK10" --rawfile c "$T/d2/csr.pem" '{token: $t, csr: $c}' >"$T/e10.json"
pids=()
for i in $(seq 1 20); do
	curl -sS --cacert "$FLEET_CA" -o /dev/null -w '%{http_code}\n' \
		-H 'Content-Type: application/json' --data-binary @"$T/e10.json" \
		"$FLEET_SERVER/enroll/v1" >"$T/c$i.code" &
	pids+=("$!")
done
wait "${pids[@]}" # not a bare wait: fleetd runs in the background too
assert_eq "$(cat "$T"/c*.code | grep -c '^201$')" 10 "exactly 10 of 20 concurrent enrollments succeed"
assert_eq "$(cat "$T"/c*.code | grep -c '^401$')" 10 "the other 10 are refused"
assert_eq "$(psql_q "SELECT count(*) FROM devices WHERE enrolled_with='$TID10'")" 10 "10 device rows for the 10-use token"
assert_eq "$(psql_q "SELECT uses_left FROM enrollment_tokens WHERE id='$TID10'")" 0 "no uses left"

# --- refusals write nothing ----------------------------------------------
read -r TIDB TOKB < <(new_token 100)
before="$(count devices) $(count certificates) $(count audit_log) $(psql_q "SELECT uses_left FROM enrollment_tokens WHERE id='$TIDB'")"
# bad signature: flip a byte inside the signature of a DER CSR
openssl req -in "$T/d2/csr.pem" -outform DER -out "$T/bad.der"
python3 - "$T/bad.der" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[-5] ^= 0x55
open(p, 'wb').write(b)
PY
openssl base64 -in "$T/bad.der" | { echo '-----BEGIN CERTIFICATE REQUEST-----'; cat; echo '-----END CERTIFICATE REQUEST-----'; } >"$T/bad.pem"
enroll "$TOKB" "$T/bad.pem"
check "a CSR with a bad signature is refused (csr-rejected)" is_problem 400 csr-rejected
csr_new "$T/weak" -algorithm RSA -pkeyopt rsa_keygen_bits:1024
enroll "$TOKB" "$T/weak/csr.pem"
check "an RSA-1024 CSR is refused (csr-rejected)" is_problem 400 csr-rejected
head -c 1048577 /dev/zero | tr '\0' 'a' >"$T/big.json"
TOKEN= api POST /enroll/v1 -H 'Content-Type: application/json' --data-binary @"$T/big.json"
check "a body over 1 MiB is refused (payload-too-large)" is_problem 413 payload-too-large
TOKEN= api POST /enroll/v1 -H 'Content-Type: application/json' --data '{"token": "'"$TOKB"'", "csr": '
check "malformed JSON is refused (malformed-json)" is_problem 400 malformed-json
TOKEN= api POST /enroll/v1 -H 'Content-Type: application/json' --data '{"token": 5, "csr": "x"}'
check "a wrongly typed field is refused (invalid-field)" is_problem 400 invalid-field
TOKEN= api POST /enroll/v1 -H 'Content-Type: text/plain' --data '{}'
check "another content type is refused (415)" is_problem 415 unsupported-media-type
after="$(count devices) $(count certificates) $(count audit_log) $(psql_q "SELECT uses_left FROM enrollment_tokens WHERE id='$TIDB'")"
assert_eq "$after" "$before" "refused enrollments wrote nothing and used no token use"

# --- auth and roles -------------------------------------------------------
TOKEN= api GET /api/v1/devices
check "no token -> 401" is_problem 401 unauthorized
TOKEN="fla_$(printf '%064d' 1)" api GET /api/v1/devices
check "unknown token -> 401" is_problem 401 unauthorized
TOKEN=$VIEWER api POST /api/v1/tokens -H 'Content-Type: application/json' --data '{"uses": 1}'
check "viewer on a mutation -> 403" is_problem 403 forbidden
TOKEN=$OPERATOR api GET /api/v1/admin-tokens
check "operator on admin tokens -> 403" is_problem 403 forbidden
TOKEN=$OPERATOR api DELETE /api/v1/devices
check "DELETE on the device list -> 405" is_problem 405 method-not-allowed
TOKEN=$VIEWER api GET /api/v1/nothing
check "unknown path -> 404" is_problem 404 not-found
TOKEN=$ADMIN api POST /api/v1/admin-tokens -H 'Content-Type: application/json' --data '{"role": "viewer", "name": "ci"}'
assert_eq "$STATUS" 201 "admin creates an admin token"
NEWTOK=$(jq -r .token <<<"$BODY")
NEWID=$(jq -r .id <<<"$BODY")
TOKEN=$NEWTOK api GET /api/v1/devices
assert_eq "$STATUS" 200 "the new viewer token works"
TOKEN=$ADMIN api POST "/api/v1/admin-tokens/$NEWID/revoke"
TOKEN=$NEWTOK api GET /api/v1/devices
check "a revoked admin token -> 401" is_problem 401 unauthorized
check "admin tokens are stored hashed" [ "$(psql_q "SELECT count(*) FROM admin_tokens WHERE token_sha256 = '$NEWTOK'")" = 0 ]

# --- devices: selectors, pagination, If-Match, decommission ---------------
TOKEN=$VIEWER api GET '/api/v1/devices?selector=site%3Db7,room%20in%20(12,13)'
assert_eq "$(jq '.items | length' <<<"$BODY")" 1 "selector site=b7,room in (12,13) finds one device"
assert_eq "$(jq -r '.items[0].id' <<<"$BODY")" "$DEV1" "... the right one"
TOKEN=$VIEWER api GET '/api/v1/devices?selector=site%3Db7,!room'
assert_eq "$(jq '.items | length' <<<"$BODY")" 2 "selector site=b7,!room"
TOKEN=$VIEWER api GET '/api/v1/devices?selector=site%20in%20(b7'
check "a bad selector is refused with its column" bash -c \
	'[ "$1" = 400 ] && jq -r .detail <<<"$2" | grep -q "column"' _ "$STATUS" "$BODY"
total=$(count devices)
seen=0 cursor= pages=0
while :; do
	TOKEN=$VIEWER api GET "/api/v1/devices?limit=4${cursor:+&cursor=$cursor}"
	[ "$STATUS" = 200 ] || break
	seen=$((seen + $(jq '.items | length' <<<"$BODY")))
	pages=$((pages + 1))
	cursor=$(jq -r '.next_cursor // empty' <<<"$BODY")
	[ -n "$cursor" ] && [ "$pages" -lt 50 ] || break
done
assert_eq "$seen" "$total" "pagination with limit=4 visits every device once"
TOKEN=$VIEWER api GET '/api/v1/devices?limit=0'
check "limit=0 -> invalid-field" is_problem 400 invalid-field

curl -sS --cacert "$FLEET_CA" -D "$T/h" -o /dev/null -H "Authorization: Bearer $VIEWER" "$FLEET_SERVER/api/v1/devices/$DEV1"
ETAG=$(grep -i '^etag:' "$T/h" | tr -d '\r' | cut -d' ' -f2)
check "GET device has an ETag" [ -n "$ETAG" ]
TOKEN=$OPERATOR api PATCH "/api/v1/devices/$DEV1" -H 'Content-Type: application/merge-patch+json' \
	-H 'If-Match: "999"' --data '{"labels": {"room": null}}'
check "PATCH with a stale If-Match -> 412" is_problem 412 precondition-failed
TOKEN=$OPERATOR api PATCH "/api/v1/devices/$DEV1" -H 'Content-Type: application/merge-patch+json' \
	-H "If-Match: $ETAG" --data '{"labels": {"room": null, "floor": "2"}}'
assert_eq "$STATUS" 200 "PATCH with the current If-Match"
assert_eq "$(jq -c .labels <<<"$BODY")" '{"site":"b7","floor":"2"}' "merge patch applied"
TOKEN=$OPERATOR api PATCH "/api/v1/devices/$DEV1" -H 'Content-Type: application/json' \
	-H "If-Match: $ETAG" --data '{"labels": {"x": "y"}}'
check "the old ETag no longer matches" is_problem 412 precondition-failed
TOKEN=$OPERATOR api PATCH "/api/v1/devices/$DEV1" -H 'Content-Type: application/json' --data '{"labels": {"bad key": "y"}}'
check "a bad label key -> invalid-field" is_problem 400 invalid-field

SERIAL1=$(openssl x509 -in "$T/d1/cert.pem" -noout -serial | cut -d= -f2 | tr A-F a-f)
TOKEN=$OPERATOR api POST "/api/v1/devices/$DEV1/decommission"
assert_eq "$STATUS" 200 "decommission"
assert_eq "$(jq -r .status <<<"$BODY")" decommissioned "status decommissioned"
assert_eq "$(psql_q "SELECT status || ' ' || revoke_reason FROM certificates WHERE device_id='$DEV1'")" "revoked 5" "its certificate is revoked (cessationOfOperation)"
curl -sS --cacert "$FLEET_CA" -o "$T/crl.der" "$FLEET_SERVER/pki/v1/crl"
check "the CRL verifies against the issuing CA and lists the serial" sh -c \
	'openssl crl -inform DER -in "$1" -CAfile "$2" -noout -text 2>&1 | grep -qi "verify OK" &&
	 openssl crl -inform DER -in "$1" -noout -text | tr A-F a-f | grep -q "$3"' _ "$T/crl.der" "$T/ca.pem" "${SERIAL1#0}"

for a in token.create token.revoke admin_token.create admin_token.revoke device.update device.decommission device.enroll; do
	check "audit row for $a" [ "$(psql_q "SELECT count(*) FROM audit_log WHERE action='$a'")" -ge 1 ]
done
TOKEN=$VIEWER api GET '/api/v1/audit?limit=2'
check "audit list is newest first" [ "$(jq '.items[0].id > .items[1].id' <<<"$BODY")" = true ]

# --- Idempotency-Key --------------------------------------------------------
n0=$(count enrollment_tokens)
TOKEN=$OPERATOR api POST /api/v1/tokens -H 'Content-Type: application/json' -H 'Idempotency-Key: k-1' --data '{"uses": 2}'
first_id=$(jq -r .id <<<"$BODY")
TOKEN=$OPERATOR api POST /api/v1/tokens -H 'Content-Type: application/json' -H 'Idempotency-Key: k-1' --data '{"uses": 2}'
assert_eq "$STATUS $(jq -r .id <<<"$BODY")" "201 $first_id" "the same key and body replay the first answer"
assert_eq "$(jq -r .token <<<"$BODY")" null "a replay does not show the secret again"
TOKEN=$OPERATOR api POST /api/v1/tokens -H 'Content-Type: application/json' -H 'Idempotency-Key: k-1' --data '{"uses": 3}'
check "the same key with another body -> 409" is_problem 409 conflict
assert_eq "$(count enrollment_tokens)" "$((n0 + 1))" "one token for three requests"

# --- enrollment with a stopped ca: no lock held while signing ----------------
# Each enrollment reserves its use (committed), signs, and gives the use back
# when the ca does not answer; so N enrollments on one token wait for the
# signer in parallel, each about one signer timeout (5 s), never N x 5 s
# behind the token's row lock, and the token keeps all of its uses. N = 4:
# one worker's job threads (job_threads = 4), so that no request waits
# for a free thread whichever worker accepts them.
read -r TIDS TOKS < <(new_token 4)
jq -n --arg t "$TOKS" --rawfile c "$T/d2/csr.pem" '{token: $t, csr: $c}' >"$T/es.json"
CA=$(fleetd_child fleetd-ca)
check "the ca process runs (pid $CA)" [ -n "$CA" ]
kill -STOP "$CA"
pids=()
for i in $(seq 1 4); do
	curl -sS --max-time 60 --cacert "$FLEET_CA" -o /dev/null \
		-w '%{http_code} %{time_total}\n' -H 'Content-Type: application/json' \
		--data-binary @"$T/es.json" "$FLEET_SERVER/enroll/v1" >"$T/s$i.out" &
	pids+=("$!")
done
wait "${pids[@]}"
kill -CONT "$CA"
assert_eq "$(cat "$T"/s*.out | grep -c '^503 ')" 4 "4 concurrent enrollments with the ca stopped all answer 503"
slowest=$(cat "$T"/s*.out | awk '{ if ($2 > m) m = $2 } END { print m }')
check "... each within about one signer timeout, in parallel (slowest ${slowest}s < 8s)" \
	awk -v m="$slowest" 'BEGIN { exit !(m < 8) }'
assert_eq "$(psql_q "SELECT uses_left FROM enrollment_tokens WHERE id='$TIDS'")" 4 "... and the token kept all 4 uses"
assert_eq "$(psql_q "SELECT count(*) FROM devices WHERE enrolled_with='$TIDS'")" 0 "... and no device was written"
wait_for "enrollment works again after SIGCONT" 15 bash -c \
	'curl -sS --cacert "$1" -o /dev/null -w "%{http_code}" -H "Content-Type: application/json" \
		--data-binary @"$2" "$3/enroll/v1" | grep -q 201' _ "$FLEET_CA" "$T/es.json" "$FLEET_SERVER"
assert_eq "$(psql_q "SELECT uses_left FROM enrollment_tokens WHERE id='$TIDS'")" 3 "the enrollment after the ca came back took one use"

# --- Idempotency-Key on /enroll/v1: a lost answer costs no second use ------
read -r TIDI TOKI < <(new_token 3)
jq -n --arg t "$TOKI" --rawfile c "$T/d2/csr.pem" '{token: $t, csr: $c}' >"$T/ei.json"
TOKEN= api POST /enroll/v1 -H 'Content-Type: application/json' -H 'Idempotency-Key: boot-1' --data-binary @"$T/ei.json"
assert_eq "$STATUS" 201 "enrollment with an Idempotency-Key"
EDEV=$(jq -r .device_id <<<"$BODY")
TOKEN= api POST /enroll/v1 -H 'Content-Type: application/json' -H 'Idempotency-Key: boot-1' --data-binary @"$T/ei.json"
assert_eq "$STATUS $(jq -r .device_id <<<"$BODY")" "201 $EDEV" "a retry with the same key answers the same device"
check "... with its certificate" grep -q 'BEGIN CERTIFICATE' <<<"$(jq -r .certificate <<<"$BODY")"
assert_eq "$(psql_q "SELECT uses_left FROM enrollment_tokens WHERE id='$TIDI'")" 2 "... and used one use for two requests"
jq -n --arg t "$TOKI" --rawfile c "$T/d1/csr.pem" '{token: $t, csr: $c}' >"$T/ei2.json"
TOKEN= api POST /enroll/v1 -H 'Content-Type: application/json' -H 'Idempotency-Key: boot-1' --data-binary @"$T/ei2.json"
check "the same key with another body -> 409" is_problem 409 conflict
assert_eq "$(psql_q "SELECT uses_left FROM enrollment_tokens WHERE id='$TIDI'")" 2 "... which used no use"

# --- strict JSON bodies (RFC 8259, UTF-8) -----------------------------------
n0=$(count enrollment_tokens)
bad_body() { # bad_body DESCRIPTION PRINTF-FORMAT: POSTs the bytes to /api/v1/tokens
	printf "$2" >"$T/bad.json"
	TOKEN=$OPERATOR api POST /api/v1/tokens -H 'Content-Type: application/json' --data-binary @"$T/bad.json"
	check "$1 -> 400 malformed-json" is_problem 400 malformed-json
}
bad_body "a raw NUL byte between tokens" '{"uses": 1,\000 "labels": {}}'
bad_body "a raw NUL byte after the object" '{"uses": 1}\000'
bad_body "invalid UTF-8 in a string" '{"uses": 1, "profile": "\377\376"}'
bad_body "an overlong UTF-8 form" '{"uses": 1, "profile": "\300\257"}'
bad_body "a UTF-8 encoded surrogate" '{"uses": 1, "profile": "\355\240\200"}'
bad_body "an unpaired surrogate escape" '{"uses": 1, "profile": "\\ud800"}'
bad_body "a low surrogate escape first" '{"uses": 1, "profile": "\\udc00\\ud800"}'
bad_body "a \\u0000 escape" '{"uses": 1, "profile": "a\\u0000b"}'
bad_body "trailing garbage" '{"uses": 1} x'
bad_body "two JSON texts" '{"uses": 1}{"uses": 2}'
bad_body "a duplicate member name" '{"uses": 1, "uses": 2}'
bad_body "a byte order mark" '\357\273\277{"uses": 1}'
bad_body "a raw control character in a string" '{"uses": 1, "profile": "a\001b"}'
bad_body "a leading-zero number" '{"uses": 01}'
bad_body "single quotes" "{'uses': 1}"
bad_body "nesting deeper than 32" "{\"uses\": 1, \"labels\": $(printf '%.0s[' $(seq 1 40))1$(printf '%.0s]' $(seq 1 40))}"
printf '{"uses": 1, "profile": "caf\303\251 \\u00e9 \\ud83d\\ude00"}' >"$T/good.json"
TOKEN=$OPERATOR api POST /api/v1/tokens -H 'Content-Type: application/json' --data-binary @"$T/good.json"
assert_eq "$STATUS $(jq -r .profile <<<"$BODY")" "201 café é 😀" "valid UTF-8 and escaped surrogate pairs are accepted"
assert_eq "$(count enrollment_tokens)" "$((n0 + 1))" "the refused bodies created nothing"
printf '{"token": "%s",\000 "csr": "x"}' "$TOKB" >"$T/bad.json"
TOKEN= api POST /enroll/v1 -H 'Content-Type: application/json' --data-binary @"$T/bad.json"
check "enrollment: a raw NUL byte -> 400 malformed-json" is_problem 400 malformed-json

# --- pagination cursors: only what the server sealed for that list ----------
b64u() { printf '%s' "$1" | basenc --base64url -w0 | tr -d '='; }
UUID0=00000000-0000-4000-8000-000000000000
for list in /api/v1/audit /api/v1/devices /api/v1/tokens /api/v1/admin-tokens; do
	for cur in "$(b64u 9999999999999999999)" "$(b64u "9999999999999999999 $UUID0")" \
		"$(b64u "999999999999999999 $UUID0")" "$(b64u "01 $UUID0")" "$(b64u 0)" \
		"$(b64u "-1 $UUID0")" "$(b64u "1 0000000A-0000-4000-8000-000000000000")" \
		"$(b64u "1  $UUID0")" "$(b64u "1 $UUID0 ")" "!!" "$(b64u 1)=" \
		"$(b64u 1)" "$(b64u "1 $UUID0")" "$(b64u 1).AAAAAAAAAAAAAAAAAAAAAA"; do
		TOKEN=$ADMIN api GET "$list?cursor=$cur"
		[ "$STATUS" = 400 ] || { fail "$list?cursor=$cur -> $STATUS (want 400): $BODY"; continue 2; }
		is_problem 400 invalid-field || { fail "$list?cursor=$cur is not an invalid-field problem"; continue 2; }
	done
	ok "$list: crafted cursors (19-digit numbers, out-of-range times, non-canonical, unsealed) -> 400"
	TOKEN=$ADMIN api GET "$list?limit=1"
	cur=$(jq -r '.next_cursor // empty' <<<"$BODY")
	TOKEN=$ADMIN api GET "$list?limit=1&cursor=$cur"
	assert_eq "$STATUS" 200 "$list: the server's own cursor still works"
	TOKEN=$ADMIN api GET "$list?limit=1&limit=2"
	check "$list: a repeated parameter -> 400" is_problem 400 invalid-field
done
TOKEN=$ADMIN api GET "/api/v1/tokens?limit=1"
cur=$(jq -r '.next_cursor // empty' <<<"$BODY")
TOKEN=$ADMIN api GET "/api/v1/admin-tokens?limit=1&cursor=$cur"
check "another list's cursor (same shape) -> 400" is_problem 400 invalid-field

curl -sS --cacert "$FLEET_CA" -o /dev/null -w '%{http_code}' "$FLEET_SERVER/healthz" >"$T/hz"
assert_eq "$(cat "$T/hz")" 200 "healthz"

# An answer far larger than one TLS record is sent whole before a
# `Connection: close` closes (fleetctl sends that header on every call).
curl -sS --cacert "$FLEET_CA" -o "$T/oas.keep" "$FLEET_SERVER/api/v1/openapi.json"
curl -sS --cacert "$FLEET_CA" -H 'Connection: close' -o "$T/oas.close" \
	"$FLEET_SERVER/api/v1/openapi.json"
check "a large answer with Connection: close is not cut short" \
	test "$(wc -c <"$T/oas.close")" -gt 65536 -a "$(wc -c <"$T/oas.close")" = "$(wc -c <"$T/oas.keep")"

fleetd_stop
harness_done
