# SPDX-License-Identifier: Apache-2.0
# Scripted devices for the integration tests, sourced by a test after
# tests/lib/harness.sh once fleetd runs (fleetd_start):
#
#   enrollment_token USES SITE   sets $ENROLL: an enrollment token for USES
#                                devices labelled site=SITE ($TOKEN must be
#                                an operator's admin token)
#   device_enroll NAME [MODEL]   a P-256 key and CSR made with openssl,
#                                POST /enroll/v1 with curl; leaves
#                                $T/dev/NAME.{key,csr,json,pem,id}
#   id_of NAME                   the device id of NAME
#   ws NAME ACTIONS...           tests/integration/wsclient.py as NAME
#   ws_bg NAME LOG ACTIONS...    the same in the background (spawn), its
#                                output in $T/LOG.log
WS="python3 $FLEET_SOURCE_DIR/tests/integration/wsclient.py"

enrollment_token() {
	api POST /api/v1/tokens -H 'Content-Type: application/json' \
		--data "{\"uses\": $1, \"expires_in\": \"1h\", \"labels\": {\"site\": \"$2\"}}"
	assert_eq "$STATUS" 201 "enrollment token created"
	ENROLL=$(jq -r .token <<<"$BODY")
	mkdir -p "$T/dev"
}

device_enroll() {
	local d="$T/dev/$1" model=${2:-test-device} body status
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$d.key" 2>/dev/null
	openssl req -new -key "$d.key" -subj "/CN=$1" -out "$d.csr" 2>/dev/null
	body=$(jq -n --arg t "$ENROLL" --rawfile c "$d.csr" --arg s "$1" \
		--arg m "$model" '{token: $t, csr: $c, model: $m, serial: $s}')
	status=$(curl -sS --max-time 20 --cacert "$FLEET_CA" -o "$d.json" \
		-w '%{http_code}' -H 'Content-Type: application/json' \
		--data "$body" "$FLEET_SERVER/enroll/v1")
	if [ "$status" != 201 ]; then
		echo "enroll $1: $status $(cat "$d.json")" >&2
		return 1
	fi
	jq -r .certificate "$d.json" >"$d.pem"
	jq -r .device_id "$d.json" >"$d.id"
}

id_of() { cat "$T/dev/$1.id"; }

ws() {
	local name=$1
	shift
	$WS --port "$DEVICE_PORT" --ca "$FLEET_CA" --cert "$T/dev/$name.pem" \
		--key "$T/dev/$name.key" "$@"
}

ws_bg() {
	local name=$1 log=$2
	shift 2
	spawn "$log" $WS --port "$DEVICE_PORT" --ca "$FLEET_CA" \
		--cert "$T/dev/$name.pem" --key "$T/dev/$name.key" "$@"
}

# issuing_ca_sign CSR OUT [openssl ca args...]: a clientAuth certificate
# for CSR signed by the fleet's issuing CA with openssl ca, outside fleetd
# (so the database does not know it); log in OUT.log. Returns openssl's
# status.
issuing_ca_sign() {
	local csr=$1 out=$2 dir
	shift 2
	dir=$(mktemp -d "$T/ca.XXXXXX")
	: >"$dir/index.txt"
	echo 1000 >"$dir/serial"
	cat >"$dir/ca.cnf" <<EOT
[ca]
default_ca = rogue
[rogue]
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
default_md = sha256
policy = any
unique_subject = no
x509_extensions = leaf
[any]
commonName = supplied
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
EOT
	openssl ca -batch -config "$dir/ca.cnf" \
		-cert "$T/pki/issuing/issuing.pem" \
		-keyfile "$T/pki/issuing/issuing.key" -in "$csr" -out "$out" \
		"$@" >"$out.log" 2>&1
}
