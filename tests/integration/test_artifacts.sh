#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Artifacts (issue 11): POST /api/v1/artifacts with a release envelope
# signed offline (fleetctl keys gen, fleetctl release sign), the file
# streamed with PUT .../file, list/show/delete, against a real fleetd and
# PostgreSQL. Checks: the stored chunks hash to the manifest's sha256
# (PostgreSQL's sha256() is the oracle), the same file under a second
# release is stored once, a wrong file is 422 with nothing kept, a size
# over artifact_max_size is 413, no Content-Length is 411, a client that
# disconnects mid-upload leaves nothing complete and a retry works, delete
# is refused while a deployment uses it, bad envelopes are 422
# artifact-bad-envelope; fleetctl artifacts upload/list/show/rm; and a
# ~300 MiB upload through fleetctl with the net worker's RSS sampled.
source "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

MAX=$((24 * 1024 * 1024)) # artifact_max_size for this test
export FLEETD_ARTIFACT_MAX_SIZE=$MAX

harness_init
pki_init
fleetd_start 1
export TOKEN
TOKEN=$(admin_token operator)
export FLEET_TOKEN=$TOKEN

cd "$T"
fleetctl keys gen --out "$T/rk1" >/dev/null

# sign NAME VINT FILE OUT: a release of FILE signed with rk1.
sign() {
	fleetctl release sign --key "$T/rk1" --name "$1" --version "$2.0" \
		--version-int "$2" --hw model-a --installer dir-ab \
		--expires 30d --out "$4" "$3" >/dev/null
}

# post ENVELOPE_FILE: POST /api/v1/artifacts; sets ID on 201.
post() {
	local env=$1
	shift
	api POST /api/v1/artifacts -H 'Content-Type: application/json' \
		--data-binary "{\"envelope\": $(cat "$env")}" "$@"
	ID=$(jq -r '.id // empty' <<<"$BODY")
}

# put ID FILE [curl args]: PUT the file (streamed by curl -T).
put() {
	local id=$1 file=$2
	shift 2
	api PUT "/api/v1/artifacts/$id/file" \
		-H 'Content-Type: application/octet-stream' -T "$file" "$@"
}

problem_type() { jq -r .type <<<"$BODY"; }

chunks_of() { psql_q "SELECT count(*) FROM artifact_chunks WHERE sha256 = '$1'"; }
blob_complete() { psql_q "SELECT complete FROM artifact_blobs WHERE sha256 = '$1'"; }
stored_sha() {
	psql_q "SELECT encode(sha256(string_agg(data, ''::bytea ORDER BY idx)), 'hex')
		FROM artifact_chunks WHERE sha256 = '$1'"
}

# ---- upload, list, show ------------------------------------------------------
head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom >fw1.bin
SHA1=$(sha256sum fw1.bin | cut -d' ' -f1)
sign fw 1 fw1.bin fw1.json
post fw1.json
assert_eq "$STATUS" 201 "POST /api/v1/artifacts: 201"
assert_eq "$(jq -r .status <<<"$BODY")" uploading "a new file is uploading"
assert_eq "$(jq -r .sha256 <<<"$BODY")" "$SHA1" "the manifest's sha256 is copied"
ID1=$ID
put "$ID1" fw1.bin
assert_eq "$STATUS" 200 "PUT .../file: 200"
assert_eq "$(jq -r .status <<<"$BODY")" ready "the artifact is ready"
assert_eq "$(chunks_of "$SHA1")" 4 "stored in 1 MiB chunks (4)"
assert_eq "$(stored_sha "$SHA1")" "$SHA1" "the chunks hash to the manifest's sha256 (PostgreSQL)"
assert_eq "$(blob_complete "$SHA1")" t "the blob is complete"
api GET "/api/v1/artifacts/$ID1"
assert_eq "$STATUS" 200 "GET one artifact"
check "show carries the envelope" \
	test "$(jq -S -c .envelope <<<"$BODY")" = "$(jq -S -c . fw1.json)"
assert_eq "$(psql_q "SELECT count(*) FROM audit_log WHERE action IN ('artifact.create', 'artifact.upload') AND target = '$ID1'")" 2 \
	"audit rows for create and upload"

# ---- the same file under a second release is stored once --------------------
sign fw 2 fw1.bin fw2.json
post fw2.json
assert_eq "$STATUS" 201 "a second release of the same file"
assert_eq "$(jq -r .status <<<"$BODY")" ready "it is ready at once (the file is known)"
ID2=$ID
assert_eq "$(psql_q "SELECT count(*) FROM artifact_blobs")" 1 "one blob for two releases"
post fw2.json
assert_eq "$STATUS" 409 "the same release again: 409"
assert_eq "$(problem_type)" urn:fleet:problem:artifact-exists "type artifact-exists"
api GET '/api/v1/artifacts?name=fw&limit=1'
assert_eq "$(jq '.items | length' <<<"$BODY")" 1 "list: one per page"
CURSOR=$(jq -r .next_cursor <<<"$BODY")
api GET "/api/v1/artifacts?name=fw&limit=1&cursor=$CURSOR"
assert_eq "$(jq -r '.items[0].id' <<<"$BODY")" "$ID2" "list: the second page"
api GET '/api/v1/artifacts?version=2.0'
assert_eq "$(jq -r '[.items[].id] | join(",")' <<<"$BODY")" "$ID2" "list: filter by version"

# ---- Idempotency-Key: a retried POST gets the first answer ---------------------
sign fw 7 fw1.bin fw7.json
post fw7.json -H 'Idempotency-Key: art-7'
ID7=$ID
post fw7.json -H 'Idempotency-Key: art-7'
assert_eq "$STATUS:$ID" "201:$ID7" "the same Idempotency-Key replays the first answer"
assert_eq "$(psql_q "SELECT count(*) FROM artifacts WHERE version_int = 7")" 1 "and creates one artifact"

# ---- a wrong file: 422, nothing kept -------------------------------------------
head -c 2500000 /dev/urandom >fw3.bin
SHA3=$(sha256sum fw3.bin | cut -d' ' -f1)
sign fw 3 fw3.bin fw3.json
post fw3.json
ID3=$ID
head -c 2500000 /dev/urandom >wrong.bin
put "$ID3" wrong.bin
assert_eq "$STATUS" 422 "a file other than the manifest's: 422"
assert_eq "$(problem_type)" urn:fleet:problem:artifact-hash-mismatch "type artifact-hash-mismatch"
assert_eq "$(chunks_of "$SHA3")" 0 "no chunk kept"
assert_eq "$(blob_complete "$SHA3")" f "the blob is not complete"
head -c 1000 fw3.bin >short.bin
put "$ID3" short.bin
assert_eq "$STATUS" 422 "a shorter file: 422"
assert_eq "$(problem_type)" urn:fleet:problem:artifact-size-mismatch "type artifact-size-mismatch"
api PUT "/api/v1/artifacts/$ID3/file" -H 'Content-Type: application/octet-stream'
assert_eq "$STATUS" 411 "no Content-Length: 411"
assert_eq "$(problem_type)" urn:fleet:problem:length-required "type length-required"
api PUT "/api/v1/artifacts/$ID3/file" -H 'Content-Type: application/octet-stream' \
	-H 'Transfer-Encoding: chunked' --data-binary @short.bin
assert_eq "$STATUS" 400 "chunked transfer coding: 400 (refused like every body)"
api PUT "/api/v1/artifacts/$ID3/file" -H 'Content-Type: text/plain' -T fw3.bin
assert_eq "$STATUS" 415 "not application/octet-stream: 415"

# ---- too large: 413 --------------------------------------------------------------
head -c $((MAX + 1)) /dev/zero >big.bin
sign big 1 big.bin big.json
post big.json
IDBIG=$ID
put "$ID" big.bin
assert_eq "$STATUS" 413 "over artifact_max_size: 413"
assert_eq "$(problem_type)" urn:fleet:problem:artifact-too-large "type artifact-too-large"
# curl sends Expect: 100-continue for a body this large; fleetd answers
# before asking for the body, so none of it is sent.
curl -sv --max-time 20 --cacert "$FLEET_CA" -H "Authorization: Bearer $TOKEN" \
	-H 'Content-Type: application/octet-stream' -T big.bin \
	"$FLEET_SERVER/api/v1/artifacts/$IDBIG/file" >/dev/null 2>curl.log || true
check "curl asked for 100-continue" grep -qi '^> Expect: 100-continue' curl.log
check "and got the 413 without sending the body" \
	not grep -Eqi 'completely uploaded|upload completely sent|^< HTTP/1.1 100' curl.log
assert_eq "$(chunks_of "$(sha256sum big.bin | cut -d' ' -f1)")" 0 "nothing stored for it"

# ---- a client that disconnects mid-upload ----------------------------------------
head -c $((5 * 1024 * 1024)) /dev/urandom >fw4.bin
SHA4=$(sha256sum fw4.bin | cut -d' ' -f1)
sign fw 4 fw4.bin fw4.json
post fw4.json
ID4=$ID
cat >partial.py <<'PY'
import os, socket, ssl, sys, time
host, port, ca, path, token, size, src, go = sys.argv[1:9]
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname=host)
s.sendall((f"PUT {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
           f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n").encode())
data = open(src, 'rb').read()
s.sendall(data[: len(data) * 3 // 5])    # 3 of 5 MiB, then wait
for _ in range(600):
    if os.path.exists(go):
        break
    time.sleep(0.05)
s.close()                               # gone mid-way
PY
spawn partial python3 partial.py localhost "${FLEET_SERVER##*:}" "$FLEET_CA" \
	"/api/v1/artifacts/$ID4/file" "$TOKEN" "$(stat -c %s fw4.bin)" fw4.bin "$T/go"
PARTIAL=$LAST_PID
chunks_some() { [ "$(chunks_of "$SHA4")" -ge 2 ]; }
check "chunks arrive while the upload runs" wait_for "2 chunks stored" 30 chunks_some
assert_eq "$(blob_complete "$SHA4")" f "mid-upload: the blob is not complete"
api GET "/api/v1/artifacts/$ID4"
assert_eq "$(jq -r .status <<<"$BODY")" uploading "mid-upload: status uploading"
put "$ID4" fw4.bin
assert_eq "$STATUS" 409 "a second upload of the same file meanwhile: 409"
assert_eq "$(problem_type)" urn:fleet:problem:artifact-upload-busy "type artifact-upload-busy"
# Uploads hold a job thread each: a worker takes job_threads / 2 (2)
# at once and answers 503 beyond, so the API stays served.
spawn partial2 python3 partial.py localhost "${FLEET_SERVER##*:}" "$FLEET_CA" \
	"/api/v1/artifacts/$ID3/file" "$TOKEN" "$(stat -c %s fw3.bin)" fw3.bin "$T/go"
PARTIAL2=$LAST_PID
chunks3() { [ "$(chunks_of "$SHA3")" -ge 1 ]; }
check "a second file uploads at the same time" wait_for "a chunk of fw3" 30 chunks3
put "$IDBIG" big.bin
assert_eq "$STATUS" 503 "a third upload on the worker: 503"
api GET /api/v1/artifacts
assert_eq "$STATUS" 200 "the API is served meanwhile"
touch "$T/go"
wait_for "the partial client exits" 10 not kill -0 "$PARTIAL" || true
wait_for "the second partial client exits" 10 not kill -0 "$PARTIAL2" || true
chunks_none() { [ "$(chunks_of "$SHA4")" = 0 ]; }
check "a disconnect removes the partial chunks" wait_for "chunks removed" 70 chunks_none
assert_eq "$(blob_complete "$SHA4")" f "after the disconnect: nothing complete"
put "$ID4" fw4.bin
assert_eq "$STATUS" 200 "a later upload starts over and succeeds"
assert_eq "$(stored_sha "$SHA4")" "$SHA4" "and stores exactly the file"

# ---- bad envelopes ----------------------------------------------------------------
bad_envelope() {
	api POST /api/v1/artifacts -H 'Content-Type: application/json' --data-binary "$2"
	if [ "$STATUS" = 422 ] && [ "$(problem_type)" = urn:fleet:problem:artifact-bad-envelope ]; then
		ok "bad envelope: $1"
	else
		fail "bad envelope: $1 ($STATUS $BODY)"
	fi
}
b64() { printf '%s' "$1" | base64 -w0; }
SIG='"signatures": [{"keyid": "", "sig": "AAAA"}]'
bad_envelope "not DSSE" '{"envelope": {"hello": "world"}}'
bad_envelope "not an object" '{"envelope": "x"}'
bad_envelope "wrong payloadType" "{\"envelope\": {\"payloadType\": \"application/json\", \"payload\": \"$(b64 '{}')\", $SIG}}"
bad_envelope "no signature" "{\"envelope\": {\"payloadType\": \"application/vnd.fleet.manifest+json\", \"payload\": \"$(b64 '{}')\", \"signatures\": []}}"
bad_envelope "payload not base64" "{\"envelope\": {\"payloadType\": \"application/vnd.fleet.manifest+json\", \"payload\": \"@@@\", $SIG}}"
bad_envelope "manifest missing fields" "{\"envelope\": {\"payloadType\": \"application/vnd.fleet.manifest+json\", \"payload\": \"$(b64 '{"name": "x"}')\", $SIG}}"
check "the detail names the missing field" grep -q "manifest" <<<"$BODY"
api POST /api/v1/artifacts -H 'Content-Type: application/json' --data-binary '{"envelope": {}, "x": 1}'
assert_eq "$STATUS" 400 "an unknown member: 400"
assert_eq "$(psql_q "SELECT count(*) FROM artifacts WHERE name NOT IN ('fw', 'big')")" 0 "nothing was created by bad input"

# An expired manifest: every agent would refuse it, so fleetd does.
python3 - fw1.json expired.json <<'PY'
import base64, json, sys
e = json.load(open(sys.argv[1]))
m = json.loads(base64.b64decode(e["payload"]))
m["created"], m["expires"] = "2020-01-01T00:00:00Z", "2020-02-01T00:00:00Z"
e["payload"] = base64.b64encode(json.dumps(m).encode()).decode()
json.dump(e, open(sys.argv[2], "w"))
PY
post expired.json
assert_eq "$STATUS" 422 "an expired manifest: 422"
assert_eq "$(problem_type)" urn:fleet:problem:artifact-expired "type artifact-expired"

# ---- roles -------------------------------------------------------------------------
VIEWER=$(admin_token viewer viewer1)
OPER=$TOKEN
TOKEN=$VIEWER
api GET /api/v1/artifacts
assert_eq "$STATUS" 200 "a viewer lists"
put "$ID3" fw3.bin
assert_eq "$STATUS" 403 "a viewer cannot upload"
api DELETE "/api/v1/artifacts/$ID3"
assert_eq "$STATUS" 403 "a viewer cannot delete"
TOKEN=$OPER

# ---- delete ------------------------------------------------------------------------
DEV=$(python3 -c 'import uuid; print(uuid.uuid4())')
DEP=$(python3 -c 'import uuid; print(uuid.uuid4())')
psql_q "INSERT INTO devices (id) VALUES ('$DEV');
	INSERT INTO deployments (id, artifact_id, created_by) VALUES ('$DEP', '$ID1', 'test');
	INSERT INTO deployment_devices (deployment_id, device_id, state) VALUES ('$DEP', '$DEV', 'downloading')" >/dev/null
api DELETE "/api/v1/artifacts/$ID1"
assert_eq "$STATUS" 409 "delete while a deployment uses it: 409"
assert_eq "$(problem_type)" urn:fleet:problem:artifact-in-use "type artifact-in-use"
psql_q "UPDATE deployment_devices SET state = 'committed' WHERE deployment_id = '$DEP'" >/dev/null
api DELETE "/api/v1/artifacts/$ID1"
assert_eq "$STATUS" 204 "delete once the deployment finished: 204"
assert_eq "$(psql_q "SELECT count(*) FROM deployments WHERE id = '$DEP'")" 0 "the finished deployment went with it"
assert_eq "$(blob_complete "$SHA1")" t "the blob stays while release 2 uses it"
api DELETE "/api/v1/artifacts/$ID7"
assert_eq "$STATUS" 204 "delete another release of the file"
assert_eq "$(blob_complete "$SHA1")" t "the blob still stays"
api DELETE "/api/v1/artifacts/$ID2"
assert_eq "$STATUS" 204 "delete the last release of the file"
assert_eq "$(psql_q "SELECT count(*) FROM artifact_blobs WHERE sha256 = '$SHA1'")" 0 "the blob went with it"
assert_eq "$(chunks_of "$SHA1")" 0 "and its chunks"
api GET "/api/v1/artifacts/$ID2"
assert_eq "$STATUS" 404 "gone: 404"
api DELETE "/api/v1/artifacts/$ID2"
assert_eq "$STATUS" 404 "delete again: 404"

# ---- fleetctl artifacts --------------------------------------------------------------
head -c $((2 * 1024 * 1024 + 7)) /dev/urandom >fw5.bin
SHA5=$(sha256sum fw5.bin | cut -d' ' -f1)
sign cli 5 fw5.bin fw5.json
head -c 100 /dev/urandom >other.bin
if fleetctl artifacts upload fw5.json other.bin >out 2>err; then
	fail "fleetctl refuses a file of another size"
else
	check "fleetctl refuses a file of another size, before sending" \
		grep -q "the manifest says $(stat -c %s fw5.bin)" err
fi
assert_eq "$(psql_q "SELECT count(*) FROM artifacts WHERE name = 'cli'")" 0 "nothing was registered"
if fleetctl artifacts upload fw5.json fw5.bin >out 2>err; then
	ok "fleetctl artifacts upload"
else
	fail "fleetctl artifacts upload: $(cat err)"
fi
check "plain progress lines without a terminal" grep -q "^uploaded 100% (2097159 of 2097159 bytes)" out
ID5=$(awk '/^ID:/ { print $2 }' out)
check "it prints the artifact, ready" grep -Eq "^STATUS: +ready" out
assert_eq "$(stored_sha "$SHA5")" "$SHA5" "the file stored by fleetctl hashes right"
fleetctl artifacts upload fw5.json fw5.bin >out 2>err
check "uploading it again sends nothing" grep -q "already stored" out
check "fleetctl artifacts list --name" \
	test "$(fleetctl artifacts list --name cli -o json | jq -r '.[].id')" = "$ID5"
check "fleetctl artifacts show" \
	test "$(fleetctl artifacts show "$ID5" -o json | jq -r .sha256)" = "$SHA5"
# An upload broken by the server going away is retried by running it again.
psql_q "DELETE FROM artifact_chunks WHERE sha256 = '$SHA5';
	UPDATE artifact_blobs SET complete = false WHERE sha256 = '$SHA5'" >/dev/null
fleetctl artifacts upload fw5.json fw5.bin >out 2>err
check "a release registered without its file is completed by a rerun" grep -q "^uploaded artifact $ID5" out
check "fleetctl artifacts rm" fleetctl artifacts rm "$ID5"
# On a terminal (script(1) gives it one): a bar redrawn in place.
script -qec "fleetctl artifacts upload fw5.json fw5.bin" /dev/null >tty.out 2>&1 || true
check "a progress bar on a terminal" grep -q $'\r\[##############################\] 100%' tty.out
ID5=$(tr -d '\r' <tty.out | awk '/^ID:/ { print $2 }')
check "fleetctl artifacts rm (again)" fleetctl artifacts rm "$ID5"
assert_eq "$(psql_q "SELECT count(*) FROM artifact_blobs WHERE sha256 = '$SHA5'")" 0 "rm removed the file"

# ---- a large upload: fleetd's memory stays flat -------------------------------------
# fleetd again with the default artifact_max_size (4 GiB). ASan keeps up
# to 256 MiB of freed memory in quarantine (TLS record buffers are freed
# and allocated again per record), which would be measured as growth:
# this fleetd gets a small quarantine, so the figure is the design's.
fleetd_stop
unset FLEETD_ARTIFACT_MAX_SIZE
SAVED_ASAN=$ASAN_OPTIONS
export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=4:thread_local_quarantine_size_kb=64"
fleetd_start 1
export ASAN_OPTIONS=$SAVED_ASAN
LARGE_MIB=${ARTIFACT_TEST_MIB:-300}
head -c $((LARGE_MIB * 1024 * 1024)) /dev/urandom >large.bin
sign large 1 large.bin large.json
NET=$(fleetd_child fleetd-net1)
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$NET/status"; }
BEFORE=$(rss_kib)
(
	peak=0
	while kill -0 "$NET" 2>/dev/null && [ ! -e "$T/rss.stop" ]; do
		r=$(rss_kib)
		[ "$r" -gt "$peak" ] && peak=$r && echo "$peak" >"$T/rss.peak"
		sleep 0.2
	done
) &
SAMPLER=$!
START=$(date +%s.%N)
if fleetctl artifacts upload large.json large.bin >out 2>err; then
	ok "fleetctl uploads $LARGE_MIB MiB"
else
	fail "fleetctl uploads $LARGE_MIB MiB: $(cat err)"
fi
END=$(date +%s.%N)
touch "$T/rss.stop"
wait "$SAMPLER" || true
PEAK=$(cat "$T/rss.peak" 2>/dev/null || echo "$BEFORE")
GROWTH=$(((PEAK - BEFORE) / 1024))
echo "# $LARGE_MIB MiB upload: $(python3 -c "print(f'{$LARGE_MIB / ($END - $START):.1f}')") MiB/s; net worker RSS $((BEFORE / 1024)) MiB before, peak $((PEAK / 1024)) MiB (+$GROWTH MiB)"
check "the net worker's RSS grew by less than 64 MiB for $LARGE_MIB MiB" test "$GROWTH" -lt 64
LSHA=$(sha256sum large.bin | cut -d' ' -f1)
assert_eq "$(chunks_of "$LSHA")" "$LARGE_MIB" "stored as $LARGE_MIB chunks"
assert_eq "$(blob_complete "$LSHA")" t "complete"

harness_done
