#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Renewal after expiry within the grace window (issue 10; docs/pki.md): a
# device whose certificate has expired renews over EST simplereenroll,
# authenticated by that expired certificate in the TLS handshake, with a
# new key; only there, only within cert_grace (default 30 days), only
# with the newest certificate of an active device that is not revoked.
# The expired certificates are made with `openssl ca` and the issuing CA
# (-startdate/-enddate in the past: fleetd has no test clock, and a
# certificate lifetime of minutes would make the test wait) and recorded
# as the device's newest certificate, as if it had been offline.
# Checked with curl and openssl; the device listener refuses the expired
# certificate and accepts the renewed one.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

harness_init
pki_init
fleetd_start 1
TOKEN=$(admin_token operator)
EST="$FLEET_SERVER/.well-known/est"
enrollment_token 12 grace

is_problem() { # is_problem STATUS SLUG
	[ "$STATUS" = "$1" ] && [ "$CTYPE" = application/problem+json ] &&
		[ "$(jq -r .type <<<"$BODY")" = "urn:fleet:problem:$2" ]
}

# reenroll NAME CERT KEY NEWKEY: POST simplereenroll with CERT/KEY as the
# TLS client certificate and a CSR for NEWKEY (made here).
reenroll() {
	local name=$1 cert=$2 key=$3 newkey=$4 meta cn
	cn=$(id_of "$name")
	[ -f "$newkey" ] || openssl genpkey -algorithm EC \
		-pkeyopt ec_paramgen_curve:P-256 -out "$newkey" 2>/dev/null
	openssl req -new -key "$newkey" -subj "/CN=$cn" -outform DER |
		openssl base64 -out "$newkey.csr.b64"
	meta=$(curl -sS --max-time 20 --cacert "$FLEET_CA" --cert "$cert" \
		--key "$key" -o "$T/.est" -w '%{http_code} %{content_type}' \
		-H 'Content-Type: application/pkcs10' \
		--data-binary "@$newkey.csr.b64" "$EST/simplereenroll") || meta="000 "
	STATUS=${meta%% *}
	CTYPE=${meta#* }
	BODY=$(cat "$T/.est")
}

# expired_cert NAME START_AGO END_AGO: a certificate for NAME's device and
# key, signed by the issuing CA, valid from START_AGO to END_AGO (date -d
# phrases such as "10 days ago"), recorded as the device's newest active
# certificate (its enrollment certificate made older and superseded).
expired_cert() {
	local name=$1 start end dir id serial
	id=$(id_of "$name")
	dir="$T/ca-$name"
	mkdir -p "$dir"
	: >"$dir/index.txt"
	# A positive serial in the one format (first octet below 0x80).
	printf '%X%s\n' $((RANDOM % 7 + 1)) \
		"$(openssl rand -hex 16 | tr a-f A-F | cut -c1-31)" >"$dir/serial"
	start=$(date -u -d "$2" +%Y%m%d%H%M%SZ)
	end=$(date -u -d "$3" +%Y%m%d%H%M%SZ)
	local sql_start sql_end
	sql_start=$(date -u -d "$2" '+%Y-%m-%d %H:%M:%S+00')
	sql_end=$(date -u -d "$3" '+%Y-%m-%d %H:%M:%S+00')
	cat >"$dir/ca.cnf" <<EOT
[ca]
default_ca = old
[old]
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
default_md = sha256
policy = any
unique_subject = no
x509_extensions = leaf
copy_extensions = none
[any]
commonName = supplied
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = URI:urn:fleet:device:$id
EOT
	openssl req -new -key "$T/dev/$name.key" -subj "/CN=$id" -out "$dir/csr.pem"
	openssl ca -batch -notext -config "$dir/ca.cnf" \
		-cert "$T/pki/issuing/issuing.pem" -keyfile "$T/pki/issuing/issuing.key" \
		-startdate "$start" -enddate "$end" -in "$dir/csr.pem" \
		-out "$T/dev/$name.old.pem" >"$dir/ca.log" 2>&1 || {
		cat "$dir/ca.log"
		return 1
	}
	serial=$(openssl x509 -in "$T/dev/$name.old.pem" -noout -serial | cut -d= -f2)
	psql_q "UPDATE certificates SET status = 'superseded',
			not_before = now() - interval '400 days',
			not_after = now() - interval '300 days'
		WHERE device_id = '$id';
		INSERT INTO certificates (serial, device_id, not_before, not_after)
		VALUES ('$serial', '$id', '$sql_start', '$sql_end')" >/dev/null
}

# --- within the window: renews ---------------------------------------------
device_enroll g
expired_cert g "10 days ago" "1 day ago"
check "the device listener refuses the expired certificate" sh -c \
	'! $0 --port "$1" --ca "$2" --cert "$3" --key "$4" close >"$5" 2>&1' \
	"python3 $FLEET_SOURCE_DIR/tests/integration/wsclient.py" "$DEVICE_PORT" "$FLEET_CA" \
	"$T/dev/g.old.pem" "$T/dev/g.key" "$T/ws-expired.log"
reenroll g "$T/dev/g.old.pem" "$T/dev/g.key" "$T/dev/g.new.key"
assert_eq "$STATUS $CTYPE" "200 application/pkcs7-mime; smime-type=certs-only" \
	"a certificate expired 1 day ago (grace 30 days) re-enrolls"
openssl base64 -d -in "$T/.est" | openssl pkcs7 -inform DER -print_certs -out "$T/dev/g.new.pem"
check "openssl verify accepts the new certificate" \
	openssl verify -x509_strict -purpose sslclient -CAfile "$FLEET_CA" "$T/dev/g.new.pem"
check "the new certificate is for the new key" sh -c \
	'[ "$(openssl x509 -in "$1" -noout -pubkey)" = "$(openssl pkey -in "$2" -pubout)" ]' \
	_ "$T/dev/g.new.pem" "$T/dev/g.new.key"
check "... and valid now" openssl x509 -in "$T/dev/g.new.pem" -noout -checkend 3600
cp "$T/dev/g.new.pem" "$T/dev/gn.pem"
cp "$T/dev/g.new.key" "$T/dev/gn.key"
ws gn close >"$T/ws-renewed.log" 2>&1 || true
check "the device listener accepts the renewed certificate (101)" \
	grep -q '^UPGRADE HTTP/1.1 101' "$T/ws-renewed.log"
assert_eq "$(psql_q "SELECT count(*) FROM audit_log WHERE target = '$(id_of g)' AND action LIKE 'cert%'")" 1 \
	"one audit row for the renewal"

# The expired certificate is no longer the newest: it cannot renew again.
reenroll g "$T/dev/g.old.pem" "$T/dev/g.key" "$T/dev/g.other.key"
check "the expired certificate again, after a newer one: 403 certificate-not-newest" \
	is_problem 403 certificate-not-newest

# --- past the window: refused ------------------------------------------------
device_enroll h
expired_cert h "50 days ago" "40 days ago"
before=$(psql_q "SELECT count(*) FROM certificates")
reenroll h "$T/dev/h.old.pem" "$T/dev/h.key" "$T/dev/h.new.key"
check "a certificate expired 40 days ago (grace 30 days): 403 certificate-expired-past-grace" \
	is_problem 403 certificate-expired-past-grace
assert_eq "$(psql_q "SELECT count(*) FROM certificates")" "$before" "nothing issued past the window"

# --- revoked or decommissioned: refused --------------------------------------
device_enroll r
expired_cert r "10 days ago" "2 days ago"
psql_q "UPDATE certificates SET status = 'revoked', revoked_at = now(), revoke_reason = 1
	WHERE device_id = '$(id_of r)' AND status = 'active'" >/dev/null
reenroll r "$T/dev/r.old.pem" "$T/dev/r.key" "$T/dev/r.new.key"
check "a revoked expired certificate within the window: 403 est-certificate-not-active" \
	is_problem 403 est-certificate-not-active
device_enroll k
expired_cert k "10 days ago" "2 days ago"
api POST "/api/v1/devices/$(id_of k)/decommission"
assert_eq "$STATUS" 200 "decommission k"
reenroll k "$T/dev/k.old.pem" "$T/dev/k.key" "$T/dev/k.new.key"
check "a decommissioned device within the window: 403" \
	sh -c '[ "$1" = 403 ] && case "$2" in *not-active*) ;; *) exit 1;; esac' _ "$STATUS" "$BODY"

# --- an expired certificate of another CA is not "expired", it is invalid ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$T/rogue.key" -subj "/CN=$(id_of h)" -days 1 \
	-not_before 20200101000000Z -not_after 20200201000000Z -out "$T/rogue.pem" 2>/dev/null ||
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$T/rogue.key" -subj "/CN=$(id_of h)" -days 1 -out "$T/rogue.pem" 2>/dev/null
reenroll h "$T/rogue.pem" "$T/rogue.key" "$T/dev/h.rogue.key"
check "a certificate of another CA: 403 est-client-certificate-invalid" \
	is_problem 403 est-client-certificate-invalid

# --- a real agent offline past its certificate's end --------------------------
# fleet-agent enrolls and goes offline; its certificate is replaced by
# one that expired (1 day ago: within the window; 40 days ago: past it),
# as after a long outage. At start it finds it expired and renews over
# EST (agent/est_renew.c) with a new key, then comes online, without an
# operator; past the window it cannot and says why.
printf '%s\n' "$ENROLL" >"$T/token"
chmod 600 "$T/token"
agent_start() { # agent_start NAME
	cat >"$T/$1.conf" <<EOT
api_url = $FLEET_SERVER
ca_file = $FLEET_CA
state_dir = $T/$1
token_file = $T/token
model = grace-test
log_level = info
EOT
	spawn "$1" fleet-agent -c "$T/$1.conf"
	AGENT_PID=$LAST_PID
}
agent_stop() {
	kill -TERM "$AGENT_PID" 2>/dev/null || true
	wait_for "agent exits" 10 not kill -0 "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null || true
}
online() {
	api GET "/api/v1/devices/$1"
	[ "$STATUS" = 200 ] && [ "$(jq -r .online <<<"$BODY")" = true ]
}
# offline_expired NAME START END: the agent enrolled, stopped, and its
# certificate replaced by an expired one of the same key (recorded as the
# device's newest).
offline_expired() {
	agent_start "$1"
	wait_for "$1 enrolled" 30 test -f "$T/$1/identity.json"
	jq -r .device_id "$T/$1/identity.json" >"$T/dev/$1.id"
	wait_for "$1 online" 20 online "$(id_of "$1")"
	agent_stop
	cp "$T/$1/device.key" "$T/dev/$1.key"
	expired_cert "$1" "$2" "$3"
	cp "$T/dev/$1.old.pem" "$T/$1/cert.pem"
	cat "$T/dev/$1.old.pem" "$T/$1/chain.pem" >"$T/$1/client.pem"
}
offline_expired ag "10 days ago" "1 day ago"
OLDKEY=$(openssl pkey -in "$T/ag/device.key" -pubout)
agent_start ag
check "ag: renews after expiry over EST and comes online" \
	wait_for "ag online" 30 online "$(id_of ag)"
check "ag: the agent says so in its log" grep -q 'renewed the expired certificate' "$T/ag.log"
AG_GEN=$(jq -r .generation "$T/ag/identity.json")
AG_CERT="$T/ag/cert.$AG_GEN.pem"
check "ag: identity.json names the new generation" [ "$AG_GEN" -ge 1 ]
check "ag: the new certificate is valid now and verifies" \
	openssl verify -x509_strict -purpose sslclient -CAfile "$FLEET_CA" "$AG_CERT"
check "ag: with a new key" sh -c '[ "$(openssl x509 -in "$1" -noout -pubkey)" != "$2" ]' _ "$AG_CERT" "$OLDKEY"
assert_eq "$(psql_q "SELECT count(*) FROM certificates WHERE device_id = '$(id_of ag)' AND status = 'active' AND not_after > now()")" 1 \
	"ag: the database holds the renewed certificate"
agent_stop

offline_expired ap "50 days ago" "40 days ago"
agent_start ap
check "ap: past the window the agent is refused and says why" \
	wait_for "ap refused" 30 grep -q 'certificate-expired-past-grace' "$T/ap.log"
check "ap: and stays offline" not online "$(id_of ap)"
check "ap: its identity is unchanged" [ "$(jq -r .generation "$T/ap/identity.json")" = 0 ]
agent_stop

# --- cert_grace = 0 disables renewal after expiry ---------------------------
device_enroll z
expired_cert z "10 days ago" "1 day ago"
fleetd_stop
FLEETD_CERT_GRACE=0 fleetd_start 1
reenroll z "$T/dev/z.old.pem" "$T/dev/z.key" "$T/dev/z.new.key"
check "cert_grace = 0: 403 est-grace-disabled" is_problem 403 est-grace-disabled

fleetd_stop
harness_done
