#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CRLs at scale (issue 10): 100,000 revoked certificates inserted by SQL
# are signed into one CRL by the ca process (the revoked list travels to
# it in a sealed memfd, the CRL comes back in one: the socketpair record
# held only a few thousand; a child of the ca signs it while the ca goes
# on issuing), served at /pki/v1/crl, and accepted by
# `openssl crl` (signature) and `openssl verify -crl_check` (a revoked
# device certificate is refused, an active one passes). Prints the time
# the first (signing) and the second (cached) fetch took.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

N=100000

harness_init
pki_init
fleetd_start 2
TOKEN=$(admin_token operator)
enrollment_token 3 crl
device_enroll good
device_enroll bad
GOOD=$(id_of good)
BAD=$(id_of bad)
BAD_SERIAL=$(openssl x509 -in "$T/dev/bad.pem" -noout -serial | cut -d= -f2)

# 100,000 revoked certificates of the good device's row (the serials are
# random-looking 16-octet values in the one serial format), plus the bad
# device's real certificate; one revocation generation step so the
# cached CRL is stale.
psql_q "INSERT INTO certificates (serial, device_id, not_before, not_after,
		status, revoked_at, revoke_reason)
	SELECT upper(md5('crl-scale-' || i)), '$GOOD', now() - interval '1 day',
		now() + interval '30 days', 'revoked',
		now() - (i || ' seconds')::interval, (ARRAY[0,1,4,5])[1 + i % 4]
	FROM generate_series(1, $N) AS i;
	UPDATE certificates SET status = 'revoked', revoked_at = now(),
		revoke_reason = 1 WHERE serial = '$BAD_SERIAL';
	UPDATE crl_generation SET generation = generation + 1" >/dev/null
assert_eq "$(psql_q "SELECT count(*) FROM certificates WHERE status = 'revoked'")" \
	$((N + 1)) "$((N + 1)) revoked rows in the database"

t0=$(date +%s%N)
curl -sS --max-time 90 --cacert "$FLEET_CA" -o "$T/crl.der" \
	-w '%{http_code} %{content_type}' "$FLEET_SERVER/pki/v1/crl" >"$T/crl.code" &
CRL_PID=$!
# While a child of the ca signs the CRL, the ca issues: an enrollment
# (through the other worker, or queued behind the CRL on the same one)
# succeeds. How long it took is a figure, not a check.
crl_child() { pgrep -x fleetd-ca-crl >/dev/null; }
if wait_for "the ca's CRL child" 30 crl_child; then
	e0=$(date +%s%N)
	device_enroll during
	e1=$(date +%s%N)
	ok "an enrollment while the CRL is being signed"
	echo "# enrollment during CRL signing: $(((e1 - e0) / 1000000)) ms"
else
	fail "no CRL child of the ca seen"
fi
wait "$CRL_PID"
t1=$(date +%s%N)
code=$(cat "$T/crl.code")
assert_eq "$code" "200 application/pkix-crl" "GET /pki/v1/crl with $((N + 1)) entries"
echo "# first fetch (snapshot, sign, store): $(((t1 - t0) / 1000000)) ms, $(stat -c %s "$T/crl.der") bytes"
t0=$(date +%s%N)
curl -sS --max-time 60 --cacert "$FLEET_CA" -o "$T/crl2.der" "$FLEET_SERVER/pki/v1/crl"
t1=$(date +%s%N)
echo "# second fetch (cached): $(((t1 - t0) / 1000000)) ms"
echo "# the ca: $(grep -o 'signed CRL .*' "$T/fleetd.log" | tail -1)"
check "the second fetch serves the cached CRL" cmp -s "$T/crl.der" "$T/crl2.der"

openssl crl -inform DER -in "$T/crl.der" -noout -text >"$T/crl.txt"
assert_eq "$(grep -c 'Serial Number:' "$T/crl.txt")" $((N + 1)) \
	"openssl crl lists $((N + 1)) entries"
check "the CRL lists the revoked device certificate" \
	grep -q "Serial Number: $BAD_SERIAL\$" "$T/crl.txt"
check "the CRL signature verifies against the issuing CA (openssl crl)" sh -c \
	'openssl crl -inform DER -in "$1" -CAfile "$2" -noout 2>&1 | grep -qi "verify OK"' _ "$T/crl.der" "$FLEET_CA"
openssl crl -inform DER -in "$T/crl.der" -out "$T/crl.pem"
check "openssl verify -crl_check refuses the revoked certificate" sh -c \
	'! openssl verify -crl_check -CAfile "$1" -CRLfile "$2" "$3" >"$4" 2>&1 &&
	 grep -q "certificate revoked" "$4"' _ "$FLEET_CA" "$T/crl.pem" "$T/dev/bad.pem" "$T/verify-bad.log"
check "openssl verify -crl_check accepts the active certificate" \
	openssl verify -crl_check -CAfile "$FLEET_CA" -CRLfile "$T/crl.pem" "$T/dev/good.pem"

fleetd_stop
harness_done
