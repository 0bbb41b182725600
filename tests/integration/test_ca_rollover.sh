#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Issuing-CA rollover (issue 10; docs/pki.md): `fleetd pki rotate-issuing`
# makes a new issuing CA under the same root (the root key from its
# directory), SIGHUP makes the ca process issue with it while enrollments
# run without a pause (none fails: the ca is replaced between requests,
# which wait in its socketpair); during the overlap devices of both CAs
# connect to the device listener and re-enroll over EST; a device moves
# to the new CA as it renews (EST, then cert.installed over its channel);
# each CA has its own CRL (/pki/v1/crl for the first, /pki/v1/crl/<key id>
# for the new one, named by its certificates), checked with openssl; the
# old CA is retired only when no active certificate of it remains, and
# then is no longer trusted.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

harness_init
pki_init
fleetd_start 2
TOKEN=$(admin_token operator)
EST="$FLEET_SERVER/.well-known/est"
enrollment_token 400 rollover

key_id() { # key_id CERT.pem: pki_key_id of its public key
	openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER |
		sha256sum | cut -d' ' -f1
}
issuer_of() { openssl x509 -in "$1" -noout -issuer | sed 's/^issuer= *//'; }
subject_of() { openssl x509 -in "$1" -noout -subject | sed 's/^subject= *//'; }
connects() { # connects NAME: the device listener upgrades NAME's session
	ws "$1" close >"$T/ws-$1.log" 2>&1 || true
	grep -q '^UPGRADE HTTP/1.1 101' "$T/ws-$1.log"
}

cp "$T/pki/issuing/issuing.pem" "$T/old-ca.pem"
OLD_ID=$(key_id "$T/old-ca.pem")
device_enroll a
device_enroll b

# --- enrollments without a pause across the switch ----------------------------
mkdir -p "$T/loop"
(
	# bounded: at most 300 enrollments; stops when told
	for i in $(seq 1 300); do
		[ -e "$T/loop.stop" ] && break
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
			-out "$T/loop/$i.key" 2>/dev/null
		openssl req -new -key "$T/loop/$i.key" -subj /CN=x -outform DER |
			openssl base64 -out "$T/loop/$i.b64"
		code=$(curl -sS --max-time 20 --cacert "$FLEET_CA" -u "x:$ENROLL" \
			-H 'Content-Type: application/pkcs10' --data-binary "@$T/loop/$i.b64" \
			-o "$T/loop/$i.p7" -w '%{http_code}' "$EST/simpleenroll" 2>>"$T/loop.err") || code=000
		echo "$code" >>"$T/loop.codes"
		[ "$code" = 200 ] && openssl base64 -d -in "$T/loop/$i.p7" |
			openssl pkcs7 -inform DER -print_certs -out "$T/loop/$i.pem" 2>/dev/null
	done
) &
LOOP=$!
wait_for "enrollments running" 20 test -s "$T/loop.codes"

fleetd pki rotate-issuing --dir "$T/pki" --root-dir "$T/pki/root" >"$T/rotate.log" 2>&1
rc=$?
assert_eq "$rc" 0 "fleetd pki rotate-issuing"
NEW_ID=$(key_id "$T/pki/issuing/issuing.pem")
check "the new CA is another key" [ "$NEW_ID" != "$OLD_ID" ]
check "... under the same root (openssl verify)" \
	openssl verify -CAfile "$T/pki/root/root.pem" "$T/pki/issuing/issuing.pem"
assert_eq "$(psql_q "SELECT key_id || ' ' || status || ' ' || first FROM issuing_cas ORDER BY created_at")" \
	"$OLD_ID previous true
$NEW_ID current false" "both CAs registered: the first one previous, the new one current"
assert_eq "$(grep -c 'BEGIN CERTIFICATE' "$T/pki/ca-bundle.pem")" 3 "ca-bundle.pem: root and both issuing CAs"
fleetd pki rotate-issuing --dir "$T/pki" --root-dir "$T/pki/root" >"$T/rotate2.log" 2>&1 && rc=0 || rc=$?
check "a second rotation during the overlap is refused" sh -c \
	'[ "$1" != 0 ] && grep -q "rollover is in progress" "$2"' _ "$rc" "$T/rotate2.log"

OLD_CA_PID=$(fleetd_child fleetd-ca)
kill -HUP "$FLEETD_PID"
NEW_CA_PID=$(fleetd_new_child fleetd-ca "$OLD_CA_PID" 20)
check "SIGHUP replaced the ca process" [ -n "$NEW_CA_PID" ]
newest_issuer() { # the issuer of the newest certificate the loop received
	local f
	f=$(ls -t "$T"/loop/*.pem 2>/dev/null | head -1)
	[ -n "$f" ] && [ "$(issuer_of "$f")" = "$(subject_of "$T/pki/issuing/issuing.pem")" ]
}
wait_for "the loop gets certificates of the new CA" 30 newest_issuer
# Let every worker come back before the loop ends.
sleep_until_workers() { [ "$(pgrep -P "$FLEETD_PID" | wc -l)" -ge 3 ]; }
wait_for "workers back after SIGHUP" 30 sleep_until_workers
n0=$(wc -l <"$T/loop.codes")
wait_for "a few more enrollments" 30 sh -c '[ "$(wc -l <"$1")" -ge $(( $2 + 5 )) ]' _ "$T/loop.codes" "$n0"
touch "$T/loop.stop"
wait "$LOOP"
total=$(wc -l <"$T/loop.codes")
echo "# enrollments across the switch: $total, answers: $(sort "$T/loop.codes" | uniq -c | tr '\n' ' ')"
assert_eq "$(grep -vc '^200$' "$T/loop.codes")" 0 "no enrollment failed across the switch ($total sent)"
sed 's/^/# curl: /' "$T/loop.err"
old_n=0
new_n=0
for f in "$T"/loop/*.pem; do
	if [ "$(issuer_of "$f")" = "$(subject_of "$T/old-ca.pem")" ]; then
		old_n=$((old_n + 1))
	else
		new_n=$((new_n + 1))
	fi
done
echo "# issued by the old CA: $old_n, by the new one: $new_n"
check "the loop got certificates of both CAs" [ "$old_n" -gt 0 ] && [ "$new_n" -gt 0 ]
LAST=$(ls -t "$T"/loop/*.pem | head -1)
check "a new certificate verifies with the bundle (openssl verify)" \
	openssl verify -x509_strict -CAfile "$T/pki/ca-bundle.pem" "$LAST"
check "its CRL distribution point is the new CA's CRL" sh -c \
	'openssl x509 -in "$1" -noout -ext crlDistributionPoints | grep -q "/pki/v1/crl/$2"' _ "$LAST" "$NEW_ID"
check "an old certificate names /pki/v1/crl" sh -c \
	'openssl x509 -in "$1" -noout -ext crlDistributionPoints | grep -q "/pki/v1/crl\$"' _ "$T/dev/a.pem"

# --- the overlap: both CAs trusted -------------------------------------------
check "device a (old CA) still connects" connects a
device_enroll c
check "device c enrolled now has a certificate of the new CA" \
	[ "$(issuer_of "$T/dev/c.pem")" = "$(subject_of "$T/pki/issuing/issuing.pem")" ]
check "device c (new CA) connects" connects c
api GET /pki/v1/ca.pem
assert_eq "$(grep -c 'BEGIN CERTIFICATE' <<<"$BODY")" 3 "/pki/v1/ca.pem serves root and both issuing CAs"

# Device a renews over EST with its old-CA certificate, onto the new CA,
# then reports the new certificate installed over a session that uses it.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/dev/an.key" 2>/dev/null
openssl req -new -key "$T/dev/an.key" -subj "/CN=$(id_of a)" -outform DER | openssl base64 -out "$T/an.b64"
code=$(curl -sS --max-time 20 --cacert "$FLEET_CA" --cert "$T/dev/a.pem" --key "$T/dev/a.key" \
	-H 'Content-Type: application/pkcs10' --data-binary "@$T/an.b64" -o "$T/an.p7" \
	-w '%{http_code}' "$EST/simplereenroll")
assert_eq "$code" 200 "device a re-enrolls over EST with its old-CA certificate"
openssl base64 -d -in "$T/an.p7" | openssl pkcs7 -inform DER -print_certs -out "$T/dev/an.pem"
check "... and gets a certificate of the new CA" \
	[ "$(issuer_of "$T/dev/an.pem")" = "$(subject_of "$T/pki/issuing/issuing.pem")" ]
AN_SERIAL=$(openssl x509 -in "$T/dev/an.pem" -noout -serial | cut -d= -f2)
A_SERIAL=$(openssl x509 -in "$T/dev/a.pem" -noout -serial | cut -d= -f2)
ws an "send {\"type\":\"hello\",\"agent_version\":\"t\",\"fw_version\":\"1\",\"model\":\"m\",\"boot_id\":\"b\"}" \
	"read 5" "send {\"type\":\"cert.installed\",\"seq\":1,\"serial\":\"$AN_SERIAL\",\"previous_serial\":\"$A_SERIAL\"}" \
	"read 5" "read 5" close >"$T/ws-installed.log" 2>&1 || true
wait_for "a's old certificate superseded" 20 sh -c \
	'[ "$(psql -X -q -t -A -d "$1" -c "SELECT status FROM certificates WHERE serial = '"'"'$2'"'"'")" = superseded ]' \
	_ "$DB" "$A_SERIAL"
assert_eq "$(psql_q "SELECT issuer FROM certificates WHERE serial = '$AN_SERIAL'")" "$NEW_ID" \
	"the database records the new CA as the issuer of a's new certificate"

# --- CRLs per CA ----------------------------------------------------------------
fleetd pki retire-issuing --dir "$T/pki" >"$T/retire1.log" 2>&1 && rc=0 || rc=$?
check "retiring the old CA is refused while device b's certificate is active" sh -c \
	'[ "$1" != 0 ] && grep -q "active certificate" "$2"' _ "$rc" "$T/retire1.log"
B_SERIAL=$(openssl x509 -in "$T/dev/b.pem" -noout -serial | cut -d= -f2)
api POST "/api/v1/devices/$(id_of b)/decommission"
assert_eq "$STATUS" 200 "decommission b (old CA)"
curl -sS --cacert "$FLEET_CA" -o "$T/crl-old.der" "$FLEET_SERVER/pki/v1/crl"
curl -sS --cacert "$FLEET_CA" -o "$T/crl-new.der" "$FLEET_SERVER/pki/v1/crl/$NEW_ID"
check "/pki/v1/crl is signed by the old CA (openssl crl)" sh -c \
	'openssl crl -inform DER -in "$1" -CAfile "$2" -noout 2>&1 | grep -qi "verify OK"' _ "$T/crl-old.der" "$T/old-ca.pem"
check "/pki/v1/crl/<new key id> is signed by the new CA (openssl crl)" sh -c \
	'openssl crl -inform DER -in "$1" -CAfile "$2" -noout 2>&1 | grep -qi "verify OK"' _ "$T/crl-new.der" "$T/pki/issuing/issuing.pem"
openssl crl -inform DER -in "$T/crl-old.der" -noout -text >"$T/crl-old.txt"
openssl crl -inform DER -in "$T/crl-new.der" -noout -text >"$T/crl-new.txt"
check "the old CA's CRL lists b's certificate and a's superseded one" sh -c \
	'grep -q "Serial Number: $2\$" "$1" && grep -q "Serial Number: $3\$" "$1"' _ "$T/crl-old.txt" "$B_SERIAL" "$A_SERIAL"
check "the new CA's CRL lists neither" sh -c \
	'! grep -q "Serial Number: $2\$" "$1" && ! grep -q "Serial Number: $3\$" "$1"' _ "$T/crl-new.txt" "$B_SERIAL" "$A_SERIAL"
openssl crl -inform DER -in "$T/crl-old.der" -out "$T/crl-old.pem"
cat "$T/pki/root/root.pem" "$T/old-ca.pem" >"$T/old-chain.pem"
check "openssl verify -crl_check refuses b's certificate with the old CA's CRL" sh -c \
	'! openssl verify -crl_check -CAfile "$1" -CRLfile "$2" "$3" >"$4" 2>&1 && grep -q "certificate revoked" "$4"' \
	_ "$T/old-chain.pem" "$T/crl-old.pem" "$T/dev/b.pem" "$T/verify-b.log"
openssl crl -inform DER -in "$T/crl-new.der" -out "$T/crl-new.pem"
check "openssl verify -crl_check accepts a's new certificate with the new CA's CRL" \
	openssl verify -crl_check -CAfile "$T/pki/ca-bundle.pem" -CRLfile "$T/crl-new.pem" "$T/dev/an.pem"
api GET "/pki/v1/crl/$(printf '0%.0s' $(seq 1 64))"
assert_eq "$STATUS" 404 "the CRL of an unknown key id: 404"
api GET "/pki/v1/crl/not-a-key-id"
assert_eq "$STATUS" 404 "a malformed key id: 404"

# --- retirement ------------------------------------------------------------------
# A certificate of the old CA that fleetd never issued (signed with
# openssl ca): during the overlap its chain verifies at the handshake (and
# the channel refuses the unknown certificate after it); once the old CA
# is retired the handshake itself fails (unknown CA).
ghost_sign() {
	local dir="$T/ghost"
	mkdir -p "$dir"
	: >"$dir/index.txt"
	echo 4A01 >"$dir/serial"
	cat >"$dir/ca.cnf" <<EOT
[ca]
default_ca = old
[old]
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
default_md = sha256
default_days = 30
policy = any
unique_subject = no
x509_extensions = leaf
[any]
commonName = supplied
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOT
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/dev/ghost.key" 2>/dev/null
	openssl req -new -key "$T/dev/ghost.key" -subj "/CN=$(id_of c)" -out "$dir/csr.pem"
	openssl ca -batch -notext -config "$dir/ca.cnf" \
		-cert "$T/pki/issuing/previous/issuing.pem" \
		-keyfile "$T/pki/issuing/previous/issuing.key" \
		-in "$dir/csr.pem" -out "$T/dev/ghost.pem" >"$dir/ca.log" 2>&1
}
ghost_sign
ws ghost close >"$T/ws-ghost1.log" 2>&1 || true
check "during the overlap an old-CA certificate passes the TLS handshake" \
	not grep -qi 'unknown ca' "$T/ws-ghost1.log"
# What still holds the old CA: the enrollments of the loop. Decommission
# them (their devices are test leftovers).
for f in "$T"/loop/*.pem; do
	[ "$(issuer_of "$f")" = "$(subject_of "$T/old-ca.pem")" ] || continue
	id=$(subject_of "$f" | sed 's/.*CN *= *//')
	api POST "/api/v1/devices/$id/decommission"
done
c_left=$(psql_q "SELECT count(*) FROM certificates WHERE issuer = '$OLD_ID' AND status = 'active' AND not_after > now()")
assert_eq "$c_left" 0 "no active certificate of the old CA remains"
fleetd pki retire-issuing --dir "$T/pki" >"$T/retire2.log" 2>&1 && rc=0 || rc=$?
assert_eq "$rc" 0 "fleetd pki retire-issuing"
assert_eq "$(grep -c 'BEGIN CERTIFICATE' "$T/pki/ca-bundle.pem")" 2 "ca-bundle.pem: root and the new CA only"
check "the old CA's key is gone" not test -e "$T/pki/issuing/previous/issuing.key"
assert_eq "$(psql_q "SELECT status FROM issuing_cas WHERE key_id = '$OLD_ID'")" retired "the old CA is retired"
OLD_WORKER=$(fleetd_child fleetd-net1)
kill -HUP "$FLEETD_PID"
fleetd_new_child fleetd-net1 "$OLD_WORKER" 20 >/dev/null
wait_for "workers back after SIGHUP" 30 sleep_until_workers
wait_healthy
# Every worker restarted with the new bundle: a handshake of the ghost
# certificate fails as an unknown CA (both workers take connections).
ghost_refused() {
	ws ghost close >"$T/ws-ghost2.log" 2>&1 || true
	grep -qi 'REFUSED .*unknown ca' "$T/ws-ghost2.log"
}
wait_for "the handshake refuses an old-CA certificate (unknown ca)" 30 ghost_refused
ok "after retirement the handshake refuses an old-CA certificate (unknown ca)"
# (the client may see the refusal as the alert or as the connection
# closing: either way never an upgrade)
for i in 1 2 3 4; do
	ws ghost close >"$T/ws-ghost3.log" 2>&1 || true
	grep -q '^REFUSED \(tls\|upgrade\)' "$T/ws-ghost3.log" ||
		fail "ghost handshake $i after retirement: $(cat "$T/ws-ghost3.log")"
done
check "device a's new certificate connects" connects an
curl -sS --cacert "$FLEET_CA" -o "$T/crl-old2.der" -w '%{http_code}' "$FLEET_SERVER/pki/v1/crl" >"$T/crl-old2.code"
assert_eq "$(cat "$T/crl-old2.code")" 200 "the retired CA's last CRL is still served"

fleetd_stop
harness_done
