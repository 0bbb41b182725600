#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The hostile-input suite (issue 14, HTTP/API side): a real fleetd with two
# net workers, probed with raw TLS requests from tests/integration/hostile.py
# (bytes exactly as written: curl would refuse to send most of them), with
# openssl-made CSRs and with TLS handshakes limited to given suites. Each
# case asserts the exact refusal (status, problem+json, connection closed
# where a refusal must close it), that nothing was written (row counts in
# PostgreSQL, audit rows included), and that fleetd kept serving (the same
# worker processes, /healthz, an authenticated GET). The classes: HTTP/1.1
# framing, methods, limits (defect 2 of issue 8), %00, upgrades on the api
# listener, strict JSON, pagination cursors, CSR policy, TLS suites, and
# listener separation. docs/internals/threat-model.md says who fixes what.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

HOSTILE="$FLEET_SOURCE_DIR/tests/integration/hostile.py"

harness_init
pki_init
fleetd_start 2
NET1=$(fleetd_child fleetd-net1)
NET2=$(fleetd_child fleetd-net2)

ADMIN=$(admin_token admin)
OPERATOR=$(admin_token operator)
VIEWER=$(admin_token viewer)

# --- helpers ------------------------------------------------------------

# req LINE...: an HTTP head, one argument per line, CRLF line ends; the
# caller appends the body. `req "GET / HTTP/1.1" "Host: x" ""`
req() { printf '%s\r\n' "$@"; }

# hsend FILE [send options]: the bytes of FILE to the api listener; the
# JSON answer of hostile.py in $RES. HPORT/HCERT select another listener.
hsend() {
	local file=$1
	shift
	local extra=()
	[ -n "${HCERT:-}" ] && extra=(--cert "$HCERT" --key "$HKEY")
	RES=$(python3 "$HOSTILE" --port "${HPORT:-$API_PORT}" --ca "$FLEET_CA" \
		--timeout "${HTIMEOUT:-6}" "${extra[@]}" send "$file" "$@")
}

nresp() { jq '.responses | length' <<<"$RES"; }
rstatus() { jq -r ".responses[${1:-0}].status // \"none\"" <<<"$RES"; }
rctype() { jq -r ".responses[${1:-0}].ctype // \"\"" <<<"$RES"; }
rslug() { jq -r '.responses[0].body | (try fromjson catch {}) | .type // ""' <<<"$RES" | sed 's/^urn:fleet:problem://'; }
rclosed() { jq -r .closed <<<"$RES"; }
summary() { jq -c '{n: (.responses | length), statuses: [.responses[].status], ctype: .responses[0].ctype, body: (.responses[0].body // "" | .[0:160]), closed, error}' <<<"$RES"; }

# expect WHAT STATUS SLUG CLOSE: exactly one answer, problem+json with
# STATUS and (when SLUG is not "-") that type; CLOSE yes: the server closed.
expect() {
	local what=$1 status=$2 slug=$3 close=$4
	if [ "$(nresp)" = 1 ] && [ "$(rstatus)" = "$status" ] &&
		[ "$(rctype)" = application/problem+json ] &&
		{ [ "$slug" = - ] || [ "$(rslug)" = "$slug" ]; } &&
		{ [ "$close" != yes ] || [ "$(rclosed)" = true ]; }; then
		ok "$what"
	else
		fail "$what (want $status $slug close=$close; got $(summary))"
	fi
}

# What a refused request must not change. Audit rows are in it: every
# mutation writes one.
state() {
	psql_q "SELECT (SELECT count(*) FROM enrollment_tokens) || ' ' ||
		(SELECT count(*) FROM admin_tokens) || ' ' ||
		(SELECT count(*) FROM devices) || ' ' ||
		(SELECT count(*) FROM certificates) || ' ' ||
		(SELECT count(*) FROM audit_log) || ' ' ||
		(SELECT coalesce(sum(uses_left), 0) FROM enrollment_tokens)"
}

# still_serving CLASS: the same workers, /healthz and an authenticated GET.
still_serving() {
	local class=$1
	check "$class: net workers did not restart" \
		[ "$(fleetd_child fleetd-net1) $(fleetd_child fleetd-net2)" = "$NET1 $NET2" ]
	TOKEN= api GET /healthz
	assert_eq "$STATUS" 200 "$class: /healthz answers afterwards"
	TOKEN=$VIEWER api GET /api/v1/devices
	assert_eq "$STATUS" 200 "$class: an authenticated GET works afterwards"
}

TOKEN_BODY='{"uses": 1}' # 11 bytes: creates an enrollment token

# post_token AUTH: a well-formed token-creating request, to pipeline.
post_token() {
	req "POST /api/v1/tokens HTTP/1.1" "Host: localhost" \
		"Authorization: Bearer $OPERATOR" "Content-Type: application/json" \
		"Content-Length: ${#TOKEN_BODY}" ""
	printf '%s' "$TOKEN_BODY"
}

new_token() { # new_token USES LABELS_JSON: prints "id token"
	TOKEN=$OPERATOR api POST /api/v1/tokens -H 'Content-Type: application/json' \
		--data "{\"uses\": $1, \"labels\": $2}"
	[ "$STATUS" = 201 ] || { echo "token create: $STATUS $BODY" >&2; return 1; }
	jq -r '.id + " " + .token' <<<"$BODY"
}

csr_new() { # csr_new DIR [openssl req args]: DIR/key.pem DIR/csr.pem (P-256)
	local d=$1
	shift
	mkdir -p "$d"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/key.pem" 2>/dev/null
	openssl req -new -key "$d/key.pem" -subj "/CN=enrolling" "$@" -out "$d/csr.pem"
}

enroll() { # enroll TOKEN CSRFILE: STATUS/BODY/CTYPE
	jq -n --arg t "$1" --rawfile c "$2" '{token: $t, csr: $c, model: "plc-x"}' >"$T/enroll.json"
	TOKEN= api POST /enroll/v1 -H 'Content-Type: application/json' --data-binary @"$T/enroll.json"
}

# --- a small fleet: two devices on two sites ------------------------------
read -r _ TOKB7 < <(new_token 5 '{"site": "b7"}')
read -r _ TOKC9 < <(new_token 5 '{"site": "c9"}')
csr_new "$T/d1"
enroll "$TOKB7" "$T/d1/csr.pem"
assert_eq "$STATUS" 201 "setup: device 1 enrolled (site b7)"
DEV1=$(jq -r .device_id <<<"$BODY")
jq -r '.certificate, .chain' <<<"$BODY" >"$T/d1/fullchain.pem"
csr_new "$T/d2"
enroll "$TOKC9" "$T/d2/csr.pem"
assert_eq "$STATUS" 201 "setup: device 2 enrolled (site c9)"

# --- controls: the client sees pipelined answers and can write ----------
{
	req "GET /healthz HTTP/1.1" "Host: localhost" ""
	req "GET /healthz HTTP/1.1" "Host: localhost" ""
} >"$T/r"
hsend "$T/r"
check "control: two pipelined GETs get two answers on one connection" \
	[ "$(nresp) $(rstatus 0) $(rstatus 1)" = "2 200 200" ]
before=$(state)
post_token >"$T/r"
hsend "$T/r"
assert_eq "$(rstatus)" 201 "control: a raw well-framed POST creates a token"
check "control: ... and that shows in the row counts" [ "$(state)" != "$before" ]

# --- HTTP/1.1 framing (RFC 9112 §6) ----------------------------------------
BEFORE=$(state)

# framing NAME BODY-HEADERS...: a token POST whose framing headers are
# given, followed by a well-formed POST that must never run.
framing() {
	local what=$1
	shift
	{
		req "POST /api/v1/tokens HTTP/1.1" "Host: localhost" \
			"Authorization: Bearer $OPERATOR" \
			"Content-Type: application/json" "$@" ""
		printf '%s' "$TOKEN_BODY"
		post_token
	} >"$T/r"
	hsend "$T/r"
	expect "framing: $what -> 400, closed, the pipelined request never runs" 400 bad-request yes
}
framing "two different Content-Length" "Content-Length: 11" "Content-Length: 40"
framing "two equal Content-Length" "Content-Length: 11" "Content-Length: 11"
framing "Content-Length list" "Content-Length: 11, 11"
framing "Content-Length with Transfer-Encoding" "Content-Length: 11" "Transfer-Encoding: chunked"
framing "Transfer-Encoding before Content-Length" "Transfer-Encoding: chunked" "Content-Length: 11"
framing "Transfer-Encoding: identity" "Transfer-Encoding: identity" "Content-Length: 11"
framing "non-numeric Content-Length" "Content-Length: abc"
framing "Content-Length 11abc" "Content-Length: 11abc"
framing "negative Content-Length" "Content-Length: -1"
framing "signed Content-Length" "Content-Length: +11"
framing "overflowing Content-Length" "Content-Length: 99999999999999999999999"
framing "space before the colon" "Content-Length : 11"

# The non-numeric case of the issue: the body is a second request.
{
	req "GET /healthz HTTP/1.1" "Host: localhost" "Content-Length: x" ""
	post_token
} >"$T/r"
hsend "$T/r"
expect "framing: a body smuggled behind Content-Length: x is never run" 400 bad-request yes

# Chunked bodies: lws 4.1 does not decode them; we refuse them.
{
	req "POST /api/v1/tokens HTTP/1.1" "Host: localhost" \
		"Authorization: Bearer $OPERATOR" "Content-Type: application/json" \
		"Transfer-Encoding: chunked" ""
	printf 'b\r\n%s\r\n0\r\n\r\n' "$TOKEN_BODY"
} >"$T/r"
hsend "$T/r"
expect "framing: a chunked body -> 400, closed" 400 bad-request yes

{
	req "POST /enroll/v1 HTTP/1.1" "Host: localhost" "Content-Type: application/json" \
		"Content-Length: 2000000" ""
	printf '{}'
} >"$T/r"
hsend "$T/r"
expect "framing: Content-Length over max_body -> 413 at once, closed" 413 payload-too-large yes

req "GET /healthz HTTP/1.1" "" >"$T/r"
hsend "$T/r"
expect "framing: HTTP/1.1 without Host -> 400" 400 bad-request yes
req "GET /healthz HTTP/1.1" "Host: localhost" "Host: evil" "" >"$T/r"
hsend "$T/r"
expect "framing: two Host headers -> 400" 400 bad-request yes

assert_eq "$(state)" "$BEFORE" "framing: nothing was written"

# A POST without Content-Length has no body (RFC 9112 §6.3), as a proxy in
# front sees it too: it gets its own answer, and the bytes after it are
# never its body. They are the next request (our parser), or the
# connection closes after the answer (lws, which would read them as a
# 100 MB body).
{
	req "POST /api/v1/tokens HTTP/1.1" "Host: localhost" \
		"Authorization: Bearer $OPERATOR" "Content-Type: application/json" ""
	post_token
} >"$T/r"
hsend "$T/r"
check "framing: a POST without Content-Length is answered as one with an empty body" \
	[ "$(rstatus | cut -c1) $(rctype)" = "4 application/problem+json" ]
next_or_closed() {
	[ "$(nresp) $(rclosed)" = "1 true" ] || [ "$(nresp) $(rstatus 1)" = "2 201" ]
}
check "framing: ... and what follows is the next request or nothing, never its body" \
	next_or_closed
still_serving framing

# --- methods ----------------------------------------------------------------
BEFORE=$(state)
printf 'CONNECT 127.0.0.1:5432 HTTP/1.1\r\nHost: 127.0.0.1:5432\r\n\r\n' >"$T/r"
hsend "$T/r"
expect "methods: CONNECT -> 501 problem+json, closed (it hung)" 501 not-implemented yes
for m in TRACE PROPFIND FOO; do
	req "$m /api/v1/devices HTTP/1.1" "Host: localhost" "Authorization: Bearer $ADMIN" "" >"$T/r"
	hsend "$T/r"
	expect "methods: $m -> 501 problem+json (lws answered HTML 403)" 501 not-implemented yes
done
for m in PROPFIND OPTIONS; do
	req "$m /api/v1/devices HTTP/1.1" "Host: localhost" "Authorization: Bearer $ADMIN" \
		"Content-Length: 0" "" >"$T/r"
	hsend "$T/r"
	expect "methods: $m (never served) -> 501 problem+json" 501 not-implemented yes
done
req "DELETE /healthz HTTP/1.1" "Host: localhost" "" >"$T/r"
hsend "$T/r"
expect "methods: DELETE on /healthz -> 405" 405 method-not-allowed no
assert_eq "$(jq -r '.responses[0].headers.allow' <<<"$RES")" GET "methods: ... with Allow: GET"
req "HEAD /healthz HTTP/1.1" "Host: localhost" "" >"$T/r"
hsend "$T/r" --head
check "methods: HEAD /healthz -> 200 with no body" \
	[ "$(nresp) $(rstatus) $(jq -r '.responses[0].body' <<<"$RES")" = "1 200 " ]
assert_eq "$(state)" "$BEFORE" "methods: nothing was written"
still_serving methods

# --- limits: defect 2 of issue 8, over-long URL, header, parameter -------
BEFORE=$(state)
# A selector of about 1.5 KiB that matches device 1 only (it used to be
# dropped above 1 KiB, and the whole fleet came back).
SEL=$(python3 -c 'print("site in (" + ",".join("filler%04d%s" % (i, "x" * 12) for i in range(63)) + ",b7)")')
check "limits: the selector is over 1 KiB" [ "${#SEL}" -gt 1024 ]
ENC=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$SEL")
TOKEN=$VIEWER api GET "/api/v1/devices?selector=$ENC"
assert_eq "$STATUS $(jq -c '[.items[].id]' <<<"$BODY")" "200 [\"$DEV1\"]" \
	"limits: a 1.5 KiB selector is applied (one device, not the fleet)"

# A selector of exactly the documented 4096 bytes, every byte
# percent-encoded (a 12 KiB URL), works end to end.
SEL4K=$(python3 -c '
head = "site in (b7,"
vals = []
n = len(head) + 1
i = 0
while n < 4096 - 70:
    v = "v%03d" % i + "y" * 60
    vals.append(v); n += len(v) + 1; i += 1
s = head + ",".join(vals)
s += ",z" + "z" * (4096 - len(s) - 3) + ")"
print(s)')
check "limits: the long selector is 4096 bytes" [ "${#SEL4K}" = 4096 ]
ENC4K=$(python3 -c 'import sys; print("".join("%%%02X" % b for b in sys.argv[1].encode()))' "$SEL4K")
req "GET /api/v1/devices?selector=$ENC4K HTTP/1.1" "Host: localhost" \
	"Authorization: Bearer $VIEWER" "" >"$T/r"
hsend "$T/r"
assert_eq "$(rstatus) $(jq -c '.responses[0].body | fromjson | [.items[].id]' <<<"$RES" 2>/dev/null)" \
	"200 [\"$DEV1\"]" "limits: a 4096-byte selector, fully percent-encoded, is applied"
req "GET /api/v1/devices?selector=${ENC4K}%2C HTTP/1.1" "Host: localhost" \
	"Authorization: Bearer $VIEWER" "" >"$T/r"
hsend "$T/r"
expect "limits: a 4097-byte selector -> 400, not cut" 400 invalid-field no

# If-Match and Idempotency-Key over their limits used to count as absent.
curl -sS --cacert "$FLEET_CA" -D "$T/h" -o /dev/null -H "Authorization: Bearer $VIEWER" \
	"$FLEET_SERVER/api/v1/devices/$DEV1"
LABELS=$(psql_q "SELECT labels::text FROM devices WHERE id='$DEV1'")
PATCH='{"labels": {"site": "hijacked"}}'
{
	req "PATCH /api/v1/devices/$DEV1 HTTP/1.1" "Host: localhost" \
		"Authorization: Bearer $OPERATOR" "Content-Type: application/merge-patch+json" \
		"If-Match: \"$(printf 'x%.0s' $(seq 1 200))\"" "Content-Length: ${#PATCH}" ""
	printf '%s' "$PATCH"
} >"$T/r"
hsend "$T/r"
expect "limits: If-Match of 202 bytes -> 431, not ignored" 431 header-too-large yes
assert_eq "$(psql_q "SELECT labels::text FROM devices WHERE id='$DEV1'")" "$LABELS" \
	"limits: ... and the device is unchanged"
{
	req "POST /api/v1/tokens HTTP/1.1" "Host: localhost" \
		"Authorization: Bearer $OPERATOR" "Content-Type: application/json" \
		"Idempotency-Key: $(printf 'k%.0s' $(seq 1 300))" "Content-Length: ${#TOKEN_BODY}" ""
	printf '%s' "$TOKEN_BODY"
} >"$T/r"
hsend "$T/r"
expect "limits: Idempotency-Key of 300 bytes -> 431, not ignored" 431 header-too-large yes
req "GET /api/v1/devices HTTP/1.1" "Host: localhost" \
	"Authorization: Bearer $VIEWER$(printf 'a%.0s' $(seq 1 600))" "" >"$T/r"
hsend "$T/r"
expect "limits: Authorization of 680 bytes -> 431" 431 header-too-large yes
req "GET /api/v1/$(printf 'p%.0s' $(seq 1 2000)) HTTP/1.1" "Host: localhost" "" >"$T/r"
hsend "$T/r"
expect "limits: a path of 2 KiB -> 414" 414 uri-too-long yes
req "GET /api/v1/devices?selector=$(printf 'a%.0s' $(seq 1 20000)) HTTP/1.1" "Host: localhost" \
	"Authorization: Bearer $VIEWER" "" >"$T/r"
hsend "$T/r"
expect "limits: a URL of 20 KiB -> 414, not a dropped connection" 414 uri-too-long yes
req "GET /healthz HTTP/1.1" "Host: localhost" "X-Filler: $(printf 'f%.0s' $(seq 1 20000))" "" >"$T/r"
hsend "$T/r"
expect "limits: a header of 20 KiB -> 431, not a dropped connection" 431 header-too-large yes
Q=$(python3 -c 'print("&".join("p%d=1" % i for i in range(70)))')
req "GET /api/v1/devices?$Q HTTP/1.1" "Host: localhost" "Authorization: Bearer $VIEWER" "" >"$T/r"
hsend "$T/r"
expect "limits: 70 query parameters -> 400" 400 bad-request yes
# A head that never ends (slowloris) is not kept for ever, and others are
# served meanwhile.
printf 'GET /api/v1/devices HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1' >"$T/slow"
python3 "$HOSTILE" --port "$API_PORT" --ca "$FLEET_CA" --timeout 45 send "$T/slow" >"$T/slow.json" &
SLOW=$!
TOKEN=$VIEWER api GET /api/v1/devices
assert_eq "$STATUS" 200 "limits: requests are served while a head hangs"
wait "$SLOW"
check "limits: a head that never ends is closed within 45 s" \
	[ "$(jq -r '.closed' "$T/slow.json")" = true ]
# Many connections that hold half a head each do not starve the others.
python3 "$HOSTILE" --port "$API_PORT" --ca "$FLEET_CA" hold --count 200 --seconds 60 \
	>"$T/hold.out" 2>&1 &
HOLD=$!
check "limits: 200 connections hold half a head each" \
	wait_for "200 connections held" 60 grep -q '^held 200$' "$T/hold.out"
TOKEN=$VIEWER api GET /api/v1/devices
assert_eq "$STATUS" 200 "limits: an authenticated GET is served meanwhile"
kill "$HOLD" 2>/dev/null
wait "$HOLD" 2>/dev/null || true
assert_eq "$(state)" "$BEFORE" "limits: nothing was written"
still_serving limits

# --- %00 -----------------------------------------------------------------------
BEFORE=$(state)
req "GET /api/v1/devices%00/x HTTP/1.1" "Host: localhost" "Authorization: Bearer $VIEWER" "" >"$T/r"
hsend "$T/r"
expect "nul: %00 in the path -> 400, not a dropped connection" 400 bad-request yes
req "GET /api/v1/devices?selector=site%3Db7%00,x HTTP/1.1" "Host: localhost" \
	"Authorization: Bearer $VIEWER" "" >"$T/r"
hsend "$T/r"
expect "nul: %00 in a query parameter -> 400, not a dropped connection" 400 - yes
req "GET /api/v1/devices/%0a%0dx HTTP/1.1" "Host: localhost" "Authorization: Bearer $VIEWER" "" >"$T/r"
hsend "$T/r"
expect "nul: CR LF in the path -> 400 (they would reach the log)" 400 bad-request yes
assert_eq "$(state)" "$BEFORE" "nul: nothing was written"
still_serving nul

# --- the api listener never upgrades ------------------------------------------
upgrade() { # upgrade PROTOCOL [SUBPROTOCOL]
	req "GET /agent/v1 HTTP/1.1" "Host: localhost" "Upgrade: $1" "Connection: Upgrade" \
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" "Sec-WebSocket-Version: 13" \
		${2:+"Sec-WebSocket-Protocol: $2"} "HTTP2-Settings: AAMAAABkAAQAAP__" "" >"$T/r"
	hsend "$T/r"
}
upgrade websocket fleet.v1
expect "upgrade: websocket fleet.v1 on the api listener -> 400, closed" 400 upgrade-refused yes
upgrade websocket chat
expect "upgrade: websocket with another subprotocol -> 400, closed (it was held open)" 400 upgrade-refused yes
upgrade websocket
expect "upgrade: websocket without a subprotocol -> 400, closed" 400 upgrade-refused yes
upgrade h2c
expect "upgrade: h2c -> 400, closed" 400 upgrade-refused yes
upgrade foo
expect "upgrade: an unknown protocol -> 4xx problem+json, closed" 400 - yes
check "upgrade: no 101 was ever answered" not grep -q '"status": 101' <<<"$RES"
still_serving upgrade

# --- strict JSON (engineer "tokens") ----------------------------------------------
# json_post FORMAT: POST /api/v1/tokens with the body printf FORMAT makes.
json_post() {
	printf "$1" >"$T/body"
	{
		req "POST /api/v1/tokens HTTP/1.1" "Host: localhost" \
			"Authorization: Bearer $OPERATOR" "Content-Type: application/json" \
			"Content-Length: $(wc -c <"$T/body")" ""
		cat "$T/body"
	} >"$T/r"
	hsend "$T/r"
}
BEFORE=$(state)
json_post '{"uses":\0001}'
expect "json: a raw NUL between tokens -> 400" 400 - no
json_post '{"uses": 1}\0\0'
expect "json: NUL bytes after the document -> 400" 400 - no
json_post '{"uses": 1, "name": "a\377\376b"}'
expect "json: invalid UTF-8 in a string -> 400" 400 - no
assert_eq "$(state)" "$BEFORE" "json: nothing was written"

# --- pagination cursors (engineer "tokens") ------------------------------------
CURSOR=$(printf '1234567890123456789' | base64 | tr '+/' '-_' | tr -d '=')
for list in devices tokens admin-tokens audit; do
	TOKEN=$ADMIN api GET "/api/v1/$list?cursor=$CURSOR"
	check "cursor: a crafted cursor (19 digits) on /api/v1/$list -> 400 problem+json" \
		[ "$STATUS $CTYPE" = "400 application/problem+json" ]
	TOKEN=$ADMIN api GET "/api/v1/$list?cursor=%21%21%21"
	check "cursor: a cursor that is not base64url on /api/v1/$list -> 400" \
		[ "$STATUS $CTYPE" = "400 application/problem+json" ]
done
still_serving cursor

# --- CSR policy (engineer "devices") -----------------------------------------------
BEFORE_DEV=$(psql_q "SELECT count(*) FROM devices")
read -r _ TOKX < <(new_token 10 '{}')
BEFORE=$(state)
mkdir -p "$T/explicit"
openssl ecparam -name prime256v1 -param_enc explicit -genkey -noout -out "$T/explicit/key.pem"
openssl req -new -key "$T/explicit/key.pem" -subj "/CN=enrolling" -out "$T/explicit/csr.pem"
enroll "$TOKX" "$T/explicit/csr.pem"
check "csr: explicit EC curve parameters -> 400 csr-rejected" \
	[ "$STATUS $CTYPE $(jq -r .type <<<"$BODY")" = "400 application/problem+json urn:fleet:problem:csr-rejected" ]
csr_new "$T/sha1" -sha1
check "csr: the SHA-1 CSR is really signed with SHA-1" \
	grep -qi 'ecdsa-with-SHA1' <(openssl req -in "$T/sha1/csr.pem" -noout -text)
enroll "$TOKX" "$T/sha1/csr.pem"
check "csr: a SHA-1-signed CSR -> 400 csr-rejected" \
	[ "$STATUS $CTYPE $(jq -r .type <<<"$BODY")" = "400 application/problem+json urn:fleet:problem:csr-rejected" ]
assert_eq "$(state)" "$BEFORE" "csr: no device row, no certificate, no token use"
still_serving csr

# --- TLS suites (engineer "channel") --------------------------------------------------
# tls PORT ARGS...: hostile.py's handshake with the device certificate
# (the device listener wants one; the api listener ignores it).
tls() {
	local port=$1
	shift
	python3 "$HOSTILE" --port "$port" --ca "$FLEET_CA" \
		--cert "$T/d1/fullchain.pem" --key "$T/d1/key.pem" tls "$@"
}
CBC_SHA1=ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:AES128-SHA:AES256-SHA
CBC_SHA2=ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256:AES128-SHA256
NOT_ECDHE=AES128-GCM-SHA256:AES256-GCM-SHA384
AEAD=ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256
for l in api:$API_PORT device:$DEVICE_PORT; do
	name=${l%%:*} port=${l#*:}
	check "tls: $name listener refuses TLS 1.2 CBC suites with SHA-1" \
		[ "$(tls "$port" --max-tls 1.2 --ciphers "$CBC_SHA1" | jq -r .ok)" = false ]
	check "tls: $name listener refuses TLS 1.2 CBC suites with SHA-2" \
		[ "$(tls "$port" --max-tls 1.2 --ciphers "$CBC_SHA2" | jq -r .ok)" = false ]
	check "tls: $name listener refuses TLS 1.2 without ECDHE" \
		[ "$(tls "$port" --max-tls 1.2 --ciphers "$NOT_ECDHE" | jq -r .ok)" = false ]
	check "tls: $name listener accepts TLS 1.2 ECDHE with AEAD (control)" \
		[ "$(tls "$port" --max-tls 1.2 --ciphers "$AEAD" | jq -r .ok)" = true ]
	check "tls: $name listener accepts TLS 1.3 (control)" \
		[ "$(tls "$port" --min-tls 1.3 | jq -r .version)" = TLSv1.3 ]
done

# --- listener separation (engineer "channel") --------------------------------------
read -r _ TOKS < <(new_token 5 '{}')
BEFORE=$(state)
HPORT=$DEVICE_PORT HCERT="$T/d1/fullchain.pem" HKEY="$T/d1/key.pem"
export HPORT HCERT HKEY
req "GET /api/v1/devices HTTP/1.1" "Host: localhost" "Authorization: Bearer $ADMIN" "" >"$T/r"
hsend "$T/r"
check "separation: the device listener does not answer GET /api/v1/devices" \
	[ "$(jq '[.responses[] | select(.status < 300)] | length' <<<"$RES") $(rclosed)" = "0 true" ]
BEFORE=$(state)
csr_new "$T/d3"
jq -n --arg t "$TOKS" --rawfile c "$T/d3/csr.pem" '{token: $t, csr: $c}' >"$T/e.json"
{
	req "POST /enroll/v1 HTTP/1.1" "Host: localhost" "Content-Type: application/json" \
		"Content-Length: $(wc -c <"$T/e.json")" ""
	cat "$T/e.json"
} >"$T/r"
hsend "$T/r"
check "separation: the device listener does not answer POST /enroll/v1" \
	[ "$(jq '[.responses[] | select(.status < 300)] | length' <<<"$RES") $(rclosed)" = "0 true" ]
req "GET /pki/v1/ca.pem HTTP/1.1" "Host: localhost" "" >"$T/r"
hsend "$T/r"
check "separation: the device listener does not answer GET /pki/v1/ca.pem" \
	[ "$(jq '[.responses[] | select(.status < 300)] | length' <<<"$RES")" = 0 ]
assert_eq "$(state)" "$BEFORE" "separation: nothing was written through the device listener"
unset HPORT HCERT HKEY
still_serving separation

check "no sanitizer report and no crash in the fleetd log" \
	not grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:|signal 11|SIGSEGV' "$T/fleetd.log"

fleetd_stop
harness_done
