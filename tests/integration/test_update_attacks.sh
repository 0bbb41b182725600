#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The attacks a signed update must survive (issue 11, TUF's list), one case
# each, against real fleetd, PostgreSQL and a real fleet-agent that pins
# three release keys with a threshold of two. A compromised fleetd is
# played by writing artifacts rows (the envelope fleetd hands out) and
# artifact chunks with psql, a hostile mirror by tests/integration/
# hostile_dl.py behind fleetd's artifact_url_base. Each case asserts the
# stable reason in fleetd's view of the device (GET /api/v1/deployments/
# {id}/devices) and that the device still runs its old version (no
# firmware.json, the dir-ab install target untouched, the agent alive and
# saying fw_version_num 1 in hello).
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
. "$FLEET_SOURCE_DIR/tests/lib/devices.sh"

harness_init
pki_init
fleetd_start 1
TOKEN=$(admin_token admin)
enrollment_token 2 attacks

# ---- release keys: k1..k3 pinned (2 of 3), k4 and k5 not ------------------
mkdir -p "$T/keys" "$T/rel"
for k in k1 k2 k3 k4 k5; do
	fleetctl keys gen --out "$T/keys/$k.key" >/dev/null
done
head -c 300000 /dev/urandom >"$T/fw.bin"
head -c 300000 /dev/urandom >"$T/other.bin"
chmod 0644 "$T/fw.bin" "$T/other.bin"
FW_SHA=$(sha256sum "$T/fw.bin" | cut -d' ' -f1)

# sign OUT VERSION_INT HW EXPIRES KEY...: a release of fw.bin.
sign() {
	local out=$1 vi=$2 hw=$3 exp=$4 k args=()
	shift 4
	for k in "$@"; do args+=(--key "$T/keys/$k.key"); done
	fleetctl release sign "${args[@]}" --name fw --version "v$vi" \
		--version-int "$vi" --hw "$hw" --installer dir-ab \
		--expires "$exp" --out "$out" "$T/fw.bin" >/dev/null
}

# The blob of fw.bin, as a finished upload leaves it (one chunk).
psql_q "INSERT INTO artifact_blobs (sha256, size, chunk_size, complete)
	VALUES ('$FW_SHA', 300000, 1048576, true);
	INSERT INTO artifact_chunks (sha256, idx, data)
	VALUES ('$FW_SHA', 0, pg_read_binary_file('$T/fw.bin'))" >/dev/null

# artifact ENVELOPE [NAME]: an artifacts row holding ENVELOPE as is (what a
# compromised fleetd hands out), its manifest columns from the payload when
# it decodes; prints the id.
artifact() {
	local env=$1 name=${2:-fw-$RANDOM$RANDOM} id
	id=$(python3 -c 'import uuid; print(uuid.uuid4())')
	python3 - "$env" "$id" "$name" "$FW_SHA" >"$T/art.sql" <<'EOF'
import base64, json, sys
env_path, aid, name, sha = sys.argv[1:5]
env = json.load(open(env_path))
try:
    m = json.loads(base64.b64decode(env["payload"]))
except Exception:
    m = {}
def q(s):
    return "'" + str(s).replace("'", "''") + "'"
hw = "{" + ",".join('"%s"' % h for h in m.get("hw", ["x"])) + "}"
print("INSERT INTO artifacts (id, sha256, name, version, version_int, hw, "
      "installer, size, expires_at, envelope, manifest, created_by) VALUES "
      "(%s, %s, %s, %s, %d, %s, %s, %d, %s, %s::jsonb, %s::jsonb, 'test');" % (
          q(aid), q(sha), q(name), q(m.get("version", "v0")),
          m.get("version_int", 1), q(hw), q(m.get("installer", "dir-ab")),
          m.get("size", 300000), q(m.get("expires", "2099-01-01T00:00:00Z")),
          q(json.dumps(env)), q(json.dumps(m))))
EOF
	psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f "$T/art.sql" >/dev/null
	echo "$id"
}

# ---- the agent ---------------------------------------------------------------
A="$T/agent"
cat >"$T/agent.conf" <<EOF
api_url = $FLEET_SERVER
device_url = $FLEET_DEVICE_SERVER
ca_file = $FLEET_CA
state_dir = $A
token = $ENROLL
model = plc-a
fw_version = 1.0
fw_version_num = 1
update_keys = $T/keys/k1.key.pub, $T/keys/k2.key.pub, $T/keys/k3.key.pub
update_threshold = 2
update_modules_dir = $FLEET_SOURCE_DIR/agent/modules
update_reboot_command = reexec
update_download_deadline = 6s
update_stall_timeout = 2s
update_health_deadline = 30s
EOF
spawn agent fleet-agent -c "$T/agent.conf"
AGENT_PID=$LAST_PID
wait_for "agent enrolled" 30 test -f "$A/identity.json"
DEV=$(jq -r .device_id "$A/identity.json")

online() {
	api GET "/api/v1/devices/$DEV"
	[ "$(jq -r .online <<<"$BODY")" = true ]
}
wait_for "agent online" 30 online
# hello says which release key set the agent pins (version 1: its config)
api GET "/api/v1/devices/$DEV"
assert_eq "$(jq -r .keyset_version <<<"$BODY")" 1 "hello: keyset_version 1"
assert_eq "$(jq -r '[.. | .fw_version_num? // empty] | first // "none"' \
	<<<"$BODY")" 1 "hello: fw_version_num 1 (fw_version_num in the config)"

# deploy ARTIFACT: a deployment to the agent's device; sets $DEPL.
deploy() {
	api POST /api/v1/deployments -H 'Content-Type: application/json' \
		--data "{\"artifact_id\": \"$1\", \"device_id\": \"$DEV\"}"
	DEPL=$(jq -r '.id // empty' <<<"$BODY")
	[ "$STATUS" = 201 ] && [ -n "$DEPL" ]
}

finished() {
	[ "$(psql_q "SELECT finished FROM deployment_devices
		WHERE deployment_id = '$DEPL'")" = t ]
}

# The device still runs version 1: nothing committed, nothing installed,
# the agent alive and saying so in hello (fleetd's inventory).
still_old() {
	kill -0 "$AGENT_PID" 2>/dev/null || return 1
	[ ! -e "$A/firmware.json" ] || return 1
	[ ! -e "$A/dir-ab/current" ] || return 1
	[ ! -e "$A/dir-ab/A" ] || [ -z "$(ls -A "$A/dir-ab/A")" ] || return 1
	[ ! -e "$A/dir-ab/B" ] || [ -z "$(ls -A "$A/dir-ab/B")" ] || return 1
	api GET "/api/v1/devices/$DEV"
	[ "$(jq -r '[.. | .fw_version_num? // empty] | first // "none"' \
		<<<"$BODY")" = 1 ]
}

# attack N TITLE ARTIFACT STATE REASON: deploy it, then fleetd's view of
# the device must show STATE with REASON, and the device its old version.
attack() {
	local n=$1 title=$2 art=$3 want_state=$4 want_reason=$5 got
	if ! deploy "$art"; then
		fail "$n $title: deployment not created ($STATUS $BODY)"
		return
	fi
	if ! wait_for "$title: the device's row finished" 40 finished; then
		fail "$n $title: $(psql_q "SELECT state, reason, error FROM
			deployment_devices WHERE deployment_id = '$DEPL'")"
		return
	fi
	api GET "/api/v1/deployments/$DEPL/devices"
	got=$(jq -r '.items[0] | "\(.state) \(.reason)"' <<<"$BODY")
	assert_eq "$got" "$want_state $want_reason" \
		"$n $title: fleetd shows $want_state ($want_reason)"
	check "$n $title: the device still runs version 1" still_old
}

# ---- 1 bad signature -----------------------------------------------------------
sign "$T/rel/good2.json" 2 plc-a 30d k1 k2
jq '.signatures[0].sig |= (.[0:8] + (if .[8:9] == "A" then "B" else "A" end) + .[9:])' \
	"$T/rel/good2.json" >"$T/rel/badsig.json"
attack 1 "bad signature" "$(artifact "$T/rel/badsig.json")" refused bad-signature

# ---- 2 fewer than k valid; the same key counted twice --------------------------
sign "$T/rel/one.json" 2 plc-a 30d k1
attack 2a "one signature of two needed" "$(artifact "$T/rel/one.json")" \
	refused threshold
# A second, different and valid signature by k1 over the same bytes.
python3 - "$T/rel/one.json" "$T/keys/k1.key" >"$T/rel/twice.json" <<'EOF'
import base64, json, subprocess, sys
env = json.load(open(sys.argv[1]))
payload = base64.b64decode(env["payload"])
t = env["payloadType"].encode()
pae = b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)
sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", sys.argv[2]],
                     input=pae, capture_output=True, check=True).stdout
env["signatures"].append({"keyid": env["signatures"][0]["keyid"],
                          "sig": base64.b64encode(sig).decode()})
print(json.dumps(env))
EOF
# release.c refuses a key id listed twice as a malformed envelope, before
# counting anything: stricter than counting it once, and never counted twice.
attack 2b "the same key counted twice" "$(artifact "$T/rel/twice.json")" \
	refused bad-envelope

# ---- 3 keys it does not pin --------------------------------------------------------
sign "$T/rel/unpinned.json" 2 plc-a 30d k4 k5
attack 3 "keys the device does not pin" "$(artifact "$T/rel/unpinned.json")" \
	refused unknown-key

# ---- 4 expired ---------------------------------------------------------------------
sign "$T/rel/expired.json" 2 plc-a 1s k1 k2
wait_for "the 1 s release expired" 5 python3 -c "
import base64, json, sys, datetime
m = json.loads(base64.b64decode(json.load(open('$T/rel/expired.json'))['payload']))
e = datetime.datetime.strptime(m['expires'], '%Y-%m-%dT%H:%M:%SZ')
sys.exit(0 if datetime.datetime.utcnow() > e else 1)"
# fleetd's row says it is valid (the server lies; the signed bytes do not).
ART=$(artifact "$T/rel/expired.json")
psql_q "UPDATE artifacts SET expires_at = '2099-01-01Z' WHERE id = '$ART'" >/dev/null
attack 4 "an expired manifest" "$ART" refused expired

# ---- 5 not newer (replay of the running release) -----------------------------------
sign "$T/rel/old.json" 1 plc-a 30d k1 k2
ART=$(artifact "$T/rel/old.json")
psql_q "UPDATE artifacts SET version_int = 50 WHERE id = '$ART'" >/dev/null
attack 5 "a version not higher than the installed one" "$ART" \
	refused not-newer

# ---- 6 other hardware ----------------------------------------------------------------
sign "$T/rel/hw.json" 2 plc-b 30d k1 k2
# fleetd would skip a device of another model: the compromised server
# offers it anyway (hw column says plc-a, the signed manifest plc-b).
ART=$(artifact "$T/rel/hw.json")
psql_q "UPDATE artifacts SET hw = '{plc-a}' WHERE id = '$ART'" >/dev/null
attack 6 "another hardware model" "$ART" refused hardware

# ---- 7 mix-and-match: the signed manifest's file swapped -------------------------------
# 7a: the server's offer says another size than the signed manifest.
ART=$(artifact "$T/rel/good2.json" size-swap)
psql_q "UPDATE artifacts SET size = 300001 WHERE id = '$ART'" >/dev/null
attack 7a "an offer whose size differs from the manifest" "$ART" \
	refused size-mismatch
# 7b: the envelope of fw.bin, served with the bytes of another file.
psql_q "UPDATE artifact_chunks SET data = pg_read_binary_file('$T/other.bin')
	WHERE sha256 = '$FW_SHA'" >/dev/null
attack 7b "a file whose sha256 differs from the manifest" \
	"$(artifact "$T/rel/good2.json" hash-swap)" failed hash-mismatch
check "7b: the partial file is gone" test ! -e "$A/update/artifact.part"
psql_q "UPDATE artifact_chunks SET data = pg_read_binary_file('$T/fw.bin')
	WHERE sha256 = '$FW_SHA'" >/dev/null

# ---- 10 unexpected payloadType; duplicated signatures -----------------------------------
jq '.payloadType = "application/vnd.in-toto+json"' "$T/rel/good2.json" \
	>"$T/rel/type.json"
attack 10a "an unexpected payloadType" "$(artifact "$T/rel/type.json")" \
	refused bad-envelope
jq '.signatures += [.signatures[0]]' "$T/rel/one.json" >"$T/rel/dup.json"
attack 10b "a duplicated signature" "$(artifact "$T/rel/dup.json")" \
	refused bad-envelope

# ---- 8, 9: a hostile mirror (fleetd's artifact_url_base) ---------------------------------
HPORT=$(free_port)
echo endless >"$T/hostile.mode"
spawn hostile python3 "$FLEET_SOURCE_DIR/tests/integration/hostile_dl.py" \
	--port "$HPORT" --cert "$T/pki/server/server-chain.pem" \
	--key "$T/pki/server/server.key" --mode-file "$T/hostile.mode" \
	--size 300000 --log "$T/hostile-requests.log"
wait_for "hostile mirror listening" 10 grep -q listening "$T/hostile.log"
fleetd_stop
echo "artifact_url_base = https://localhost:$HPORT" >>"$T/fleetd.conf"
fleetd_start 1
wait_for "agent online again" 30 online

sign "$T/rel/good3.json" 3 plc-a 30d k2 k3
attack 8 "endless data from the mirror" \
	"$(artifact "$T/rel/good3.json" endless)" failed oversize
check "8: the agent asked the mirror" grep -q "GET /artifacts/$FW_SHA" \
	"$T/hostile-requests.log"
check "8: nothing past the size was kept" test ! -e "$A/update/artifact.part"

echo stall >"$T/hostile.mode"
sign "$T/rel/good4.json" 4 plc-a 30d k1 k3
attack 9 "a withheld download (6 s deadline)" \
	"$(artifact "$T/rel/good4.json" stall)" failed download-timeout

# ---- a device that pins no release keys cannot verify anything --------------------------
grep -v '^update_' "$T/agent.conf" | sed "s|^state_dir = .*|state_dir = $T/agent2|" \
	>"$T/agent2.conf"
spawn agent2 fleet-agent -c "$T/agent2.conf"
wait_for "agent2 enrolled" 30 test -f "$T/agent2/identity.json"
DEV1=$DEV
DEV=$(jq -r .device_id "$T/agent2/identity.json")
wait_for "agent2 online" 30 online
echo "file:$T/fw.bin" >"$T/hostile.mode"
attack 11 "an offer to a device without update_keys" \
	"$(artifact "$T/rel/good4.json" unpinned-device)" refused unknown-key
DEV=$DEV1

# The device never moved, and the agent logged nothing it should not.
check "the agent ran throughout (pid $AGENT_PID)" kill -0 "$AGENT_PID"
harness_done
