#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# EST (RFC 7030, RFC 8951) on the api listener, driven as an outside
# client would drive it: curl and openssl only.
# - cacerts: base64 certs-only PKCS#7 (Content-Transfer-Encoding: base64)
#   that `openssl pkcs7 -print_certs` reads: the issuing CA and the root;
# - csrattrs: ecdsa-with-SHA256 and P-256 (openssl asn1parse);
# - simpleenroll with an enrollment token as the HTTP Basic password and
#   as a Bearer token: the certificate passes `openssl verify`, one token
#   use is spent per device; no token (401 + WWW-Authenticate), a wrong
#   token, a wrong content type (415), bad base64, a CSR that is not DER,
#   a CSR with a weak key: refused with a problem type, nothing written;
# - simplereenroll with the device certificate as TLS client certificate:
#   a new certificate for a NEW key (serial and key change, same device);
#   the same key again, no client certificate, a certificate of another
#   CA, a revoked certificate and a decommissioned device are refused.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

harness_init
pki_init
fleetd_start 1
TOKEN=$(admin_token operator)
EST="$FLEET_SERVER/.well-known/est"

is_problem() { # is_problem STATUS SLUG
	[ "$STATUS" = "$1" ] && [ "$CTYPE" = application/problem+json ] &&
		[ "$(jq -r .type <<<"$BODY")" = "urn:fleet:problem:$2" ]
}

# est METHOD OP OUT [curl args]: sets STATUS, CTYPE; headers in OUT.h.
est() {
	local method=$1 op=$2 out=$3 meta
	shift 3
	meta=$(curl -sS --max-time 20 --cacert "$FLEET_CA" -X "$method" \
		-D "$out.h" -o "$out" -w '%{http_code} %{content_type}' \
		"$@" "$EST/$op") || meta="000 "
	STATUS=${meta%% *}
	CTYPE=${meta#* }
	BODY=$(cat "$out" 2>/dev/null || true)
}

# p7certs FILE OUT: the certificates of a base64 PKCS#7 answer, as PEM.
p7certs() {
	openssl base64 -d -in "$1" | openssl pkcs7 -inform DER -print_certs -out "$2"
}

newcsr() { # newcsr NAME [CN] [KEYALG]: $T/est/NAME.{key,b64}
	mkdir -p "$T/est"
	openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:${3:-P-256}" \
		-out "$T/est/$1.key" 2>/dev/null
	openssl req -new -key "$T/est/$1.key" -subj "/CN=${2:-$1}" -outform DER \
		-out "$T/est/$1.der"
	openssl base64 -in "$T/est/$1.der" -out "$T/est/$1.b64"
}

# --- cacerts and csrattrs -------------------------------------------------
est GET cacerts "$T/cacerts"
assert_eq "$STATUS $CTYPE" "200 application/pkcs7-mime; smime-type=certs-only" "GET cacerts"
check "cacerts says Content-Transfer-Encoding: base64" \
	grep -qi '^content-transfer-encoding: base64' "$T/cacerts.h"
p7certs "$T/cacerts" "$T/cacerts.pem"
assert_eq "$(grep -c 'BEGIN CERTIFICATE' "$T/cacerts.pem")" 2 \
	"openssl pkcs7 -print_certs: the issuing CA and the root"
fingerprints() { # every certificate of a PEM file, one fingerprint a line
	openssl crl2pkcs7 -nocrl -certfile "$1" | openssl pkcs7 -print_certs |
		awk '/BEGIN/{c=""} {c=c $0 "\n"} /END/{print c}' |
		while IFS= read -r pem; do
			printf '%b' "$pem" | openssl x509 -noout -fingerprint -sha256
		done
}
assert_eq "$(fingerprints "$T/cacerts.pem")" "$(fingerprints "$FLEET_CA")" \
	"cacerts holds the CA certificates of /pki/v1/ca.pem, in order"
est GET csrattrs "$T/csrattrs"
assert_eq "$STATUS $CTYPE" "200 application/csrattrs" "GET csrattrs"
check "csrattrs asks for ecdsa-with-SHA256 and prime256v1 (openssl asn1parse)" sh -c \
	'openssl base64 -d -in "$1" | openssl asn1parse -inform DER >"$1.txt" &&
	 grep -q ecdsa-with-SHA256 "$1.txt" && grep -q prime256v1 "$1.txt"' _ "$T/csrattrs"
est POST cacerts "$T/x"
assert_eq "$STATUS" 405 "POST cacerts: 405"
est GET nosuchop "$T/x"
assert_eq "$STATUS" 404 "an unknown EST operation: 404"

# --- simpleenroll ------------------------------------------------------------
enrollment_token 3 est
TID=$(psql_q "SELECT id FROM enrollment_tokens ORDER BY created_at DESC LIMIT 1")
uses() { psql_q "SELECT uses_left FROM enrollment_tokens WHERE id = '$TID'"; }
count() { psql_q "SELECT count(*) FROM $1"; }
state() { echo "$(count devices) $(count certificates) $(uses)"; }

newcsr d1
est POST simpleenroll "$T/d1.p7" -u "device:$ENROLL" \
	-H 'Content-Type: application/pkcs10' --data-binary "@$T/est/d1.b64"
assert_eq "$STATUS $CTYPE" "200 application/pkcs7-mime; smime-type=certs-only" \
	"simpleenroll with the token as the HTTP Basic password"
check "the answer says Content-Transfer-Encoding: base64" \
	grep -qi '^content-transfer-encoding: base64' "$T/d1.p7.h"
p7certs "$T/d1.p7" "$T/est/d1.pem"
check "openssl verify accepts the enrolled certificate" \
	openssl verify -x509_strict -purpose sslclient -CAfile "$FLEET_CA" "$T/est/d1.pem"
check "the certificate is for the CSR's key" sh -c \
	'[ "$(openssl x509 -in "$1" -noout -pubkey)" = "$(openssl pkey -in "$2" -pubout)" ]' \
	_ "$T/est/d1.pem" "$T/est/d1.key"
D1=$(openssl x509 -in "$T/est/d1.pem" -noout -subject | sed 's/.*CN *= *//')
assert_eq "$(psql_q "SELECT status FROM devices WHERE id = '$D1'")" active \
	"the device exists, named by the certificate's CN"
assert_eq "$(uses)" 2 "one token use spent"

newcsr d2
est POST simpleenroll "$T/d2.p7" -H "Authorization: Bearer $ENROLL" \
	-H 'Content-Type: application/pkcs10' --data-binary "@$T/est/d2.b64"
assert_eq "$STATUS" 200 "simpleenroll with the token as a Bearer token"
p7certs "$T/d2.p7" "$T/est/d2.pem"
D2=$(openssl x509 -in "$T/est/d2.pem" -noout -subject | sed 's/.*CN *= *//')

before=$(state)
newcsr bad
est POST simpleenroll "$T/x" -H 'Content-Type: application/pkcs10' --data-binary "@$T/est/bad.b64"
check "no token: 401 unauthorized" is_problem 401 unauthorized
check "... with WWW-Authenticate: Basic" grep -qi '^www-authenticate: Basic' "$T/x.h"
est POST simpleenroll "$T/x" -u "device:not-a-token" \
	-H 'Content-Type: application/pkcs10' --data-binary "@$T/est/bad.b64"
check "a wrong token: 401 token-invalid" is_problem 401 token-invalid
est POST simpleenroll "$T/x" -u "device:$ENROLL" \
	-H 'Content-Type: application/json' --data-binary "@$T/est/bad.b64"
check "a wrong content type: 415" is_problem 415 unsupported-media-type
est POST simpleenroll "$T/x" -u "device:$ENROLL" \
	-H 'Content-Type: application/pkcs10' --data-binary 'MIIB*not base64*'
check "bad base64: 400 csr-rejected" is_problem 400 csr-rejected
est POST simpleenroll "$T/x" -u "device:$ENROLL" \
	-H 'Content-Type: application/pkcs10' --data-binary "$(printf 'not a CSR at all' | base64)"
check "base64 of something that is not a CSR: 400 csr-rejected" is_problem 400 csr-rejected
openssl req -new -key "$T/est/bad.key" -subj /CN=weak -sha1 -outform DER 2>/dev/null |
	openssl base64 -out "$T/est/sha1.b64"
est POST simpleenroll "$T/x" -u "device:$ENROLL" \
	-H 'Content-Type: application/pkcs10' --data-binary "@$T/est/sha1.b64"
check "a CSR signed with SHA-1: 400 csr-rejected" is_problem 400 csr-rejected
newcsr p521 p521 P-521
est POST simpleenroll "$T/x" -u "device:$ENROLL" \
	-H 'Content-Type: application/pkcs10' --data-binary "@$T/est/p521.b64"
check "a CSR with a P-521 key (not in the policy): 400 csr-rejected" is_problem 400 csr-rejected
assert_eq "$(state)" "$before" "refused enrollments wrote nothing and spent no token use"

# --- simplereenroll ---------------------------------------------------------
newcsr r1 "$D1"
uses_before=$(uses)
est POST simplereenroll "$T/r1.p7" --cert "$T/est/d1.pem" --key "$T/est/d1.key" \
	-H 'Content-Type: application/pkcs10' --data-binary "@$T/est/r1.b64"
assert_eq "$STATUS $CTYPE" "200 application/pkcs7-mime; smime-type=certs-only" \
	"simplereenroll with the device certificate as TLS client certificate"
p7certs "$T/r1.p7" "$T/est/r1.pem"
check "openssl verify accepts the renewed certificate" \
	openssl verify -x509_strict -purpose sslclient -CAfile "$FLEET_CA" "$T/est/r1.pem"
assert_eq "$(openssl x509 -in "$T/est/r1.pem" -noout -subject | sed 's/.*CN *= *//')" "$D1" \
	"the renewed certificate names the same device"
check "the serial changed" sh -c \
	'[ "$(openssl x509 -in "$1" -noout -serial)" != "$(openssl x509 -in "$2" -noout -serial)" ]' \
	_ "$T/est/d1.pem" "$T/est/r1.pem"
check "the key changed (the CSR's new key)" sh -c \
	'[ "$(openssl x509 -in "$1" -noout -pubkey)" = "$(openssl pkey -in "$2" -pubout)" ]' \
	_ "$T/est/r1.pem" "$T/est/r1.key"
assert_eq "$(uses)" "$uses_before" "re-enrollment spends no token use"

before=$(state)
openssl req -new -key "$T/est/d2.key" -subj "/CN=$D2" -outform DER | openssl base64 -out "$T/est/same.b64"
est POST simplereenroll "$T/x" --cert "$T/est/d2.pem" --key "$T/est/d2.key" \
	-H 'Content-Type: application/pkcs10' --data-binary "@$T/est/same.b64"
check "re-enroll with the same key: 400 est-key-reused" is_problem 400 est-key-reused
est POST simplereenroll "$T/x" -H 'Content-Type: application/pkcs10' --data-binary "@$T/est/r1.b64"
check "no client certificate: 401 est-client-certificate-required" \
	is_problem 401 est-client-certificate-required
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-keyout "$T/est/rogue.key" -subj "/CN=$D2" -addext extendedKeyUsage=clientAuth \
	-out "$T/est/rogue.pem" 2>/dev/null
newcsr r2 "$D2"
est POST simplereenroll "$T/x" --cert "$T/est/rogue.pem" --key "$T/est/rogue.key" \
	-H 'Content-Type: application/pkcs10' --data-binary "@$T/est/r2.b64"
check "a client certificate of another CA: 403 est-client-certificate-invalid" \
	is_problem 403 est-client-certificate-invalid
est POST simplereenroll "$T/x" --cert "$T/est/d2.pem" --key "$T/est/d2.key" \
	-H 'Content-Type: text/plain' --data-binary "@$T/est/r2.b64"
check "re-enroll with a wrong content type: 415" is_problem 415 unsupported-media-type
# The superseded/revoked rule: revoke d2's certificate alone.
S2=$(openssl x509 -in "$T/est/d2.pem" -noout -serial | cut -d= -f2)
psql_q "UPDATE certificates SET status = 'revoked', revoked_at = now(), revoke_reason = 1
	WHERE serial = '$S2'; UPDATE crl_generation SET generation = generation + 1" >/dev/null
est POST simplereenroll "$T/x" --cert "$T/est/d2.pem" --key "$T/est/d2.key" \
	-H 'Content-Type: application/pkcs10' --data-binary "@$T/est/r2.b64"
check "a revoked client certificate: 403 est-certificate-not-active" \
	is_problem 403 est-certificate-not-active
assert_eq "$(state)" "$before" "refused re-enrollments wrote nothing"

# A decommissioned device (its certificates revoked too) cannot re-enroll.
api POST "/api/v1/devices/$D1/decommission"
assert_eq "$STATUS" 200 "decommission d1"
newcsr r3 "$D1"
est POST simplereenroll "$T/x" --cert "$T/est/r1.pem" --key "$T/est/r1.key" \
	-H 'Content-Type: application/pkcs10' --data-binary "@$T/est/r3.b64"
check "a decommissioned device: 403 (est-device-not-active or est-certificate-not-active)" sh -c \
	'[ "$1" = 403 ] && case "$2" in *est-device-not-active*|*est-certificate-not-active*) ;; *) exit 1;; esac' \
	_ "$STATUS" "$BODY"

fleetd_stop
harness_done
