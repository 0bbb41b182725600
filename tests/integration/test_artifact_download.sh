#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# GET|HEAD /artifacts/<sha256> on the device listener (issue 11), checked
# with curl, openssl and sha256sum only, with device certificates made by
# enrollment: a ~5 MiB release signed offline (fleetctl release sign),
# uploaded with fleetctl artifacts upload (several chunks, the last one
# short) and deployed to two devices (POST /api/v1/deployments).
# - the whole file (200, Content-Length, Accept-Ranges, ETag) equals the
#   file; HEAD answers the headers without a body;
# - a download resumed with Range (the first 1.5 MiB, then `bytes=N-`)
#   concatenates to the file, and fleetd_artifact_bytes_sent_total grows by
#   exactly the file's size over the two requests; a suffix range; 416
#   with `Content-Range: bytes */size`; several ranges get the whole body;
#   If-Range with another tag gets the whole body;
# - 404 (one problem type) for a device without a deployment row, for an
#   unknown sha256 and for an incomplete blob; 400 for a path that is not
#   64 lower-case hex digits; no client certificate, or the certificate of
#   a decommissioned device: refused in the TLS handshake, and a download
#   under way when the certificate is revoked is cut;
# - with artifact_cache_dir: the same answers from the verified cache
#   file (metric source="cache"), and a cache file damaged on disk is
#   noticed (sha256) and written again before it is served.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

harness_init
pki_init
fleetd_start 2

TOKEN=$(admin_token operator)
VIEWER=$(admin_token viewer)
enrollment_token 10 t-dl
device_enroll dl-a
device_enroll dl-b
device_enroll dl-c
A=$(id_of dl-a)
C=$(id_of dl-c)

# ---- a release signed offline, uploaded, deployed to dl-a and dl-c -------
# (fleetctl release sign, fleetctl artifacts upload, POST /api/v1/deployments:
# the bytes reach artifact_chunks the way they do in production)
SIZE=$((5 * 1048576 + 12345))
mkdir -p "$T/blob" "$T/keys"
head -c "$SIZE" /dev/urandom >"$T/blob/file"
SHA=$(sha256sum "$T/blob/file" | cut -d' ' -f1)
fleetctl keys gen --out "$T/keys/r1.key" >/dev/null
fleetctl release sign --key "$T/keys/r1.key" --name fw --version 1.0 \
	--version-int 1 --hw test-device --installer dir-ab --expires 1d \
	--out "$T/blob/fw.json" "$T/blob/file" >/dev/null
FLEET_TOKEN=$TOKEN fleetctl artifacts upload "$T/blob/fw.json" "$T/blob/file" \
	</dev/null >"$T/upload.out"
check "artifact uploaded with fleetctl" grep -Eq "^STATUS: +ready" "$T/upload.out"
ART=$(awk '/^ID:/ { print $2 }' "$T/upload.out")
for dev in "$A" "$C"; do
	api POST /api/v1/deployments -H 'Content-Type: application/json' \
		--data "{\"artifact_id\": \"$ART\", \"device_id\": \"$dev\"}"
	assert_eq "$STATUS" 201 "deployment to $dev created"
done
assert_eq "$(psql_q "SELECT sum(length(data)) FROM artifact_chunks WHERE sha256 = '$SHA'")" "$SIZE" \
	"the chunks hold the file"
assert_eq "$(psql_q "SELECT count(*) > 1 FROM artifact_chunks WHERE sha256 = '$SHA'")" t \
	"the file is in several chunks"

URL="https://localhost:$DEVICE_PORT/artifacts/$SHA"

# dl NAME OUT [curl args...] [URL]: a download with NAME's certificate;
# the body goes to $T/OUT, the headers to $T/OUT.h; prints the status
# (000 when the connection failed).
dl() {
	local name=$1 out=$2
	shift 2
	curl -sS --max-time 30 --cacert "$FLEET_CA" --cert "$T/dev/$name.pem" \
		--key "$T/dev/$name.key" -o "$T/$out" -D "$T/$out.h" \
		-w '%{http_code}' "$@" 2>>"$T/curl.log" || true
}
url_of() { echo "https://localhost:$DEVICE_PORT/artifacts/$1"; }
header() { tr -d '\r' <"$T/$1.h" | awk -v n="$2" 'BEGIN { IGNORECASE = 1 } tolower($1) == tolower(n) ":" { $1 = ""; sub(/^ /, ""); print }'; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }
# bytes_sent [SOURCE]: fleetd_artifact_bytes_sent_total summed over workers.
bytes_sent() {
	curl -sf --cacert "$FLEET_CA" -H "Authorization: Bearer $VIEWER" \
		"$FLEET_SERVER/metrics" |
		awk -v s="${1:-}" '/^fleetd_artifact_bytes_sent_total/ && (s == "" || index($0, "source=\"" s "\"")) { t += $NF } END { printf "%d\n", t }'
}

# checks_all MODE: the answers that do not depend on where bytes come from.
checks_all() {
	local mode=$1 before after
	assert_eq "$(dl dl-a full "$URL")" 200 "$mode: full download 200"
	assert_eq "$(sha_of "$T/full")" "$SHA" "$mode: full download equals the file"
	assert_eq "$(header full content-length)" "$SIZE" "$mode: Content-Length"
	assert_eq "$(header full accept-ranges)" bytes "$mode: Accept-Ranges: bytes"
	assert_eq "$(header full etag)" "\"$SHA\"" "$mode: ETag is the sha256"

	before=$(bytes_sent)
	assert_eq "$(dl dl-a part1 -r 0-1572863 "$URL")" 206 "$mode: first 1.5 MiB: 206"
	assert_eq "$(header part1 content-range)" "bytes 0-1572863/$SIZE" "$mode: its Content-Range"
	assert_eq "$(stat -c %s "$T/part1")" 1572864 "$mode: 1.5 MiB received"
	assert_eq "$(dl dl-a part2 -H 'Range: bytes=1572864-' "$URL")" 206 "$mode: resumed with bytes=N-: 206"
	assert_eq "$(header part2 content-range)" "bytes 1572864-$((SIZE - 1))/$SIZE" "$mode: its Content-Range"
	assert_eq "$(header part2 content-length)" "$((SIZE - 1572864))" "$mode: its Content-Length"
	cat "$T/part1" "$T/part2" >"$T/joined"
	assert_eq "$(sha_of "$T/joined")" "$SHA" "$mode: resumed download equals the file"
	wait_for "bytes served counted" 5 test "$(bytes_sent)" -ge $((before + SIZE)) || true
	after=$(bytes_sent)
	assert_eq "$((after - before))" "$SIZE" "$mode: bytes served by the two ranges = the file's size"

	assert_eq "$(dl dl-a suffix -H 'Range: bytes=-100' "$URL")" 206 "$mode: suffix range 206"
	tail -c 100 "$T/blob/file" >"$T/suffix.want"
	check "$mode: suffix range is the last 100 bytes" cmp -s "$T/suffix" "$T/suffix.want"
	assert_eq "$(dl dl-a mid -H 'Range: bytes=1048570-1048585' "$URL")" 206 "$mode: range across a chunk border 206"
	dd if="$T/blob/file" of="$T/mid.want" bs=1 skip=1048570 count=16 status=none
	check "$mode: range across a chunk border is right" cmp -s "$T/mid" "$T/mid.want"

	assert_eq "$(dl dl-a r416 -H "Range: bytes=$SIZE-" "$URL")" 416 "$mode: range past the end: 416"
	assert_eq "$(header r416 content-range)" "bytes */$SIZE" "$mode: 416 says the size"
	assert_eq "$(jq -r .type "$T/r416")" urn:fleet:problem:artifact-range-not-satisfiable "$mode: 416 problem type"
	assert_eq "$(dl dl-a multi -H 'Range: bytes=0-9,20-29' "$URL")" 200 "$mode: several ranges: the whole body (200)"
	assert_eq "$(sha_of "$T/multi")" "$SHA" "$mode: several ranges: the file"
	assert_eq "$(dl dl-a ifr -H 'Range: bytes=0-9' -H 'If-Range: "other"' "$URL")" 200 "$mode: If-Range with another tag: 200"
	assert_eq "$(dl dl-a ifr2 -H 'Range: bytes=0-9' -H "If-Range: \"$SHA\"" "$URL")" 206 "$mode: If-Range with its ETag: 206"

	assert_eq "$(dl dl-a head -I "$URL")" 200 "$mode: HEAD 200"
	assert_eq "$(header head content-length)" "$SIZE" "$mode: HEAD Content-Length"
	assert_eq "$(dl dl-a headr -I -H 'Range: bytes=10-19' "$URL")" 206 "$mode: HEAD with a Range 206"
}

checks_all database

# ---- who may download what ---------------------------------------------
assert_eq "$(dl dl-b nodep "$URL")" 404 "a device without a deployment row: 404"
assert_eq "$(jq -r .type "$T/nodep")" urn:fleet:problem:artifact-not-found "its problem type"
assert_eq "$(header nodep content-type)" application/problem+json "problem+json"
OTHER=$(printf 'other' | sha256sum | cut -d' ' -f1)
assert_eq "$(dl dl-a unknown "$(url_of "$OTHER")")" 404 "an unknown sha256: 404"
assert_eq "$(jq -r .type "$T/unknown")" urn:fleet:problem:artifact-not-found "the same problem type"
psql_q "UPDATE artifact_blobs SET complete = false WHERE sha256 = '$SHA'"
assert_eq "$(dl dl-a incomplete "$URL")" 404 "an incomplete blob: 404"
psql_q "UPDATE artifact_blobs SET complete = true WHERE sha256 = '$SHA'"
assert_eq "$(dl dl-a short "$(url_of abc)")" 400 "a path that is not a sha256: 400"
assert_eq "$(jq -r .type "$T/short")" urn:fleet:problem:artifact-path-invalid "its problem type"
assert_eq "$(dl dl-a upper "$(url_of "${SHA^^}")")" 400 "upper-case hex: 400"
assert_eq "$(dl dl-a other "https://localhost:$DEVICE_PORT/nothing")" 404 "another path of GET: 404 (as before)"

assert_eq "$(curl -sS --max-time 10 --cacert "$FLEET_CA" -o /dev/null -w '%{http_code}' "$URL" 2>/dev/null || true)" 000 \
	"no client certificate: refused in the handshake"
# A download under way when its certificate is revoked is cut: the server
# resets the connection and sends nothing more (at 25 KB/s the whole file
# would take over 200 s; the client may still read what its socket
# buffer held, so the server side is what is checked).
curl -sS --max-time 240 --limit-rate 25k --cacert "$FLEET_CA" \
	--cert "$T/dev/dl-c.pem" --key "$T/dev/dl-c.key" -o "$T/slow" "$URL" \
	2>"$T/slow.err" &
SLOW=$!
HARNESS_PIDS+=("$SLOW")
wait_for "dl-c's slow download under way" 10 test -s "$T/slow"
t0=$SECONDS
api POST "/api/v1/devices/$C/decommission"
assert_eq "$STATUS" 200 "decommission dl-c (its certificate is revoked)"
check "the download under way is cut within 15 s" wait_for "dl-c's download cut" 15 \
	grep -q "revoked; cutting the download" "$T/fleetd.log"
echo "# the download was cut $((SECONDS - t0)) s after the decommission"
# Let lws close it (its kill timeout runs once a second).
wait_for "the cut connection is closed" 5 bash -c \
	"! ss -tnH state established '( sport = :$DEVICE_PORT )' | grep -q ." || true
CUT=$(bytes_sent)
wait_for "dl-c refused in the handshake" 15 test "$(dl dl-c revoked "$URL")" = 000
assert_eq "$(dl dl-c revoked "$URL")" 000 "a revoked certificate: refused in the handshake"
assert_eq "$(bytes_sent)" "$CUT" "no byte sent to the cut download since (curl still reading: $(stat -c %s "$T/slow") bytes)"
kill "$SLOW" 2>/dev/null || true
assert_eq "$(dl dl-a full "$URL")" 200 "dl-a still downloads"

# ---- from the cache file -------------------------------------------------
fleetd_stop
mkdir -p "$T/cache"
[ "$(id -u)" != 0 ] || chown fleetd:fleetd "$T/cache"
chmod 0700 "$T/cache"
echo "artifact_cache_dir = $T/cache" >>"$T/fleetd.conf"
fleetd_start
checks_all cache
check "the cache file is there" test -f "$T/cache/$SHA"
assert_eq "$(sha_of "$T/cache/$SHA")" "$SHA" "the cache file is the blob"
check "bytes counted from the cache" test "$(bytes_sent cache)" -gt 0
# Damage the cache file behind fleetd's back: same size, other bytes.
printf 'XXXXXXXX' | dd of="$T/cache/$SHA" bs=1 seek=4096 conv=notrunc status=none
assert_eq "$(dl dl-a again "$URL")" 200 "after damage: 200"
assert_eq "$(sha_of "$T/again")" "$SHA" "after damage: still the file"
assert_eq "$(sha_of "$T/cache/$SHA")" "$SHA" "the damaged cache file was written again"
check "the damage was logged" grep -q "does not match its sha256" "$T/fleetd.log"

harness_done
